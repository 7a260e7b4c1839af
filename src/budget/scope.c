/*
 * Scope names and the (scope, name) map that the budget book and the rate
 * limiter look their counters up in, once per call on the event loop.
 * Chained hashing with FNV-1a; the table doubles when it fills.
 */
#include "budget/scope.h"

#include "util/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const scope_names[BUDGET_SCOPE_COUNT] = {"key", "team",
                                                            "task", "global"};

const char *budget_scope_name(budget_scope_t scope)
{
    if ((unsigned)scope >= BUDGET_SCOPE_COUNT)
        return "?";
    return scope_names[scope];
}

int budget_scope_parse(const char *text, budget_scope_t *out)
{
    for (int i = 0; i < BUDGET_SCOPE_COUNT; i++) {
        if (strcmp(text, scope_names[i]) == 0) {
            *out = (budget_scope_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *budget_who_name(const budget_who_t *who, budget_scope_t scope)
{
    const char *name = NULL;

    if (scope == BUDGET_SCOPE_KEY)
        name = who->key;
    else if (scope == BUDGET_SCOPE_TEAM)
        name = who->team;
    else if (scope == BUDGET_SCOPE_TASK)
        name = who->task;
    return name != NULL ? name : "";
}

typedef struct map_entry {
    budget_scope_t scope;
    char name[BUDGET_NAME_SIZE];
    void *value;
    struct map_entry *next;
} map_entry_t;

struct budget_map {
    map_entry_t **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_entries;
};

static void *alloc_or_die(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        log_error("budget: out of memory");
        abort();
    }
    return p;
}

budget_map_t *budget_map_new(void)
{
    budget_map_t *map = alloc_or_die(1, sizeof(*map));

    map->n_buckets = 16;
    map->buckets = alloc_or_die(map->n_buckets, sizeof(*map->buckets));
    return map;
}

void budget_map_free(budget_map_t *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->n_buckets; i++) {
        map_entry_t *e = map->buckets[i];

        while (e != NULL) {
            map_entry_t *next = e->next;

            free(e);
            e = next;
        }
    }
    free(map->buckets);
    free(map);
}

static uint64_t hash_of(budget_scope_t scope, const char *name)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ (uint64_t)scope;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static map_entry_t *find(const budget_map_t *map, budget_scope_t scope,
                         const char *name)
{
    size_t slot = hash_of(scope, name) & (map->n_buckets - 1);

    for (map_entry_t *e = map->buckets[slot]; e != NULL; e = e->next)
        if (e->scope == scope && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

void *budget_map_get(const budget_map_t *map, budget_scope_t scope,
                     const char *name)
{
    map_entry_t *e = find(map, scope, name != NULL ? name : "");

    return e != NULL ? e->value : NULL;
}

static void grow(budget_map_t *map)
{
    size_t n = map->n_buckets * 2;
    map_entry_t **buckets = alloc_or_die(n, sizeof(*buckets));

    for (size_t i = 0; i < map->n_buckets; i++) {
        map_entry_t *e = map->buckets[i];

        while (e != NULL) {
            map_entry_t *next = e->next;
            size_t slot = hash_of(e->scope, e->name) & (n - 1);

            e->next = buckets[slot];
            buckets[slot] = e;
            e = next;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->n_buckets = n;
}

int budget_map_put(budget_map_t *map, budget_scope_t scope, const char *name,
                   void *value)
{
    map_entry_t *e;
    size_t slot;

    if (name == NULL)
        name = "";
    if (strlen(name) >= BUDGET_NAME_SIZE)
        return -ENAMETOOLONG;
    if (find(map, scope, name) != NULL)
        return -EEXIST;

    if (map->n_entries >= map->n_buckets)
        grow(map);
    e = alloc_or_die(1, sizeof(*e));
    e->scope = scope;
    memcpy(e->name, name, strlen(name) + 1);
    e->value = value;
    slot = hash_of(scope, name) & (map->n_buckets - 1);
    e->next = map->buckets[slot];
    map->buckets[slot] = e;
    map->n_entries++;
    return 0;
}
