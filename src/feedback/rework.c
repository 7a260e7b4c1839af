/*
 * Rework detection. A repeat is the same key and task asking the same
 * last user turn again: the turn is normalised (case, spacing, trailing
 * punctuation) so "Summarise this." and "summarise  this" match, hashed
 * with SHA-256 together with the key and task, and looked up in a
 * bounded table of recent asks. Only the link is written to disk, so the
 * loop's cost per call is one hash and one table probe.
 */
#include "feedback/rework.h"
#include "feedback/store.h"

#include "util/arena.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/worker.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A turn longer than this is hashed on its first TURN_MAX bytes. */
#define TURN_MAX (64 * 1024)

size_t rework_normalise(const char *text, size_t len, char *out, size_t cap)
{
    size_t n = 0, keep = 0;
    bool space = false;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (isspace(c)) {
            space = n > 0;
            continue;
        }
        if (space) {
            if (n + 1 < cap)
                out[n] = ' ';
            n++;
            space = false;
        }
        if (n + 1 < cap)
            out[n] = (char)(c < 0x80 ? tolower(c) : c);
        n++;
        /* Trailing punctuation is dropped: remember the last byte that
         * is not punctuation. */
        if (!(c < 0x80 && ispunct(c)))
            keep = n;
    }
    n = keep;
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

/* Appends the text of a content value (string, or parts with "text"). */
static void add_content(json_object *content, char *buf, size_t *len)
{
    size_t n;

    if (json_object_is_type(content, json_type_string)) {
        n = (size_t)json_object_get_string_len(content);
        if (n > TURN_MAX - *len - 1)
            n = TURN_MAX - *len - 1;
        memcpy(buf + *len, json_object_get_string(content), n);
        *len += n;
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i);
        json_object *text;

        if (json_object_object_get_ex(part, "text", &text) &&
            *len + 1 < TURN_MAX) {
            if (*len > 0)
                buf[(*len)++] = ' ';
            add_content(text, buf, len);
        }
    }
}

static bool is_user(json_object *item)
{
    json_object *role;

    return json_object_object_get_ex(item, "role", &role) &&
           json_object_is_type(role, json_type_string) &&
           strcmp(json_object_get_string(role), "user") == 0;
}

/* The last item of list whose role is user, or NULL. */
static json_object *last_user(json_object *list)
{
    if (!json_object_is_type(list, json_type_array))
        return NULL;
    for (size_t i = json_object_array_length(list); i > 0; i--) {
        json_object *item = json_object_array_get_idx(list, i - 1);

        if (is_user(item))
            return item;
    }
    return NULL;
}

static void last_turn(surface_t surface, json_object *request, char *buf,
                      size_t *len)
{
    json_object *list = NULL, *turn, *content = NULL;
    const char *field =
        surface == SURFACE_RESPONSES || surface == SURFACE_EMBEDDINGS
            ? "input"
            : "messages";

    *len = 0;
    if (!json_object_object_get_ex(request, field, &list))
        return;
    if (surface == SURFACE_EMBEDDINGS ||
        json_object_is_type(list, json_type_string)) {
        add_content(list, buf, len);
        return;
    }
    turn = last_user(list);
    if (turn != NULL && json_object_object_get_ex(turn, "content", &content))
        add_content(content, buf, len);
}

static void hash_hex(const char *key_id, const char *task, const char *text,
                     size_t len, char out[65])
{
    unsigned char digest[32];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL)
        die_oom();
    /* NUL separators: no key or task name contains one. */
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, key_id, strlen(key_id) + 1);
    EVP_DigestUpdate(ctx, task, strlen(task) + 1);
    EVP_DigestUpdate(ctx, text, len);
    EVP_DigestFinal_ex(ctx, digest, &n);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

