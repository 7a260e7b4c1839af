/*
 * Who a budget or a rate limit belongs to: the whole gateway, a key, a
 * team or a task, and a small map from (scope, name) to the counters the
 * budget book and the rate limiter keep for each.
 */
#ifndef TOLLGATE_BUDGET_SCOPE_H
#define TOLLGATE_BUDGET_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name kept, NUL included; matches the ledger's key_id, team and
 * task columns. */
#define BUDGET_NAME_SIZE 64

typedef enum budget_scope {
    BUDGET_SCOPE_KEY = 0,
    BUDGET_SCOPE_TEAM = 1,
    BUDGET_SCOPE_TASK = 2,
    BUDGET_SCOPE_GLOBAL = 3
} budget_scope_t;

#define BUDGET_SCOPE_COUNT 4

/*
 * The caller of one request, as the ledger names it: the key's name
 * (never its secret), its team, and the task. A NULL or empty member
 * means the call has none, and no budget or limit of that scope applies.
 * Global ones always apply.
 */
typedef struct budget_who {
    const char *key;
    const char *team;
    const char *task;
} budget_who_t;

/* "key", "team", "task", "global". */
const char *budget_scope_name(budget_scope_t scope);
/* Parses those names; returns 0 or -EINVAL. */
int budget_scope_parse(const char *text, budget_scope_t *out);
/* The member of who for scope ("" for global, "" when unset). */
const char *budget_who_name(const budget_who_t *who, budget_scope_t scope);

typedef struct budget_map budget_map_t;

/* An empty map. Owned by the caller; aborts on out of memory. */
budget_map_t *budget_map_new(void);
/* Frees the map; values are the caller's and are not touched. */
void budget_map_free(budget_map_t *map);

/* The value stored for (scope, name), or NULL. */
void *budget_map_get(const budget_map_t *map, budget_scope_t scope,
                     const char *name);
/*
 * Stores value for (scope, name). Returns 0, -EEXIST when the pair is
 * already there, or -ENAMETOOLONG when name does not fit
 * BUDGET_NAME_SIZE. Aborts on out of memory.
 */
int budget_map_put(budget_map_t *map, budget_scope_t scope, const char *name,
                   void *value);

#endif
