/*
 * Run-time keys (`tollgate keys`, /admin/keys) held in memory on the event
 * loop, so authentication never touches disk. The ring is refreshed from
 * the keystore through the gateway's worker thread: on a bearer it does
 * not know (paced), every KEYRING_REFRESH_MS, and at once after an admin
 * API change.
 *
 * Threading: loop only. Entries are never freed while the ring lives, so
 * a cfg_key_t it hands out stays valid for the life of the gateway, even
 * across reloads and rotations (calls in flight keep pointing at it).
 */
#ifndef TOLLGATE_AUTH_KEYRING_H
#define TOLLGATE_AUTH_KEYRING_H

#include "budget/keystore.h"
#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gateway;

/* At most one reload from disk per this much of the gateway's clock when
 * it is asked for by unknown bearers: a flood of bad keys costs one read
 * per second, not one per request. */
#define KEYRING_RELOAD_PACE_MS 1000

/* A background reload this often picks up keys revoked or made by the
 * CLI even when no unknown bearer asks for one. */
#define KEYRING_REFRESH_MS 10000

/* Requests that may wait for one reload; more are refused at once. */
#define KEYRING_MAX_WAITERS 4096

typedef struct keyring keyring_t;

/* An empty ring. Owned by the caller; aborts on out of memory. */
keyring_t *keyring_new(void);
void keyring_free(keyring_t *ring);

/*
 * Makes the ring match a snapshot of the keystore (keystore_list()):
 * entries are updated in place by id, new ones added, and ones missing
 * from the snapshot stop matching. keys stays the caller's.
 */
void keyring_load(keyring_t *ring, const keystore_key_t *keys, size_t n);

/* Adds or updates one key (after an admin API create, revoke, rotate). */
void keyring_put(keyring_t *ring, const keystore_key_t *key);

/*
 * The key a presented secret belongs to, as a config-style key (name,
 * team, owner, default_task; NULL where empty). Compares SHA-256 digests
 * with every entry in constant time. Returns 0 with *out valid until
 * keyring_free(); -ENOENT (unknown), -EKEYREVOKED, or -EKEYEXPIRED
 * (expires_ms <= now_ms).
 */
int keyring_match(const keyring_t *ring, const char *secret, size_t len,
                  int64_t now_ms, const cfg_key_t **out);

/* Keys the ring matches (present in the last snapshot), any state. */
size_t keyring_count(const keyring_t *ring);

/*
 * Creates gw->keyring and loads it from the keystore in the ledger file,
 * blocking (call at start, before serving, after gw->worker is made),
 * then arms the background refresh. Returns 0, or a negative code with a
 * message in err.
 */
int keyring_open(struct gateway *gw, char *err, size_t errlen);

/* Frees gw->keyring. Call after worker_free() (so no reload completion
 * can still arrive). NULL ring is a no-op. */
void keyring_close(struct gateway *gw);

/* Runs on the loop when a reload asked for by keyring_reload() is done
 * (loaded is false when the keystore could not be read). */
typedef void (*keyring_ready_fn)(struct gateway *gw, bool loaded, void *arg);

/*
 * Asks for a reload from disk through gw->worker and calls ready when it
 * has been applied. When one is in flight, ready waits for it. Otherwise
 * a new one starts only if the last one asked this way started at least
 * KEYRING_RELOAD_PACE_MS ago on the gateway's clock. Returns 0 when ready
 * will be called (always later, on the loop), or -EAGAIN (paced, or too
 * many waiting) when it will not be.
 */
int keyring_reload(struct gateway *gw, keyring_ready_fn ready, void *arg);

#endif
