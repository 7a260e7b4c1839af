/*
 * Hashed sets of byte strings for the trimmer: texts and paragraphs seen
 * earlier in a conversation, and the words the risk check compares.
 */
#include "context/context_int.h"

#include <string.h>

uint64_t ctx_hash(const char *s, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static void slots_alloc(ctx_set_t *set, size_t size)
{
    set->slots = arena_alloc(set->arena, size * sizeof(ctx_set_entry_t));
    memset(set->slots, 0, size * sizeof(ctx_set_entry_t));
    set->mask = size - 1;
}

void ctx_set_init(arena_t *arena, ctx_set_t *set, size_t hint)
{
    size_t size = 16;

    while (size < hint * 2)
        size *= 2;
    set->arena = arena;
    set->count = 0;
    slots_alloc(set, size);
}

static size_t slot_find(const ctx_set_t *set, const char *text, size_t len,
                        uint64_t hash)
{
    size_t i = (size_t)hash & set->mask;

    for (; set->slots[i].text != NULL; i = (i + 1) & set->mask) {
        const ctx_set_entry_t *e = &set->slots[i];

        if (e->hash == hash && e->len == len && memcmp(e->text, text, len) == 0)
            break;
    }
    return i;
}

/* Doubles the table; the old slots stay in the arena until it ends. */
static void set_grow(ctx_set_t *set)
{
    ctx_set_entry_t *old = set->slots;
    size_t size = set->mask + 1;

    slots_alloc(set, size * 2);
    for (size_t i = 0; i < size; i++)
        if (old[i].text != NULL)
            set->slots[slot_find(set, old[i].text, old[i].len, old[i].hash)] =
                old[i];
}

bool ctx_set_has(ctx_set_t *set, const char *text, size_t len, uint64_t hash,
                 bool add)
{
    size_t i = slot_find(set, text, len, hash);

    if (set->slots[i].text != NULL)
        return true;
    if (!add)
        return false;
    set->slots[i] = (ctx_set_entry_t){hash, text, len};
    if (++set->count * 2 > set->mask + 1)
        set_grow(set);
    return false;
}
