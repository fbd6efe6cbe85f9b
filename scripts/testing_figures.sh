#!/usr/bin/env bash
# The figures of docs/explanation/testing.md: test counts per tier, the property tests'
# examples, the mutation score and the time of each tier, each in docs/figures/testing_*.txt
# with its command on the first line, then spliced into the page (scripts/splice_figures.py).
#
#   scripts/testing_figures.sh [--tiers] [--no-mutation]
#
#   testing_counts.txt      tests per tier, from collection (nothing runs)
#   testing_properties.txt  each property test: examples run, passing and invalid, time
#   testing_mutation.txt    scripts/mutation.sh: per group, the survivors, the score
#   testing_tiers.txt       with --tiers: `pytest -m "not slow"` and the full suite, timed
#                           (run it on a machine of its own, not a shared one)
#   testing.machine.txt     when, on what, with which versions, the load at the start
#
# Times are wall-clock, user and system seconds from bash's `time`. It installs nothing:
# run it from an environment with the dev extra (pytest, pytest-xdist, hypothesis, mutmut).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/machine.sh
source "$(dirname "$0")/machine.sh"
out=$root/docs/figures
tiers=""; mutation=yes
for arg in "$@"; do
    case $arg in
        --tiers) tiers=yes ;;
        --no-mutation) mutation="" ;;
        *) echo "unknown option $arg: use --tiers or --no-mutation" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
cd "$root"
TIMEFORMAT='time: %R s wall, %U s user, %S s system'
export PYTHONDONTWRITEBYTECODE=1

commit="$(git rev-parse --short HEAD 2>/dev/null)$(git status --porcelain 2>/dev/null | grep -q . && echo ' with changes')"
{
    machine_lines
    python -c 'import sys, importlib.metadata as m
names = ("pytest", "pytest-xdist", "hypothesis", "mutmut")
print("versions: Python", sys.version.split()[0] + ",", ", ".join(f"{n} {m.version(n)}" for n in names))'
    echo "settings: commit $commit"
} >"$out/testing.machine.txt" 2>&1

record() {  # record NAME COMMAND...: the command, its output and its time in testing_NAME.txt
    local name=$1
    shift
    echo "$ $*" >"$out/testing_$name.txt"
    { time "$@" ; } >>"$out/testing_$name.txt" 2>&1 || echo "(exit code $?)" >>"$out/testing_$name.txt"
    echo "$out/testing_$name.txt"
}

count() {  # the number of tests pytest collects with these arguments
    python -m pytest --collect-only -q -p no:cacheprovider -n 0 "$@" 2>/dev/null \
        | sed -n 's/^\([0-9]*\)\(\/[0-9]*\)* tests* collected.*/\1/p' | tail -n 1
}
{
    echo "$ python -m pytest --collect-only -q [-m 'not slow' | -m slow]"
    echo "all tests:                     $(count)"
    echo "quick loop (-m 'not slow'):    $(count -m 'not slow')"
    echo "slow (CI runs them too):       $(count -m slow)"
} >"$out/testing_counts.txt"
echo "$out/testing_counts.txt"

# hypothesis' statistics, one line per property: examples, passing, invalid, time
{
    echo "$ python -m pytest -n 0 --hypothesis-show-statistics tests/test_stats_properties.py"
    python -m pytest -q -p no:cacheprovider -n 0 --hypothesis-show-statistics \
        tests/test_stats_properties.py 2>&1 | python3 -c '
import re, sys
name = None
for line in sys.stdin:
    if m := re.match(r"tests/test_stats_properties.py::(\w+):", line):
        name = m.group(1)
    elif name and (m := re.search(r"generate phase \(([\d.]+) seconds\)", line)):
        secs = float(m.group(1))
    elif name and (m := re.search(r"(\d+) passing, (\d+) failing, and (\d+) invalid", line)):
        counts = m.groups()
    elif name and (m := re.search(r"max_examples=(\d+)", line)):
        print(f"{name}: {counts[0]} passing, {counts[1]} failing, {counts[2]} invalid "
              f"(max_examples={m.group(1)}), {secs:.2f} s")
        name = None
    elif re.match(r"\d+ (passed|failed)", line):
        print(line.strip())
'
} >"$out/testing_properties.txt"
echo "$out/testing_properties.txt"

[ -n "$mutation" ] && record mutation scripts/mutation.sh
if [ -n "$tiers" ]; then
    {
        echo "$ python -m pytest -q -m 'not slow'; python -m pytest -q"
        { time python -m pytest -q -p no:cacheprovider -m 'not slow' ; } 2>&1 | tail -n 2
        { time python -m pytest -q -p no:cacheprovider ; } 2>&1 | tail -n 2
    } >"$out/testing_tiers.txt"
    echo "$out/testing_tiers.txt"
fi
python "$root/scripts/splice_figures.py" "$root"
