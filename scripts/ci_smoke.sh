#!/usr/bin/env bash
# regbench's CI smoke test: one offline run on the generated dataset, checked, one line out.
#
# It installs nothing: run it where `regbench` (or $REGBENCH, e.g. "python -m regbench") is
# already installed. Exit code 0 when the run completed and wrote every file of a run folder,
# 1 otherwise. Extra arguments are passed to `regbench run` as overrides.
#
#   scripts/ci_smoke.sh
#   REGBENCH="python -m regbench" scripts/ci_smoke.sh trainer.epochs=1
set -u

regbench=${REGBENCH:-regbench}
out=$(mktemp -d "${TMPDIR:-/tmp}/regbench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
start=$(date +%s)

# shellcheck disable=SC2086  # $regbench may be a command with arguments
$regbench run experiment=smoke trainer.progress=false "output.root=$out" "$@" >"$out/log" 2>&1
code=$?
run_dir=$(find "$out/smoke" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n 1)
missing=""
for f in config.yaml metrics.csv summary.json checkpoint.pt run.log; do
    [ -n "$run_dir" ] && [ -s "$run_dir/$f" ] || missing="$missing $f"
done
status=$(sed -n 's/^ *"status": "\([a-z_]*\)".*/\1/p' "$run_dir/summary.json" 2>/dev/null | head -n 1)
seconds=$(( $(date +%s) - start ))

if [ "$code" -eq 0 ] && [ -z "$missing" ] && [ "$status" = "completed" ]; then
    echo "regbench smoke: ok (status completed, exit 0, all files written, ${seconds} s)"
    exit 0
fi
reason="exit $code, status ${status:-none}"
[ -n "$missing" ] && reason="$reason, missing:$missing"
echo "regbench smoke: FAILED ($reason, ${seconds} s): $(tail -n 1 "$out/log")"
exit 1
