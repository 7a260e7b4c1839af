/*
 * Tests of the run-time key ring: matching a secret to a config-style key,
 * revoked and expired keys refused at an injected time, rotation and
 * reloads keeping handed-out keys valid, and auth's reload through the
 * worker, paced to once per second of the gateway's clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/http.h>

#include "auth/auth.h"
#include "auth/keyring.h"
#include "budget/keystore.h"
#include "http/gateway.h"
#include "util/clock.h"
#include "util/worker.h"

#define T0 INT64_C(1796256000000)

static keystore_key_t make_key(const char *id, const char *name,
                               const char *secret)
{
    keystore_key_t k;

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.name, sizeof(k.name), "%s", name);
    config_hash_secret(secret, strlen(secret), k.sha256);
    k.created_ms = T0;
    return k;
}

static int match(const keyring_t *ring, const char *secret, int64_t now,
                 const cfg_key_t **out)
{
    return keyring_match(ring, secret, strlen(secret), now, out);
}

static void test_keyring_matches_a_secret_to_its_key(void **state)
{
    keyring_t *ring = keyring_new();
    keystore_key_t keys[2] = {make_key("key_1", "alice", "sk-tg-a"),
                              make_key("key_2", "bob", "sk-tg-b")};
    const cfg_key_t *key = NULL;
    char hex[65];

    snprintf(keys[0].team, sizeof(keys[0].team), "support");
    snprintf(keys[0].default_task, sizeof(keys[0].default_task), "triage");
    keyring_load(ring, keys, 2);

    assert_int_equal(match(ring, "sk-tg-a", T0, &key), 0);
    assert_string_equal(key->name, "alice");
    assert_string_equal(key->team, "support");
    assert_null(key->owner); /* empty fields read as unset, as in config */
    assert_string_equal(key->default_task, "triage");
    assert_true(key->has_hash);
    config_hash_secret("sk-tg-a", 7, hex);
    for (int i = 0; i < 32; i++)
        assert_int_equal(key->sha256[i], hex_digit(hex[2 * i]) * 16 +
                                             hex_digit(hex[2 * i + 1]));

    assert_int_equal(match(ring, "sk-tg-b", T0, &key), 0);
    assert_string_equal(key->name, "bob");
    assert_null(key->team);
    assert_int_equal(match(ring, "sk-tg-c", T0, &key), -ENOENT);
    assert_int_equal(match(ring, "sk-tg-", T0, &key), -ENOENT);
    assert_int_equal(keyring_count(ring), 2);
    keyring_free(ring);
}

static void test_keyring_refuses_a_revoked_key(void **state)
{
    keyring_t *ring = keyring_new();
    keystore_key_t k = make_key("key_1", "alice", "sk-tg-a");
    const cfg_key_t *key = NULL;

    keyring_put(ring, &k);
    assert_int_equal(match(ring, "sk-tg-a", T0, &key), 0);
    k.revoked_ms = T0 + 5;
    keyring_put(ring, &k);
    assert_int_equal(match(ring, "sk-tg-a", T0 + 10, &key), -EKEYREVOKED);
    assert_int_equal(keyring_count(ring), 1);
    keyring_free(ring);
}

static void test_keyring_refuses_a_key_from_its_expiry_on(void **state)
{
    keyring_t *ring = keyring_new();
    keystore_key_t k = make_key("key_1", "alice", "sk-tg-a");
    const cfg_key_t *key = NULL;

    k.expires_ms = T0 + 1000;
    keyring_put(ring, &k);
    assert_int_equal(match(ring, "sk-tg-a", T0 + 999, &key), 0);
    assert_int_equal(match(ring, "sk-tg-a", T0 + 1000, &key), -EKEYEXPIRED);
    assert_int_equal(match(ring, "sk-tg-a", T0 + 99999, &key), -EKEYEXPIRED);
    keyring_free(ring);
}

