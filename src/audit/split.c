/*
 * The audit's building blocks: a bounded hash map, a table of recent
 * hashes, and the splitters that cut a file into records (CSV rows, JSON
 * values) without ever holding more than one record.
 */
#include "audit/internal.h"
#include "util/arena.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_CAP (64u << 20) /* one record larger than this is cut */

static size_t slot_of(const amap_t *map, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
           (map->n_slots - 1);
}

void amap_init(amap_t *map, size_t elem_size, size_t max)
{
    memset(map, 0, sizeof(*map));
    map->elem_size = elem_size;
    map->max = max;
    map->n_slots = 64;
    map->keys = calloc(map->n_slots, sizeof(*map->keys));
    map->slots = calloc(map->n_slots, sizeof(*map->slots));
    if (map->keys == NULL || map->slots == NULL)
        die_oom();
}

void amap_free(amap_t *map)
{
    free(map->keys);
    free(map->slots);
    free(map->elems);
    memset(map, 0, sizeof(*map));
}

static void rehash(amap_t *map)
{
    size_t old = map->n_slots;
    uint64_t *keys = map->keys;
    uint32_t *slots = map->slots;

    map->n_slots = old * 2;
    map->keys = calloc(map->n_slots, sizeof(*map->keys));
    map->slots = calloc(map->n_slots, sizeof(*map->slots));
    if (map->keys == NULL || map->slots == NULL)
        die_oom();
    for (size_t i = 0; i < old; i++) {
        size_t s;
        if (keys[i] == 0)
            continue;
        for (s = slot_of(map, keys[i]); map->keys[s] != 0;)
            s = (s + 1) & (map->n_slots - 1);
        map->keys[s] = keys[i];
        map->slots[s] = slots[i];
    }
    free(keys);
    free(slots);
}

static void *append(amap_t *map, size_t s, uint64_t key)
{
    void *elem;

    if (map->n == map->cap) {
        map->cap = map->cap == 0 ? 16 : map->cap * 2;
        map->elems = realloc(map->elems, map->cap * map->elem_size);
        if (map->elems == NULL)
            die_oom();
    }
    elem = map->elems + map->n * map->elem_size;
    memset(elem, 0, map->elem_size);
    map->keys[s] = key;
    map->slots[s] = (uint32_t)++map->n;
    return elem;
}

void *amap_get(amap_t *map, uint64_t key, bool create)
{
    size_t s;

    if (key == 0)
        key = 1;
    for (s = slot_of(map, key); map->keys[s] != 0;
         s = (s + 1) & (map->n_slots - 1))
        if (map->keys[s] == key)
            return map->elems + (map->slots[s] - 1) * map->elem_size;
    if (!create || map->n >= map->max)
        return NULL;
    if ((map->n + 1) * 2 > map->n_slots) {
        rehash(map);
        return amap_get(map, key, create);
    }
    return append(map, s, key);
}

void *amap_at(const amap_t *map, size_t i)
{
    return i < map->n ? map->elems + i * map->elem_size : NULL;
}

uint64_t amap_key(const amap_t *map, size_t i)
{
    for (size_t s = 0; s < map->n_slots; s++)
        if (map->slots[s] == i + 1)
            return map->keys[s];
    return 0;
}

bool recent_seen(recent_t *recent, uint64_t hash, int64_t at, int64_t *prev_at)
{
    size_t s = (size_t)(hash >> 40) & (RECENT_SLOTS - 1);
    bool seen = recent->hash[s] == hash && hash != 0;

    if (seen && prev_at != NULL)
        *prev_at = recent->at[s];
    recent->hash[s] = hash;
    recent->at[s] = at;
    return seen;
}

/* Appends c to the record buffer, growing it up to RECORD_CAP. */
static bool push(char **buf, size_t *cap, size_t *len, int c)
{
    if (*len + 2 > *cap) {
        if (*cap >= RECORD_CAP)
            return false;
        *cap = *cap == 0 ? 4096 : *cap * 2;
        *buf = realloc(*buf, *cap);
        if (*buf == NULL)
            die_oom();
    }
    (*buf)[(*len)++] = (char)c;
    return true;
}

