#!/usr/bin/env bash
# bench/proxy: Tollgate against nginx (a plain reverse proxy, the physical
# limit) and the fake upstream alone, in one run, with the method and the
# files of $TOLLGATE_SHARED/peers/gateways (read in place, never copied).
# See README.md beside this script.
#
#   bench/proxy/run.sh              # full run (DURATION=10 REPS=2, ~20 min)
#   QUICK=1 bench/proxy/run.sh      # smoke run, about 2 min
#
# Environment knobs (defaults in brackets):
#   DURATION [10] s per wrk run      REPS [2] repetitions, interleaved
#   CONC ["1 16 64"]  BODIES ["small large"]  STREAM_CONC ["1 16"]
#   TARGETS ["direct nginx tollgate"]  WARMUP [5] s per target and body
#   CAPACITY [1]  measure the fake upstream alone on the SUT core
#   LOAD_CPU [0] wrk + fake upstream   SUT_CPU [1] the proxy under test
#   FOREIGN_MAX [5] % of the machine lost to others above which a run is
#   redone, RETRIES [4] times at most; QUIET_WAIT [180] s, QUIET_MAX [5] %
#   TOLLGATE [repo/tollgate]  TOLLGATE_SHARED [repo/../shared]
#   BENCH_WORK [$TMPDIR/tollgate-bench-proxy]  OUT [$BENCH_WORK/results/<time>]
#   SKIP_INSTALL [0]  PORT_UPSTREAM [18000] PORT_UPSTREAM_ALONE [18001]
#   PORT_NGINX [18080] PORT_TOLLGATE [18070]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${TOLLGATE_SHARED:-$REPO/../shared}
PEERS=$SHARED/peers/gateways
for f in upstream/fake-upstream.c wrk/post.lua peers/nginx.conf.in \
    bodies/small.json bodies/large.json bodies/small-stream.json; do
    if [[ ! -f $PEERS/$f ]]; then
        echo "SKIP bench/proxy: $PEERS/$f missing"
        exit 0
    fi
done
TOLLGATE=${TOLLGATE:-$REPO/tollgate}
WORK=${BENCH_WORK:-${TMPDIR:-/tmp}/tollgate-bench-proxy}

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    DURATION=${DURATION:-3}; REPS=${REPS:-1}; CONC=${CONC:-"1 16"}
    STREAM_CONC=${STREAM_CONC:-16}; WARMUP=${WARMUP:-2}
    CAPACITY=${CAPACITY:-0}; QUIET_WAIT=${QUIET_WAIT:-30}
    RETRIES=${RETRIES:-1}
