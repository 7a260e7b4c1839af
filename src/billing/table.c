/*
 * The price table: entries in one array, found through an open-addressing
 * index of their names. Filled at start (built-in entries, imports, config)
 * and read on the event loop for every finished attempt.
 */
#include "billing/billing.h"
#include "util/arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN_SLOTS 64
#define TABLE_MIN_ENTRIES 32

struct price_table {
    price_t *entries; /* in the order they were first added */
    size_t count;
    size_t capacity;
    uint32_t *slots; /* entry index + 1; 0 marks an empty slot */
    size_t nslots;   /* a power of two, more than twice count */
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

price_table_t *billing_table_new_empty(void)
{
    price_table_t *table = zalloc(1, sizeof(*table));

    table->capacity = TABLE_MIN_ENTRIES;
    table->entries = zalloc(table->capacity, sizeof(price_t));
    table->nslots = TABLE_MIN_SLOTS;
    table->slots = zalloc(table->nslots, sizeof(uint32_t));
    return table;
}

void billing_table_free(price_table_t *table)
{
    if (table == NULL)
        return;
    free(table->entries);
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

static const price_t *find_exact(const price_table_t *table, const char *name,
                                 size_t len)
{
    size_t i;

    if (len >= sizeof(((price_t *)0)->model))
        return NULL;
    i = slot_find(table, name, len);
    if (table->slots[i] == 0)
        return NULL;
    return &table->entries[table->slots[i] - 1];
}

static void index_grow(price_table_t *table)
{
    free(table->slots);
    table->nslots *= 2;
    table->slots = zalloc(table->nslots, sizeof(uint32_t));

    for (size_t n = 0; n < table->count; n++) {
        const char *model = table->entries[n].model;
        size_t i = slot_find(table, model, strlen(model));

        table->slots[i] = (uint32_t)(n + 1);
    }
}

static void entries_grow(price_table_t *table)
{
    size_t capacity = table->capacity * 2;
    price_t *entries = realloc(table->entries, capacity * sizeof(price_t));

    if (entries == NULL)
        die_oom();
    table->entries = entries;
    table->capacity = capacity;
}

void billing_put(price_table_t *table, const price_t *price)
{
    price_t copy = *price;
    size_t len, i;

    copy.model[sizeof(copy.model) - 1] = '\0';
    copy.source[sizeof(copy.source) - 1] = '\0';
    len = strlen(copy.model);

    i = slot_find(table, copy.model, len);
    if (table->slots[i] != 0) {
        table->entries[table->slots[i] - 1] = copy;
        return;
    }

    if (table->count == table->capacity)
        entries_grow(table);
    table->entries[table->count++] = copy;
    table->slots[i] = (uint32_t)table->count;

    /* Keep the load under one half so probe runs stay short. */
    if (table->count * 2 > table->nslots)
        index_grow(table);
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
 * The length of name without a trailing "-YYYY-MM-DD" or "-YYYYMMDD", or
 * len when it has neither. Shorter forms ("-0613", "-09-2025") are left
 * alone: they are too easy to confuse with version numbers.
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
    if (len > 9 && name[len - 9] == '-') {
        memcpy(ymd, name + len - 8, 8);
        if (date_plausible(ymd))
            return len - 9;
    }
    return len;
}

/*
 * An exact entry always wins (a dated snapshot can have its own price,
 * BUG-06); only then are the provider prefix and the date taken off.
 */
const price_t *billing_lookup(const price_table_t *table, const char *model)
{
    const price_t *price;
    const char *slash, *bare;
    size_t len, bare_len, undated;

    if (table == NULL || model == NULL)
        return NULL;
    len = strlen(model);
    if ((price = find_exact(table, model, len)) != NULL)
        return price;

    slash = strchr(model, '/');
    bare = slash != NULL ? slash + 1 : model;
    bare_len = len - (size_t)(bare - model);
    if (bare != model && (price = find_exact(table, bare, bare_len)) != NULL)
        return price;

    undated = date_suffix_strip(model, len);
    if (undated < len && (price = find_exact(table, model, undated)) != NULL)
        return price;
    undated = date_suffix_strip(bare, bare_len);
    if (bare != model && undated < bare_len)
        return find_exact(table, bare, undated);
    return NULL;
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

int billing_price_init(price_t *price, const char *model, const char *source)
{
    memset(price, 0, sizeof(*price));
    price->input = PRICE_ABSENT;
    price->cached_input = PRICE_ABSENT;
    price->cache_write = PRICE_ABSENT;
    price->output = PRICE_ABSENT;
    price->reasoning_output = PRICE_ABSENT;
    price->audio_input = PRICE_ABSENT;
    price->audio_output = PRICE_ABSENT;
    price->tier_input = PRICE_ABSENT;
    price->tier_cached_input = PRICE_ABSENT;
    price->tier_cache_write = PRICE_ABSENT;
    price->tier_output = PRICE_ABSENT;
    snprintf(price->source, sizeof(price->source), "%s",
             source != NULL ? source : "");

    if (strlen(model) >= sizeof(price->model))
        return -ENAMETOOLONG;
    memcpy(price->model, model, strlen(model) + 1);
    return 0;
}
