/*
 * Bounded journals of requests and answers for the simulator's
 * introspection endpoints.
 */
#include "sim_journal.h"

#include <stdlib.h>

#include "sim_server.h"
#include "sim_util.h"

void journal_init(struct journal *journal, size_t max_items, size_t max_bytes)
{
    journal->items = NULL;
    journal->capacity = 0;
    journal->first = 0;
    journal->count = 0;
    journal->max_items = max_items ? max_items : 1;
    journal->bytes = 0;
    journal->max_bytes = max_bytes;
    journal->dropped = 0;
}

static void drop_oldest(struct journal *journal)
{
    struct journal_item *item = &journal->items[journal->first];

    free(item->json);
    journal->bytes -= item->len;
    journal->first = (journal->first + 1) % journal->capacity;
    journal->count--;
    journal->dropped++;
}

/* Doubles the ring, copying records so the oldest lands at index 0. */
static void grow(struct journal *journal)
{
    size_t capacity = journal->capacity ? journal->capacity * 2 : 64;
    struct journal_item *items;

    if (capacity > journal->max_items)
        capacity = journal->max_items;
    items = util_xcalloc(capacity, sizeof(*items));
    for (size_t i = 0; i < journal->count; i++)
        items[i] = journal->items[(journal->first + i) % journal->capacity];

    free(journal->items);
    journal->items = items;
    journal->capacity = capacity;
    journal->first = 0;
}

void journal_push(struct journal *journal, struct json_object *record)
{
    size_t len, slot;
    const char *json =
        json_object_to_json_string_length(record, SERVER_JSON_FLAGS, &len);
    char *copy = util_xstrndup(json, len);

    json_object_put(record);
    while (journal->count > 0 && journal->bytes + len > journal->max_bytes)
        drop_oldest(journal);

    if (journal->count == journal->capacity &&
        journal->capacity < journal->max_items)
        grow(journal);
    if (journal->count == journal->capacity)
        drop_oldest(journal);

    slot = (journal->first + journal->count) % journal->capacity;
    journal->items[slot].json = copy;
    journal->items[slot].len = len;
    journal->count++;
    journal->bytes += len;
}

void journal_write(const struct journal *journal, struct evbuffer *out)
{
    evbuffer_add(out, "[", 1);
    for (size_t i = 0; i < journal->count; i++) {
        const struct journal_item *item =
            &journal->items[(journal->first + i) % journal->capacity];

        if (i > 0)
            evbuffer_add(out, ",", 1);
        evbuffer_add(out, item->json, item->len);
    }
    evbuffer_add(out, "]", 1);
}

void journal_clear(struct journal *journal)
{
    while (journal->count > 0)
        drop_oldest(journal);
    journal->first = 0;
    journal->dropped = 0;
}

void journal_free(struct journal *journal)
{
    journal_clear(journal);
    free(journal->items);
    journal->items = NULL;
    journal->capacity = 0;
}
