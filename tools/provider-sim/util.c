/*
 * Helpers shared by the provider simulator: checked allocation, hashing,
 * the hash set behind prompt-cache emulation, UTF-8 and base64.
 */
#include "sim_util.h"

#include <json-c/json.h>

#include <errno.h>

#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_oom(size_t size)
{
    fprintf(stderr, "provider-sim: out of memory (%zu bytes)\n", size);
    abort();
}

void *util_xmalloc(size_t size)
{
    void *ptr = malloc(size ? size : 1);

    if (ptr == NULL)
        die_oom(size);
    return ptr;
}

void *util_xcalloc(size_t count, size_t size)
{
    void *ptr = calloc(count ? count : 1, size ? size : 1);

    if (ptr == NULL)
        die_oom(count * size);
    return ptr;
}

void *util_xrealloc(void *ptr, size_t size)
{
    void *grown = realloc(ptr, size ? size : 1);

    if (grown == NULL)
        die_oom(size);
    return grown;
}

char *util_xstrndup(const char *text, size_t len)
{
    char *copy = util_xmalloc(len + 1);

    memcpy(copy, text, len);
    copy[len] = '\0';
    return copy;
}

uint64_t util_hash(uint64_t seed, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    uint64_t hash = seed;

    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= UINT64_C(0x100000001b3);
    }
    return hash;
}

uint64_t util_mix(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void util_set_init(struct util_set *set, size_t cap)
{
    set->nslots = 64;
    set->slots = util_xcalloc(set->nslots, sizeof(*set->slots));
    set->count = 0;
    set->cap = cap;
}

/* Zero marks an empty slot, so a zero hash is stored as one. */
static uint64_t nonzero(uint64_t hash)
{
    return hash ? hash : 1;
}

bool util_set_has(const struct util_set *set, uint64_t hash)
{
    size_t mask = set->nslots - 1;

    hash = nonzero(hash);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        if (set->slots[i] == 0)
            return false;
        if (set->slots[i] == hash)
            return true;
    }
}

static void set_insert(uint64_t *slots, size_t nslots, uint64_t hash)
{
    size_t mask = nslots - 1;
    size_t i = hash & mask;

    while (slots[i] != 0 && slots[i] != hash)
        i = (i + 1) & mask;
    slots[i] = hash;
}

static void set_grow(struct util_set *set)
{
    size_t nslots = set->nslots * 2;
    uint64_t *slots = util_xcalloc(nslots, sizeof(*slots));

    for (size_t i = 0; i < set->nslots; i++) {
        if (set->slots[i] != 0)
            set_insert(slots, nslots, set->slots[i]);
    }
    free(set->slots);
    set->slots = slots;
    set->nslots = nslots;
}

void util_set_add(struct util_set *set, uint64_t hash)
{
    hash = nonzero(hash);
    if (util_set_has(set, hash))
        return;

    if (set->count >= set->cap)
        util_set_clear(set);

    if ((set->count + 1) * 2 > set->nslots)
        set_grow(set);

    set_insert(set->slots, set->nslots, hash);
    set->count++;
}

void util_set_clear(struct util_set *set)
{
    memset(set->slots, 0, set->nslots * sizeof(*set->slots));
    set->count = 0;
}

void util_set_free(struct util_set *set)
{
    free(set->slots);
    set->slots = NULL;
    set->nslots = 0;
    set->count = 0;
}

/* Length of the UTF-8 sequence starting at lead byte c, 0 if invalid. */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

static bool utf8_seq_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return false;
    }

    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if (n == 3 && p[0] == 0xe0 && p[1] < 0xa0)
        return false;
    if (n == 3 && p[0] == 0xed && p[1] >= 0xa0)
        return false;
    if (n == 4 && p[0] == 0xf0 && p[1] < 0x90)
        return false;
    if (n == 4 && p[0] == 0xf4 && p[1] >= 0x90)
        return false;
    return true;
}

bool util_utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_seq_len(p[i]);

        if (n == 0 || n > len - i || !utf8_seq_ok(p + i, n))
            return false;
        i += n;
    }
    return true;
}

char *util_base64(const unsigned char *bytes, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = util_xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        size_t left = len - i;

        if (left > 1)
            v |= (uint32_t)bytes[i + 1] << 8;
        if (left > 2)
            v |= bytes[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

int util_reject(struct sim_rejection *rej, const char *param, const char *code,
                const char *fmt, ...)
{
    va_list ap;

    rej->status = 400;
    rej->type = "invalid_request_error";
    rej->code = code;
    snprintf(rej->param, sizeof(rej->param), "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(rej->message, sizeof(rej->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

struct json_object *util_member(struct json_object *obj, const char *key)
{
    struct json_object *value;

    if (!json_object_object_get_ex(obj, key, &value) ||
        json_object_is_type(value, json_type_null))
        return NULL;
    return value;
}
