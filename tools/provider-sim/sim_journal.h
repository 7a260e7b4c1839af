/*
 * What the simulator saw and sent, kept for tests: a bounded log of JSON
 * records (requests received, answers sent) served by /_sim/requests and
 * /_sim/usage. The oldest records go first when a bound is reached.
 */
#ifndef PROVIDER_SIM_JOURNAL_H
#define PROVIDER_SIM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <json-c/json.h>

/* A record kept as compact JSON text: a json-c tree costs ten times more. */
struct journal_item {
    char *json;
    size_t len;
};

/* A ring of records; the struct is owned by the caller. */
struct journal {
    struct journal_item *items;
    size_t capacity; /* slots allocated */
    size_t first;    /* index of the oldest record */
    size_t count;
    size_t max_items;
    size_t bytes;
    size_t max_bytes;
    uint64_t dropped; /* records evicted since the last clear */
};

void journal_init(struct journal *journal, size_t max_items, size_t max_bytes);

/* Appends record serialized, and drops the caller's reference to it. */
void journal_push(struct journal *journal, struct json_object *record);

/* Writes every record as one JSON array, oldest first, into out. */
void journal_write(const struct journal *journal, struct evbuffer *out);

void journal_clear(struct journal *journal);
void journal_free(struct journal *journal);

#endif
