# Sourced by the scripts that write figures: `machine_lines` prints the first lines of a
# figure's machine file (docs/figures/*machine.txt), read by scripts/splice_figures.py:
# the date, the CPU, the system and the load average at the start. `machine_file` adds the
# `versions:` and `settings:` lines most scripts write (regbench, torch, the GPU if any).
machine_lines() {
    echo "date: $(date -u '+%Y-%m-%d')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    echo "system: $(uname -sm)"
    echo "load average at the start: $(cut -d' ' -f1 /proc/loadavg 2>/dev/null)"
}

machine_file() {
    machine_lines
    echo "versions: $(${REGBENCH:-regbench} --version), $(python -c 'import torch; print("torch", torch.__version__)')"
    echo "settings: $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 || echo 'no GPU')"
}