static void test_keyring_rotation_keeps_the_key_handed_out(void **state)
{
    keyring_t *ring = keyring_new();
    keystore_key_t k = make_key("key_1", "alice", "sk-tg-old");
    const cfg_key_t *before = NULL, *after = NULL;

    keyring_load(ring, &k, 1);
    assert_int_equal(match(ring, "sk-tg-old", T0, &before), 0);

    /* A call in flight holds `before`; the reload must not free it. */
    config_hash_secret("sk-tg-new", 9, k.sha256);
    keyring_load(ring, &k, 1);
    assert_int_equal(match(ring, "sk-tg-old", T0, &after), -ENOENT);
    assert_int_equal(match(ring, "sk-tg-new", T0, &after), 0);
    assert_ptr_equal(before, after);
    assert_string_equal(before->name, "alice");
    keyring_free(ring);
}

static void test_keyring_drops_a_key_gone_from_the_store(void **state)
{
    keyring_t *ring = keyring_new();
    keystore_key_t keys[2] = {make_key("key_1", "alice", "sk-tg-a"),
                              make_key("key_2", "bob", "sk-tg-b")};
    const cfg_key_t *key = NULL;

    keyring_load(ring, keys, 2);
    keyring_load(ring, &keys[1], 1);
    assert_int_equal(match(ring, "sk-tg-a", T0, &key), -ENOENT);
    assert_int_equal(match(ring, "sk-tg-b", T0, &key), 0);
    assert_int_equal(keyring_count(ring), 1);
    keyring_free(ring);
}

/* A gateway with just what auth needs: loop, worker, ring, ledger file. */
typedef struct fixture {
    char dir[64];
    char path[96];
    config_t config;
    gateway_t gw;
    int n_done;
    const cfg_key_t *key;
    int why;
} fixture_t;

