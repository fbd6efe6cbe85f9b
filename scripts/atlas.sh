#!/usr/bin/env bash
# The claims atlas: every tutorial claim about dropout (conf/experiment/claim_*.yaml)
# settled on the bundled 5,000 digits, then the page `regbench atlas` prints, at 80
# columns. The full atlas (no arguments) takes hours of CPU; it writes the page, with the
# command as its first line, to docs/figures/settle_atlas.txt (its machine to
# settle_atlas.machine.txt), and scripts/splice_figures.py puts it in
# docs/benchmarks/claims.md. Interrupted, it resumes where it stopped when run again
# (each claim's settles live in results/atlas/); a second run over finished studies only
# renders.
#
# Usage: scripts/atlas.sh [CLAIM...] [OVERRIDE...] [--max-time T] [--max-seeds N]
#   scripts/atlas.sh                                   # the full atlas, into the docs
#   scripts/atlas.sh --max-seeds 16 --max-time 2h      # every claim on smaller budgets, into the docs
#   scripts/atlas.sh small_data rates trainer.epochs=2 --max-seeds 5 --out /tmp/atlas
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck source=scripts/machine.sh
source "$repo/scripts/machine.sh"
machine="$(machine_file)"
echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $(hostname), $(uname -sm), $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "# command: regbench atlas $*"
# Every claim with its own configurations (budgets aside) is the full atlas: it goes to the docs.
full=1
expect_value=0
for arg in "$@"; do
    if [ "$expect_value" -eq 1 ]; then expect_value=0; continue; fi
    case "$arg" in
        --max-time|--max-seeds) expect_value=1 ;;
        --max-time=*|--max-seeds=*) ;;
        *) full=0 ;;
    esac
done
start=$(date +%s)
set +e
COLUMNS=80 regbench atlas "$@" | tee "$log"
code=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "# exit code: $code; wall time $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
if [ "$full" -eq 1 ] && [ "$code" -le 1 ]; then
    figure="$repo/docs/figures/settle_atlas"
    {
        echo "\$ regbench atlas${*:+ $*}"
        sed -n '/^Claims atlas:/,$p' "$log" | grep -v -E '^(results/atlas/)?atlas\.(md|html)$' \
            | sed -e "s|$PWD/||g" -e 's/[[:space:]]*$//'
    } >"$figure.txt"
    echo "$machine" >"$figure.machine.txt"
    python -c "import sys; sys.path.insert(0, '$repo/scripts'); import splice_figures as s; \
s.add_block(__import__('pathlib').Path('$repo/docs/benchmarks/claims.md'), \
'## The atlas on the bundled digits', 'settle_atlas')"
    python "$repo/scripts/splice_figures.py" "$repo"
fi
exit "$code"
