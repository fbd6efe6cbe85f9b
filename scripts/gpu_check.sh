#!/usr/bin/env bash
# scripts/gpu_check.sh [--cpu] [OUT]: measure regbench on this machine's GPU in at most
# 8 minutes, each part under a time limit of its own; --cpu runs the same sequence at tiny
# sizes on the CPU in under 2 minutes. Figures: OUT/gpu_check.json (default OUT:
# $OUT, else ./gpu_check) and, on a GPU, docs/benchmarks/speed.md. See scripts/gpu_check.py.
set -euo pipefail
exec python "$(dirname "$0")/gpu_check.py" "$@"