fi
DURATION=${DURATION:-10}
REPS=${REPS:-2}
CONC=${CONC:-"1 16 64"}
BODIES=${BODIES:-"small large"}
STREAM_CONC=${STREAM_CONC:-"1 16"}
TARGETS=${TARGETS:-"direct nginx tollgate"}
WARMUP=${WARMUP:-5}
CAPACITY=${CAPACITY:-1}
LOAD_CPU=${LOAD_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
FOREIGN_MAX=${FOREIGN_MAX:-5}
RETRIES=${RETRIES:-4}
QUIET_WAIT=${QUIET_WAIT:-180}
QUIET_MAX=${QUIET_MAX:-5}
SKIP_INSTALL=${SKIP_INSTALL:-0}
P_UP=${PORT_UPSTREAM:-18000}
P_UP_ALONE=${PORT_UPSTREAM_ALONE:-18001}
P_NGINX=${PORT_NGINX:-18080}
P_TOLLGATE=${PORT_TOLLGATE:-18070}
BENCH_KEY=sk-bench-0000000000000000   # the key wrk/post.lua sends

OUT=${OUT:-$WORK/results/$(date +%Y%m%d-%H%M%S)}
RUN=$OUT/scratch        # logs, rendered configs, the ledger
mkdir -p "$RUN/logs"

has_target() { [[ " $TARGETS " == *" $1 "* ]]; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------- processes we own
PIDS=()
stop_pid() { # stop_pid PID: TERM, up to 5 s, then KILL
    local p=$1
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [[ -n $p ]] && stop_pid "$p"; done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CPU CMD...: runs CMD pinned to CPU in the background (taskset
# execs, so the PID is the command's own), output to $RUN/logs/NAME.log
start() {
    local name=$1 cpu=$2
    shift 2
    taskset -c "$cpu" "$@" >"$RUN/logs/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_${name}=$pid"
    log "started $name pid=$pid on cpu $cpu"
}

wait_http() { # wait_http URL [seconds]: any HTTP answer
    local url=$1 t=${2:-30}
    for _ in $(seq $((t * 10))); do
        curl -s -o /dev/null -m 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------- install, build
install_deps() {
    local need=()
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || need+=(nginx-light)
    command -v gcc >/dev/null || need+=(gcc)
    command -v curl >/dev/null || need+=(curl)
    command -v taskset >/dev/null || need+=(util-linux)
    command -v sqlite3 >/dev/null || need+=(sqlite3)
    ((${#need[@]})) || return 0
    if [[ $(id -u) != 0 ]]; then
        log "missing: ${need[*]}; run: apt-get install ${need[*]}"
        exit 1
    fi
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" \
        >/dev/null
}

build_upstream() { # compiled from the shared source into the scratch dir
    gcc -O2 -Wall -Wextra -pthread -o "$WORK/fake-upstream" \
        "$PEERS/upstream/fake-upstream.c"
}

key_sha256() { # Tollgate's own hash-key, checked against sha256sum
    local want got
    want=$(printf '%s' "$BENCH_KEY" | sha256sum | awk '{print $1}')
    got=$("$TOLLGATE" hash-key "$BENCH_KEY" 2>/dev/null | tail -1 || true)
    if [[ $got != "$want" ]]; then
        log "tollgate hash-key printed '$got', sha256sum '$want':" \
            "using sha256sum"
        got=$want
    fi
    echo "$got"
}

render_tollgate_conf() {
    LEDGER=$RUN/bench-ledger.db
    rm -f "$LEDGER" "$LEDGER-wal" "$LEDGER-shm"
    sed -e "s|@@TOLLGATE_PORT@@|$P_TOLLGATE|" \
        -e "s|@@UPSTREAM_PORT@@|$P_UP|" \
        -e "s|@@LEDGER@@|$LEDGER|" \
        -e "s|@@KEY_SHA256@@|$(key_sha256)|" \
        "$HERE/tollgate.yaml.in" >"$RUN/tollgate.yaml"
}

# ---------------------------------------------------------- targets
url_of() {
    local path=/v1/chat/completions
    case $1 in
    direct) echo "http://127.0.0.1:$P_UP$path" ;;
    upstream_alone) echo "http://127.0.0.1:$P_UP_ALONE$path" ;;
    nginx) echo "http://127.0.0.1:$P_NGINX$path" ;;
    tollgate) echo "http://127.0.0.1:$P_TOLLGATE$path" ;;
    esac
}
pids_of() { # the processes whose memory is the target's
    case $1 in
    nginx) echo "$PID_nginx $(cat /proc/"$PID_nginx"/task/*/children \
        2>/dev/null)" ;;
    tollgate) echo "$PID_tollgate" ;;
    direct) echo "$PID_upstream" ;;
    upstream_alone) echo "$PID_upstream_alone" ;;
    esac
}
rss_kb() { # sum of VmRSS (kB) over PIDs, threads included; builtins only
    local s=0 p k v _
    for p in "$@"; do
        [[ -r /proc/$p/status ]] || continue
        while read -r k v _; do
            if [[ $k == VmRSS: ]]; then s=$((s + v)); break; fi
        done <"/proc/$p/status" 2>/dev/null || true
    done
    echo "$s"
}
all_our_pids() { # every process we started, plus nginx's workers
    echo "${PIDS[@]}" "$(cat /proc/"${PID_nginx:-0}"/task/*/children \
        2>/dev/null)"
}
ticks_of() { # utime+stime (ticks) of PIDs; a process's line sums its threads
    local s=0 p v
    for p in "$@"; do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        s=$((s + ${v:-0}))
    done
    echo "$s"
}
cpu_line() { # busy/total ticks: load core, SUT core, machine; machine steal
    awk -v l="cpu$LOAD_CPU" -v s="cpu$SUT_CPU" '
    /^cpu/ { b = $2 + $3 + $4 + $7 + $8 + $9; t = b + $5 + $6
             B[$1] = b; T[$1] = t; S[$1] = $9 }
    END { printf "%d %d %d %d %d %d %d\n", B[l], T[l], B[s], T[s],
          B["cpu"], T["cpu"], S["cpu"] }' /proc/stat
}

