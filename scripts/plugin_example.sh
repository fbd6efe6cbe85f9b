#!/usr/bin/env bash
# The figure of docs/how-to/plugin.md: the DropBlock example plugin (examples/regbench-dropblock,
# installed) settled against dropout on 500 of the bundled MNIST digits, from an empty
# folder. Writes the commands and what they printed (without the per-job lines) to
# docs/figures/plugin_settle.txt and the machine to plugin_settle.machine.txt;
# scripts/splice_figures.py puts them in the page. About a minute on 2 idle CPU cores.
#
# Usage: scripts/plugin_example.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
figures="$repo/docs/figures"
if ! python -c "import regbench_dropblock" 2>/dev/null; then
  echo "scripts/plugin_example.sh: the example is not installed; run" \
       "python -m pip install -e $repo/examples/regbench-dropblock" >&2
  exit 2
fi
# shellcheck source=scripts/machine.sh
source "$repo/scripts/machine.sh"
machine="$(machine_lines)
versions: $(regbench --version), $(python -c 'import torch; print("torch", torch.__version__)'), regbench-dropblock $(python -c 'from importlib.metadata import version; print(version("regbench-dropblock"))')
settings: CPU"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"  # an empty folder: results/ is made here
settle=(regbench sweep --settle reg=dropout,dropblock --baseline reg=dropout
        dataset.train_size=500 trainer.epochs=4 --max-seeds 10)
{
  echo "\$ regbench config reg=dropblock | grep -A2 dropblock:"
  regbench config reg=dropblock | grep -A2 "dropblock:"
  echo
  echo "\$ ${settle[*]}"
  set +e
  COLUMNS=100 "${settle[@]}" >"$work/settle.log" 2>&1
  echo "(exit code $?)" >>"$work/settle.log"
  set -e
  grep -v '^\[[0-9]*/[0-9]*\] ' "$work/settle.log" | sed "s#$work/##g"
} >"$work/figure.txt"
cat "$work/figure.txt"
cp "$work/figure.txt" "$figures/plugin_settle.txt"
echo "$machine" >"$figures/plugin_settle.machine.txt"
python "$repo/scripts/splice_figures.py" "$repo"
