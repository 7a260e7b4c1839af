# bench/proxy/summarize.awk: run.sh's results -> markdown tables.
#   awk -f summarize.awk kept.csv [kept.csv ...] runs.csv rss.txt [ledger.txt]
# Several kept.csv (several sessions) are pooled: each row is one more rep.
# Medians are over the reps; "added" = median through the proxy minus the
# median direct, same body and conns; ratios are Tollgate's over nginx's.
BEGIN { FS = "," }
FILENAME ~ /rss\.txt$/ {
    split($0, a, " "); split(a[2], kv, "=")
    if (kv[1] == "idle_start_kb") idle0[a[1]] = kv[2]
    else if (kv[1] == "idle_end_kb") idle1[a[1]] = kv[2]
    next
}
FILENAME ~ /ledger\.txt$/ {
    i = index($0, "="); L[substr($0, 1, i - 1)] = substr($0, i + 1); next
}
FNR == 1 || $0 == "" { next }
FILENAME ~ /runs\.csv$/ {
    if ($25 + 0 > peak[$3]) peak[$3] = $25 + 0
    if ($3 == "tollgate") lrun[++nl] = $0
    att[$1 SUBSEP $3 SUBSEP $4 SUBSEP $5]++
    next
}
{
    k = $1 SUBSEP $3 SUBSEP $4 SUBSEP $5
    if (!(k in n)) order[++nk] = k
    m = ++n[k]
    R[k, m] = $9; P50[k, m] = $11; P99[k, m] = $13
    sep = (m > 1 ? " / " : "")
    rps[k] = rps[k] sep sprintf("%.0f", $9)
    p50[k] = p50[k] sep sprintf("%.3f", $11 / 1000)
    p99[k] = p99[k] sep sprintf("%.3f", $13 / 1000)
    errs[k] += $15 + $16 + $17 + $18 + $19
    busy[k] = busy[k] sep $21 "/" $22
    lost[k] = lost[k] sep $23 "+" $26
}

function median(A, k, cnt,    i, j, v, tmp) {
    for (i = 1; i <= cnt; i++) v[i] = A[k, i] + 0
    for (i = 2; i <= cnt; i++)
        for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
            tmp = v[j]; v[j] = v[j - 1]; v[j - 1] = tmp
        }
    return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
}
function rank(t) {
    return t == "upstream_alone" ? 0 : t == "direct" ? 1 : \
        t == "nginx" ? 2 : t == "tollgate" ? 3 : 9
}
function key_of(kind, t, body, c) { return kind SUBSEP t SUBSEP body SUBSEP c }
# added p50 (or p99) over direct in us, or "" when there is no direct row
function added(A, k,    f, dk) {
    split(k, f, SUBSEP)
    dk = key_of(f[1], "direct", f[3], f[4])
    if (f[2] == "direct" || f[2] == "upstream_alone" || !(dk in n)) return ""
    return median(A, k, n[k]) - median(A, dk, n[dk])
}
function ms(us) { return us == "" ? "-" : sprintf("%+.3f", us / 1000) }
function mib(kb) { return kb == "" ? "-" : sprintf("%.1f", kb / 1024) }

END {
    for (i = 1; i <= nk; i++) {
        split(order[i], f, SUBSEP)
        sk[i] = sprintf("%d %d %06d %d", f[1] == "capacity" ? 0 : \
            f[1] == "plain" ? 1 : 2, f[3] == "small" ? 0 : \
            f[3] == "large" ? 1 : 2, f[4], rank(f[2]))
        idx[i] = i
    }
    for (i = 2; i <= nk; i++)
        for (j = i; j > 1 && sk[idx[j - 1]] > sk[idx[j]]; j--) {
            tmp = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = tmp
        }
    headline()
    detail()
    goals()
    memory()
    ledger()
}

function headline(    ii, k, f, mr, a50, gk, rr, ra, ga) {
    print "| kind | target | body | conns | req/s | p50 ms | p99 ms |" \
        " added p50 ms | added p99 ms | req/s tollgate/nginx |" \
        " added p50 tollgate/nginx | errors |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (ii = 1; ii <= nk; ii++) {
        k = order[idx[ii]]; split(k, f, SUBSEP)
        mr = median(R, k, n[k]); a50 = added(P50, k)
        rr = "-"; ra = "-"
        gk = key_of(f[1], "nginx", f[3], f[4])
        if (f[2] == "tollgate" && (gk in n)) {
            rr = sprintf("%.3f", mr / median(R, gk, n[gk]))
            ga = added(P50, gk)
            if (ga != "" && a50 != "")
                ra = ga > 0 ? sprintf("%.2f", a50 / ga) : "n/a"
        }
        printf "| %s | %s | %s | %s | %.0f | %.3f | %.3f | %s | %s |" \
            " %s | %s | %d |\n", f[1], f[2], f[3], f[4], mr, \
            median(P50, k, n[k]) / 1000, median(P99, k, n[k]) / 1000, \
            ms(a50), ms(added(P99, k)), rr, ra, errs[k]
    }
}

