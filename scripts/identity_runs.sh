#!/usr/bin/env bash
# identity_runs.sh ROOT: deterministic CPU runs of every regularizer preset (and a population
# sweep) under ROOT, each command under its own experiment name. Run it before and after a
# change and compare: python scripts/compare_runs.py BEFORE_ROOT AFTER_ROOT
set -euo pipefail
root=${1:?usage: identity_runs.sh ROOT}
common=(dataset=synthetic trainer.epochs=2 seed=0 trainer.deterministic=true trainer.progress=false
        trainer.device=cpu "output.root=$root")
run() {  # run EXPERIMENT OVERRIDES...
  local name=$1; shift
  regbench run "${common[@]}" "experiment=$name" "$@" >/dev/null
  echo "ran $name"
}
run all reg=all
run mnist5k_all reg=all dataset=mnist5k dataset.train_size=300
run spatial reg=dropout reg.dropout.kind=spatial
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
run early_stopping reg=early_stopping trainer.epochs=3 reg.early_stopping.patience=1
run augment reg=augment
regbench sweep "${common[@]/seed=0/trainer.checkpoint=true}" experiment=population 'reg.dropout.fc=0.0,0.5' seed=0,1 \
  hydra/launcher=population >/dev/null
echo "ran population"
