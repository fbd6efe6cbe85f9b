#!/usr/bin/env bash
# The flagship settle: the FC drop rates of dropout_grid (0, 0.25, 0.5, 0.75 on 500 MNIST
# training images, 20 epochs) settled on val accuracy and the last-epoch gap
# (experiment=dropout_settle), then the figures the README quotes: the final table, the
# runs it took against the 40 runs of the fixed 10-seed grid, the wall time, the date
# and the machine. The full flagship (no arguments) also writes them, without the per-job
# lines, to docs/figures/settle_flagship.txt (its machine to settle_flagship.machine.txt),
# without the table's caption to settle_flagship_brief.txt, and the intervals round by
# round to settle_flagship.png; scripts/splice_figures.py puts them in the README and
# docs/benchmarks/studies.md.
#
# Usage: scripts/settle_flagship.sh [MORE SWEEP ARGUMENTS...]
#   scripts/settle_flagship.sh                       # the full flagship, into the docs
#   scripts/settle_flagship.sh hydra/launcher=joblib # in parallel on this machine
#   scripts/settle_flagship.sh trainer.epochs=3 --max-seeds 10   # a reduced version
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck source=scripts/machine.sh
source "$repo/scripts/machine.sh"
machine="$(machine_file)"
echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $(hostname), $(uname -sm), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || echo unknown)); load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "# command: regbench sweep experiment=dropout_settle $*"
start=$(date +%s)
set +e
COLUMNS=${COLUMNS:-100} regbench sweep experiment=dropout_settle "$@" | tee "$log"
code=${PIPESTATUS[0]}
set -e
end=$(date +%s)
sweep_dir=$(sed -n 's/^settle: .* in \(.*\)$/\1/p' "$log" | head -1)
echo
echo "# exit code: $code" | tee -a "$log"
if [ -n "$sweep_dir" ] && [ -f "$sweep_dir/settle.json" ]; then
  python - "$sweep_dir" "$((end - start))" <<'EOF'
import json, sys
record = json.load(open(f"{sys.argv[1]}/settle.json"))
runs = sum(len(jobs) for r in record["rounds"] for jobs in r["jobs"])
print(f"# runs: {runs} in {len(record['rounds'])} rounds (status: {record['status']}); "
      "the fixed 10-seed grid of dropout_grid: 40 runs")
for r in record["rounds"]:
    print(f"#   round {r['number']}: {r['seeds']} seeds per configuration, "
          f"{sum(map(len, r['jobs']))} runs, {r['wall_time_s'] or 0:.0f} s, "
          f"{r['undecided']} comparison{'s' * (r['undecided'] != 1)} undecided after it")
print(f"# wall time: {int(sys.argv[2]) // 60} min {int(sys.argv[2]) % 60:02d} s "
      f"({sum((r['wall_time_s'] or 0) for r in record['rounds']):.0f} s of jobs)")

# what the same runs' first 10 seeds say as a fixed grid (fixed-sample, Holm-adjusted): a
# reference only, since a fixed grid cannot know beforehand that 10 seeds will do
import pathlib, subprocess
folders = [str(f) for f in sorted(pathlib.Path(sys.argv[1]).iterdir())
           if (f / "summary.json").is_file()
           and json.loads((f / "summary.json").read_text())["config"]["seed"] < 10]
baseline = record["labels"][record["baseline"]]
table = json.loads(subprocess.run(
    ["regbench", "summarize", "--format", "json", "--baseline", baseline, *folders],
    check=True, capture_output=True, text=True).stdout)
rows = [c for c in table["configurations"] if c["config"] != baseline]
counts = ", ".join(
    f"{m} {sum(c[f'{m}_verdict'] == 'established' for c in rows)} of {len(rows)} established"
    for m in record["metrics"])
print(f"# the same runs' seeds 0-9 as a fixed grid ({len(folders)} runs; "
      f"{table['method']}): {counts}")
EOF
fi | tee -a "$log"
if [ $# -eq 0 ] && [ -n "$sweep_dir" ]; then
    figure="$repo/docs/figures/settle_flagship"
    {
        echo "\$ regbench sweep experiment=dropout_settle"
        grep -v -E '^\[[0-9]+/[0-9]+\] ' "$log" | sed -e "s|$PWD/||g" -e 's/[[:space:]]*$//'
    } >"$figure.txt"
    # the README's copy: the rounds, the table without its caption, the runs it took; the
    # intervals' plot goes to the docs
    awk '/^Mean \(± sample std/ {skip = 1} /^table: / {skip = 0} !skip && !/^(#   round |# wall|# runs|# exit|table: |settle: )/' "$figure.txt" \
        >"${figure}_brief.txt"
    cp "$sweep_dir/settle.png" "$figure.png"
    for f in "$figure" "${figure}_brief"; do echo "$machine" >"$f.machine.txt"; done
    python "$repo/scripts/splice_figures.py" "$repo"
fi
exit "$code"
