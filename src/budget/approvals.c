/*
 * The approvals table beside the ledger's, on a SQLite connection of its
 * own. Off the event loop only. Decisions move a row out of 'pending'
 * once, in an UPDATE guarded by its current state, so two operators (or
 * two processes) deciding at once cannot both win, and a once-approval is
 * used by exactly one call.
 */
#include "budget/approvals.h"

#include <errno.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

struct approvals {
    sqlite3 *db;
};

static const char *const decision_names[] = {"pending", "once", "standing",
                                             "denied"};

static const char approvals_sql[] =
    "CREATE TABLE IF NOT EXISTS approvals ("
    " id TEXT PRIMARY KEY,"
    " key_id TEXT NOT NULL,"
    " task TEXT NOT NULL,"
    " tier TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " estimate_pico INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " decision TEXT NOT NULL DEFAULT 'pending',"
    " decided_by TEXT NOT NULL DEFAULT '',"
    " decided_ms INTEGER NOT NULL DEFAULT 0,"
    " until_ms INTEGER NOT NULL DEFAULT 0,"
    " used_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS approvals_standing"
    " ON approvals(key_id, task, tier) WHERE decision = 'standing';";

#define APPROVAL_COLUMNS                                                       \
    "id, key_id, task, tier, model, estimate_pico, reason, created_ms,"        \
    " decision, decided_by, decided_ms, until_ms, used_ms"

const char *approval_decision_name(approval_decision_t decision)
{
    if ((unsigned)decision > APPROVAL_DECISION_DENIED)
        return "?";
    return decision_names[decision];
}

static approval_decision_t decision_parse(const char *text)
{
    for (int i = 0; i <= APPROVAL_DECISION_DENIED; i++)
        if (text != NULL && strcmp(text, decision_names[i]) == 0)
            return (approval_decision_t)i;
    return APPROVAL_DECISION_PENDING;
}

int approvals_open(const char *path, approvals_t **out, char *err,
                   size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    approvals_t *store = calloc(1, sizeof(*store));

    if (store == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (sqlite3_open_v2(path, &store->db, flags, NULL) != SQLITE_OK)
        goto fail_store;
    sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(store->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(store->db, approvals_sql, NULL, NULL, NULL) != SQLITE_OK)
        goto fail_store;
    *out = store;
    return 0;

fail_store:
    snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(store->db));
    approvals_close(store);
    return -EIO;
}

void approvals_close(approvals_t *store)
{
    if (store == NULL)
        return;
    sqlite3_close(store->db);
    free(store);
}