/* Ends the current field at pos and starts the next. */
static bool csv_field(csv_t *csv, size_t start, size_t end)
{
    if (csv->n >= CSV_MAX_FIELDS)
        return false;
    csv->fields[csv->n] = (char *)(uintptr_t)start;
    csv->lens[csv->n++] = end - start;
    return true;
}

static void csv_fix(csv_t *csv)
{
    for (int i = 0; i < csv->n; i++) {
        size_t off = (size_t)(uintptr_t)csv->fields[i];
        csv->fields[i] = csv->buf + off;
        csv->fields[i][csv->lens[i]] = '\0';
    }
}

int csv_next(csv_t *csv, FILE *f)
{
    size_t len = 0, start = 0;
    bool quoted = false, ok = true;
    int c;

    csv->n = 0;
    csv->line = csv->next_line == 0 ? 1 : csv->next_line;
    csv->next_line = csv->line;
    if ((c = getc(f)) == EOF)
        return 0;
    for (; c != EOF; c = getc(f)) {
        if (c == '\n')
            csv->next_line++;
        if (quoted) {
            if (c == '"') {
                int d = getc(f);
                if (d != '"') {
                    quoted = false;
                    ungetc(d, f);
                    continue;
                }
            }
            ok = ok && push(&csv->buf, &csv->cap, &len, c);
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',' || c == '\n') {
            ok = ok && push(&csv->buf, &csv->cap, &len, '\0');
            ok = ok && csv_field(csv, start, len - 1);
            start = len;
            if (c == '\n')
                break;
        } else if (c != '\r') {
            ok = ok && push(&csv->buf, &csv->cap, &len, c);
        }
    }
    if (c == EOF && (len > start || csv->n == 0)) {
        ok = ok && push(&csv->buf, &csv->cap, &len, '\0');
        ok = ok && csv_field(csv, start, len - 1);
    }
    if (!ok || quoted)
        return -EINVAL;
    csv_fix(csv);
    return 1;
}

void csv_free(csv_t *csv)
{
    free(csv->buf);
    memset(csv, 0, sizeof(*csv));
}

int csv_column(const csv_t *header, const char *name)
{
    for (int i = 0; i < header->n; i++)
        if (strcmp(header->fields[i], name) == 0)
            return i;
    return -1;
}

/* Skips whitespace and, at the top, the array's own brackets and commas.
 * Returns the first byte of the next value or EOF. */
static int jstream_skip(jstream_t *js, FILE *f)
{
    int c;

    while ((c = getc(f)) != EOF) {
        if (c == '\n')
            js->line++;
        if (isspace(c) || (js->in_array && c == ','))
            continue;
        if (!js->started && c == '[') {
            js->in_array = true;
            js->started = true;
            continue;
        }
        if (js->in_array && c == ']')
            continue;
        js->started = true;
        return c;
    }
    return EOF;
}

int jstream_next(jstream_t *js, FILE *f, char **buf, size_t *cap, size_t *len,
                 int64_t *line)
{
    int c, depth = 0;
    bool in_str = false, esc = false;

    if (js->line == 0)
        js->line = 1;
    *len = 0;
    if ((c = jstream_skip(js, f)) == EOF)
        return 0;
    *line = js->line;
    for (; c != EOF; c = getc(f)) {
        if (c == '\n')
            js->line++;
        if (!push(buf, cap, len, c))
            return 0;
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            break;
    }
    (*buf)[*len] = '\0';
    return 1;
}

void audit_copy(char *dst, size_t dstlen, const char *s)
{
    size_t n = s == NULL ? 0 : strnlen(s, dstlen - 1);

    /* Never cut a UTF-8 character in two: reports must stay UTF-8. */
    if (n == dstlen - 1 && s[n] != '\0')
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;

    memcpy(dst, s == NULL ? "" : s, n);
    dst[n] = '\0';
}
