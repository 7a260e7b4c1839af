/*
 * Shared inside src/audit only: the bounded hash map every aggregate
 * lives in, the record splitters (lines, JSON values, CSV rows) and the
 * per-shape readers the format detector dispatches to.
 */
#ifndef TOLLGATE_AUDIT_INTERNAL_H
#define TOLLGATE_AUDIT_INTERNAL_H

#include "audit/audit.h"

#include <stdio.h>
#include <sys/types.h>

struct json_object;

/*
 * Open-addressing map from a 64-bit key to a fixed-size element, which
 * starts zeroed. It holds at most `max` keys: the caller folds the rest
 * into an overflow element, so memory is bounded by design.
 */
typedef struct amap {
    uint64_t *keys;  /* 0 = empty slot */
    uint32_t *slots; /* element index + 1 */
    size_t n_slots;  /* power of two */
    char *elems;
    size_t elem_size;
    size_t n;
    size_t cap;
    size_t max;
} amap_t;

void amap_init(amap_t *map, size_t elem_size, size_t max);
void amap_free(amap_t *map);
/* The element of key (0 is mapped to 1), created when absent and
 * create is set; NULL when absent, or when full and creating. */
void *amap_get(amap_t *map, uint64_t key, bool create);
void *amap_at(const amap_t *map, size_t i);
uint64_t amap_key(const amap_t *map, size_t i);

/* A direct-mapped table of recent hashes: remembers, per slot, the last
 * hash and when it was seen. Fixed size; a collision forgets. */
#define RECENT_SLOTS (1u << 18)
typedef struct recent {
    uint64_t hash[RECENT_SLOTS];
    int64_t at[RECENT_SLOTS];
} recent_t;

/* True when hash was seen; sets *prev_at to when. Records it as seen at
 * `at` either way. */
bool recent_seen(recent_t *recent, uint64_t hash, int64_t at, int64_t *prev_at);

/* CSV: one record (RFC 4180, quoted fields may hold newlines). Fields
 * point into the reader's buffer until the next record. */
#define CSV_MAX_FIELDS 64
typedef struct csv {
    char *buf;
    size_t cap;
    char *fields[CSV_MAX_FIELDS];
    size_t lens[CSV_MAX_FIELDS];
    int n;
    int64_t line; /* where the record started */
    int64_t next_line;
} csv_t;

/* Reads the next record. Returns 1, 0 at the end, -EINVAL for a record
 * with more than CSV_MAX_FIELDS fields or an unclosed quote (skipped). */
int csv_next(csv_t *csv, FILE *f);
void csv_free(csv_t *csv);
/* Index of the field named name in a header record, or -1. */
int csv_column(const csv_t *header, const char *name);

/* The next JSON value of a stream (the elements of a top-level array one
 * by one): its text into *buf, the line it started on in *line. Returns
 * 1, 0 at the end. A value that never closes ends the stream. */
typedef struct jstream {
    int64_t line;
    int depth_of_items; /* 1 inside a top-level array */
    bool started;
    bool in_array;
} jstream_t;

int jstream_next(jstream_t *js, FILE *f, char **buf, size_t *cap, size_t *len,
                 int64_t *line);

/* Shapes of one JSON record. Each fills call (zeroed by the caller) and
 * returns 1 for a call, 0 for a record that is not a call, or -EINVAL
 * with a reason in why (64 bytes). */
typedef enum shape {
    SHAPE_NONE = 0,
    SHAPE_CHAT_LOG,   /* {request, response, timestamp} or response only */
    SHAPE_BATCH,      /* Batch API output line */
    SHAPE_USAGE_PAGE, /* page, bucket or result of the Usage API */
    SHAPE_LITELLM,    /* one LiteLLM spend-log row */
    SHAPE_SHAREGPT,
    SHAPE_MT_BENCH,
    SHAPE_ALPACA
} shape_t;

shape_t shape_of(struct json_object *obj);
audit_format_t shape_format(shape_t shape);
int shape_call(shape_t shape, struct json_object *obj, audit_call_t *call,
               char *why);

/* The answer half of a chat log: failed (status >= 400, or an error in
 * resp), then usage read or estimated. Returns as shape_call. */
int shape_chat_answer(audit_call_t *call, struct json_object *resp, bool failed,
                      char *why);

/*
 * A chat-log line ({request, response} with times and owner) read from
 * its text without a tree for the request. Returns as shape_call, or
 * -EAGAIN (call half filled: discard it) for any line it cannot read
 * exactly as json-c and shape_call would; parse that one with json-c.
 */
struct json_tokener;
int shape_fast_chat(const char *text, size_t len, struct json_tokener *tok,
                    audit_call_t *call, char *why);

/* Usage API results of a page or bucket, one call each, through fn. */
typedef void usage_result_fn(void *arg, const audit_call_t *call);
int shape_usage_results(struct json_object *obj, int64_t line,
                        usage_result_fn *fn, void *arg, char *why);

/* LiteLLM spend-log CSV row; header gives the columns. */
int shape_litellm_csv(const csv_t *header, const csv_t *row, audit_call_t *call,
                      char *why);

/* Time from a JSON value: unix seconds or ms (a number), or ISO 8601
 * text ("2026-11-01T09:00:00Z", "2026-11-01 09:00:00.123"). 0 if none. */
int64_t shape_time(struct json_object *value);
int64_t shape_time_text(const char *text, size_t len);

/* Parses "0.0123" (USD, plain decimal or with an exponent) into
 * picodollars, rounding half to even past 12 decimals. -EINVAL if bad. */
int audit_parse_usd(const char *text, size_t len, pico_t *out);

/* Sets the workflow and request hash of a call from a chat request's
 * messages (and its top-level system / instructions, when present), and
 * the prompt's token estimates when `estimate` is set or the leaks need
 * them (a long system prompt, more than four turns). */
void shape_messages(audit_call_t *call, struct json_object *request,
                    bool estimate);

/* Usage estimated from the call's prompt and answer estimates. */
void shape_estimate_usage(audit_call_t *call);

/* An MT-Bench or AlpacaEval line as one call with estimated usage. */
int eval_line_call(shape_t shape, struct json_object *obj, audit_call_t *call,
                   char *why);

/* A ShareGPT conversation: one call per assistant turn through fn, the
 * history before it as the prompt, priced as `model`. */
int sharegpt_calls(struct json_object *obj, int64_t line, const char *model,
                   usage_result_fn *fn, void *arg, char *why);

/* Tollgate's ledger: one call per attempt, joined to its outcome. */
struct sqlite3;
struct sqlite3_stmt;
int ledger_prepare(struct sqlite3 *db, struct sqlite3_stmt **stmt, char *err,
                   size_t errlen);
/* Returns 1 with the next attempt in call, 0 at the end, -EIO. */
int ledger_next(struct sqlite3_stmt *stmt, audit_call_t *call);

/* "2026-11-02" for a day number since 1970-01-01. */
void audit_day_name(int64_t day, char *out, size_t outlen);

/* a * num / den, rounded half to even; den > 0. */
pico_t audit_scale(pico_t a, int64_t num, int64_t den);

/* Copies s into a fixed field of dstlen bytes, cut short (never inside
 * a UTF-8 character) when it does not fit. NULL copies as "". */
void audit_copy(char *dst, size_t dstlen, const char *s);

#endif
