#!/usr/bin/env bash
# reference_runs.sh OUT: deterministic sequential runs, a population sweep and a sequential
# sweep on synthetic data into OUT. Run it before and after a change to the training code,
# then `python scripts/compare_runs.py BEFORE AFTER` says whether every metric is identical.
# EXTRA holds overrides put before each run's own, e.g. EXTRA=optim=sgd to pin an old default.
out=$1; mkdir -p $out
common="dataset=synthetic trainer.epochs=3 trainer.deterministic=true ${EXTRA:-}"
i=0
for args in "reg=none" "reg=all" "reg=dropout reg.dropout.kind=spatial reg.dropout.conv=0.2" "reg=curriculum_dropout" "reg=dropconnect" "reg=batchnorm reg.dropout.position=before_bn reg.dropout.conv=0.2" "reg=l1" "reg=max_norm" "reg=label_smoothing" "reg=early_stopping reg.early_stopping.patience=1" "reg=weight_decay optim=adamw"; do
  i=$((i+1))
  regbench run $common $args seed=1 experiment=seq$i output.root=$out > $out/seq$i.log 2>&1
done
regbench sweep dataset=synthetic trainer.epochs=3 ${EXTRA:-} 'reg.dropout.fc=0.0,0.5' 'reg.l2=0.0,0.001' seed=0,1 hydra/launcher=population experiment=pop output.root=$out > $out/pop.log 2>&1
regbench sweep dataset=synthetic trainer.epochs=2 ${EXTRA:-} 'reg.dropout.fc=0.0,0.5' seed=0,1 experiment=sweepseq output.root=$out > $out/sweepseq.log 2>&1
echo done > $out/DONE
