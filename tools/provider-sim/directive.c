/*
 * Parses the usage-shaping `sim:` directives out of a user message. The
 * grammar is deliberately loose: a directive is `sim:` + a lower-case
 * key + `=` + a run of [A-Za-z0-9_.-], anywhere in the text.
 */
#include "sim_directive.h"

#include <string.h>

#define MARKER "sim:"

struct span {
    const char *at;
    size_t len;
};

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_value_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool span_is(struct span span, const char *word)
{
    return span.len == strlen(word) && memcmp(span.at, word, span.len) == 0;
}

/* A count clamped to DIRECTIVE_MAX_COUNT; -1 when not all digits. */
static int64_t parse_count(struct span value)
{
    int64_t n = 0;

    if (value.len == 0)
        return -1;
    for (size_t i = 0; i < value.len; i++) {
        if (value.at[i] < '0' || value.at[i] > '9')
            return -1;
        if (n <= DIRECTIVE_MAX_COUNT)
            n = n * 10 + (value.at[i] - '0');
    }
    return n > DIRECTIVE_MAX_COUNT ? DIRECTIVE_MAX_COUNT : n;
}

static void set_count(int64_t *field, struct span value)
{
    int64_t n = parse_count(value);

    if (n >= 0)
        *field = n;
}

static void set_word(char *field, size_t size, struct span value)
{
    if (value.len == 0 || value.len >= size)
        return;
    memcpy(field, value.at, value.len);
    field[value.len] = '\0';
}

static void apply(struct directives *dir, struct span key, struct span value)
{
    if (span_is(key, "input"))
        set_count(&dir->input, value);
    else if (span_is(key, "cache_read"))
        set_count(&dir->cache_read, value);
    else if (span_is(key, "cache_write"))
        set_count(&dir->cache_write, value);
    else if (span_is(key, "cache_write_1h"))
        set_count(&dir->cache_write_1h, value);
    else if (span_is(key, "reasoning"))
        set_count(&dir->reasoning, value);
    else if (span_is(key, "web_search"))
        set_count(&dir->web_search, value);
    else if (span_is(key, "service_tier"))
        set_word(dir->service_tier, sizeof(dir->service_tier), value);
    else if (span_is(key, "geo"))
        set_word(dir->geo, sizeof(dir->geo), value);
    else if (span_is(key, "tool"))
        set_word(dir->tool, sizeof(dir->tool), value);
    else if (span_is(key, "delta_usage"))
        dir->delta_full = span_is(value, "full");
    else if (span_is(key, "cache_split"))
        dir->no_cache_split = span_is(value, "none");
}

static void reset(struct directives *dir)
{
    memset(dir, 0, sizeof(*dir));
    dir->input = -1;
    dir->cache_read = -1;
    dir->cache_write = -1;
    dir->cache_write_1h = -1;
    dir->reasoning = -1;
    dir->web_search = -1;
}

void directives_parse(const char *text, size_t len, struct directives *dir)
{
    const char *end = text + len;
    const char *p = text;

    reset(dir);
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), MARKER, strlen(MARKER));
        struct span key, value;

        if (hit == NULL)
            break;
        key.at = hit + strlen(MARKER);
        for (p = key.at; p < end && is_key_char(*p); p++)
            ;
        key.len = (size_t)(p - key.at);
        if (p >= end || *p != '=')
            continue;
        value.at = ++p;
        while (p < end && is_value_char(*p))
            p++;
        value.len = (size_t)(p - value.at);
        apply(dir, key, value);
    }
    if (dir->web_search > DIRECTIVE_MAX_SEARCHES)
        dir->web_search = DIRECTIVE_MAX_SEARCHES;
}