int rework_key(const char *key_id, const char *task, surface_t surface,
               json_object *request, char out[65])
{
    char *turn = malloc(TURN_MAX);
    char *norm = malloc(TURN_MAX);
    size_t len, n;
    int rc = -ENOENT;

    if (turn == NULL || norm == NULL)
        die_oom();
    out[0] = '\0';
    last_turn(surface, request, turn, &len);
    n = rework_normalise(turn, len, norm, TURN_MAX);
    if (n > 0) {
        hash_hex(key_id ? key_id : "", task ? task : "", norm,
                 n < TURN_MAX ? n : TURN_MAX - 1, out);
        rc = 0;
    }
    free(turn);
    free(norm);
    return rc;
}

/* ---- the table of recent asks ---- */

typedef struct ask {
    char key[65];
    char outcome_id[40];
    int64_t at_ms;
} ask_t;

struct rework {
    ask_t *slots;
    size_t n_slots;
    int64_t window_ms;
};

rework_t *rework_new(int64_t window_ms, size_t slots)
{
    rework_t *rw = calloc(1, sizeof(*rw));

    if (rw == NULL || slots == 0)
        die_oom();
    rw->slots = calloc(slots, sizeof(ask_t));
    if (rw->slots == NULL)
        die_oom();
    rw->n_slots = slots;
    rw->window_ms = window_ms;
    return rw;
}

void rework_free(rework_t *rw)
{
    if (rw == NULL)
        return;
    free(rw->slots);
    free(rw);
}

/* The key is already a uniform hash: its first 16 hex digits pick the
 * slot. */
static size_t slot_of(const rework_t *rw, const char *key)
{
    uint64_t h = 0;

    for (int i = 0; i < 16 && key[i] != '\0'; i++)
        h = h << 4 | (uint64_t)hex_digit(key[i]);
    return (size_t)(h % rw->n_slots);
}

bool rework_note(rework_t *rw, const char *key, const char *outcome_id,
                 int64_t at_ms, char earlier[40])
{
    ask_t *slot = &rw->slots[slot_of(rw, key)];
    bool repeat = slot->outcome_id[0] != '\0' && strcmp(slot->key, key) == 0 &&
                  at_ms - slot->at_ms <= rw->window_ms && at_ms >= slot->at_ms;

    if (repeat)
        snprintf(earlier, 40, "%s", slot->outcome_id);
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    snprintf(slot->outcome_id, sizeof(slot->outcome_id), "%s", outcome_id);
    slot->at_ms = at_ms;
    return repeat;
}

/* ---- the gateway's table and the link writer ---- */

typedef struct link_job {
    const char *ledger_path;
    char outcome_id[40];
    char earlier_id[40];
    char key[65];
    int64_t at_ms;
    int rc;
} link_job_t;

static void link_run(void *arg)
{
    link_job_t *job = arg;
    struct sqlite3 *db = store_worker_db(job->ledger_path);

    job->rc = db ? store_put_rework(db, job->outcome_id, job->earlier_id,
                                    job->at_ms, job->key)
                 : -EIO;
}

static void link_done(void *arg)
{
    link_job_t *job = arg;

    if (job->rc < 0)
        LOG(LOG_WARN, job->outcome_id,
            "rework: could not record the link to %s", job->earlier_id);
    else
        LOG(LOG_DEBUG, job->outcome_id, "rework: repeats %s", job->earlier_id);
    free(job);
}

/* One table per process: the gateway is the only one that notes asks. */
static rework_t *gateway_table;

void rework_observe(gateway_t *gw, const ledger_outcome_t *rec, const char *key)
{
    char earlier[40];
    link_job_t *job;

    if (key == NULL || key[0] == '\0')
        return;
    if (gateway_table == NULL)
        gateway_table = rework_new(REWORK_WINDOW_MS, REWORK_SLOTS);
    if (!rework_note(gateway_table, key, rec->id, rec->started_ms, earlier))
        return;

    job = calloc(1, sizeof(*job));
    if (job == NULL)
        die_oom();
    job->ledger_path = gw->config->ledger_path;
    snprintf(job->outcome_id, sizeof(job->outcome_id), "%s", rec->id);
    snprintf(job->earlier_id, sizeof(job->earlier_id), "%s", earlier);
    snprintf(job->key, sizeof(job->key), "%s", key);
    job->at_ms = rec->started_ms;
    worker_submit(gw->worker, link_run, link_done, job);
}
