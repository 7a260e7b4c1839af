/*
 * Approvals: a call an approval rule holds gets a pending approval and a
 * 403; an operator approves it once, grants a standing approval (key,
 * task, tier, until a date) or denies it; the caller's retry with
 * `x-tollgate-approval: ID` then passes. Kept in an `approvals` table in
 * the ledger's file, so every decision is on record with who made it.
 *
 * Threading: each call does disk I/O on the store's own connection, so it
 * runs off the event loop (CLI, or the worker the proxy hands held calls
 * and admin requests to), one thread per store at a time.
 */
#ifndef TOLLGATE_BUDGET_APPROVALS_H
#define TOLLGATE_BUDGET_APPROVALS_H

#include "budget/scope.h"
#include "util/common.h"

#define APPROVAL_ID_SIZE 29 /* "apr_" + 24 hex + NUL */

typedef enum approval_decision {
    APPROVAL_DECISION_PENDING = 0,
    APPROVAL_DECISION_ONCE = 1,
    APPROVAL_DECISION_STANDING = 2,
    APPROVAL_DECISION_DENIED = 3
} approval_decision_t;

typedef struct approval {
    char id[APPROVAL_ID_SIZE];
    char key[BUDGET_NAME_SIZE]; /* key name, never its secret */
    char task[BUDGET_NAME_SIZE];
    char tier[BUDGET_NAME_SIZE];
    char model[128];
    pico_t estimate;  /* the call's worst-case cost */
    char reason[256]; /* the rule that held it */
    int64_t created_ms;
    approval_decision_t decision;
    char decided_by[BUDGET_NAME_SIZE];
    int64_t decided_ms; /* 0 while pending */
    int64_t until_ms;   /* standing approvals: passes while now < until */
    int64_t used_ms;    /* once: when the retry used it; 0 unused */
} approval_t;

/* What the rule held; NULL strings are "". */
typedef struct approval_request {
    const char *key, *task, *tier, *model;
    pico_t estimate;
    const char *reason;
} approval_request_t;

/* The call asking to pass. */
typedef struct approval_call {
    const char *key, *task, *tier;
} approval_call_t;

typedef enum approval_verdict {
    APPROVAL_PASS = 0,     /* approved: once (now used up) or standing */
    APPROVAL_NONE = 1,     /* no approval given or found: hold the call */
    APPROVAL_PENDING = 2,  /* the named approval awaits a decision */
    APPROVAL_DENIED = 3,   /* the named approval was denied */
    APPROVAL_USED = 4,     /* the named once-approval was used before */
    APPROVAL_EXPIRED = 5,  /* the named standing approval has ended */
    APPROVAL_MISMATCH = 6, /* the named approval is for another key, task
                              or tier */
    APPROVAL_UNKNOWN = 7   /* no approval has that id */
} approval_verdict_t;

typedef struct approvals approvals_t;

/* Opens the ledger file at path on a connection of its own (WAL) and
 * creates the approvals table if absent. Returns 0 with *out owned by the
 * caller (approvals_close()), or -EIO with a message in err. */
int approvals_open(const char *path, approvals_t **out, char *err,
                   size_t errlen);
void approvals_close(approvals_t *store);

/* Records a pending approval for a held call and writes its new id.
 * Returns 0, -EINVAL for a field too long or a negative estimate, -EIO. */
int approvals_create(approvals_t *store, const approval_request_t *req,
                     int64_t now_ms, char id[APPROVAL_ID_SIZE]);

/* Returns 0 with *out filled, -ENOENT or -EIO. */
int approvals_get(approvals_t *store, const char *id, approval_t *out);

/* Approvals, newest first; pending ones only if pending_only. Returns 0
 * with *list (free() it) and *n set, or -EIO. */
int approvals_list(approvals_t *store, bool pending_only, approval_t **list,
                   size_t *n);

/*
 * Decisions on a pending approval, by `by` (the admin or operator name,
 * required). Standing approvals need until_ms > now_ms. Return 0,
 * -ENOENT, -EALREADY when it was decided before, -EINVAL, or -EIO.
 */
int approvals_approve_once(approvals_t *store, const char *id, const char *by,
                           int64_t now_ms);
int approvals_grant_standing(approvals_t *store, const char *id, const char *by,
                             int64_t until_ms, int64_t now_ms);
int approvals_deny(approvals_t *store, const char *id, const char *by,
                   int64_t now_ms);

/*
 * Whether a held call may pass. header_id (NULL or "" when the caller
 * sent none) names an approval, which must be for the call's key, task
 * and tier; a once-approval passes one call and is used up by it, in the
 * same UPDATE that checks it is unused. Failing that, a standing
 * approval for the call's key, task and tier that runs past now_ms
 * passes it. Returns 0 with *verdict set (and *out, which may be NULL,
 * holding the approval named or used), or -EIO.
 */
int approvals_check(approvals_t *store, const approval_call_t *call,
                    const char *header_id, int64_t now_ms,
                    approval_verdict_t *verdict, approval_t *out);

/* "pending", "once", "standing", "denied". */
const char *approval_decision_name(approval_decision_t decision);

#endif
