#!/usr/bin/env bash
# RouteLLM's comparison for each of its sets (GSM8K, MMLU, MT-Bench):
# the share of strong-model calls needed for 95% of the strong model's
# quality, and the cost saved there, for always-strong, always-cheap,
# random, the oracle and a Tollgate policy. Prices: LiteLLM's table in
# the shared data. Usage: bench/replay/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${TOLLGATE_SHARED:-$(cd .. && pwd)/shared}
export TOLLGATE_SHARED=$shared
bin=${TOLLGATE_BIN:-./tollgate}
evals=$shared/data/routellm-evals
if [[ ! -d $evals ]]; then
    echo "SKIP bench-replay: $evals missing"
    exit 0
fi

run() {
    local policy=$1
    shift
    echo
    "$bin" replay --policy "bench/replay/$policy.yaml" --compare "$@" \
        2> >(grep -v ' info ' >&2)
}

run gsm8k "$evals/gsm8k_responses.csv"
run mmlu "$evals"/mmlu/mmlu_*.csv
run mt-bench "$evals/mt_bench_judgements.jsonl"
run gsm8k-tasks "$evals/gsm8k_responses.csv"
