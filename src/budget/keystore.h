/*
 * Keys made at run time (`tollgate keys`, /admin/keys), kept in a `keys`
 * table in the ledger's SQLite file. A key's secret is shown once, when it
 * is made or rotated; only its SHA-256 is stored.
 *
 * Threading: every keystore_* call that takes a keystore_t does disk I/O
 * on the store's own connection, so it runs off the event loop (the CLI,
 * or the admin API's worker thread), one thread per store at a time. The
 * loop authenticates against a snapshot from keystore_list() with
 * keystore_match(), which touches no disk.
 */
#ifndef TOLLGATE_BUDGET_KEYSTORE_H
#define TOLLGATE_BUDGET_KEYSTORE_H

#include "budget/scope.h"

#include <stddef.h>
#include <stdint.h>

#define KEYSTORE_PREFIX "sk-tg-"
/* "sk-tg-" + 64 hex digits (32 random bytes) + NUL. */
#define KEYSTORE_SECRET_SIZE 71
#define KEYSTORE_ID_SIZE 24 /* "key_" + 16 hex + NUL */

typedef struct keystore_key {
    char id[KEYSTORE_ID_SIZE];
    char name[BUDGET_NAME_SIZE]; /* the ledger's key_id */
    char sha256[65];             /* hex of SHA-256 of the secret */
    char team[BUDGET_NAME_SIZE];
    char owner[BUDGET_NAME_SIZE];
    char default_task[BUDGET_NAME_SIZE];
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
    int64_t revoked_ms; /* 0: not revoked */
} keystore_key_t;

/* What `keys create` is given; NULL strings are "". */
typedef struct keystore_new {
    const char *name; /* 1-63 of [A-Za-z0-9._@-], unique, not "key_..." */
    const char *team;
    const char *owner;
    const char *default_task;
    int64_t expires_ms; /* 0: never; otherwise after now */
} keystore_new_t;

typedef struct keystore keystore_t;

/*
 * Opens the ledger file at path (creating it if needed) on a connection
 * of the store's own, in WAL mode, and creates the keys table if absent.
 * Returns 0 with *out owned by the caller (keystore_close()), or -EIO
 * with a message in err.
 */
int keystore_open(const char *path, keystore_t **out, char *err, size_t errlen);
void keystore_close(keystore_t *ks);

/*
 * Makes a key with a fresh secret from the system's CSPRNG, written to
 * secret (shown to the operator once, never stored or logged). Returns 0
 * with *out filled; -EINVAL for a bad name or field or an expiry not after
 * now_ms; -EEXIST when the name is taken; -EIO.
 */
int keystore_create(keystore_t *ks, const keystore_new_t *spec, int64_t now_ms,
                    keystore_key_t *out, char secret[KEYSTORE_SECRET_SIZE]);

/* Every key, revoked and expired ones too, oldest first (then by name).
 * Returns 0 with *keys (free() it) and *n set, or -EIO. */
int keystore_list(keystore_t *ks, keystore_key_t **keys, size_t *n);

/* The key with this id or name. Returns 0, -ENOENT or -EIO. */
int keystore_get(keystore_t *ks, const char *id_or_name, keystore_key_t *out);

/* Revokes a key from now_ms on. Returns 0, -ENOENT, -EALREADY when it
 * was revoked before, or -EIO. */
int keystore_revoke(keystore_t *ks, const char *id_or_name, int64_t now_ms);

/*
 * Gives a key a new secret (written to secret, shown once); the old one
 * stops working at once. Returns 0 with *out (may be NULL) updated,
 * -ENOENT, -EKEYREVOKED, -EKEYEXPIRED, or -EIO.
 */
int keystore_rotate(keystore_t *ks, const char *id_or_name, int64_t now_ms,
                    keystore_key_t *out, char secret[KEYSTORE_SECRET_SIZE]);

/*
 * The key a presented secret belongs to, from a snapshot (keystore_list)
 * on the event loop: compares SHA-256 digests in constant time. Returns
 * 0 with *out pointing into keys, -ENOENT (unknown), -EKEYREVOKED or
 * -EKEYEXPIRED (expires_ms <= now_ms).
 */
int keystore_match(const keystore_key_t *keys, size_t n, const char *secret,
                   size_t len, int64_t now_ms, const keystore_key_t **out);

#endif