function detail(    ii, k, f) {
    print ""
    print "Every repetition (the headline uses their medians):"
    print ""
    print "| kind | target | body | conns | req/s | p50 ms | p99 ms |" \
        " load/SUT core busy % | lost CPU % (foreign+steal) |" \
        " attempts, all reps |"
    print "|---|---|---|---|---|---|---|---|---|---|"
    for (ii = 1; ii <= nk; ii++) {
        k = order[idx[ii]]; split(k, f, SUBSEP)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", \
            f[1], f[2], f[3], f[4], rps[k], p50[k], p99[k], busy[k], \
            lost[k], att[k] + 0
    }
}

# DESIGN.md "Performance targets": >= half of nginx's req/s at 16 conns,
# <= twice nginx's added p50 at 1 conn (300-byte body), idle RSS < 20 MB
function goals(    tk, gk, r, a, g) {
    tk = key_of("plain", "tollgate", "small", 16)
    gk = key_of("plain", "nginx", "small", 16)
    if (!(tk in n) && !("tollgate" in idle0)) return
    print ""
    print "Targets (DESIGN.md), from the medians above:"
    print ""
    if ((tk in n) && (gk in n)) {
        r = median(R, tk, n[tk]) / median(R, gk, n[gk])
        printf "- req/s tollgate/nginx, small body, 16 conns: %.3f" \
            " (goal >= 0.5): %s\n", r, (r >= 0.5 ? "met" : "NOT met")
    }
    tk = key_of("plain", "tollgate", "small", 1)
    gk = key_of("plain", "nginx", "small", 1)
    if ((tk in n) && (gk in n)) {
        a = added(P50, tk); g = added(P50, gk)
        if (a != "" && g > 0)
            printf "- added p50 tollgate/nginx, small body, 1 conn: %.2f" \
                " (%s vs %s ms; goal <= 2): %s\n", a / g, ms(a), ms(g), \
                (a / g <= 2 ? "met" : "NOT met")
    }
    if ("tollgate" in idle0)
        printf "- Tollgate idle RSS after start and one request: %.1f MB" \
            " (goal < 20 MB): %s\n", idle0["tollgate"] * 1024 / 1e6, \
            (idle0["tollgate"] * 1024 < 20e6 ? "met" : "NOT met")
}

function memory(    i, ts, t) {
    print ""
    print "| process | RSS idle after start + 1 request (MiB) |" \
        " peak RSS under load (MiB) | RSS idle after the runs (MiB) |"
    print "|---|---|---|---|"
    split("direct nginx tollgate", ts, " ")
    for (i = 1; i <= 3; i++) {
        t = ts[i]
        if (!(t in idle0)) continue
        printf "| %s | %s | %s | %s |\n", \
            (t == "direct" ? "fake upstream" : t), mib(idle0[t]), \
            (t in peak) ? mib(peak[t]) : "-", mib(idle1[t])
    }
}

function ledger(    i, f, d, verdict) {
    if (!("rows_after_stop" in L)) return
    print ""
    print "Tollgate's ledger (outcomes rows) against the requests wrk" \
        " counted as completed:"
    print ""
    print "| run | rep | body | conns | try | wrk completed |" \
        " ledger rows added | rows - completed | within in-flight? |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nl; i++) {
        split(lrun[i], f, ",")
        d = f[27] - f[7]
        verdict = (d >= 0 && d <= f[5]) ? "yes" : "NO"
        printf "| %s | %s | %s | %s | %d | %d | %d | %+d | %s |\n", \
            f[1], f[2], f[4], f[5], f[6] + 1, f[7], f[27], d, verdict
    }
    d = L["rows_after_stop"] - L["wrk_completed"] - L["curl_answered"]
    print ""
    printf "Whole session: %d rows after Tollgate stopped (%d before" \
        " SIGTERM); wrk counted %d requests completed (warm-ups" \
        " included) + %d curl checks answered = %d; difference %+d" \
        " (in-flight bound: %d = the connections of every wrk run:" \
        " %s)." \
        " Rows by HTTP status: %s; by cost status: %s." \
        " Tollgate exit status: %s.\n", \
        L["rows_after_stop"], L["rows_before_stop"], L["wrk_completed"], \
        L["curl_answered"], L["wrk_completed"] + L["curl_answered"], d, \
        L["inflight_bound"], \
        (d >= 0 && d <= L["inflight_bound"] ? "within" : "OUTSIDE IT"), \
        L["http_status_rows"], \
        L["cost_status_rows"], L["exit_status"]
}
