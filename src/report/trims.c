/*
 * `tollgate report --trims`: context trimming by task over the window:
 * how many requests were trimmed, the tokens before and after, the
 * dollars saved, and the share of trims whose last user turn referred to
 * what was removed (the risk flag), so an operator can tune how hard a
 * task trims. Read straight from the outcomes table.
 */
#include "report/report.h"

#include "util/common.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static const char trims_sql[] =
    "SELECT task, count(*), sum(input_tokens_before_trim),"
    " sum(input_tokens_after_trim), sum(trim_saved_pico), sum(trim_flagged)"
    " FROM outcomes WHERE input_tokens_before_trim > input_tokens_after_trim"
    " AND started_ms >= ?1 AND started_ms < ?2 GROUP BY task ORDER BY task";

typedef struct trim_row {
    const char *task;
    int64_t trims, before, after, flagged;
    pico_t saved;
} trim_row_t;

static void write_row(FILE *out, report_format_t format, bool first,
                      const trim_row_t *r)
{
    char usd[40];

    pico_format_usd(r->saved, usd, sizeof(usd));
    if (format == REPORT_JSON)
        fprintf(out,
                "%s{\"task\":\"%s\",\"trims\":%" PRId64
                ",\"tokens_before\":%" PRId64 ",\"tokens_after\":%" PRId64
                ",\"saved_usd\":\"%s\",\"saved_pico\":%" PRId64
                ",\"flagged\":%" PRId64 ",\"flagged_share\":\"%" PRId64
                ".%02" PRId64 "\"}",
                first ? "" : ",", r->task, r->trims, r->before, r->after, usd,
                r->saved, r->flagged, r->flagged * 100 / r->trims,
                r->flagged * 10000 / r->trims % 100);
    else if (format == REPORT_CSV)
        fprintf(out,
                "%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%s,%" PRId64 ",%" PRId64
                "\n",
                r->task, r->trims, r->before, r->after, usd, r->saved,
                r->flagged);
    else
        fprintf(out,
                "%-24s %8" PRId64 " %12" PRId64 " %12" PRId64 " %18s %8" PRId64
                " %6" PRId64 "%%\n",
                r->task, r->trims, r->before, r->after, usd, r->flagged,
                r->flagged * 100 / r->trims);
}

static void write_head(FILE *out, report_format_t format)
{
    if (format == REPORT_JSON)
        fputs("{\"trims\":[", out);
    else if (format == REPORT_CSV)
        fputs("task,trims,tokens_before,tokens_after,saved_usd,saved_pico,"
              "flagged\n",
              out);
    else
        fprintf(out, "%-24s %8s %12s %12s %18s %8s %7s\n", "TASK", "TRIMS",
                "TOKENS_IN", "TOKENS_SENT", "SAVED_USD", "FLAGGED", "SHARE");
}

int report_trims(const report_opts_t *opts, FILE *out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool first = true;
    int rc =
        sqlite3_open_v2(opts->ledger_path, &db, SQLITE_OPEN_READONLY, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, trims_sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: no trimming columns to read (%s)",
                 opts->ledger_path, db ? sqlite3_errmsg(db) : "open failed");
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, opts->has_since ? opts->since_ms : INT64_MIN);
    sqlite3_bind_int64(st, 2, opts->has_until ? opts->until_ms : INT64_MAX);
    write_head(out, opts->format);
    while (sqlite3_step(st) == SQLITE_ROW) {
        trim_row_t r = {
            .task = (const char *)sqlite3_column_text(st, 0),
            .trims = sqlite3_column_int64(st, 1),
            .before = sqlite3_column_int64(st, 2),
            .after = sqlite3_column_int64(st, 3),
            .saved = sqlite3_column_int64(st, 4),
            .flagged = sqlite3_column_int64(st, 5),
        };

        write_row(out, opts->format, first, &r);
        first = false;
    }
    if (opts->format == REPORT_JSON)
        fputs("]}\n", out);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}
