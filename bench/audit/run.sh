#!/usr/bin/env bash
# Generates one million chat-log lines (deterministic), audits them with
# ./tollgate on one core, and prints lines/s and peak memory (RSS).
# Usage: bench/audit/run.sh [LINES]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
lines=${1:-1000000}
bin=${TOLLGATE_BIN:-./tollgate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 bench/audit/gen.py "$lines" > "$work/lines.jsonl"
bytes=$(stat -c %s "$work/lines.jsonl")
echo "bench-audit: $lines lines, $((bytes / 1048576)) MiB of chat JSONL"

# Wall time on a shared machine depends on its load; CPU time (user +
# system) is what one core spent, and both are printed.
taskset -c 0 /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
    "$bin" audit "$work/lines.jsonl" --format csv > "$work/out.csv"
read -r wall user sys rss < "$work/time"
cpu_ms=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1000 }')
wall_ms=$(awk -v w="$wall" 'BEGIN { printf "%d", w * 1000 }')
echo "bench-audit: wall $wall_ms ms, CPU $cpu_ms ms," \
     "$((lines * 1000 / (cpu_ms > 0 ? cpu_ms : 1))) lines/s of CPU," \
     "peak RSS $((rss / 1024)) MiB (target: under 10 s, bounded memory)"
grep -E '^(total|leak)' "$work/out.csv" | cut -d, -f1,2,4,7
