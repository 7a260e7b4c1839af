/*
 * Whether an answer was any good, from the caller: POST
 * /v1/outcomes/{id}/feedback and the x-tollgate-feedback header on any
 * later request. Rows go to a `feedback` table of the ledger file, written
 * on the gateway's worker thread, never on the loop.
 */
#ifndef TOLLGATE_FEEDBACK_H
#define TOLLGATE_FEEDBACK_H

#include "http/gateway.h"

#include <stdbool.h>
#include <stdint.h>

struct evhttp_request;
struct sqlite3;

#define FEEDBACK_NOTE_MAX 512

typedef struct feedback {
    char outcome_id[40]; /* "out_" + 24 hex */
    bool useful;
    bool has_score;
    double score; /* the caller's own scale; not money */
    char note[FEEDBACK_NOTE_MAX];
} feedback_t;

/* Where a feedback row came from, as stored in feedback.source. */
typedef enum feedback_source {
    FEEDBACK_FROM_API = 0,   /* POST /v1/outcomes/{id}/feedback */
    FEEDBACK_FROM_HEADER = 1 /* x-tollgate-feedback on a later call */
} feedback_source_t;

/* True when id is "out_" followed by exactly 24 lowercase hex digits. */
bool feedback_is_outcome_id(const char *id);

/*
 * Parses the value of an x-tollgate-feedback header into out:
 * "ID useful", "ID not-useful", or "ID; useful=false; score=0.2"
 * (parameters separated by ';' or spaces; useful takes true/false/1/0/
 * yes/no; score is a finite number). The useful verdict is required.
 * Returns 0, or -EINVAL (out is then undefined).
 */
int feedback_from_header(const char *value, feedback_t *out);

/*
 * Parses a POST body {"useful": bool, "score"?: number, "note"?: string}
 * for outcome_id. Returns 0, or -EINVAL with a message a caller can act on
 * in err.
 */
int feedback_from_json(const char *outcome_id, const char *body, size_t len,
                       feedback_t *out, char *err, size_t errlen);

/* What a submission came to, for the completion. */
typedef enum feedback_result {
    FEEDBACK_STORED = 0,
    FEEDBACK_NO_OUTCOME,  /* no such outcome in the ledger (yet) */
    FEEDBACK_NOT_OWNER,   /* the caller's key did not make it */
    FEEDBACK_STORE_FAILED /* the ledger file could not be written */
} feedback_result_t;

/* Runs on the loop when a submission is done; arg is the caller's. */
typedef void (*feedback_done_fn)(gateway_t *gw, feedback_result_t result,
                                 void *arg);

/*
 * Records fb for the caller whose key is named key_id (admin: any
 * outcome; otherwise the outcome's key_id must equal key_id). The check
 * and the write run on gw->worker; done (may be NULL: the result is then
 * only logged) runs on the loop afterwards. fb and key_id are copied.
 * Call from the loop's thread.
 */
void feedback_submit(gateway_t *gw, const char *key_id, bool admin,
                     feedback_source_t source, const feedback_t *fb,
                     feedback_done_fn done, void *arg);

/* POST /v1/outcomes/{id}/feedback: authenticates (a caller key or the
 * admin key), parses, submits, and answers the request. */
void feedback_handle(gateway_t *gw, struct evhttp_request *req);

/*
 * The tables this module keeps in the ledger file (feedback, rework),
 * created if missing. db is an open read-write connection. Returns 0 or
 * -EIO with SQLite's message in err.
 */
int feedback_ensure_tables(struct sqlite3 *db, char *err, size_t errlen);

/*
 * Stores one row with the connection db (the caller's, on its own
 * thread): checks that the outcome exists and, unless owner is NULL,
 * that its key_id equals owner. Returns the result.
 */
feedback_result_t feedback_store(struct sqlite3 *db, const feedback_t *fb,
                                 const char *owner, feedback_source_t source,
                                 int64_t at_ms);

#endif
