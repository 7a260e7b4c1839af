#!/usr/bin/env bash
# Runs the cmocka unit test binaries and prints one summary line.
set -uo pipefail
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0; fail=0; skip=0
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    echo "$out"
    p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    k=$(echo "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
    skip=$((skip + ${k:-0}))
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
    if [[ $rc -ne 0 && ${f:-0} -eq 0 ]]; then
        echo "unit: $bin exited $rc" >&2; fail=$((fail + 1))
    fi
done
echo "unit: $pass passed, $fail failed, $skip skipped"
[[ $fail -eq 0 ]]
