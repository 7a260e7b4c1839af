/*
 * The run-time key store: a `keys` table beside the ledger's tables, on
 * a SQLite connection of its own (WAL lets it write while the ledger's
 * writer thread is open on the same file). Off the event loop only.
 */
#include "budget/keystore.h"

#include "config/config.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Another writer (the ledger's thread) holds the lock for at most a
 * batch; wait that out rather than fail an operator's command. */
#define BUSY_TIMEOUT_MS 5000

struct keystore {
    sqlite3 *db;
};

static const char keys_sql[] = "CREATE TABLE IF NOT EXISTS keys ("
                               " id TEXT PRIMARY KEY,"
                               " name TEXT NOT NULL UNIQUE,"
                               " sha256 TEXT NOT NULL UNIQUE,"
                               " team TEXT NOT NULL,"
                               " owner TEXT NOT NULL,"
                               " default_task TEXT NOT NULL,"
                               " created_ms INTEGER NOT NULL,"
                               " expires_ms INTEGER NOT NULL DEFAULT 0,"
                               " revoked_ms INTEGER NOT NULL DEFAULT 0)";

#define KEY_COLUMNS                                                            \
    "id, name, sha256, team, owner, default_task, created_ms, expires_ms,"     \
    " revoked_ms"

static int fail(sqlite3 *db, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    return -EIO;
}

int keystore_open(const char *path, keystore_t **out, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    keystore_t *ks = calloc(1, sizeof(*ks));
    int rc;

    if (ks == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (sqlite3_open_v2(path, &ks->db, flags, NULL) != SQLITE_OK) {
        rc = fail(ks->db, err, errlen);
        goto close_store;
    }
    sqlite3_busy_timeout(ks->db, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(ks->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(ks->db, keys_sql, NULL, NULL, NULL) != SQLITE_OK) {
        rc = fail(ks->db, err, errlen);
        goto close_store;
    }
    *out = ks;
    return 0;

close_store:
    keystore_close(ks);
    return rc;
}

void keystore_close(keystore_t *ks)
{
    if (ks == NULL)
        return;
    sqlite3_close(ks->db);
    free(ks);
}

static void hex_of(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A fresh secret and its digest. Aborts if the CSPRNG fails: a key made
 * from weak randomness must never be handed out. */
static void new_secret(char secret[KEYSTORE_SECRET_SIZE], char sha256[65])
{
    unsigned char bytes[32];

    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        fprintf(stderr, "keystore: the random generator failed\n");
        abort();
    }
    memcpy(secret, KEYSTORE_PREFIX, strlen(KEYSTORE_PREFIX));
    hex_of(bytes, sizeof(bytes), secret + strlen(KEYSTORE_PREFIX));
    OPENSSL_cleanse(bytes, sizeof(bytes));
    config_hash_secret(secret, strlen(secret), sha256);
}

static void new_id(char id[KEYSTORE_ID_SIZE])
{
    unsigned char bytes[8];

    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        fprintf(stderr, "keystore: the random generator failed\n");
        abort();
    }
    memcpy(id, "key_", 4);
    hex_of(bytes, sizeof(bytes), id + 4);
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);

    /* "key_..." is how ids look; a name never reads as one. */
    if (len == 0 || len >= BUDGET_NAME_SIZE || strncmp(name, "key_", 4) == 0)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || strchr("._@-", *p) != NULL))
            return false;
    return true;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static int copy_field(char *dst, const char *src)
{
    size_t len = strlen(or_empty(src));

    if (len >= BUDGET_NAME_SIZE)
        return -EINVAL;
    memcpy(dst, or_empty(src), len + 1);
    return 0;
}

static int fill_new(const keystore_new_t *spec, int64_t now_ms,
                    keystore_key_t *key)
{
    memset(key, 0, sizeof(*key));
    if (!valid_name(or_empty(spec->name)) ||
        (spec->expires_ms != 0 && spec->expires_ms <= now_ms))
        return -EINVAL;
    if (copy_field(key->name, spec->name) < 0 ||
        copy_field(key->team, spec->team) < 0 ||
        copy_field(key->owner, spec->owner) < 0 ||
        copy_field(key->default_task, spec->default_task) < 0)
        return -EINVAL;
    key->created_ms = now_ms;
    key->expires_ms = spec->expires_ms;
    return 0;
}

