#!/usr/bin/env bash
# Runs every test: the unit tests (under ASan/UBSan) and the end-to-end
# tests against the sanitizer build of the gateway and the simulator.
# Ends with one line: "check: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
export TOLLGATE_SHARED=${TOLLGATE_SHARED:-$(cd .. && pwd)/shared}
[[ -d $TOLLGATE_SHARED ]] || echo "note: $TOLLGATE_SHARED missing; tests that need shared data are skipped"

unit_out=$(mktemp)
scripts/run-unit.sh "$@" 2>&1 | tee "$unit_out"
unit_rc=${PIPESTATUS[0]}
e2e_out=$(mktemp)
python3 tests/e2e/run.py 2>&1 | tee "$e2e_out"
e2e_rc=${PIPESTATUS[0]}

read -r up uf us < <(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$unit_out" | tail -1)
read -r ep ef es < <(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$e2e_out" | tail -1)
rm -f "$unit_out" "$e2e_out"
up=${up:-0}; uf=${uf:-0}; us=${us:-0}; ep=${ep:-0}; ef=${ef:-0}; es=${es:-0}
[[ $unit_rc -ne 0 && $uf -eq 0 ]] && uf=1
[[ $e2e_rc -ne 0 && $ef -eq 0 ]] && ef=1
echo "check: $((up + ep)) passed, $((uf + ef)) failed, $((us + es)) skipped"
[[ $unit_rc -eq 0 && $e2e_rc -eq 0 ]]
