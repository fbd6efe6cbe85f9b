#!/usr/bin/env bash
# Break the statistics on purpose, the way a reviewer would, and check that the tests fail.
#
#   scripts/hand_mutations.sh [NAME...]     default: every mutation below
#
# Each mutation is a text replacement in a copy of the repository (build/hand-mutations/NAME);
# the statistics and comparison tests run there until the first failure, and one line per
# mutation names the test that caught it, or says MISSED. Exit code 1 when one is missed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/build/hand-mutations
tests="tests/test_stats.py tests/test_stats_compare.py tests/test_comparisons.py
       tests/test_stats_properties.py"
export REGBENCH_PROPERTY_EXAMPLES=${REGBENCH_PROPERTY_EXAMPLES:-30}

# name | file | text | replacement (python string literals)
MUTATIONS=(
  "raw_p | regbench/study/stats.py
   | '        steps[i] = Step(False, stopped_at)'
   | '        steps[i] = Step(p_values[i] < alpha, stopped_at)'"
  "bonferroni | regbench/study/stats.py
   | '            if p_values[i] <= alpha_j:'
   | '            if p_values[i] <= alpha / k:'"
  "bonferroni_intervals | regbench/study/stats.py
   | '        low, high = d.interval(step.level)'
   | '        low, high = d.interval(1 - alpha / max(len(p_values), 1) if adjust else 1 - alpha)'"
  "fixed_point_seeds | regbench/study/stats.py
   | '    candidates = range(2, MAX_SEEDS + 1)'
   | '    n = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2 * ratio\n    for _ in range(100):\n        nxt = seeds_formula(max(math.ceil(n), 2), ratio, alpha, power)\n        if math.ceil(nxt) == math.ceil(n) or nxt > MAX_SEEDS:\n            break\n        n = nxt\n    return float(max(math.ceil(n), 2)) if n <= MAX_SEEDS else math.inf\n    candidates = range(2, MAX_SEEDS + 1)'"
  "no_effect_label | regbench/present/tables.py
   | '[f\"> {MAX_SEEDS:,}\", \"seeds\"]'
   | '[\"no effect\"]'"
)

field() { echo "$1" | tr '\n' '\a' | cut -d'|' -f"$2" | tr '\a' '\n' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'; }

wanted=("$@")
missed=0
for entry in "${MUTATIONS[@]}"; do
  name=$(field "$entry" 1); file=$(field "$entry" 2)
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $name " ]]; then continue; fi
  dir=$work/$name
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$root" && tar --exclude=__pycache__ --exclude=.hypothesis -cf - regbench tests pyproject.toml) \
    | tar -xf - -C "$dir"
  python3 - "$dir/$file" "$(field "$entry" 3)" "$(field "$entry" 4)" <<'EOF'
import ast
import sys

path, old, new = sys.argv[1], ast.literal_eval(sys.argv[2]), ast.literal_eval(sys.argv[3])
text = open(path, encoding="utf-8").read()
if text.count(old) != 1:
    sys.exit(f"{path}: the text to mutate occurs {text.count(old)} times: {old!r}")
open(path, "w", encoding="utf-8").write(text.replace(old, new))
EOF
  # the copy's regbench, not the installed one; stop at the first failing test
  caught=$(cd "$dir" && PYTHONPATH="$dir" python -m pytest -x -q -rf -p no:cacheprovider $tests \
           2>&1 | sed -n 's/^\(FAILED\|ERROR\) \([^ ]*\).*/\2/p' | head -n 1) || true
  if [ -n "$caught" ]; then verdict="caught by $caught"; else verdict=MISSED; missed=1; fi
  printf '%-21s %s: %s\n' "$name" "$file" "$verdict"
done
exit $missed
