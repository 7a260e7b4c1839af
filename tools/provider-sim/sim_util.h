/*
 * Small helpers the provider simulator's modules share: allocation that
 * aborts on exhaustion, FNV-1a hashing, a set of 64-bit hashes, UTF-8
 * validation and base64 for the request journal.
 */
#ifndef PROVIDER_SIM_UTIL_H
#define PROVIDER_SIM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* malloc/calloc/realloc/strndup that print a message and abort on OOM. */
void *util_xmalloc(size_t size);
void *util_xcalloc(size_t count, size_t size);
void *util_xrealloc(void *ptr, size_t size);
char *util_xstrndup(const char *text, size_t len);

/* 64-bit FNV-1a over len bytes, continuing from seed (use UTIL_FNV_SEED). */
#define UTIL_FNV_SEED UINT64_C(0xcbf29ce484222325)
uint64_t util_hash(uint64_t seed, const void *bytes, size_t len);

/* Mixes a 64-bit state into a well-spread value (splitmix64 step). */
uint64_t util_mix(uint64_t *state);

/*
 * A growable set of non-zero 64-bit hashes (open addressing). The caller
 * owns the struct; util_set_free releases its table. When `cap` entries
 * are reached the set is emptied before inserting, so memory stays bounded.
 */
struct util_set {
    uint64_t *slots;
    size_t nslots;
    size_t count;
    size_t cap;
};

void util_set_init(struct util_set *set, size_t cap);
bool util_set_has(const struct util_set *set, uint64_t hash);
void util_set_add(struct util_set *set, uint64_t hash);
void util_set_clear(struct util_set *set);
void util_set_free(struct util_set *set);

/* True when the len bytes are well-formed UTF-8. */
bool util_utf8_valid(const char *text, size_t len);

struct json_object;

/* A request refused the way OpenAI refuses it (chat, responses,
 * embeddings): status 400, type invalid_request_error. */
struct sim_rejection {
    int status;
    const char *type;
    const char *code;
    char param[64];
    char message[256];
};

/* Fills rej for a 400 naming param (may be NULL) and code; returns
 * -EINVAL, for `return util_reject(...)`. */
int util_reject(struct sim_rejection *rej, const char *param, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The member, or NULL when absent or null. */
struct json_object *util_member(struct json_object *obj, const char *key);

/* Base64 of len bytes as a NUL-terminated string the caller frees. */
char *util_base64(const unsigned char *bytes, size_t len);

#endif
