/*
 * The feedback module's own connection to the ledger file, used on the
 * gateway's worker thread only. Internal to src/feedback.
 */
#ifndef TOLLGATE_FEEDBACK_STORE_H
#define TOLLGATE_FEEDBACK_STORE_H

#include <stdint.h>

struct sqlite3;

/* Opens path read-write (it must exist: the ledger made it) and creates
 * this module's tables. NULL after logging why. Caller closes it. */
struct sqlite3 *store_open(const char *path);

/*
 * The worker thread's connection to path, opened on first use and kept
 * for the life of the process (reopened if path changes). NULL when it
 * cannot be opened. Worker thread only: no lock.
 */
struct sqlite3 *store_worker_db(const char *path);

/* Links outcome_id to the earlier outcome it repeats; a second link for
 * the same outcome is ignored. Returns 0 or -EIO. */
int store_put_rework(struct sqlite3 *db, const char *outcome_id,
                     const char *earlier_id, int64_t at_ms, const char *key);

#endif
