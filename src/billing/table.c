/*
 * The price table: every source's entries in one array, found through an
 * open-addressing index of their names, plus aliases and genai-prices
 * match rules. Filled at start (built-in entries, imports, config) and
 * read on the event loop for every finished attempt.
 *
 * One name can have many entries: a built-in, one per imported file, a
 * config override, and dated versions of each. They hang off the index
 * slot in a chain, in the order they were added. A lookup walks the chain
 * and keeps the entry in force that ranks highest (config, then imports,
 * then built-ins), the later one on a tie, which is genai-prices' "last
 * active entry wins" within one file and "the later file wins" across
 * files. The other entries stay, so disagreements can be listed.
 */
#include "billing/internal.h"
#include "util/arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TABLE_MIN_SLOTS 64
#define TABLE_MIN_ENTRIES 32
#define ALIAS_DEPTH_MAX 4
#define SECONDS_PER_DAY 86400

struct entry_link {
    uint32_t next; /* next entry of the same name, index + 1; 0 ends */
    uint8_t rank;  /* 0 built-in, 1 import, 2 config */
};

struct alias {
    char name[128];
    char target[128];
};

struct provider {
    char id[32];
    clause_t *model_match; /* NULL: none */
};

struct rule {
    int provider;
    clause_t *match;
    char target[128];
};

struct price_table {
    price_t *entries; /* in the order they were first added */
    struct entry_link *links;
    size_t count;
    size_t capacity;
    uint32_t *slots; /* first entry of a name, index + 1; 0 is empty */
    size_t nslots;   /* a power of two, more than twice the names */
    size_t names;
    struct alias *aliases;
    size_t n_aliases, cap_aliases;
    struct provider *providers;
    size_t n_providers, cap_providers;
    struct rule *rules;
    size_t n_rules, cap_rules;
};

/* FNV-1a: short keys, no adversary (names come from our own files). */
static uint64_t name_hash(const char *name, size_t len)
{
    uint64_t hash = UINT64_C(14695981039346656037);

    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)name[i];
        hash *= UINT64_C(1099511628211);
    }
    return hash;
}

static void *zalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        die_oom();
    return p;
}

static void *grow(void *array, size_t *capacity, size_t size)
{
    size_t n = *capacity < 8 ? 8 : *capacity * 2;
    void *p = realloc(array, n * size);

    if (p == NULL)
        die_oom();
    *capacity = n;
    return p;
}

price_table_t *billing_table_new_empty(void)
{
    price_table_t *table = zalloc(1, sizeof(*table));

    table->capacity = TABLE_MIN_ENTRIES;
    table->entries = zalloc(table->capacity, sizeof(price_t));
    table->links = zalloc(table->capacity, sizeof(struct entry_link));
    table->nslots = TABLE_MIN_SLOTS;
    table->slots = zalloc(table->nslots, sizeof(uint32_t));
    return table;
}

void billing_table_free(price_table_t *table)
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < table->n_providers; i++)
        clause_free(table->providers[i].model_match);
    for (size_t i = 0; i < table->n_rules; i++)
        clause_free(table->rules[i].match);
    free(table->providers);
    free(table->rules);
    free(table->aliases);
    free(table->entries);
    free(table->links);
    free(table->slots);
    free(table);
}

