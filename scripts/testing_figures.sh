#!/usr/bin/env bash
# The figures docs/explanation/testing.md shows, each in OUT_DIR/<name>.txt with the command first:
#
#   scripts/testing_figures.sh [OUT_DIR] [--tiers] [--no-mutation]
#
#   machine.txt     date, CPU, cores, load average, versions: where the figures come from
#   counts.txt      tests per tier, from collection (nothing runs)
#   properties.txt  the property tests with hypothesis' statistics (examples per property)
#   stats_tier.txt  the statistics and claims tests (test_stats*, test_metrics,
#                   test_regularizer_functions, test_compare*), timed
#   mutation.txt    scripts/mutation.sh, timed (skipped with --no-mutation)
#   tiers.txt       with --tiers only: `pytest -m "not slow"` and the full suite, timed; run
#                   it on a machine of its own (CI), not on a shared one
#
# Times are wall-clock, user and system seconds from bash's `time`. It installs nothing:
# run it from an environment with the dev extra (pytest, hypothesis, mutmut).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-testing-figures}
shift $(( $# > 0 ? 1 : 0 ))
tiers=""; mutation=yes
for arg in "$@"; do
    case $arg in
        --tiers) tiers=yes ;;
        --no-mutation) mutation="" ;;
        *) echo "unknown option $arg: use --tiers or --no-mutation" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
TIMEFORMAT='time: %R s wall, %U s user, %S s system'
export PYTHONDONTWRITEBYTECODE=1

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    echo "system: $(uname -srm)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | grep -q . && echo '(with changes)')"
    python -c 'import sys, pytest, hypothesis, importlib.metadata as m
print("python", sys.version.split()[0], "| pytest", pytest.__version__, "| hypothesis",
      hypothesis.__version__, "| mutmut", m.version("mutmut"))'
} >"$out/machine.txt" 2>&1

record() {  # record NAME COMMAND...: the command, its output and its time in NAME.txt
    local name=$1
    shift
    echo "$ $*" >"$out/$name.txt"
    { time "$@" ; } >>"$out/$name.txt" 2>&1 || echo "(exit code $?)" >>"$out/$name.txt"
    echo "$out/$name.txt"
}

count() {  # the number of tests pytest collects with these arguments
    python -m pytest --collect-only -q -p no:cacheprovider -n 0 "$@" 2>/dev/null \
        | sed -n 's/^\([0-9]*\)\(\/[0-9]*\)* tests* collected.*/\1/p' | tail -n 1
}
{
    echo "all: $(count)"
    echo "quick loop (-m 'not slow'): $(count -m 'not slow')"
    echo "slow: $(count -m slow)"
} >"$out/counts.txt"
echo "$out/counts.txt"

record properties python -m pytest -q -p no:cacheprovider -n 0 --hypothesis-show-statistics \
    tests/test_stats_properties.py
record stats_tier python -m pytest -q -p no:cacheprovider tests/test_stats.py \
    tests/test_stats_properties.py tests/test_stats_compare.py tests/test_metrics.py \
    tests/test_regularizer_functions.py tests/test_compare.py tests/test_comparisons.py
[ -n "$mutation" ] && record mutation scripts/mutation.sh
if [ -n "$tiers" ]; then
    echo "$ python -m pytest -q -m 'not slow'; python -m pytest -q" >"$out/tiers.txt"
    { time python -m pytest -q -p no:cacheprovider -m 'not slow' ; } 2>&1 | tail -n 2 >>"$out/tiers.txt"
    { time python -m pytest -q -p no:cacheprovider ; } 2>&1 | tail -n 2 >>"$out/tiers.txt"
    echo "$out/tiers.txt"
fi
