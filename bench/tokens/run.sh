#!/usr/bin/env bash
# bench/tokens: token-counting throughput of Tollgate against tiktoken
# (npm, WASM build of OpenAI's Rust core) and gpt-tokenizer, in the same
# run, on prose, code and mixed CJK/emoji corpora built from files a
# Debian 12 machine has. Peers and corpora live in $TOKBENCH_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tokbench), never in the repo.
# Every library runs single-threaded, pinned to the same CPU. Exactness:
# token counts against both peers, ids against tiktoken on every corpus,
# and ids on 20,000 random strings of the patterns' special characters.
#   RUNS  timed runs per corpus (default 5); the median is reported.
# Run through `make bench-tokens`, which builds build/bench/tokens_bench.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export TOLLGATE_SHARED="${TOLLGATE_SHARED:-$repo/../shared}"
peers="$TOLLGATE_SHARED/peers/tokenizers"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tollgate"
export TOKBENCH_DIR="${TOKBENCH_DIR:-$cache/tokbench}"
runs="${RUNS:-5}"
out="$repo/bench/out/tokens"
corpora="$TOKBENCH_DIR/corpora"
bench="$repo/build/bench/tokens_bench"
cpu=$(($(nproc) - 1))
mkdir -p "$out"

[[ -d $TOKBENCH_DIR/nm/node_modules/gpt-tokenizer ]] || "$peers/setup.sh"
[[ -f $corpora/mixed.txt ]] || node "$peers/build_corpora.mjs" "$corpora"

echo "bench/tokens: tiktoken's ids for the reference" >&2
node "$here/peer_ids.mjs" "$peers/libs.mjs" "$corpora" "$TOKBENCH_DIR/ids"
node "$here/diff_cases.mjs" "$peers/libs.mjs" "$TOKBENCH_DIR/diff" 20000

echo "bench/tokens: peers (tiktoken, gpt-tokenizer)" >&2
node "$peers/bench.mjs" --runs "$runs" --libs tiktoken,gpt-tokenizer \
    --corpora "$corpora" --json "$out/peers.json" > "$out/peers.md"

echo "bench/tokens: Tollgate" >&2
for enc in o200k_base cl100k_base; do
    for variant in "" --cold; do
        taskset -c "$cpu" "$bench" $variant --runs "$runs" \
            --ids "$TOKBENCH_DIR/ids" "$enc" \
            "$corpora/prose.txt" "$corpora/code.txt" "$corpora/mixed.txt"
    done
done > "$out/tollgate.jsonl"
for enc in o200k_base cl100k_base; do
    "$bench" --diff "$TOKBENCH_DIR/diff/$enc.cases" "$enc"
done > "$out/diff.jsonl"

node "$here/report.mjs" "$out/peers.json" "$out/tollgate.jsonl" \
    "$out/diff.jsonl" | tee "$out/table.md"
