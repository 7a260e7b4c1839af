/*
 * The run-time key ring: a list of entries on the loop, matched by SHA-256
 * digest, and its reloads from the keystore through the worker thread.
 * Auth reads it for every caller whose key is not in the config file.
 */
#include "auth/keyring.h"

#include "http/gateway.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

typedef struct ring_entry {
    keystore_key_t key;
    cfg_key_t view;
    bool present; /* in the last snapshot loaded */
} ring_entry_t;

typedef struct waiter {
    keyring_ready_fn ready;
    void *arg;
    struct waiter *next;
} waiter_t;

struct keyring {
    ring_entry_t **entries; /* each its own allocation: views stay put */
    size_t n, cap;
    bool reloading;
    int64_t last_paced_ms; /* start of the last reload asked by a miss */
    waiter_t *waiters, **waiters_tail;
    size_t n_waiters;
    clock_timer_t *refresh;
};

/* A reload on the worker thread: everything it touches is its own. */
typedef struct reload_job {
    gateway_t *gw;
    const char *path; /* the config's, immutable */
    keystore_key_t *keys;
    size_t n;
    int rc;
    char err[256];
} reload_job_t;

keyring_t *keyring_new(void)
{
    keyring_t *ring = calloc(1, sizeof(*ring));

    if (ring == NULL)
        die_oom();
    ring->last_paced_ms = INT64_MIN;
    ring->waiters_tail = &ring->waiters;
    return ring;
}

void keyring_free(keyring_t *ring)
{
    if (ring == NULL)
        return;
    for (size_t i = 0; i < ring->n; i++)
        free(ring->entries[i]);
    free(ring->entries);
    clock_timer_free(ring->refresh);
    while (ring->waiters != NULL) {
        waiter_t *w = ring->waiters;

        ring->waiters = w->next;
        free(w);
    }
    free(ring);
}

static const char *or_null(const char *s)
{
    return s[0] != '\0' ? s : NULL;
}

/* The config-style view points into the entry's own key. */
static void set_view(ring_entry_t *e)
{
    cfg_key_t *v = &e->view;

    memset(v, 0, sizeof(*v));
    v->name = e->key.name;
    v->team = or_null(e->key.team);
    v->owner = or_null(e->key.owner);
    v->default_task = or_null(e->key.default_task);
    v->has_hash = true;
    for (int i = 0; i < 32; i++)
        v->sha256[i] = (unsigned char)(hex_digit(e->key.sha256[2 * i]) << 4 |
                                       hex_digit(e->key.sha256[2 * i + 1]));
}

static ring_entry_t *find_id(const keyring_t *ring, const char *id)
{
    for (size_t i = 0; i < ring->n; i++)
        if (strcmp(ring->entries[i]->key.id, id) == 0)
            return ring->entries[i];
    return NULL;
}

static ring_entry_t *add_entry(keyring_t *ring)
{
    ring_entry_t *e = calloc(1, sizeof(*e));

    if (e == NULL)
        die_oom();
    if (ring->n == ring->cap) {
        size_t cap = ring->cap ? ring->cap * 2 : 16;
        ring_entry_t **grown = realloc(ring->entries, cap * sizeof(*grown));

        if (grown == NULL)
            die_oom();
        ring->entries = grown;
        ring->cap = cap;
    }
    ring->entries[ring->n++] = e;
    return e;
}

void keyring_put(keyring_t *ring, const keystore_key_t *key)
{
    ring_entry_t *e = find_id(ring, key->id);

    if (e == NULL)
        e = add_entry(ring);
    e->key = *key;
    e->present = true;
    set_view(e);
}

void keyring_load(keyring_t *ring, const keystore_key_t *keys, size_t n)
{
    for (size_t i = 0; i < ring->n; i++)
        ring->entries[i]->present = false;
    for (size_t i = 0; i < n; i++)
        keyring_put(ring, &keys[i]);
}

