"""compare_runs.py BEFORE AFTER: every run folder under BEFORE against its twin under AFTER.

Twins are matched by experiment (and job number in a sweep), as scripts/reference_runs.sh
writes them. metrics.csv is compared without epoch_time_s, summary.json without timings,
the machine, package versions and keys added since (format_version, val_loss_rise).
Prints one line per run and exits 1 on any difference.
"""
import csv, json, sys
from pathlib import Path

SKIP = {"wall_time_s", "train_images_per_s", "machine", "versions", "format_version", "val_loss_rise"}

def runs(root: Path):
    out = {}
    for s in sorted(root.rglob("summary.json")):
        d = s.parent
        rel = d.relative_to(root).parts
        # experiment/<run-id> or experiment/sweeps/<sweep-id>/<job>
        key = (rel[0], rel[-1]) if "sweeps" in rel else (rel[0],)
        out[key] = d
    return out

def metrics(d):
    with open(d / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]

def summary(d):
    s = json.loads((d / "summary.json").read_text())
    for k in SKIP: s.pop(k, None)
    for k in ("best", "last"):
        if s.get(k): s[k].pop("epoch_time_s", None)
    return s

a, b = runs(Path(sys.argv[1])), runs(Path(sys.argv[2]))
bad = 0
for key in sorted(set(a) | set(b)):
    if key not in a or key not in b:
        print("missing", key); bad += 1; continue
    ma, mb = metrics(a[key]), metrics(b[key])
    sa, sb = summary(a[key]), summary(b[key])
    ok_m, ok_s = ma == mb, sa == sb
    diff = [k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k)]
    print(f"{'/'.join(key):28s} metrics.csv {'identical' if ok_m else 'DIFFERENT'} ({len(ma)} rows), "
          f"summary.json {'identical' if ok_s else 'DIFFERENT ' + str(diff)}")
    bad += (not ok_m) + (not ok_s)
print(f"{len(set(a) | set(b))} runs compared, {bad} differences")
sys.exit(1 if bad else 0)