/* The slot holding name, or the empty slot where it would go. */
static size_t slot_find(const price_table_t *table, const char *name,
                        size_t len)
{
    size_t mask = table->nslots - 1;
    size_t i = (size_t)name_hash(name, len) & mask;

    while (table->slots[i] != 0) {
        const price_t *p = &table->entries[table->slots[i] - 1];

        if (strlen(p->model) == len && memcmp(p->model, name, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static void index_grow(price_table_t *table)
{
    uint32_t *old = table->slots;
    size_t nold = table->nslots;

    table->nslots *= 2;
    table->slots = zalloc(table->nslots, sizeof(uint32_t));
    for (size_t n = 0; n < nold; n++) {
        const char *model;

        if (old[n] == 0)
            continue;
        model = table->entries[old[n] - 1].model;
        table->slots[slot_find(table, model, strlen(model))] = old[n];
    }
    free(old);
}

static void entries_grow(price_table_t *table)
{
    size_t capacity = table->capacity * 2;
    price_t *entries = realloc(table->entries, capacity * sizeof(price_t));
    struct entry_link *links;

    if (entries == NULL)
        die_oom();
    table->entries = entries;
    links = realloc(table->links, capacity * sizeof(struct entry_link));
    if (links == NULL)
        die_oom();
    table->links = links;
    table->capacity = capacity;
}

static uint8_t source_rank(const char *source)
{
    if (strncmp(source, "config", 6) == 0)
        return 2;
    return strncmp(source, "builtin", 7) == 0 ? 0 : 1;
}

/* The same entry again: it replaces the old one rather than adding. */
static bool entry_same(const price_t *a, const price_t *b)
{
    return strcmp(a->source, b->source) == 0 &&
           a->valid_from == b->valid_from && a->day_from == b->day_from &&
           a->day_to == b->day_to;
}

/* Adds the entry after `prev` in its name's chain (0: it starts one). */
static void entry_append(price_table_t *table, const price_t *price,
                         size_t slot, uint32_t prev)
{
    if (table->count == table->capacity)
        entries_grow(table);
    table->entries[table->count] = *price;
    table->links[table->count].next = 0;
    table->links[table->count].rank = source_rank(price->source);
    table->count++;

    if (prev == 0) {
        table->slots[slot] = (uint32_t)table->count;
        table->names++;
    } else {
        table->links[prev - 1].next = (uint32_t)table->count;
    }
}

void billing_put(price_table_t *table, const price_t *price)
{
    price_t copy = *price;
    uint32_t link, prev = 0;
    size_t slot;

    copy.model[sizeof(copy.model) - 1] = '\0';
    copy.source[sizeof(copy.source) - 1] = '\0';
    copy.origin[sizeof(copy.origin) - 1] = '\0';
    if (copy.layout == PRICE_LAYOUT && copy.origin[0] == '\0')
        price_origin_set(&copy, copy.source, copy.model);

    slot = slot_find(table, copy.model, strlen(copy.model));
    for (link = table->slots[slot]; link != 0;
         link = table->links[link - 1].next) {
        if (entry_same(&table->entries[link - 1], &copy)) {
            table->entries[link - 1] = copy;
            return;
        }
        prev = link;
    }
    entry_append(table, &copy, slot, prev);

    /* Keep the load under one half so probe runs stay short. */
    if (table->names * 2 > table->nslots)
        index_grow(table);
}

static bool entry_in_force(const price_t *p, int64_t at)
{
    int64_t second;

    if (p->layout != PRICE_LAYOUT)
        return true;
    if ((p->valid_from != 0 && at < p->valid_from) ||
        (p->valid_to != 0 && at >= p->valid_to))
        return false;
    if (p->day_from == p->day_to)
        return true;

    second = ((at % SECONDS_PER_DAY) + SECONDS_PER_DAY) % SECONDS_PER_DAY;
    if (p->day_from < p->day_to)
        return second >= p->day_from && second < p->day_to;
    return second >= p->day_from || second < p->day_to;
}

/* The first entry of a name, index + 1, or 0. */
static uint32_t chain_head(const price_table_t *table, const char *name,
                           size_t len)
{
    if (len == 0 || len >= sizeof(((price_t *)0)->model))
        return 0;
    return table->slots[slot_find(table, name, len)];
}

static const price_t *chain_pick(const price_table_t *table, uint32_t link,
                                 int64_t at)
{
    const price_t *best = NULL;
    int best_rank = -1;

    for (; link != 0; link = table->links[link - 1].next) {
        const price_t *p = &table->entries[link - 1];
        int rank = table->links[link - 1].rank;

        if (rank >= best_rank && entry_in_force(p, at)) {
            best = p;
            best_rank = rank;
        }
    }
    return best;
}

static const price_t *find_exact(const price_table_t *table, const char *name,
                                 size_t len, int64_t at)
{
    return chain_pick(table, chain_head(table, name, len), at);
}

static const struct alias *alias_find(const price_table_t *table,
                                      const char *name, size_t len)
{
    for (size_t i = table->n_aliases; i > 0; i--) {
        const struct alias *a = &table->aliases[i - 1];

        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0)
            return a;
    }
    return NULL;
}

int billing_alias(price_table_t *table, const char *alias, const char *target)
{
    struct alias *a;

    if (alias == NULL || target == NULL || alias[0] == '\0' ||
        target[0] == '\0' || strcmp(alias, target) == 0)
        return -EINVAL;
    if (strlen(alias) >= sizeof(a->name) || strlen(target) >= sizeof(a->target))
        return -ENAMETOOLONG;

    a = (struct alias *)alias_find(table, alias, strlen(alias));
    if (a == NULL) {
        if (table->n_aliases == table->cap_aliases)
            table->aliases =
                grow(table->aliases, &table->cap_aliases, sizeof(struct alias));
        a = &table->aliases[table->n_aliases++];
        snprintf(a->name, sizeof(a->name), "%s", alias);
    }
    snprintf(a->target, sizeof(a->target), "%s", target);
    return 0;
}

int table_provider_add(price_table_t *table, const char *id,
                       clause_t *model_match)
{
    struct provider *p;

    if (table->n_providers == table->cap_providers)
        table->providers = grow(table->providers, &table->cap_providers,
                                sizeof(struct provider));
    p = &table->providers[table->n_providers];
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->model_match = model_match;
    return (int)table->n_providers++;
}

void table_rule_add(price_table_t *table, int provider, clause_t *match,
                    const char *target)
{
    struct rule *r;

    if (table->n_rules == table->cap_rules)
        table->rules =
            grow(table->rules, &table->cap_rules, sizeof(struct rule));
    r = &table->rules[table->n_rules++];
    r->provider = provider;
    r->match = match;
    snprintf(r->target, sizeof(r->target), "%s", target);
}

static bool digits_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* "YYYYMMDD" in 20xx with a month and day that could be real. */
static bool date_plausible(const char ymd[8])
{
    int month = (ymd[4] - '0') * 10 + (ymd[5] - '0');
    int day = (ymd[6] - '0') * 10 + (ymd[7] - '0');

    return digits_only(ymd, 8) && ymd[0] == '2' && ymd[1] == '0' &&
           month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/*
 * The length of name without a trailing "-YYYY-MM-DD", "-YYYYMMDD" or
 * "@YYYYMMDD" (Vertex), or len when it has none. Shorter forms ("-0613",
 * "-09-2025") are left alone: they are too easy to confuse with version
 * numbers.
 */
static size_t date_suffix_strip(const char *name, size_t len)
{
    char ymd[8];

    if (len > 11 && name[len - 11] == '-' && name[len - 6] == '-' &&
        name[len - 3] == '-') {
        const char *d = name + len - 10;

        memcpy(ymd, d, 4);
        memcpy(ymd + 4, d + 5, 2);
        memcpy(ymd + 6, d + 8, 2);
        if (date_plausible(ymd))
            return len - 11;
    }
    if (len > 9 && (name[len - 9] == '-' || name[len - 9] == '@')) {
        memcpy(ymd, name + len - 8, 8);
        if (date_plausible(ymd))
            return len - 9;
    }
    return len;
}

static const price_t *resolve(const price_table_t *table, const char *name,
                              size_t len, int64_t at, int depth);

/* Rule 1 or 2 for one form of the name: the entry, else its alias. */
static const price_t *exact_or_alias(const price_table_t *table,
                                     const char *name, size_t len, int64_t at,
                                     int depth)
{
    const price_t *price = find_exact(table, name, len, at);
    const struct alias *a;

    if (price != NULL || depth >= ALIAS_DEPTH_MAX)
        return price;
    a = alias_find(table, name, len);
    if (a == NULL)
        return NULL;
    return resolve(table, a->target, strlen(a->target), at, depth + 1);
}

/* The match rules of one provider (or of all, with provider -1). */
static const price_t *rules_try(const price_table_t *table, int provider,
                                const char *name, int64_t at)
{
    for (size_t i = 0; i < table->n_rules; i++) {
        const struct rule *r = &table->rules[i];
        const price_t *price;

        if (provider >= 0 && r->provider != provider)
            continue;
        if (!clause_match(r->match, name))
            continue;
        price = find_exact(table, r->target, strlen(r->target), at);
        if (price != NULL)
            return price;
    }
    return NULL;
}

/* Rule 5. The provider a prefix names goes first, then the providers
 * that claim the name (genai-prices' own provider search), then all. */
static const price_t *rules_resolve(const price_table_t *table,
                                    const char *name, const char *bare,
                                    int64_t at)
{
    const price_t *price = NULL;
    size_t prefix = bare != name ? (size_t)(bare - name - 1) : 0;

    for (size_t i = 0; price == NULL && i < table->n_providers; i++) {
        const struct provider *p = &table->providers[i];

        if (prefix > 0 && strlen(p->id) == prefix &&
            memcmp(p->id, name, prefix) == 0)
            price = rules_try(table, (int)i, bare, at);
    }
    for (size_t i = 0; price == NULL && i < table->n_providers; i++) {
        const struct provider *p = &table->providers[i];

        if (p->model_match != NULL && clause_match(p->model_match, bare))
            price = rules_try(table, (int)i, bare, at);
    }
    if (price == NULL)
        price = rules_try(table, -1, name, at);
    if (price == NULL && bare != name)
        price = rules_try(table, -1, bare, at);
    return price;
}

static const price_t *resolve(const price_table_t *table, const char *name,
                              size_t len, int64_t at, int depth)
{
    char buf[sizeof(((price_t *)0)->model)];
    const price_t *price;
    const char *slash, *bare;
    size_t bare_len, undated;

    if (len == 0 || len >= sizeof(buf))
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if ((price = exact_or_alias(table, buf, len, at, depth)) != NULL)
        return price;

    slash = strchr(buf, '/');
    bare = slash != NULL ? slash + 1 : buf;
    bare_len = len - (size_t)(bare - buf);
    if (bare != buf &&
        (price = exact_or_alias(table, bare, bare_len, at, depth)) != NULL)
        return price;

    undated = date_suffix_strip(buf, len);
    if (undated < len &&
        (price = exact_or_alias(table, buf, undated, at, depth)) != NULL)
        return price;
    undated = date_suffix_strip(bare, bare_len);
    if (bare != buf && undated < bare_len &&
        (price = exact_or_alias(table, bare, undated, at, depth)) != NULL)
        return price;
    return rules_resolve(table, buf, bare, at);
}

const price_t *billing_lookup_at(const price_table_t *table, const char *model,
                                 int64_t at)
{
    if (table == NULL || model == NULL)
        return NULL;
    return resolve(table, model, strlen(model), at, 0);
}

const price_t *billing_lookup(const price_table_t *table, const char *model)
{
    return billing_lookup_at(table, model, (int64_t)time(NULL));
}

size_t billing_table_size(const price_table_t *table)
{
    return table != NULL ? table->count : 0;
}

const price_t *billing_table_at(const price_table_t *table, size_t i)
{
    if (table == NULL || i >= table->count)
        return NULL;
    return &table->entries[i];
}

bool table_entry_in_force(const price_t *price, int64_t at)
{
    return entry_in_force(price, at);
}

const price_t *table_name_first(const price_table_t *table, const char *name)
{
    uint32_t link = chain_head(table, name, strlen(name));

    return link != 0 ? &table->entries[link - 1] : NULL;
}

const price_t *table_name_next(const price_table_t *table, const price_t *price)
{
    uint32_t link = table->links[price - table->entries].next;

    return link != 0 ? &table->entries[link - 1] : NULL;
}

const price_t *table_name_pick(const price_table_t *table, const char *name,
                               int64_t at)
{
    return find_exact(table, name, strlen(name), at);
}
