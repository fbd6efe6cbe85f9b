#!/usr/bin/env bash
# Regenerate every figure of the README and the docs: run the commands, keep what they print
# and draw, and splice the results into README.md and docs/ between their markers.
#
#   scripts/docs_figures.sh            small runs (500 training images, 20 epochs, 3
#                                      seeds): about 20 minutes on 2 busy cores
#   FIGURES=full scripts/docs_figures.sh   the sweep with 10 seeds, for a quiet machine
#
# Outputs go to docs/figures/: NAME.txt (the command on its first line, then its output),
# NAME.png, and machine.txt (when, on what, with which versions). scripts/splice_figures.py
# then writes each into the places marked <!-- figure: NAME --> ... <!-- /figure -->, with a
# line saying when and where it was taken. It installs nothing; $REGBENCH (default
# `regbench`) is the command that is run, from a scratch folder so that results/ stays clean.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/machine.sh
source "$(dirname "$0")/machine.sh"
out="$repo/docs/figures"
regbench=${REGBENCH:-regbench}
mode=${FIGURES:-small}
case "$mode" in
    small) seeds="range(0,3)" ;;
    full) seeds="range(0,10)" ;;
    *) echo "FIGURES=$mode: use small or full" >&2; exit 2 ;;
esac
size="dataset.train_size=500 trainer.epochs=20"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
export COLUMNS=80 REGBENCH_DATA=${REGBENCH_DATA:-$repo/data}

{
    machine_lines
    echo "versions: $($regbench --version), $(python -c 'import torch; print("torch", torch.__version__)')"
    echo "settings: FIGURES=$mode"
} >"$out/machine.txt"

record() {  # record NAME ARGS...: run `regbench ARGS` in the scratch folder, keep its output
    local name=$1 code=0 shown="" arg
    shift
    for arg in "$@"; do  # the command as one would type it: quoted where the shell needs it
        case "$arg" in *[\(\)\ \*\[\]]*) shown+=" '$arg'" ;; *) shown+=" $arg" ;; esac
    done
    echo "\$ regbench$shown" >"$out/$name.txt"
    # shellcheck disable=SC2086  # $regbench may be a command with arguments
    (cd "$work" && $regbench "$@") >"$work/$name.out" 2>&1 || code=$?
    # the scratch folder's path is left out: paths read as they do from a project folder
    sed -e "s|$work/||g" -e 's/[[:space:]]*$//' "$work/$name.out" >>"$out/$name.txt"
    [ "$code" = 0 ] || echo "(exit code $code)" >>"$out/$name.txt"
    echo "$out/$name.txt"
}

# The first run: one configuration, one seed (README, tutorial/first-run.md)
# shellcheck disable=SC2086
record first_run run reg=dropout $size

# A bad value: what every mistake looks like (tutorial/first-run.md, how-to/troubleshooting.md)
record bad_value run reg.dropout.fc=1.5

# A sweep: no dropout against dropout 0.5 in the head, several seeds (README, tutorial/)
# shellcheck disable=SC2086
record sweep sweep reg=dropout reg.dropout.fc=0.0,0.5 "seed=$seeds" $size
sweep=$(cd "$work" && ls -d results/default/sweeps/*/ | head -n 1)
sweep=${sweep%/}
cp "$work/$sweep/curves.png" "$out/sweep_curves.png"
echo "$out/sweep_curves.png"

# The same study as markdown and as a report page (tutorial/report.md)
record sweep_markdown summarize "$sweep" --format markdown
(cd "$work" && $regbench report "$sweep" >/dev/null)
if command -v chromium >/dev/null; then
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1600 \
        --screenshot="$out/report.png" "file://$work/$sweep/report.html" >/dev/null 2>&1
    echo "$out/report.png"
else
    echo "chromium not found: docs/figures/report.png left as it was" >&2
fi

python "$repo/scripts/splice_figures.py" "$repo"
