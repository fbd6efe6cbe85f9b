#!/usr/bin/env bash
# Re-run the commands whose output the README quotes, and keep what they print.
#
#   scripts/readme_figures.sh [OUT_DIR]          the worked example (3 runs, ~1 min on 2 cores)
#   scripts/readme_figures.sh OUT_DIR --all      also the dropout_grid sweep and the benchmark
#
# Each command's output goes to OUT_DIR/<name>.txt (the command itself on the first line), and
# OUT_DIR/machine.txt says where it ran: the README's figures name the machine they come from.
# It installs nothing; $REGBENCH (default `regbench`) is the command that is run.
set -eu

out=${1:-readme-figures}
all=${2:-}
regbench=${REGBENCH:-regbench}
mkdir -p "$out"
export COLUMNS=${COLUMNS:-100}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    echo "system: $(uname -srm)"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
    $regbench --version
} >"$out/machine.txt"

record() {  # record NAME COMMAND...: run it from $out, keep its output in NAME.txt
    local name=$1
    shift
    echo "$ $*" >"$out/$name.txt"
    # shellcheck disable=SC2086  # $regbench may be a command with arguments
    (cd "$out" && $regbench "$@" trainer.progress=false) >>"$out/$name.txt" 2>&1 \
        || echo "(exit code $?)" >>"$out/$name.txt"
    echo "$out/$name.txt"
}

# "A worked example": the command, then the same with reg=none and with heavier dropout
record worked_dropout run reg=dropout dataset.train_size=500 trainer.epochs=20
record worked_none run reg=none dataset.train_size=500 trainer.epochs=20
record worked_heavy run reg=dropout reg.dropout.fc=0.7 reg.dropout.conv=0.4 \
    dataset.train_size=500 trainer.epochs=20

if [ "$all" = "--all" ]; then
    # "Reading the comparison" (24 jobs) and "Speed"
    record sweep_dropout_grid sweep experiment=dropout_grid hydra/launcher=joblib
    echo "$ regbench bench" >"$out/bench.txt"
    # shellcheck disable=SC2086
    (cd "$out" && $regbench bench) >>"$out/bench.txt" 2>&1 || echo "(exit code $?)" >>"$out/bench.txt"
    echo "$out/bench.txt"
fi
