/*
 * Tests of the run-time key store: create shows a secret once and stores
 * only its hash, list, revoke, rotate and expiry, lookups from a snapshot,
 * and the keys table living in the ledger's file beside a running ledger.
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

#include "budget/keystore.h"
#include "config/config.h"
#include "ledger/ledger.h"

#define T0 INT64_C(1796256000000)
#define H INT64_C(3600000)

typedef struct fixture {
    char dir[64];
    char path[96];
    keystore_t *ks;
} fixture_t;

static int setup_store(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tollgate-keys-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/ledger.db", fx->dir);
    if (keystore_open(fx->path, &fx->ks, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    *state = fx;
    return 0;
}

static int teardown_store(void **state)
{
    fixture_t *fx = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char file[128];

    keystore_close(fx->ks);
    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", fx->path, suffix[i]);
        unlink(file);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void create(keystore_t *ks, const char *name, int64_t expires,
                   keystore_key_t *key, char secret[KEYSTORE_SECRET_SIZE])
{
    keystore_new_t spec = {name, "search", "ana@example.com", "triage",
                           expires};

    assert_int_equal(keystore_create(ks, &spec, T0, key, secret), 0);
}

/* Whether the bytes of a file (and its WAL) contain text. */
static bool file_contains(const char *path, const char *text)
{
    char file[128];
    const char *suffix[] = {"", "-wal"};
    bool found = false;

    for (size_t i = 0; i < 2 && !found; i++) {
        FILE *f;
        char *buf = malloc(1 << 20);
        size_t n;

        snprintf(file, sizeof(file), "%s%s", path, suffix[i]);
        f = fopen(file, "rb");
        if (f == NULL) {
            free(buf);
            continue;
        }
        n = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        buf[n] = '\0';
        found = memmem(buf, n, text, strlen(text)) != NULL;
        free(buf);
    }
    return found;
}

