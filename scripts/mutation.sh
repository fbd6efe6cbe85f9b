#!/usr/bin/env bash
# Mutation testing of the science core with mutmut (3.x): the statistics and the comparison,
# the metrics derivations and the dropout / regularizer functions. Each mutant (a small
# change to one function: an operator, a constant, an argument) must make a test fail.
#
#   scripts/mutation.sh            every group below
#   scripts/mutation.sh stats      only the named groups
#
# Each group runs in its own copy of the repository (build/mutation/GROUP), where mutmut
# reads [tool.mutmut] from pyproject.toml with the group's module and test files added.
# mutmut then runs, for each mutant, only the tests of that list that call the mutated
# function. Prints one line per group, the surviving mutants, and last
# `mutation score: K/N killed (P%)` (timeouts count as killed: the tests noticed).
# Needs the dev extra (mutmut, hypothesis). Env: MUTATION_CHILDREN (default 2) parallel
# mutants; REGBENCH_PROPERTY_EXAMPLES (default 15) hypothesis examples per property.
set -euo pipefail
set -f  # the mutant-name globs below are for mutmut, not for the shell

root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/build/mutation
children=${MUTATION_CHILDREN:-2}
export REGBENCH_PROPERTY_EXAMPLES=${REGBENCH_PROPERTY_EXAMPLES:-15}
# one thread per process: each mutant runs in a fork, and a fork of a process whose OpenMP
# pool (torch's) has started can hang, which would count as a timeout rather than a failure
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# group | modules | functions to mutate (mutmut mutant-name globs; * = all) | test files.
# Edit these lines when a module moves or a function is added: the regularizer functions
# are named one by one (their modules also hold configuration and registry code).
GROUP_LINES=(
  "stats | regbench/study/stats.py | *
   | tests/test_stats.py tests/test_stats_properties.py"
  "compare | regbench/study/compare.py | *
   | tests/test_stats_compare.py tests/test_stats_properties.py"
  "metrics | regbench/store/metrics.py regbench/training/curves.py regbench/text.py
   | xǁRowǁ__post_init__* x_read_rows* x_best_index* x_onset_epoch* x_convergence_epoch*
     x_number* x_row_dict* x_val_loss_rise* x_missing_columns*
   | tests/test_metrics.py"
  "regularizers | regbench/training/layers.py regbench/training/regularizers/base.py
     regbench/training/regularizers/dropout.py regbench/training/regularizers/schedule.py
     regbench/training/regularizers/penalty.py regbench/training/regularizers/max_norm.py
     regbench/training/regularizers/early_stopping.py
   | x_make_dropout* x_gaussian_noise* xǁRandomLayerǁforward* x_dropout_layers* x_rate_in_force*
     x_drop_connect* x_curriculum_rate* x_phase_rate* x_adaptive_rate* x_is_decayed* x_split_params*
     x_penalty* x_apply_max_norm* xǁDropoutǁlayers* xǁDropoutǁslot* xǁDropoutScheduleǁrate*
     xǁEarlyStoppingǁimproved* xǁEarlyStoppingǁstep*
   | tests/test_regularizer_functions.py tests/test_regularizers.py
     tests/test_dropout_variants.py::test_each_schedules_rate_per_epoch_follows_its_formula
     tests/test_dropout_variants.py::test_gaussian_dropout_has_mean_one_and_the_variance_of_dropout
     tests/test_dropout_variants.py::test_gaussian_kind_replaces_every_dropout_layer
     tests/test_dropout_variants.py::test_dropconnect_is_off_in_eval_mode_and_scaled_in_training"
)

field() { echo "$1" | tr '\n' ' ' | cut -d'|' -f"$2" | xargs; }  # one field, spaces squeezed
toml_list() { printf '"%s", ' $1 | sed 's/, $//'; }  # words -> "a", "b"

wanted=("$@")
killed_all=0; total_all=0; survivors=()
for line in "${GROUP_LINES[@]}"; do
  name=$(field "$line" 1); modules=$(field "$line" 2)
  globs=$(field "$line" 3); tests=$(field "$line" 4)
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $name " ]]; then continue; fi
  dir=$work/$name
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$root" && tar --exclude=__pycache__ --exclude=.hypothesis -cf - regbench tests pyproject.toml) \
    | tar -xf - -C "$dir"
  # the group's modules and tests, added to the [tool.mutmut] table of the copy's pyproject
  sed -i "/^\[tool.mutmut\]/a only_mutate = [$(toml_list "$modules")]\npytest_add_cli_args_test_selection = [$(toml_list "$tests")]" \
    "$dir/pyproject.toml"
  names=()  # mutant names: regbench.study.stats.x_holm__mutmut_3
  for module in $modules; do
    for g in $globs; do names+=("${module%.py}.$g"); done
  done
  names=("${names[@]//\//.}")
  start=$(date +%s)
  (cd "$dir" && mutmut run --max-children "$children" "${names[@]}" > mutmut.log 2>&1) || {
    echo "$name: mutmut failed, see $dir/mutmut.log" >&2; tail -20 "$dir/mutmut.log" >&2; exit 1; }
  # one line per mutant of the chosen functions: "name: status"
  (cd "$dir" && mutmut results --all true) > "$dir/results.txt"
  counts=$(python3 - "$dir/results.txt" "${names[@]}" <<'EOF'
import fnmatch
import sys

path, patterns = sys.argv[1], sys.argv[2:]
status = {}
for line in open(path, encoding="utf-8"):
    key, _, value = line.strip().rpartition(": ")
    if key and any(fnmatch.fnmatchcase(key, p) for p in patterns):
        status[key] = value
killed = sum(v in ("killed", "timeout") for v in status.values())
timeouts = sum(v == "timeout" for v in status.values())
left = sorted(k for k, v in status.items() if v not in ("killed", "timeout"))
print(killed, len(status), timeouts, *(f"{k}:{status[k].replace(' ', '_')}" for k in left))
EOF
)
  read -r killed total timeouts rest <<< "$counts"
  [ "$total" -gt 0 ] || { echo "$name: no mutants found, see $dir/mutmut.log" >&2; exit 1; }
  for s in $rest; do survivors+=("$s"); done
  killed_all=$((killed_all + killed)); total_all=$((total_all + total))
  printf '%-13s %4d/%-4d killed (%5.1f%%; %d by timeout) in %4ds, %d module(s)\n' "$name" \
    "$killed" "$total" "$(awk "BEGIN {print 100 * $killed / $total}")" "$timeouts" \
    "$(( $(date +%s) - start ))" "$(echo "$modules" | wc -w)"
done

[ "$total_all" -gt 0 ] || { echo "no group named ${wanted[*]}" >&2; exit 2; }
echo "surviving mutants (mutmut show NAME in build/mutation/GROUP shows the change):"
for s in "${survivors[@]}"; do echo "  ${s//:/: }"; done
printf 'mutation score: %d/%d killed (%.1f%%)\n' "$killed_all" "$total_all" \
  "$(awk "BEGIN {print 100 * $killed_all / $total_all}")"
