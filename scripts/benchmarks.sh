#!/usr/bin/env bash
# Re-run one benchmark of docs/benchmarks/ and put its output in its page.
#
#   scripts/benchmarks.sh NAME     NAME: speed, population, store, dropout_grid,
#                                  reg_compare, bn_dropout_order, mc_dropout
#
# The output goes to docs/figures/bench_NAME.txt (the command on its first line) and the
# machine it ran on to docs/figures/bench_NAME.machine.txt; scripts/splice_figures.py then
# writes it under the page's <!-- figure: bench_NAME --> marker. Timings need a quiet
# machine: the script records the load average at the start. It installs nothing;
# $REGBENCH (default `regbench`) is the command that is run, from a scratch folder.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/machine.sh
source "$(dirname "$0")/machine.sh"
out="$repo/docs/figures"
regbench=${REGBENCH:-regbench}
name=${1:?usage: scripts/benchmarks.sh NAME}
case "$name" in
    speed) args=(bench --full) ;;
    population) args=(bench --model mnist --images 2048 --reps 3 --members 1,8,24) ;;
    store) args=() ;;  # scripts/bench_store.py: summarize over 1,000 and 10,000 run folders
    dropout_grid|reg_compare|bn_dropout_order|mc_dropout)
        args=(sweep "experiment=$name" hydra/launcher=joblib) ;;
    *) echo "scripts/benchmarks.sh: unknown benchmark $name" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export COLUMNS=${COLUMNS:-160}

machine_file >"$out/bench_$name.machine.txt"

start=$(date +%s)
if [ "$name" = store ]; then
    echo "\$ python scripts/bench_store.py 1000 10000" >"$out/bench_$name.txt"
    (cd "$work" && python "$repo/scripts/bench_store.py" 1000 10000) >>"$out/bench_$name.txt" 2>&1
else
    echo "\$ regbench ${args[*]}" >"$out/bench_$name.txt"
    # shellcheck disable=SC2086  # $regbench may be a command with arguments
    (cd "$work" && $regbench "${args[@]}") 2>&1 | sed -e "s|$work/||g" -e 's/[[:space:]]*$//' \
        >>"$out/bench_$name.txt"
fi
echo "(wall time: $(( $(date +%s) - start )) s)" >>"$out/bench_$name.txt"
python "$repo/scripts/splice_figures.py" "$repo"