static int insert_key(keystore_t *ks, const keystore_key_t *key)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(ks->db,
                           "INSERT INTO keys (" KEY_COLUMNS ") VALUES (?1,"
                           " ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, key->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, key->team, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, key->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, key->default_task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, key->created_ms);
    sqlite3_bind_int64(st, 8, key->expires_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    return (rc & 0xff) == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
}

int keystore_create(keystore_t *ks, const keystore_new_t *spec, int64_t now_ms,
                    keystore_key_t *out, char secret[KEYSTORE_SECRET_SIZE])
{
    keystore_key_t key, taken;
    int rc = fill_new(spec, now_ms, &key);

    if (rc < 0)
        return rc;
    if (keystore_get(ks, key.name, &taken) == 0)
        return -EEXIST;

    new_id(key.id);
    new_secret(secret, key.sha256);
    rc = insert_key(ks, &key);
    if (rc < 0) {
        OPENSSL_cleanse(secret, KEYSTORE_SECRET_SIZE);
        return rc;
    }
    *out = key;
    return 0;
}

static void copy_column(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const char *s = (const char *)sqlite3_column_text(st, col);

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

static void read_key(sqlite3_stmt *st, keystore_key_t *key)
{
    memset(key, 0, sizeof(*key));
    copy_column(st, 0, key->id, sizeof(key->id));
    copy_column(st, 1, key->name, sizeof(key->name));
    copy_column(st, 2, key->sha256, sizeof(key->sha256));
    copy_column(st, 3, key->team, sizeof(key->team));
    copy_column(st, 4, key->owner, sizeof(key->owner));
    copy_column(st, 5, key->default_task, sizeof(key->default_task));
    key->created_ms = sqlite3_column_int64(st, 6);
    key->expires_ms = sqlite3_column_int64(st, 7);
    key->revoked_ms = sqlite3_column_int64(st, 8);
}

int keystore_get(keystore_t *ks, const char *id_or_name, keystore_key_t *out)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(ks->db,
                           "SELECT " KEY_COLUMNS " FROM keys WHERE id = ?1"
                           " OR name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, id_or_name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_key(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : -EIO;
}

static int grow(keystore_key_t **keys, size_t *cap)
{
    size_t n = *cap ? *cap * 2 : 16;
    keystore_key_t *p = realloc(*keys, n * sizeof(*p));

    if (p == NULL)
        return -ENOMEM;
    *keys = p;
    *cap = n;
    return 0;
}

int keystore_list(keystore_t *ks, keystore_key_t **keys, size_t *n)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    int rc = 0, step;

    *keys = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT " KEY_COLUMNS " FROM keys"
                           " ORDER BY created_ms, name",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap && (rc = grow(keys, &cap)) < 0)
            break;
        read_key(st, &(*keys)[(*n)++]);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -EIO;
    sqlite3_finalize(st);

    if (rc < 0) {
        free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

/* Runs an UPDATE of one key: ?1 its id, ?2 a time, ?3 text (may be
 * NULL). Returns the rows changed (0 or 1), or -EIO. */
static int update_key(keystore_t *ks, const char *sql, const char *id,
                      int64_t ms, const char *text)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ms);
    if (text != NULL)
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(ks->db) : -EIO;
}

int keystore_revoke(keystore_t *ks, const char *id_or_name, int64_t now_ms)
{
    keystore_key_t key;
    int rc = keystore_get(ks, id_or_name, &key);

    if (rc < 0)
        return rc;

    /* 0 means "not revoked", so a revocation is stamped 1 at the least. */
    rc = update_key(ks,
                    "UPDATE keys SET revoked_ms = max(?2, 1) WHERE id = ?1"
                    " AND revoked_ms = 0",
                    key.id, now_ms, NULL);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : -EALREADY;
}

int keystore_rotate(keystore_t *ks, const char *id_or_name, int64_t now_ms,
                    keystore_key_t *out, char secret[KEYSTORE_SECRET_SIZE])
{
    keystore_key_t key;
    int rc = keystore_get(ks, id_or_name, &key);

    if (rc < 0)
        return rc;
    if (key.revoked_ms != 0)
        return -EKEYREVOKED;
    if (key.expires_ms != 0 && key.expires_ms <= now_ms)
        return -EKEYEXPIRED;

    /* The conditions are checked again in the UPDATE, in case another
     * process revoked the key in between. */
    new_secret(secret, key.sha256);
    rc = update_key(ks,
                    "UPDATE keys SET sha256 = ?3 WHERE id = ?1 AND"
                    " revoked_ms = 0 AND (expires_ms = 0 OR expires_ms > ?2)",
                    key.id, now_ms, key.sha256);
    if (rc != 1) {
        OPENSSL_cleanse(secret, KEYSTORE_SECRET_SIZE);
        return rc < 0 ? rc : -EKEYREVOKED;
    }
    if (out != NULL)
        *out = key;
    return 0;
}

int keystore_match(const keystore_key_t *keys, size_t n, const char *secret,
                   size_t len, int64_t now_ms, const keystore_key_t **out)
{
    char digest[65];
    const keystore_key_t *found = NULL;

    config_hash_secret(secret, len, digest);
    /* Every entry is compared, so the time taken does not say where in
     * the list a key sits. */
    for (size_t i = 0; i < n; i++)
        if (CRYPTO_memcmp(keys[i].sha256, digest, 64) == 0)
            found = &keys[i];
    OPENSSL_cleanse(digest, sizeof(digest));

    if (found == NULL)
        return -ENOENT;
    if (found->revoked_ms != 0)
        return -EKEYREVOKED;
    if (found->expires_ms != 0 && found->expires_ms <= now_ms)
        return -EKEYEXPIRED;
    *out = found;
    return 0;
}