static void new_id(char id[APPROVAL_ID_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char bytes[12];

    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        fprintf(stderr, "approvals: the random generator failed\n");
        abort();
    }
    memcpy(id, "apr_", 4);
    for (size_t i = 0; i < sizeof(bytes); i++) {
        id[4 + 2 * i] = digits[bytes[i] >> 4];
        id[5 + 2 * i] = digits[bytes[i] & 15];
    }
    id[4 + 2 * sizeof(bytes)] = '\0';
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static bool request_valid(const approval_request_t *req)
{
    return strlen(or_empty(req->key)) < BUDGET_NAME_SIZE &&
           strlen(or_empty(req->task)) < BUDGET_NAME_SIZE &&
           strlen(or_empty(req->tier)) < BUDGET_NAME_SIZE &&
           strlen(or_empty(req->model)) < 128 &&
           strlen(or_empty(req->reason)) < 256 && req->estimate >= 0;
}

int approvals_create(approvals_t *store, const approval_request_t *req,
                     int64_t now_ms, char id[APPROVAL_ID_SIZE])
{
    sqlite3_stmt *st;
    int rc;

    if (!request_valid(req))
        return -EINVAL;
    if (sqlite3_prepare_v2(store->db,
                           "INSERT INTO approvals (id, key_id, task, tier,"
                           " model, estimate_pico, reason, created_ms)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    new_id(id);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, or_empty(req->key), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, or_empty(req->task), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, or_empty(req->tier), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, or_empty(req->model), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, req->estimate);
    sqlite3_bind_text(st, 7, or_empty(req->reason), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static void copy_column(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const char *s = (const char *)sqlite3_column_text(st, col);

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

static void read_approval(sqlite3_stmt *st, approval_t *a)
{
    memset(a, 0, sizeof(*a));
    copy_column(st, 0, a->id, sizeof(a->id));
    copy_column(st, 1, a->key, sizeof(a->key));
    copy_column(st, 2, a->task, sizeof(a->task));
    copy_column(st, 3, a->tier, sizeof(a->tier));
    copy_column(st, 4, a->model, sizeof(a->model));
    a->estimate = sqlite3_column_int64(st, 5);
    copy_column(st, 6, a->reason, sizeof(a->reason));
    a->created_ms = sqlite3_column_int64(st, 7);
    a->decision = decision_parse((const char *)sqlite3_column_text(st, 8));
    copy_column(st, 9, a->decided_by, sizeof(a->decided_by));
    a->decided_ms = sqlite3_column_int64(st, 10);
    a->until_ms = sqlite3_column_int64(st, 11);
    a->used_ms = sqlite3_column_int64(st, 12);
}

/* Runs a query binding ?1..?4 as texts (NULL: not bound) and ?5 as a
 * time (a query without ?5 ignores it), and reads the first row. Returns
 * 0, -ENOENT or -EIO. */
static int query_one(approvals_t *store, const char *sql,
                     const char *const texts[4], int64_t ms, approval_t *out)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    for (int i = 0; i < 4; i++)
        if (texts[i] != NULL)
            sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ms);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_approval(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int approvals_get(approvals_t *store, const char *id, approval_t *out)
{
    const char *texts[4] = {id, NULL, NULL, NULL};

    return query_one(store,
                     "SELECT " APPROVAL_COLUMNS " FROM approvals"
                     " WHERE id = ?1",
                     texts, 0, out);
}

static int grow(approval_t **list, size_t *cap)
{
    size_t n = *cap ? *cap * 2 : 16;
    approval_t *p = realloc(*list, n * sizeof(*p));

    if (p == NULL)
        return -ENOMEM;
    *list = p;
    *cap = n;
    return 0;
}

int approvals_list(approvals_t *store, bool pending_only, approval_t **list,
                   size_t *n)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    int rc = 0, step;

    *list = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT " APPROVAL_COLUMNS " FROM approvals"
                           " WHERE ?1 = 0 OR decision = 'pending'"
                           " ORDER BY created_ms DESC, id",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int(st, 1, pending_only);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap && (rc = grow(list, &cap)) < 0)
            break;
        read_approval(st, &(*list)[(*n)++]);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -EIO;
    sqlite3_finalize(st);

    if (rc < 0) {
        free(*list);
        *list = NULL;
        *n = 0;
    }
    return rc;
}

/* Moves a pending approval to its decision. Returns 0, -ENOENT,
 * -EALREADY or -EIO. */
static int decide(approvals_t *store, const char *id, const char *by,
                  approval_decision_t decision, int64_t until_ms,
                  int64_t now_ms)
{
    approval_t current;
    sqlite3_stmt *st;
    int rc;

    if (by == NULL || by[0] == '\0' || strlen(by) >= BUDGET_NAME_SIZE)
        return -EINVAL;
    if (sqlite3_prepare_v2(store->db,
                           "UPDATE approvals SET decision = ?2,"
                           " decided_by = ?3, decided_ms = ?4, until_ms = ?5"
                           " WHERE id = ?1 AND decision = 'pending'",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, decision_names[decision], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, until_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (sqlite3_changes(store->db) == 1)
        return 0;

    rc = approvals_get(store, id, &current);
    return rc < 0 ? rc : -EALREADY;
}

int approvals_approve_once(approvals_t *store, const char *id, const char *by,
                           int64_t now_ms)
{
    return decide(store, id, by, APPROVAL_DECISION_ONCE, 0, now_ms);
}

int approvals_grant_standing(approvals_t *store, const char *id, const char *by,
                             int64_t until_ms, int64_t now_ms)
{
    if (until_ms <= now_ms)
        return -EINVAL;
    return decide(store, id, by, APPROVAL_DECISION_STANDING, until_ms, now_ms);
}

int approvals_deny(approvals_t *store, const char *id, const char *by,
                   int64_t now_ms)
{
    return decide(store, id, by, APPROVAL_DECISION_DENIED, 0, now_ms);
}

static bool matches(const approval_t *a, const approval_call_t *call)
{
    return strcmp(a->key, or_empty(call->key)) == 0 &&
           strcmp(a->task, or_empty(call->task)) == 0 &&
           strcmp(a->tier, or_empty(call->tier)) == 0;
}

/* Uses a once-approval; false when another call used it first. */
static int use_once(approvals_t *store, const char *id, int64_t now_ms,
                    bool *used)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(store->db,
                           "UPDATE approvals SET used_ms = max(?2, 1)"
                           " WHERE id = ?1 AND decision = 'once'"
                           " AND used_ms = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    *used = sqlite3_changes(store->db) == 1;
    return 0;
}

/* The verdict on the approval the caller named. */
static int check_named(approvals_t *store, const approval_call_t *call,
                       const char *id, int64_t now_ms,
                       approval_verdict_t *verdict, approval_t *a)
{
    bool used = false;
    int rc = approvals_get(store, id, a);

    if (rc == -ENOENT) {
        *verdict = APPROVAL_UNKNOWN;
        return 0;
    }
    if (rc < 0)
        return rc;

    if (!matches(a, call))
        *verdict = APPROVAL_MISMATCH;
    else if (a->decision == APPROVAL_DECISION_PENDING)
        *verdict = APPROVAL_PENDING;
    else if (a->decision == APPROVAL_DECISION_DENIED)
        *verdict = APPROVAL_DENIED;
    else if (a->decision == APPROVAL_DECISION_STANDING)
        *verdict = now_ms < a->until_ms ? APPROVAL_PASS : APPROVAL_EXPIRED;
    else if ((rc = use_once(store, id, now_ms, &used)) < 0)
        return rc;
    else
        *verdict = used ? APPROVAL_PASS : APPROVAL_USED;
    if (used)
        a->used_ms = now_ms > 0 ? now_ms : 1;
    return 0;
}

static int find_standing(approvals_t *store, const approval_call_t *call,
                         int64_t now_ms, approval_t *out)
{
    const char *texts[4] = {or_empty(call->key), or_empty(call->task),
                            or_empty(call->tier), NULL};

    return query_one(store,
                     "SELECT " APPROVAL_COLUMNS " FROM approvals"
                     " WHERE key_id = ?1 AND task = ?2 AND tier = ?3"
                     " AND decision = 'standing' AND until_ms > ?5"
                     " ORDER BY until_ms DESC LIMIT 1",
                     texts, now_ms, out);
}

int approvals_check(approvals_t *store, const approval_call_t *call,
                    const char *header_id, int64_t now_ms,
                    approval_verdict_t *verdict, approval_t *out)
{
    approval_t named, standing;
    int rc;

    *verdict = APPROVAL_NONE;
    if (header_id != NULL && header_id[0] != '\0') {
        rc = check_named(store, call, header_id, now_ms, verdict, &named);
        if (rc < 0)
            return rc;
        if (out != NULL && *verdict != APPROVAL_UNKNOWN &&
            *verdict != APPROVAL_MISMATCH)
            *out = named;
        if (*verdict == APPROVAL_PASS)
            return 0;
    }

    rc = find_standing(store, call, now_ms, &standing);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    *verdict = APPROVAL_PASS;
    if (out != NULL)
        *out = standing;
    return 0;
}
