/*
 * Tollgate's own ledger as an audit source: every attempt is a call,
 * with the owner and task of its outcome. Opened read-only, so it can be
 * audited while the gateway writes.
 */
#include "audit/internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static const char ledger_sql[] =
    "SELECT o.started_ms, o.key_id, o.owner, o.team, o.task, a.model,"
    " a.upstream_model, a.attempt_no, a.http_status, a.input_tokens,"
    " a.cached_tokens, a.cache_write_tokens, a.audio_in_tokens,"
    " a.output_tokens, a.reasoning_tokens, a.audio_out_tokens,"
    " a.cost_status, a.cost_pico, o.id"
    " FROM attempts a JOIN outcomes o ON o.id = a.outcome_id"
    " ORDER BY o.started_ms, a.outcome_id, a.attempt_no";

int ledger_prepare(sqlite3 *db, sqlite3_stmt **stmt, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db, ledger_sql, -1, stmt, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "not a Tollgate ledger: %s", sqlite3_errmsg(db));
        return -EINVAL;
    }
    return 0;
}

static const char *text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    return s == NULL ? "" : (const char *)s;
}

static void ledger_usage(sqlite3_stmt *stmt, audit_call_t *call)
{
    const char *status = text(stmt, 16);
    usage_t *u = &call->usage;

    u->present =
        strcmp(status, "usage_missing") != 0 && strcmp(status, "none") != 0;
    u->input_tokens = sqlite3_column_int64(stmt, 9);
    u->cached_tokens = sqlite3_column_int64(stmt, 10);
    u->cache_write_tokens = sqlite3_column_int64(stmt, 11);
    u->audio_in_tokens = sqlite3_column_int64(stmt, 12);
    u->output_tokens = sqlite3_column_int64(stmt, 13);
    u->reasoning_tokens = sqlite3_column_int64(stmt, 14);
    u->audio_out_tokens = sqlite3_column_int64(stmt, 15);
    if (strcmp(status, "priced") == 0 &&
        sqlite3_column_type(stmt, 17) == SQLITE_INTEGER) {
        call->has_cost = true;
        call->cost = sqlite3_column_int64(stmt, 17);
    }
}

int ledger_next(sqlite3_stmt *stmt, audit_call_t *call)
{
    const char *owner, *task, *model;
    int rc = sqlite3_step(stmt);
    int status;

    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return -EIO;
    memset(call, 0, sizeof(*call));
    call->count = 1;
    call->at = sqlite3_column_int64(stmt, 0) / 1000;
    audit_copy(call->key, sizeof(call->key), text(stmt, 1));
    owner = text(stmt, 2);
    audit_copy(call->owner, sizeof(call->owner),
               *owner != '\0' ? owner : text(stmt, 3));
    model = text(stmt, 6);
    audit_copy(call->model, sizeof(call->model),
               *model != '\0' ? model : text(stmt, 5));
    task = text(stmt, 4);
    audit_copy(call->task, sizeof(call->task), task);
    audit_copy(call->team, sizeof(call->team), text(stmt, 3));
    audit_set_workflow(call, NULL, 0, NULL, 0, NULL, 0);
    call->workflow = audit_hash(AUDIT_HASH_SEED, task, strlen(task)) | 1;
    snprintf(call->label, sizeof(call->label), "task %s",
             *task != '\0' ? task : "(none)");
    call->is_retry = sqlite3_column_int(stmt, 7) > 1;
    status = sqlite3_column_int(stmt, 8);
    call->failed = status == 0 || status >= 400;
    ledger_usage(stmt, call);
    return 1;
}