start_all() {
    local p
    for p in $P_UP $P_UP_ALONE $P_NGINX $P_TOLLGATE; do
        port_free "$p" || {
            log "port $p is in use: stop whatever holds it first"
            exit 1
        }
    done
    start upstream "$LOAD_CPU" "$WORK/fake-upstream" -a 127.0.0.1 -p "$P_UP"
    if [[ $CAPACITY == 1 ]]; then
        start upstream_alone "$SUT_CPU" "$WORK/fake-upstream" \
            -a 127.0.0.1 -p "$P_UP_ALONE"
    fi
    wait_http "http://127.0.0.1:$P_UP/health" || {
        log "fake upstream did not start"
        exit 1
    }
    if [[ $CAPACITY == 1 ]]; then
        wait_http "http://127.0.0.1:$P_UP_ALONE/health" || {
            log "second fake upstream did not start"
            exit 1
        }
    fi
    has_target nginx && start_nginx
    has_target tollgate && start_tollgate
    check_loopback
}

start_nginx() {
    mkdir -p "$RUN/nginx/logs" "$RUN/nginx/tmp"
    sed -e "s/@@UPSTREAM_PORT@@/$P_UP/" -e "s/@@NGINX_PORT@@/$P_NGINX/" \
        "$PEERS/peers/nginx.conf.in" >"$RUN/nginx/nginx.conf"
    start nginx "$SUT_CPU" nginx -p "$RUN/nginx/" -c nginx.conf \
        -e logs/error.log
    wait_http "http://127.0.0.1:$P_NGINX/health" || {
        log "nginx did not start"
        exit 1
    }
}

start_tollgate() { # ready = the "listening" line on stdout, then /healthz 200
    render_tollgate_conf
    start tollgate "$SUT_CPU" "$TOLLGATE" serve --config "$RUN/tollgate.yaml"
    local i
    for i in $(seq 300); do
        grep -q '^tollgate listening on ' "$RUN/logs/tollgate.log" && break
        if ! kill -0 "$PID_tollgate" 2>/dev/null || ((i == 300)); then
            log "tollgate did not start; its output:"
            tail -20 "$RUN/logs/tollgate.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    for i in $(seq 100); do
        curl -sf -o /dev/null -m 1 "http://127.0.0.1:$P_TOLLGATE/healthz" &&
            break
        if ((i == 100)); then
            log "tollgate: GET /healthz never answered 200"
            exit 1
        fi
        sleep 0.1
    done
    log "$(grep -m1 '^tollgate listening on ' "$RUN/logs/tollgate.log")"
}

check_loopback() { # every socket we listen on must be on 127.0.0.1
    command -v ss >/dev/null || return 0
    local bad
    bad=$(ss -ltnH |
        grep -E ":($P_UP|$P_UP_ALONE|$P_NGINX|$P_TOLLGATE) " |
        awk '$4 !~ /^127\.0\.0\.1:/' || true)
    [[ -z $bad ]] || { log "a server is not on 127.0.0.1: $bad"; exit 1; }
}