int keyring_match(const keyring_t *ring, const char *secret, size_t len,
                  int64_t now_ms, const cfg_key_t **out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const ring_entry_t *found = NULL;

    if (!EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL))
        return -ENOENT;

    /* Every entry is compared, so the time taken does not say where in
     * the ring a key sits. */
    for (size_t i = 0; i < ring->n; i++) {
        const ring_entry_t *e = ring->entries[i];

        if (CRYPTO_memcmp(e->view.sha256, md, 32) == 0 && e->present)
            found = e;
    }
    OPENSSL_cleanse(md, sizeof(md));

    if (found == NULL)
        return -ENOENT;
    if (found->key.revoked_ms != 0)
        return -EKEYREVOKED;
    if (found->key.expires_ms != 0 && found->key.expires_ms <= now_ms)
        return -EKEYEXPIRED;
    *out = &found->view;
    return 0;
}

size_t keyring_count(const keyring_t *ring)
{
    size_t n = 0;

    for (size_t i = 0; i < ring->n; i++)
        n += ring->entries[i]->present;
    return n;
}

/* Worker thread: a fresh connection per reload, since reloads are rare
 * and the connection then never outlives the ledger file's users. */
static void reload_run(void *arg)
{
    reload_job_t *job = arg;
    keystore_t *ks;

    job->rc = keystore_open(job->path, &ks, job->err, sizeof(job->err));
    if (job->rc < 0)
        return;
    job->rc = keystore_list(ks, &job->keys, &job->n);
    if (job->rc < 0)
        snprintf(job->err, sizeof(job->err), "cannot read the keys table");
    keystore_close(ks);
}

static void reload_done(void *arg)
{
    reload_job_t *job = arg;
    gateway_t *gw = job->gw;
    keyring_t *ring = gw->keyring;
    waiter_t *w = ring->waiters;
    bool loaded = job->rc == 0;

    if (loaded)
        keyring_load(ring, job->keys, job->n);
    else
        log_warn("keys: reload from %s failed: %s", job->path, job->err);
    free(job->keys);
    free(job);

    /* Detached first: a ready callback may ask for the next reload. */
    ring->reloading = false;
    ring->waiters = NULL;
    ring->waiters_tail = &ring->waiters;
    ring->n_waiters = 0;
    while (w != NULL) {
        waiter_t *next = w->next;

        w->ready(gw, loaded, w->arg);
        free(w);
        w = next;
    }
}

static void start_reload(gateway_t *gw)
{
    reload_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL)
        die_oom();
    job->gw = gw;
    job->path = gw->config->ledger_path;
    gw->keyring->reloading = true;
    worker_submit(gw->worker, reload_run, reload_done, job);
}

int keyring_reload(gateway_t *gw, keyring_ready_fn ready, void *arg)
{
    keyring_t *ring = gw->keyring;
    int64_t now = clock_now_ms();
    waiter_t *w;

    if (ring->n_waiters >= KEYRING_MAX_WAITERS)
        return -EAGAIN;
    if (!ring->reloading) {
        if (ring->last_paced_ms != INT64_MIN &&
            now - ring->last_paced_ms < KEYRING_RELOAD_PACE_MS)
            return -EAGAIN;
        ring->last_paced_ms = now;
        start_reload(gw);
    }

    w = calloc(1, sizeof(*w));
    if (w == NULL)
        die_oom();
    w->ready = ready;
    w->arg = arg;
    *ring->waiters_tail = w;
    ring->waiters_tail = &w->next;
    ring->n_waiters++;
    return 0;
}

static void on_refresh(void *arg)
{
    gateway_t *gw = arg;

    if (gw->draining)
        return;
    if (!gw->keyring->reloading)
        start_reload(gw);
    clock_timer_arm(gw->keyring->refresh, KEYRING_REFRESH_MS);
}

int keyring_open(gateway_t *gw, char *err, size_t errlen)
{
    keystore_t *ks;
    keystore_key_t *keys = NULL;
    size_t n = 0;
    int rc;

    rc = keystore_open(gw->config->ledger_path, &ks, err, errlen);
    if (rc < 0)
        return rc;
    rc = keystore_list(ks, &keys, &n);
    keystore_close(ks);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the keys table");
        return rc;
    }

    gw->keyring = keyring_new();
    keyring_load(gw->keyring, keys, n);
    free(keys);
    gw->keyring->refresh = clock_timer_new(on_refresh, gw);
    clock_timer_arm(gw->keyring->refresh, KEYRING_REFRESH_MS);
    log_info("keys: %zu run-time keys loaded", n);
    return 0;
}

void keyring_close(gateway_t *gw)
{
    keyring_free(gw->keyring);
    gw->keyring = NULL;
}
