#!/usr/bin/env bash
# reference_runs.sh OUT: deterministic CPU runs of every regularizer preset, a population
# sweep and a sequential sweep on synthetic data into OUT, each command under its own
# experiment name. Run it before and after a change to the training code, then
# `python scripts/compare_runs.py BEFORE AFTER` says whether every metric is identical.
# EXTRA holds overrides put before each run's own, e.g. EXTRA=optim=sgd to pin an old default.
# $REGBENCH (default `regbench`) is the command that is run.
set -euo pipefail
out=${1:?usage: reference_runs.sh OUT}
mkdir -p "$out"
regbench=${REGBENCH:-regbench}
read -r -a extra <<< "${EXTRA:-}"
common=(dataset=synthetic trainer.epochs=3 trainer.deterministic=true trainer.progress=false
        trainer.device=cpu "output.root=$out" "${extra[@]}")
run() {  # run EXPERIMENT OVERRIDES...: one run, its output in OUT/EXPERIMENT.log
  local name=$1; shift
  # shellcheck disable=SC2086  # $regbench may be a command with arguments
  $regbench run "${common[@]}" seed=1 "experiment=$name" "$@" >"$out/$name.log" 2>&1
  echo "ran $name"
}
run none reg=none
run all reg=all
run mnist5k_all reg=all dataset=mnist5k dataset.train_size=300
run spatial reg=dropout reg.dropout.kind=spatial reg.dropout.conv=0.2
run gaussian reg=gaussian_dropout
run curriculum reg=curriculum_dropout
run late reg=dropout reg.dropout.schedule=late reg.dropout.input=0.1
run adaptive reg=dropout reg.dropout.schedule=adaptive
run dropconnect reg=dropconnect
run before_bn reg=batchnorm reg.dropout.position=before_bn reg.dropout.conv=0.2
run l1 reg=l1
run l2_all_params reg=weight_decay reg.decay_bias_and_norm=true reg.l2=1e-3
run max_norm reg=max_norm
run label_smoothing reg=label_smoothing
run early_stopping reg=early_stopping reg.early_stopping.patience=1
run weight_decay reg=weight_decay optim=adamw
run augment reg=augment
sweep() {  # sweep EXPERIMENT OVERRIDES...
  local name=$1; shift
  # shellcheck disable=SC2086
  $regbench sweep "${common[@]}" "experiment=$name" "$@" >"$out/$name.log" 2>&1
  echo "ran $name"
}
sweep pop 'reg.dropout.fc=0.0,0.5' 'reg.l2=0.0,0.001' seed=0,1 hydra/launcher=population
sweep sweepseq trainer.epochs=2 'reg.dropout.fc=0.0,0.5' seed=0,1