static int setup_gateway(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tollgate-keyring-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/ledger.db", fx->dir);
    fx->config.ledger_path = fx->path;
    fx->gw.config = &fx->config;
    fx->gw.base = event_base_new();
    clock_init(fx->gw.base, true, T0);
    fx->gw.worker = worker_new(fx->gw.base);
    assert_non_null(fx->gw.worker);
    if (keyring_open(&fx->gw, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    *state = fx;
    return 0;
}

static int teardown_gateway(void **state)
{
    fixture_t *fx = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char file[128];

    worker_free(fx->gw.worker);
    keyring_close(&fx->gw);
    event_base_free(fx->gw.base);
    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", fx->path, suffix[i]);
        unlink(file);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Makes a key on disk, as `tollgate keys create` in another process. */
static void create_on_disk(fixture_t *fx, const char *name,
                           char secret[KEYSTORE_SECRET_SIZE])
{
    keystore_t *ks;
    keystore_new_t spec = {.name = name, .team = "ops"};
    keystore_key_t key;
    char err[256];

    assert_int_equal(keystore_open(fx->path, &ks, err, sizeof(err)), 0);
    assert_int_equal(keystore_create(ks, &spec, T0, &key, secret), 0);
    keystore_close(ks);
}

static struct evhttp_request *request_with(const char *secret)
{
    struct evhttp_request *req = evhttp_request_new(NULL, NULL);
    char value[128];

    snprintf(value, sizeof(value), "Bearer %s", secret);
    evhttp_add_header(evhttp_request_get_input_headers(req), "Authorization",
                      value);
    return req;
}

static void on_auth(gateway_t *gw, struct evhttp_request *req,
                    const cfg_key_t *key, int why, void *arg)
{
    fixture_t *fx = arg;

    fx->n_done++;
    fx->key = key;
    fx->why = why;
}

static void run_until_done(fixture_t *fx, int n)
{
    while (fx->n_done < n)
        event_base_loop(fx->gw.base, EVLOOP_ONCE);
}

static void test_auth_finds_a_key_made_on_disk_after_a_reload(void **state)
{
    fixture_t *fx = *state;
    char secret[KEYSTORE_SECRET_SIZE];
    struct evhttp_request *req;
    const cfg_key_t *key = NULL;

    create_on_disk(fx, "late", secret);
    req = request_with(secret);
    assert_int_equal(auth_find(&fx->gw, req, false, &key), -ENOENT);

    auth_resolve(&fx->gw, req, false, on_auth, fx);
    assert_int_equal(fx->n_done, 0); /* waits for the worker */
    run_until_done(fx, 1);
    assert_int_equal(fx->why, 0);
    assert_non_null(fx->key);
    assert_string_equal(fx->key->name, "late");
    assert_string_equal(fx->key->team, "ops");
    assert_int_equal(auth_find(&fx->gw, req, false, &key), 0);
    evhttp_request_free(req);
}

static void test_auth_reloads_at_most_once_a_second(void **state)
{
    fixture_t *fx = *state;
    char secret[KEYSTORE_SECRET_SIZE];
    struct evhttp_request *bad = request_with("sk-tg-not-a-key");
    struct evhttp_request *good;

    /* Two unknown keys at once share one reload. */
    auth_resolve(&fx->gw, bad, false, on_auth, fx);
    auth_resolve(&fx->gw, bad, false, on_auth, fx);
    assert_int_equal(worker_pending(fx->gw.worker), 1);
    run_until_done(fx, 2);
    assert_int_equal(fx->why, -ENOENT);

    /* Within the second: refused at once, no disk. */
    create_on_disk(fx, "fresh", secret);
    good = request_with(secret);
    clock_advance(KEYRING_RELOAD_PACE_MS - 1);
    auth_resolve(&fx->gw, good, false, on_auth, fx);
    assert_int_equal(fx->n_done, 3);
    assert_int_equal(fx->why, -ENOENT);
    assert_int_equal(worker_pending(fx->gw.worker), 0);

    /* A second after the last reload began, the next one may start. */
    clock_advance(1);
    auth_resolve(&fx->gw, good, false, on_auth, fx);
    run_until_done(fx, 4);
    assert_int_equal(fx->why, 0);
    assert_string_equal(fx->key->name, "fresh");
    evhttp_request_free(bad);
    evhttp_request_free(good);
}

static void test_auth_refuses_a_missing_key_without_a_reload(void **state)
{
    fixture_t *fx = *state;
    struct evhttp_request *req = evhttp_request_new(NULL, NULL);

    auth_resolve(&fx->gw, req, false, on_auth, fx);
    assert_int_equal(fx->n_done, 1);
    assert_int_equal(fx->why, -ENOENT);
    assert_int_equal(worker_pending(fx->gw.worker), 0);
    evhttp_request_free(req);
}

static void test_background_refresh_sees_a_revocation(void **state)
{
    fixture_t *fx = *state;
    char secret[KEYSTORE_SECRET_SIZE], err[256];
    struct evhttp_request *req;
    const cfg_key_t *key = NULL;
    keystore_t *ks;

    create_on_disk(fx, "doomed", secret);
    req = request_with(secret);
    auth_resolve(&fx->gw, req, false, on_auth, fx);
    run_until_done(fx, 1);
    assert_int_equal(fx->why, 0);

    assert_int_equal(keystore_open(fx->path, &ks, err, sizeof(err)), 0);
    assert_int_equal(keystore_revoke(ks, "doomed", T0 + 1), 0);
    keystore_close(ks);
    assert_int_equal(auth_find(&fx->gw, req, false, &key), 0);

    clock_advance(KEYRING_REFRESH_MS);
    while (worker_pending(fx->gw.worker) > 0)
        event_base_loop(fx->gw.base, EVLOOP_ONCE);
    assert_int_equal(auth_find(&fx->gw, req, false, &key), -EKEYREVOKED);
    evhttp_request_free(req);
}

int main(void)
{
#define G(f) cmocka_unit_test_setup_teardown(f, setup_gateway, teardown_gateway)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyring_matches_a_secret_to_its_key),
        cmocka_unit_test(test_keyring_refuses_a_revoked_key),
        cmocka_unit_test(test_keyring_refuses_a_key_from_its_expiry_on),
        cmocka_unit_test(test_keyring_rotation_keeps_the_key_handed_out),
        cmocka_unit_test(test_keyring_drops_a_key_gone_from_the_store),
        G(test_auth_finds_a_key_made_on_disk_after_a_reload),
        G(test_auth_reloads_at_most_once_a_second),
        G(test_auth_refuses_a_missing_key_without_a_reload),
        G(test_background_refresh_sees_a_revocation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
