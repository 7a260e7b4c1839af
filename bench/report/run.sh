#!/usr/bin/env bash
# bench/report: writes N outcomes (default 1,000,000) into a ledger through
# the real writer (bench/report/gen.c), then times `tollgate report` on
# it: the first run, which brings the daily rollup up to date; later runs,
# which read whole days from the rollup (target: under 1 s); a full scan
# without the rollup; --leaks; and the HTML page. Prints figures and
# writes them to bench/out/report.md; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${1:-1000000}
dir=${BENCH_DIR:-build/bench/report}
gen=build/bench/report_gen
bin=./tollgate
mkdir -p "$dir" bench/out

base=$dir/ledger-$n.db
if [[ ! -f $base ]]; then
    start=$(date +%s%N)
    "$gen" "$n" "$base.tmp" >/dev/null
    rm -f "$base.tmp-wal" "$base.tmp-shm"
    mv "$base.tmp" "$base"
    echo "report_bench: generated $n outcomes in" \
         "$(( ($(date +%s%N) - start) / 1000000 )) ms"
fi
# A fresh copy each run, so the first report builds the rollup again.
work=$dir/work.db
rm -f "$work" "$work-wal" "$work-shm"
cp "$base" "$work"

# Seconds with milliseconds of one command, best of $runs.
timed() {
    local runs=$1 best=
    shift
    for ((i = 0; i < runs; i++)); do
        local t0 t1 ms
        t0=$(date +%s%N)
        "$@" >/dev/null
        t1=$(date +%s%N)
        ms=$(( (t1 - t0) / 1000000 ))
        [[ -z $best || $ms -lt $best ]] && best=$ms
    done
    printf '%d.%03d s' $((best / 1000)) $((best % 1000))
}

rows=$(sqlite3 "$work" "SELECT count(*) FROM outcomes" 2>/dev/null ||
       echo "$n")
first=$(timed 1 "$bin" report --ledger "$work")
warm=$(timed 3 "$bin" report --ledger "$work")
team=$(timed 3 "$bin" report --ledger "$work" --by team --format json)
week=$(timed 3 "$bin" report --ledger "$work" --since 2026-10-10T06:30Z \
       --until 2026-10-17T18:00Z --compare --format csv)
leaks=$(timed 3 "$bin" report --ledger "$work" --leaks)
scan=$(timed 1 "$bin" report --ledger "$work" --no-rollup)
html="n/a (run make dashboard)"
if [[ -f build/dashboard/dashboard.js ]]; then
    html=$(timed 1 "$bin" report --ledger "$work" --format html \
           --out "$dir/report.html")
fi
rollup_rows=$(sqlite3 "$work" "SELECT count(*) FROM report_rollup" \
              2>/dev/null || echo "?")

report=$(cat <<EOT
# bench/report ($(date -u +%Y-%m-%d), $(nproc) CPUs)

$rows outcomes in one ledger file; $rollup_rows daily rollup rows.

| run | time |
|---|---|
| first report (brings the rollup up to date) | $first |
| report --by task,model (rollup) | $warm |
| report --by team --format json (rollup) | $team |
| report over 7.5 days with edges, --compare, csv | $week |
| report --leaks | $leaks |
| report --format html (five queries) | $html |
| report --no-rollup (full scan, exact percentiles) | $scan |
EOT
)
echo "$report"
echo "$report" >bench/out/report.md