# ---------------------------------------------------------- checks
CURL_TOLLGATE=0   # requests sent to Tollgate outside wrk that got an answer
check_target() { # check_target TARGET BODY: prints ok or FAIL
    local t=$1 body=$2 out code
    out=$(curl -s -m 10 -w '\n%{http_code}' -H 'Expect:' \
        -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $BENCH_KEY" \
        --data-binary "@$PEERS/bodies/$body.json" "$(url_of "$t")" || true)
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [[ $body == *stream* ]]; then
        local n
        n=$(printf '%s' "$out" | grep -c '^data:' || true)
        if [[ $code == 200 ]] && grep -q 'data: \[DONE\]' <<<"$out" &&
            grep -q '"total_tokens"' <<<"$out"; then
            echo "ok ($n SSE events, usage chunk, [DONE])"
        else
            echo "FAIL: HTTP $code $(head -c 300 <<<"$out")"
        fi
    elif [[ $code == 200 ]] &&
        grep -Eq '"total_tokens" *: *1201' <<<"$out"; then
        echo ok
    else
        echo "FAIL: HTTP $code $(head -c 300 <<<"$out")"
    fi
}

# ---------------------------------------------------------- the ledger
ledger_count() { # rows in the outcomes table, or -1 when it cannot be read
    sqlite3 -cmd '.timeout 5000' "$LEDGER" \
        'SELECT count(*) FROM outcomes;' 2>/dev/null || echo -1
}
ledger_groups() { # "value:rows ..." of one outcomes column
    sqlite3 -cmd '.timeout 5000' "$LEDGER" "SELECT group_concat(s, ' ')
        FROM (SELECT $1 || ':' || count(*) AS s FROM outcomes
        GROUP BY $1);" 2>/dev/null || echo '?'
}
ledger_settle() { # the row count once it has not moved for 1 s (max 20 s)
    local last now same=0
    last=$(ledger_count)
    for _ in $(seq 80); do
        sleep 0.25
        now=$(ledger_count)
        if [[ $now == "$last" ]]; then
            same=$((same + 1))
            ((same >= 4)) && break
        else
            same=0
        fi
        last=$now
    done
    echo "$last"
}

# ---------------------------------------------------------- one measurement
wait_quiet() { # wait until the whole machine is idle for 2 s; echo busy %
    local t0=$SECONDS a b busy total pct
    while :; do
        a=($(cpu_line))
        sleep 2
        b=($(cpu_line))
        busy=$((b[4] - a[4]))
        total=$((b[5] - a[5]))
        pct=$((total > 0 ? 100 * busy / total : 0))
        if ((pct <= QUIET_MAX)); then echo "$pct"; return 0; fi
        if ((SECONDS - t0 > QUIET_WAIT)); then
            log "machine still busy (${pct}%); measuring anyway"
            echo "$pct"
            return 0
        fi
        log "waiting for a quiet machine: ${pct}% busy"
    done
}

RSS_PEAK_FILE=$RUN/rss_peak
sample_rss() { # sample_rss PIDS... (background): max RSS into RSS_PEAK_FILE
    local peak=0 r
    while :; do
        r=$(rss_kb "$@")
        ((r > peak)) && peak=$r && echo "$peak" >"$RSS_PEAK_FILE"
        sleep 0.25
    done
}

WRK_TOLLGATE=0     # requests wrk counted as completed against Tollgate
INFLIGHT_BOUND=0   # sum of connections of every wrk run against Tollgate
NO_RESULT="RESULT requests=0 duration_s=0 rps=0 mean_us=0 p50_us=0"
NO_RESULT+=" p90_us=0 p99_us=0 max_us=0 err_connect=0 err_read=0"
NO_RESULT+=" err_write=0 err_status=0 err_timeout=0 bytes=0"

# wrk_run TARGET BODY CONC SECONDS: the RESULT line into $RUN/wrk.res; runs
# in this shell (not in $(...)) so that the Tollgate counters stick
wrk_run() {
    local t=$1 body=$2 c=$3 secs=$4 threads res
    threads=$((c < 2 ? 1 : 2))
    BODY="$PEERS/bodies/$body.json" WRK_HEADERS="" \
        timeout $((secs + 30)) taskset -c "$LOAD_CPU" \
        wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 10s \
        -s "$PEERS/wrk/post.lua" "$(url_of "$t")" \
        >"$RUN/wrk.out" 2>"$RUN/wrk.err" || true
    res=$(grep -m1 '^RESULT' "$RUN/wrk.out" || true)
    if [[ -z $res ]]; then
        log "wrk gave no result for $t $body c=$c:" \
            "$(head -c 300 "$RUN/wrk.err")"
        res=$NO_RESULT
    fi
    if [[ $t == tollgate ]]; then
        local n=${res#*requests=}
        WRK_TOLLGATE=$((WRK_TOLLGATE + ${n%% *}))
        INFLIGHT_BOUND=$((INFLIGHT_BOUND + c))
    fi
    echo "$res" >"$RUN/wrk.res"
}

TOLLGATE_DEAD=0
tollgate_alive() { # logs once, with its output, when Tollgate has gone
    has_target tollgate || return 0
    kill -0 "$PID_tollgate" 2>/dev/null && return 0
    if [[ $TOLLGATE_DEAD == 0 ]]; then
        TOLLGATE_DEAD=1
        local rc=0
        wait "$PID_tollgate" 2>/dev/null || rc=$?
        log "TOLLGATE EXITED (status $rc) during the runs; last output:"
        tail -20 "$RUN/logs/tollgate.log" >&2
        echo "tollgate exited with status $rc before the end" \
            >>"$OUT/problems.txt"
    fi
    return 1
}

# run_one KIND TARGET BODY CONC REP: appends every attempt to runs.csv and
# the least disturbed one to kept.csv
run_one() {
    local kind=$1 t=$2 body=$3 c=$4 rep=$5
    local attempt best_line="" best_lost=999
    if [[ $t == tollgate ]] && ! tollgate_alive; then return 0; fi
    for attempt in $(seq 0 "$RETRIES"); do
        local q a b o0 o1 wt res spid rows0="" rows=""
        q=$(wait_quiet)
        [[ $t == tollgate ]] && rows0=$(ledger_count)
        echo 0 >"$RSS_PEAK_FILE"
        sample_rss $(pids_of "$t") &
        spid=$!
        a=($(cpu_line))
        o0=$(ticks_of $(all_our_pids))
        TIMEFORMAT='%U %S'
        { time wrk_run "$t" "$body" "$c" "$DURATION"; } 2>"$RUN/wrk.time"
        res=$(cat "$RUN/wrk.res")
        b=($(cpu_line))
        o1=$(ticks_of $(all_our_pids))
        kill "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null || true
        if [[ $t == tollgate ]]; then
            rows=$(($(ledger_settle) - rows0))
            tollgate_alive || true
        fi

        # load core = wrk + fake upstream, SUT core = the proxy; foreign =
        # busy time that is neither ours nor steal
        wt=$(awk '{ u = $1; s = $2 } END { printf "%d", (u + s) * 100 }' \
            "$RUN/wrk.time")
        local tot0=$((b[1] - a[1])) tot1=$((b[3] - a[3])) tall=$((b[5] - a[5]))
        local cpu0=0 cpu1=0 foreign=0 steal=0
        if ((tall > 0)); then
            foreign=$((100 * (b[4] - a[4] - (b[6] - a[6]) - (o1 - o0) - wt) /
                tall))
            steal=$((100 * (b[6] - a[6]) / tall))
        fi
        ((foreign < 0)) && foreign=0
        ((tot0 > 0)) && cpu0=$((100 * (b[0] - a[0]) / tot0))
        ((tot1 > 0)) && cpu1=$((100 * (b[2] - a[2]) / tot1))

        local vals rss line lost
        vals=$(sed 's/^RESULT //; s/[a-z0-9_]*=//g; s/ /,/g' <<<"$res")
        rss=$(cat "$RSS_PEAK_FILE")
        line="$kind,$rep,$t,$body,$c,$attempt,$vals,$cpu0,$cpu1,$foreign"
        line+=",$q,$rss,$steal,$rows"
        echo "$line" >>"$OUT/runs.csv"
        log "$kind rep$rep $t $body c=$c try$attempt:" \
            "$(awk '{print $4, $6, $8, $13}' <<<"$res")" \
            "load=$cpu0% sut=$cpu1% foreign=$foreign% steal=$steal%" \
            "rss=${rss}kB${rows:+ ledger+$rows}"
        lost=$((foreign + steal))
        if ((lost < best_lost)); then best_lost=$lost; best_line=$line; fi
        ((lost <= FOREIGN_MAX)) && break
        [[ $t == tollgate ]] && ! tollgate_alive && break
    done
    echo "$best_line" >>"$OUT/kept.csv"
}

# ---------------------------------------------------------- phases
write_env() {
    {
        echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "kernel=$(uname -r) cpus=$(getconf _NPROCESSORS_ONLN)" \
            "model=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
        echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')" \
            "nginx=$(nginx -v 2>&1 | awk -F/ '{print $2}')"
        if has_target tollgate; then
            echo "tollgate=$TOLLGATE sha256=$(sha256sum <"$TOLLGATE" |
                awk '{print $1}') mtime=$(date -u -r "$TOLLGATE" +%FT%TZ)"
            echo "repo_head=$(git -C "$REPO" rev-parse --short HEAD \
                2>/dev/null || echo none)"
        fi
        echo "shared=$PEERS"
        echo "duration=${DURATION}s reps=$REPS conc=[$CONC]" \
            "stream_conc=[$STREAM_CONC] bodies=[$BODIES] warmup=${WARMUP}s" \
            "load_cpu=$LOAD_CPU sut_cpu=$SUT_CPU foreign_max=$FOREIGN_MAX%"
        echo "command=QUICK=$QUICK DURATION=$DURATION REPS=$REPS $0"
    } >"$OUT/env.txt"
}

check_all() {
    : >"$OUT/checks.txt"
    local t b r
    for t in $TARGETS; do
        for b in small large small-stream; do
            r=$(check_target "$t" "$b")
            # every answered check is one more ledger row to expect
            if [[ $t == tollgate && $r != "FAIL: HTTP 000"* ]]; then
                CURL_TOLLGATE=$((CURL_TOLLGATE + 1))
            fi
            echo "$t $b $r" | tee -a "$OUT/checks.txt" >&2
            [[ $r == ok* ]] || echo "check $t $b: $r" >>"$OUT/problems.txt"
        done
    done
}

warm_up() { # every target, every body, c=16; not recorded except counts
    local t b res
    for t in $TARGETS; do
        for b in $BODIES small-stream; do
            wrk_run "$t" "$b" 16 "$WARMUP"
            log "warm-up $t $b: $(awk '{print $2, $4}' "$RUN/wrk.res")"
        done
    done
}

measure() {
    local rep t b c
    if [[ $CAPACITY == 1 ]]; then
        for b in $BODIES; do
            for c in 1 64; do run_one capacity upstream_alone "$b" "$c" 1; done
        done
    fi
    for rep in $(seq "$REPS"); do
        for t in $TARGETS; do
            for b in $BODIES; do
                for c in $CONC; do run_one plain "$t" "$b" "$c" "$rep"; done
            done
        done
        for t in $TARGETS; do
            for c in $STREAM_CONC; do
                run_one stream "$t" small-stream "$c" "$rep"
            done
        done
    done
}

# Stops Tollgate (SIGTERM: it drains its ledger queue) and compares the rows
# with what wrk and curl saw answered.
ledger_report() {
    local before after rc=0 st cs
    wait_quiet >/dev/null
    before=$(ledger_count)
    if kill -0 "$PID_tollgate" 2>/dev/null; then
        kill -TERM "$PID_tollgate"
        for _ in $(seq 150); do
            kill -0 "$PID_tollgate" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$PID_tollgate" 2>/dev/null; then
            log "tollgate still running 15 s after SIGTERM: killing it"
            echo "tollgate did not exit within 15 s of SIGTERM" \
                >>"$OUT/problems.txt"
            kill -KILL "$PID_tollgate"
        fi
    fi
    wait "$PID_tollgate" 2>/dev/null || rc=$?
    after=$(ledger_count)
    st=$(ledger_groups http_status)
    cs=$(ledger_groups cost_status)
    {
        echo "rows_before_stop=$before"
        echo "rows_after_stop=$after"
        echo "wrk_completed=$WRK_TOLLGATE"
        echo "curl_answered=$CURL_TOLLGATE"
        echo "inflight_bound=$INFLIGHT_BOUND"
        echo "http_status_rows=$st"
        echo "cost_status_rows=$cs"
        echo "exit_status=$rc"
    } >"$OUT/ledger.txt"
    cp "$RUN/logs/tollgate.log" "$OUT/tollgate.log"
}

main() {
    # the harness (curl, samplers, sqlite3) stays off the SUT core
    taskset -cp "$LOAD_CPU" $$ >/dev/null
    [[ $SKIP_INSTALL == 1 ]] || install_deps
    if has_target tollgate && [[ ! -x $TOLLGATE ]]; then
        log "$TOLLGATE missing: build it (make tollgate) or drop it" \
            "from TARGETS"
        exit 1
    fi
    mkdir -p "$WORK"
    build_upstream
    write_env
    local hdr="kind,rep,target,body,conc,attempt,requests,duration_s,rps"
    hdr+=",mean_us,p50_us,p90_us,p99_us,max_us,err_connect,err_read"
    hdr+=",err_write,err_status,err_timeout,bytes,load_core_busy"
    hdr+=",sut_core_busy,foreign_pct,quiet_pct,rss_peak_kb,steal_pct"
    hdr+=",ledger_rows"
    echo "$hdr" >"$OUT/runs.csv"
    echo "$hdr" >"$OUT/kept.csv"

    start_all
    check_all
    : >"$OUT/rss.txt"
    local t
    for t in $TARGETS; do
        echo "$t idle_start_kb=$(rss_kb $(pids_of "$t"))" >>"$OUT/rss.txt"
    done
    warm_up
    measure
    tollgate_alive || true
    for t in $TARGETS; do
        [[ $t == tollgate && $TOLLGATE_DEAD == 1 ]] && continue
        echo "$t idle_end_kb=$(rss_kb $(pids_of "$t"))" >>"$OUT/rss.txt"
    done
    has_target tollgate && ledger_report
    cleanup
    local files=("$OUT/kept.csv" "$OUT/runs.csv" "$OUT/rss.txt")
    [[ -f $OUT/ledger.txt ]] && files+=("$OUT/ledger.txt")
    awk -f "$HERE/summarize.awk" "${files[@]}" | tee "$OUT/summary.md"
    if [[ -s $OUT/problems.txt ]]; then
        log "PROBLEMS:"
        cat "$OUT/problems.txt" >&2
    fi
    log "results in $OUT (runs.csv = every attempt, kept.csv = the table)"
}

main "$@"
