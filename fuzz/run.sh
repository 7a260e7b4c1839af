#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60). Prints execs per target and any crash input.
# Usage: fuzz/run.sh [TARGET...]
#   (default: sse jsonedit request bodylimit usage translate billing)
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=build/fuzz
TARGETS=("$@")
[[ ${#TARGETS[@]} -eq 0 ]] &&
    TARGETS=(sse jsonedit request bodylimit usage translate billing)

CLANG=${CLANG:-}
if [[ -z $CLANG ]]; then
    for c in clang-14 clang; do
        command -v "$c" >/dev/null && CLANG=$c && break
    done
fi
if [[ -z $CLANG ]]; then
    echo "fuzz: SKIP: clang is not installed" \
         "(apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 0
fi

CFLAGS=(-std=c11 -D_GNU_SOURCE -Isrc -g -O1 -Wall -Wextra
        -Wno-unused-parameter -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
JSONC_CFLAGS=$(pkg-config --cflags json-c libevent)
JSONC_LIBS=$(pkg-config --libs json-c libevent)

# The sources each target links; only what the parser under test needs.
sources() {
    case $1 in
    sse) echo fuzz/fuzz_sse.c src/upstream/sse.c src/util/arena.c ;;
    jsonedit) echo fuzz/fuzz_jsonedit.c src/util/jsonedit.c \
                   src/util/common.c src/util/arena.c ;;
    request) echo fuzz/fuzz_request.c src/util/jsonedit.c \
                  src/util/common.c src/util/arena.c ;;
    bodylimit) echo fuzz/fuzz_bodylimit.c src/http/bodylimit.c \
                    src/util/arena.c ;;
    usage) echo fuzz/fuzz_usage.c src/upstream/usage.c \
                src/upstream/openai.c src/upstream/sse.c src/util/arena.c ;;
    translate) echo fuzz/fuzz_translate.c src/proxy/translate.c \
                    src/upstream/usage.c src/upstream/openai.c \
                    src/upstream/sse.c src/util/arena.c ;;
    billing) echo fuzz/fuzz_billing.c src/billing/compare.c \
                  src/billing/cost.c src/billing/decimal.c \
                  src/billing/genai.c src/billing/import.c \
                  src/billing/litellm.c src/billing/rates.c \
                  src/billing/table.c src/util/arena.c ;;
    *) return 1 ;;
    esac
}

dict() {
    case $1 in
    sse) echo fuzz/sse.dict ;;
    bodylimit) echo fuzz/http.dict ;;
    usage) echo fuzz/usage.dict ;;
    translate)
        # libFuzzer takes one dictionary: the answer tokens and the
        # request tokens together.
        cat fuzz/usage.dict fuzz/translate.dict >"$OUT/translate.dict"
        echo "$OUT/translate.dict" ;;
    billing) echo fuzz/billing.dict ;;
    *) echo fuzz/json.dict ;;
    esac
}

mkdir -p "$OUT"
status=0
summary=()
for t in "${TARGETS[@]}"; do
    srcs=$(sources "$t") || { echo "fuzz: unknown target $t" >&2; exit 2; }
    bin=$OUT/fuzz_$t
    # shellcheck disable=SC2086
    if ! "$CLANG" "${CFLAGS[@]}" $JSONC_CFLAGS -o "$bin" $srcs \
            $JSONC_LIBS; then
        echo "fuzz: building $t failed" >&2
        exit 1
    fi

    corpus=$OUT/corpus/$t
    crashes=$OUT/crashes/$t
    log=$OUT/fuzz_$t.log
    stamp=$OUT/.started_$t
    mkdir -p "$corpus" "$crashes"
    touch "$stamp"
    echo "fuzz: running $t for ${SECONDS_EACH}s (log $log)"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -dict="$(dict "$t")" -artifact_prefix="$crashes/" \
        "$corpus" "fuzz/seeds/$t" >"$log" 2>&1
    rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    found=$(find "$crashes" -type f -newer "$stamp" | sort)
    if [[ $rc -ne 0 || -n $found ]]; then
        status=1
        summary+=("fuzz_$t: CRASH after ${execs:-?} execs (exit $rc)")
        echo "---- fuzz_$t: crash report ----"
        grep -E -A25 'ERROR: |runtime error|fuzz_[a-z]+: ' "$log" | head -60
        for f in $found; do
            echo "---- input $f ($(wc -c <"$f") bytes) ----"
            od -c "$f" | head -20
        done
    else
        files=$(find "$corpus" -type f | wc -l)
        summary+=("fuzz_$t: ${execs:-?} execs in ${secs:-$SECONDS_EACH} s, \
corpus $files files, no crash")
    fi
done

printf '%s\n' "${summary[@]}"
exit $status
