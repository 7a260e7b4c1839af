/*
 * Rework: a caller asking the same thing again. The rework key of a
 * request hashes its key, its task and its last user turn, normalised;
 * the gateway remembers recent keys and links a repeat to the earlier
 * outcome in the ledger file's `rework` table (written on the worker).
 */
#ifndef TOLLGATE_REWORK_H
#define TOLLGATE_REWORK_H

#include "http/gateway.h"
#include "ledger/ledger.h"
#include "proxy/chat.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* How long a repeated ask counts as rework unless configured. */
#define REWORK_WINDOW_MS (60 * 60 * 1000)
/* Recent asks remembered; each slot costs about 120 bytes. */
#define REWORK_SLOTS 16384

/*
 * Normalises one turn for hashing: ASCII letters lowercased, every run of
 * whitespace made one space, leading and trailing spaces and trailing
 * ASCII punctuation dropped. Writes at most cap - 1 bytes and a NUL;
 * returns the length it would have written (as snprintf does).
 */
size_t rework_normalise(const char *text, size_t len, char *out, size_t cap);

/*
 * The rework key of a request: SHA-256 over key_id, task and the
 * normalised text of the last user turn (chat: the last "user" message;
 * messages: the last "user" message's text blocks; responses: a string
 * input or its last user item; embeddings: the input), as 64 lowercase
 * hex digits in out. Returns 0, or -ENOENT when the request has no user
 * text (out is then "").
 */
int rework_key(const char *key_id, const char *task, surface_t surface,
               struct json_object *request, char out[65]);

typedef struct rework rework_t;

/* A table of recent asks, window_ms long, with `slots` entries (a power
 * of two is not required). Owned by the caller; aborts on out of memory. */
rework_t *rework_new(int64_t window_ms, size_t slots);
void rework_free(rework_t *rw);

/*
 * Notes that outcome_id asked key at at_ms. When an earlier outcome asked
 * the same within the window, copies its id to earlier and returns true.
 * A slot holds the latest ask of its keys, so a chain of repeats links
 * each to the one before. Two keys sharing a slot evict each other (the
 * table is bounded): a repeat may then be missed, never invented.
 */
bool rework_note(rework_t *rw, const char *key, const char *outcome_id,
                 int64_t at_ms, char earlier[40]);

/*
 * The call's final step: notes rec's ask (key from rework_key(); "" or
 * NULL does nothing) in the gateway's table and, for a repeat, writes
 * rework(outcome_id, earlier_id) to the ledger file on gw->worker.
 */
void rework_observe(gateway_t *gw, const ledger_outcome_t *rec,
                    const char *key);

#endif