static void test_keys_create_shows_the_secret_once(void **state)
{
    fixture_t *fx = *state;
    keystore_key_t key, got, *all;
    char secret[KEYSTORE_SECRET_SIZE], hex[65];
    size_t n;

    create(fx->ks, "alice", 0, &key, secret);
    assert_int_equal(strlen(secret), KEYSTORE_SECRET_SIZE - 1);
    assert_memory_equal(secret, "sk-tg-", 6);
    assert_int_equal(strlen(key.id), KEYSTORE_ID_SIZE - 4);
    config_hash_secret(secret, strlen(secret), hex);
    assert_string_equal(key.sha256, hex);

    assert_int_equal(keystore_get(fx->ks, "alice", &got), 0);
    assert_string_equal(got.id, key.id);
    assert_string_equal(got.team, "search");
    assert_string_equal(got.owner, "ana@example.com");
    assert_string_equal(got.default_task, "triage");
    assert_int_equal(got.created_ms, T0);
    assert_int_equal(got.expires_ms, 0);
    assert_int_equal(got.revoked_ms, 0);
    assert_int_equal(keystore_get(fx->ks, key.id, &got), 0);

    /* Only the hash is stored: the secret is nowhere in the file. */
    assert_false(file_contains(fx->path, secret));
    assert_true(file_contains(fx->path, key.sha256));

    assert_int_equal(keystore_list(fx->ks, &all, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(all[0].name, "alice");
    free(all);
}

static void test_keys_create_refuses_bad_input(void **state)
{
    fixture_t *fx = *state;
    keystore_key_t key;
    char secret[KEYSTORE_SECRET_SIZE];
    keystore_new_t spec = {"alice", NULL, NULL, NULL, 0};
    const char *bad[] = {"", "has space", "key_0123456789abcdef",
                         "0123456789012345678901234567890123456789"
                         "012345678901234567890123"};

    create(fx->ks, "alice", 0, &key, secret);
    assert_int_equal(keystore_create(fx->ks, &spec, T0, &key, secret), -EEXIST);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        spec.name = bad[i];
        assert_int_equal(keystore_create(fx->ks, &spec, T0, &key, secret),
                         -EINVAL);
    }
    spec.name = "bob";
    spec.expires_ms = T0;
    assert_int_equal(keystore_create(fx->ks, &spec, T0, &key, secret), -EINVAL);
}

static void test_keys_list_match_revoke(void **state)
{
    fixture_t *fx = *state;
    keystore_key_t a, b, *all;
    const keystore_key_t *found;
    char sa[KEYSTORE_SECRET_SIZE], sb[KEYSTORE_SECRET_SIZE];
    size_t n;

    create(fx->ks, "alice", 0, &a, sa);
    create(fx->ks, "bob", 0, &b, sb);
    assert_string_not_equal(sa, sb);

    assert_int_equal(keystore_list(fx->ks, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(keystore_match(all, n, sb, strlen(sb), T0, &found), 0);
    assert_string_equal(found->name, "bob");
    assert_int_equal(keystore_match(all, n, "sk-tg-nope", 10, T0, &found),
                     -ENOENT);
    free(all);

    assert_int_equal(keystore_revoke(fx->ks, "bob", T0 + H), 0);
    assert_int_equal(keystore_revoke(fx->ks, b.id, T0 + H), -EALREADY);
    assert_int_equal(keystore_revoke(fx->ks, "carol", T0 + H), -ENOENT);
    assert_int_equal(keystore_list(fx->ks, &all, &n), 0);
    assert_int_equal(all[1].revoked_ms, T0 + H);
    assert_int_equal(keystore_match(all, n, sb, strlen(sb), T0, &found),
                     -EKEYREVOKED);
    assert_int_equal(keystore_match(all, n, sa, strlen(sa), T0, &found), 0);
    free(all);
}

static void test_keys_rotate_replaces_the_secret(void **state)
{
    fixture_t *fx = *state;
    keystore_key_t key, rotated, *all;
    const keystore_key_t *found;
    char old[KEYSTORE_SECRET_SIZE], fresh[KEYSTORE_SECRET_SIZE];
    size_t n;

    create(fx->ks, "alice", 0, &key, old);
    assert_int_equal(keystore_rotate(fx->ks, "alice", T0, &rotated, fresh), 0);
    assert_string_not_equal(old, fresh);
    assert_string_equal(rotated.id, key.id);
    assert_string_not_equal(rotated.sha256, key.sha256);

    assert_int_equal(keystore_list(fx->ks, &all, &n), 0);
    assert_int_equal(keystore_match(all, n, old, strlen(old), T0, &found),
                     -ENOENT);
    assert_int_equal(keystore_match(all, n, fresh, strlen(fresh), T0, &found),
                     0);
    assert_string_equal(found->name, "alice");
    free(all);

    assert_int_equal(keystore_revoke(fx->ks, "alice", T0), 0);
    assert_int_equal(keystore_rotate(fx->ks, "alice", T0, NULL, fresh),
                     -EKEYREVOKED);
    assert_int_equal(keystore_rotate(fx->ks, "nobody", T0, NULL, fresh),
                     -ENOENT);
}

static void test_keys_expire_at_their_time(void **state)
{
    fixture_t *fx = *state;
    keystore_key_t key, *all;
    const keystore_key_t *found;
    char secret[KEYSTORE_SECRET_SIZE], fresh[KEYSTORE_SECRET_SIZE];
    size_t n;

    create(fx->ks, "temp", T0 + H, &key, secret);
    assert_int_equal(keystore_list(fx->ks, &all, &n), 0);
    assert_int_equal(
        keystore_match(all, n, secret, strlen(secret), T0 + H - 1, &found), 0);
    assert_int_equal(
        keystore_match(all, n, secret, strlen(secret), T0 + H, &found),
        -EKEYEXPIRED);
    free(all);
    assert_int_equal(keystore_rotate(fx->ks, "temp", T0 + H, NULL, fresh),
                     -EKEYEXPIRED);
}

static void test_keys_share_the_file_with_a_running_ledger(void **state)
{
    fixture_t *fx = *state;
    ledger_outcome_t o;
    keystore_key_t key;
    char secret[KEYSTORE_SECRET_SIZE], err[256];
    ledger_t *ledger;

    /* The key store made the file first; the ledger adds its tables. */
    ledger = ledger_open(fx->path, 8, err, sizeof(err));
    if (ledger == NULL)
        fail_msg("%s", err);
    memset(&o, 0, sizeof(o));
    snprintf(o.id, sizeof(o.id), "out_1");
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &o);
    create(fx->ks, "while-running", 0, &key, secret);
    ledger_flush(ledger);
    ledger_close(ledger);
    assert_int_equal(keystore_get(fx->ks, "while-running", &key), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_store, teardown_store)
    const struct CMUnitTest tests[] = {
        T(test_keys_create_shows_the_secret_once),
        T(test_keys_create_refuses_bad_input),
        T(test_keys_list_match_revoke),
        T(test_keys_rotate_replaces_the_secret),
        T(test_keys_expire_at_their_time),
        T(test_keys_share_the_file_with_a_running_ledger),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
