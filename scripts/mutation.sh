#!/usr/bin/env bash
# Mutation testing (mutmut) of six small, central modules, each against only the fast tests
# that exercise it. A measurement, not part of CI or of the pytest suite; slow (minutes per
# module). Prints, per module, killed / total and the surviving mutants.
#
#   bash scripts/mutation.sh                      # all six
#   bash scripts/mutation.sh frames recipe        # some: frames metrics tiling variants recipe measure
#   MUTATION_JOBS=1 nice -n 19 bash scripts/mutation.sh tiling
#
# Needs mutmut in .venv (`pip install -e .[dev]` has it). The top-level folders runtime/,
# export/ and calibration/ are installed as ndr_edge.runtime etc. (package-dir), but mutmut
# names a mutant after the file's path and imports the mutated copy from mutants/ on
# sys.path. So each module is staged in out/mutation/<module>/ as the package tree Python
# sees (ndr_edge/, ndr_edge/runtime/, ndr_edge/export/, ndr_edge/calibration/) next to a
# copy of tests/, and mutmut runs there: the mutated ndr_edge/runtime/tiling.py is the
# module ndr_edge.runtime.tiling the tests import (mutants/ comes first on sys.path, before
# the editable install's finder). The repository itself is never modified.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
MUTMUT=${MUTMUT:-$(dirname "$PY")/mutmut}
WORK=${MUTATION_DIR:-$ROOT/out/mutation}
JOBS=${MUTATION_JOBS:-$(nproc)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

[ -x "$MUTMUT" ] || { echo "mutation.sh: $MUTMUT not found; pip install mutmut (it is in the dev extra)" >&2; exit 2; }

# module name -> "<file in the package tree>|<test files or node ids, space-separated>"; files
# that do not exist (yet) are left out, and every run deselects slow, gpu and the tests that
# export the real network with torch (-k "not ndr_model").
declare -A SPEC=(
  [frames]="ndr_edge/frames.py|tests/data/test_frames_mutants.py tests/runtime/test_restorer.py tests/runtime/test_tiling.py"
  [metrics]="ndr_edge/metrics.py|tests/data/test_metrics.py"
  [tiling]="ndr_edge/runtime/tiling.py|tests/runtime/test_tiling.py tests/runtime/test_tiling_mutants.py"
  [variants]="ndr_edge/export/variants.py|tests/export/test_variants_mutants.py tests/test_structure.py::test_every_variant_names_a_known_format_precision_and_source tests/runtime/test_restorer.py"
  [recipe]="ndr_edge/calibration/recipe.py|tests/calibration/test_recipe.py"
  [measure]="ndr_edge/report/measure.py|tests/report/test_logic.py tests/report/test_measure_mutants.py"
)
ORDER=(recipe variants metrics frames tiling measure)
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=("${ORDER[@]}")

stage() {  # stage <dir>: the package tree as installed, tests, pytest configuration
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -r ndr_edge "$dir/ndr_edge"
  rm -rf "$dir/ndr_edge/assets"  # the bundled checkpoint (6 MB): no fast test here reads it
  for sub in runtime export calibration; do cp -r "$sub" "$dir/ndr_edge/$sub"; done
  cp -r tests "$dir/tests"
  cp pyproject.toml "$dir/pyproject.toml"  # pytest's markers and --strict-markers
  find "$dir" -name __pycache__ -type d -prune -exec rm -rf {} +
}

summary=()
for name in "${MODULES[@]}"; do
  [ -n "${SPEC[$name]:-}" ] || { echo "mutation.sh: unknown module $name (one of: ${ORDER[*]})" >&2; exit 2; }
  file=${SPEC[$name]%%|*}
  tests=""
  for t in ${SPEC[$name]#*|}; do
    if [ -e "${t%%::*}" ]; then tests="$tests $t"; else echo "   ($t does not exist here: left out)"; fi
  done
  dir=$WORK/$name
  echo "== $name: $file against $tests"
  stage "$dir"
  {
    echo "[mutmut]"
    echo "source_paths = ndr_edge"
    echo "only_mutate = $file"
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do echo "    $t"; done
    echo "pytest_add_cli_args ="
    echo "    -p"
    echo "    no:cacheprovider"
    echo "    -m"
    echo "    not slow and not gpu"
    echo "    -k"
    echo "    not ndr_model"  # the tests that export the real network with torch: a minute each here
  } > "$dir/setup.cfg"
  start=$(date +%s)
  (cd "$dir" && "$MUTMUT" run --max-children "$JOBS" > mutmut-run.log 2>&1) || {
    echo "mutation.sh: mutmut run failed for $name; see $dir/mutmut-run.log" >&2
    tail -20 "$dir/mutmut-run.log" >&2
    exit 1
  }
  (cd "$dir" && "$MUTMUT" results --all true > results.txt 2>&1) || true
  line=$(cd "$dir" && "$PY" - <<'EOF'
rows = [l.strip() for l in open("results.txt") if ":" in l]
status = {}
for row in rows:
    key, _, verdict = row.rpartition(":")
    status[key.strip()] = verdict.strip()
# a timeout (a mutant that made a test hang) is caught too; "no tests" and "survived" are not
caught = ("killed", "timeout")
killed = sum(v in caught for v in status.values())
total = len(status)
survived = sorted(k for k, v in status.items() if v not in caught)
timeouts = sum(v == "timeout" for v in status.values())
extra = f", {timeouts} of them by timeout" if timeouts else ""
print(f"{killed}/{total} killed ({100.0 * killed / max(total, 1):.1f} %{extra})")
with open("survivors.txt", "w") as f:
    for k in survived:
        f.write(f"{k}: {status[k]}\n")
EOF
)
  echo "   $name: $line in $(( $(date +%s) - start )) s"
  summary+=("$name ($file): $line")
  if [ -s "$dir/survivors.txt" ]; then
    echo "   survivors (mutmut show NAME, in $dir):"
    sed 's/^/     /' "$dir/survivors.txt"
  fi
done

echo
echo "mutation score per module (killed / total):"
printf '  %s\n' "${summary[@]}"
