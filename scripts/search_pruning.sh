#!/usr/bin/env bash
# experiment=dropout_search with and without the median pruner: the search's wall time, the
# trials pruned and the epochs trained, the best rate found, and that rate's confirmed
# difference in val accuracy against no dropout (regbench confirm, fresh seeds).
#
#   scripts/search_pruning.sh [OUT_DIR]
#
# Sizes come from the environment; the defaults are the preset's own (20 trials of 20
# epochs; the best 3 trials and the baseline confirmed with 10 seeds):
#   TRIALS=20 EPOCHS=20 TOP=3 SEEDS=10 EXTRA="" PRUNER_ARGS=""
# EXTRA is added to both searches (e.g. a smaller model), PRUNER_ARGS to the pruned one.
# REGBENCH="python -m regbench" runs it from a checkout.
set -euo pipefail

TRIALS=${TRIALS:-20}
EPOCHS=${EPOCHS:-20}
TOP=${TOP:-3}
SEEDS=${SEEDS:-10}
EXTRA=${EXTRA:-}
PRUNER_ARGS=${PRUNER_ARGS:-}
REGBENCH=${REGBENCH:-regbench}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(uname -srm), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sizes: TRIALS=$TRIALS EPOCHS=$EPOCHS TOP=$TOP SEEDS=$SEEDS EXTRA='$EXTRA' PRUNER_ARGS='$PRUNER_ARGS'"
echo "output: $OUT"
echo

for pruner in none median; do
  args="experiment=dropout_search hydra.sweeper.n_trials=$TRIALS trainer.epochs=$EPOCHS"
  args="$args hydra.sweeper.pruner=$pruner hydra.sweeper.confirm.top=0 output.root=$OUT/$pruner $EXTRA"
  [ "$pruner" = median ] && args="$args $PRUNER_ARGS"
  echo "command: $REGBENCH sweep $args"
  start=$(date +%s.%N)
  $REGBENCH sweep $args > "$OUT/$pruner-search.log" 2>&1 || echo "(exit $? ; see $OUT/$pruner-search.log)"
  search_s=$(echo "$(date +%s.%N) - $start" | bc)
  sweep_dir=$(ls -d "$OUT/$pruner"/dropout_search/sweeps/*/ | grep -v -- '-confirm/$' | head -1)
  echo "command: $REGBENCH confirm $sweep_dir --top $TOP --seeds $SEEDS"
  start=$(date +%s.%N)
  COLUMNS=80 $REGBENCH confirm "$sweep_dir" --top "$TOP" --seeds "$SEEDS" > "$OUT/$pruner-confirm.log" 2>&1 \
    || echo "(exit $? ; see $OUT/$pruner-confirm.log)"
  confirm_s=$(echo "$(date +%s.%N) - $start" | bc)
  python3 - "$sweep_dir" "$pruner" "$search_s" "$confirm_s" <<'EOF'
import csv, json, sys
from pathlib import Path

sweep_dir, pruner, search_s, confirm_s = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
summaries = [json.loads((d / "summary.json").read_text())
             for d in sorted(sweep_dir.iterdir(), key=lambda d: d.name) if d.name.isdigit()]
pruned = sum(s["status"] == "pruned" for s in summaries)
epochs = sum(s["epochs_run"] for s in summaries)
rows = list(csv.DictReader(open(sweep_dir.with_name(sweep_dir.name + "-confirm") / "confirm.csv")))
best = rows[1]  # the first candidate: the search's best trial
values = [f"{k}={float(v):.4g}" if v.replace(".", "", 1).isdigit() else f"{k}={v}"
          for k, _, v in (o.partition("=") for o in eval(best["values"]))]
d, low, high = (100 * float(best[k]) for k in ("d", "low", "high"))
print(f"| {pruner} | {search_s / 60:.1f} min | {pruned} of {len(summaries)} | {epochs} | "
      f"{' '.join(values)} ({best['name']}) | {100 * float(best['search']):.2f}% | "
      f"{100 * float(best['mean']):.2f}% | {d:+.2f} [{low:+.2f}, {high:+.2f}] {best['verdict']} | "
      f"{confirm_s / 60:.1f} min |")
EOF
  echo
done
echo "columns: pruner | search wall time | trials pruned | epochs trained by all trials |"
echo "  best trial | its search score (val acc, one seed) | confirmed val acc (mean over SEEDS fresh seeds) |"
echo "  confirmed Δ val acc vs no dropout, points [interval at its Holm step's level over TOP] and verdict | confirm wall time"
