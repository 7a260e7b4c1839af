/*
 * Replay tables for the simulator: a chained hash table of recorded
 * answers, filled at start from RouteLLM's CSV or from JSONL.
 */
#include "sim_replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "sim_util.h"

#define RESPONSE_SUFFIX "_response"
#define MAX_REPLAY_FILE (1024L * 1024 * 1024)

struct entry {
    uint64_t hash;
    char *model;
    char *prompt;
    size_t prompt_len;
    char *answer;
    size_t answer_len;
    struct entry *next;
};

struct replay {
    struct entry **buckets;
    size_t nbuckets;
    size_t count;
};

/* One parsed CSV record: owned field strings and their lengths. */
struct record {
    char **fields;
    size_t *lens;
    size_t count;
};

struct replay *replay_new(void)
{
    struct replay *replay = util_xcalloc(1, sizeof(*replay));

    replay->nbuckets = 256;
    replay->buckets = util_xcalloc(replay->nbuckets, sizeof(struct entry *));
    return replay;
}

static void entry_free(struct entry *entry)
{
    free(entry->model);
    free(entry->prompt);
    free(entry->answer);
    free(entry);
}

void replay_free(struct replay *replay)
{
    if (replay == NULL)
        return;

    for (size_t i = 0; i < replay->nbuckets; i++) {
        struct entry *entry = replay->buckets[i];

        while (entry != NULL) {
            struct entry *next = entry->next;

            entry_free(entry);
            entry = next;
        }
    }
    free(replay->buckets);
    free(replay);
}

static uint64_t key_hash(const char *model, const char *prompt,
                         size_t prompt_len)
{
    uint64_t hash = util_hash(UTIL_FNV_SEED, model, strlen(model) + 1);

    return util_hash(hash, prompt, prompt_len);
}

static struct entry **slot_of(const struct replay *replay, uint64_t hash,
                              const char *model, const char *prompt,
                              size_t prompt_len)
{
    struct entry **slot = &replay->buckets[hash & (replay->nbuckets - 1)];

    for (; *slot != NULL; slot = &(*slot)->next) {
        struct entry *e = *slot;

        if (e->hash == hash && e->prompt_len == prompt_len &&
            strcmp(e->model, model) == 0 &&
            memcmp(e->prompt, prompt, prompt_len) == 0)
            break;
    }
    return slot;
}

static void grow(struct replay *replay)
{
    size_t nbuckets = replay->nbuckets * 2;
    struct entry **buckets = util_xcalloc(nbuckets, sizeof(*buckets));

    for (size_t i = 0; i < replay->nbuckets; i++) {
        struct entry *entry = replay->buckets[i];

        while (entry != NULL) {
            struct entry *next = entry->next;
            size_t b = entry->hash & (nbuckets - 1);

            entry->next = buckets[b];
            buckets[b] = entry;
            entry = next;
        }
    }
    free(replay->buckets);
    replay->buckets = buckets;
    replay->nbuckets = nbuckets;
}

static void insert(struct replay *replay, const char *model, const char *prompt,
                   size_t prompt_len, const char *answer, size_t answer_len)
{
    uint64_t hash = key_hash(model, prompt, prompt_len);
    struct entry **slot = slot_of(replay, hash, model, prompt, prompt_len);
    struct entry *entry = *slot;

    if (entry != NULL) {
        free(entry->answer);
        entry->answer = util_xstrndup(answer, answer_len);
        entry->answer_len = answer_len;
        return;
    }

    entry = util_xcalloc(1, sizeof(*entry));
    entry->hash = hash;
    entry->model = util_xstrndup(model, strlen(model));
    entry->prompt = util_xstrndup(prompt, prompt_len);
    entry->prompt_len = prompt_len;
    entry->answer = util_xstrndup(answer, answer_len);
    entry->answer_len = answer_len;
    *slot = entry;

    if (++replay->count > replay->nbuckets)
        grow(replay);
}

const char *replay_find(const struct replay *replay, const char *model,
                        const char *prompt, size_t prompt_len, size_t *len)
{
    uint64_t hash = key_hash(model, prompt, prompt_len);
    struct entry *entry = *slot_of(replay, hash, model, prompt, prompt_len);

    if (entry == NULL)
        return NULL;
    *len = entry->answer_len;
    return entry->answer;
}

size_t replay_count(const struct replay *replay)
{
    return replay->count;
}

static int read_file(const char *path, char **out, size_t *outlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long size;
    int rc = 0;

    if (fp == NULL)
        return -errno;

    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 ||
        size > MAX_REPLAY_FILE || fseek(fp, 0, SEEK_SET) != 0) {
        rc = errno ? -errno : -EFBIG;
        goto out_close;
    }

    buf = util_xmalloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        free(buf);
        rc = -EIO;
        goto out_close;
    }
    buf[size] = '\0';
    *out = buf;
    *outlen = (size_t)size;

out_close:
    fclose(fp);
    return rc;
}

static void record_push(struct record *rec, char *field, size_t len)
{
    rec->fields =
        util_xrealloc(rec->fields, (rec->count + 1) * sizeof(*rec->fields));
    rec->lens = util_xrealloc(rec->lens, (rec->count + 1) * sizeof(size_t));
    rec->fields[rec->count] = field;
    rec->lens[rec->count] = len;
    rec->count++;
}

static void record_clear(struct record *rec)
{
    for (size_t i = 0; i < rec->count; i++)
        free(rec->fields[i]);
    free(rec->fields);
    free(rec->lens);
    rec->fields = NULL;
    rec->lens = NULL;
    rec->count = 0;
}

/*
 * Reads one field starting at *pos: quoted (doubled quotes unescaped,
 * newlines kept) or bare. Leaves *pos on the delimiter. -EINVAL when a
 * quoted field never closes or is followed by junk.
 */
static int csv_field(const char *buf, size_t len, size_t *pos, char **out,
                     size_t *outlen)
{
    size_t i = *pos, o = 0;
    char *field;

    if (i >= len || buf[i] != '"') {
        size_t start = i;

        while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r')
            i++;
        *out = util_xstrndup(buf + start, i - start);
        *outlen = i - start;
        *pos = i;
        return 0;
    }

    field = util_xmalloc(len - i + 1);
    for (i++; i < len; i++) {
        if (buf[i] == '"' && i + 1 < len && buf[i + 1] == '"') {
            field[o++] = '"';
            i++;
        } else if (buf[i] == '"') {
            break;
        } else {
            field[o++] = buf[i];
        }
    }
    field[o] = '\0';
    if (i >= len || (i + 1 < len && buf[i + 1] != ',' && buf[i + 1] != '\n' &&
                     buf[i + 1] != '\r')) {
        free(field);
        return -EINVAL;
    }
    *out = field;
    *outlen = o;
    *pos = i + 1;
    return 0;
}

/* Reads one record; returns 1 when one was read, 0 at end, or -EINVAL. */
static int csv_record(const char *buf, size_t len, size_t *pos,
                      struct record *rec)
{
    char *field;
    size_t flen;
    int rc;

    if (*pos >= len)
        return 0;

    for (;;) {
        rc = csv_field(buf, len, pos, &field, &flen);
        if (rc < 0)
            return rc;
        record_push(rec, field, flen);
        if (*pos < len && buf[*pos] == ',') {
            (*pos)++;
            continue;
        }
        break;
    }

    if (*pos < len && buf[*pos] == '\r')
        (*pos)++;
    if (*pos < len && buf[*pos] == '\n')
        (*pos)++;
    return 1;
}

/* Finds the prompt column and the model of every response column. */
static int csv_header(struct record *head, size_t *prompt_col, char **models)
{
    size_t suffix = strlen(RESPONSE_SUFFIX);
    bool found = false;

    for (size_t i = 0; i < head->count; i++) {
        const char *name = head->fields[i];
        size_t n = head->lens[i];

        models[i] = NULL;
        if (strcmp(name, "prompt") == 0) {
            *prompt_col = i;
            found = true;
        } else if (n > suffix &&
                   strcmp(name + n - suffix, RESPONSE_SUFFIX) == 0) {
            models[i] = util_xstrndup(name, n - suffix);
        }
    }
    return found ? 0 : -EINVAL;
}

static void csv_insert_row(struct replay *replay, struct record *row,
                           size_t prompt_col, char **models, size_t ncols)
{
    if (row->count <= prompt_col)
        return;

    for (size_t i = 0; i < ncols && i < row->count; i++) {
        if (models[i] == NULL)
            continue;
        insert(replay, models[i], row->fields[prompt_col],
               row->lens[prompt_col], row->fields[i], row->lens[i]);
    }
}

static int csv_rows(struct replay *replay, const char *buf, size_t len,
                    char *err, size_t errlen)
{
    struct record head = {0}, row = {0};
    size_t pos = 0, prompt_col = 0, line = 1;
    char **models = NULL;
    int rc;

    if (csv_record(buf, len, &pos, &head) != 1)
        goto out_header;
    models = util_xcalloc(head.count, sizeof(*models));
    if (csv_header(&head, &prompt_col, models) < 0)
        goto out_header;

    while ((rc = csv_record(buf, len, &pos, &row)) == 1) {
        line++;
        csv_insert_row(replay, &row, prompt_col, models, head.count);
        record_clear(&row);
    }
    if (rc < 0)
        snprintf(err, errlen, "bad quoting in record %zu", line + 1);
    goto out_free;

out_header:
    rc = -EINVAL;
    snprintf(err, errlen, "header has no `prompt` column");
out_free:
    for (size_t i = 0; models != NULL && i < head.count; i++)
        free(models[i]);
    free(models);
    record_clear(&row);
    record_clear(&head);
    return rc;
}

int replay_load_csv(struct replay *replay, const char *path, char *err,
                    size_t errlen)
{
    size_t len;
    char *buf;
    int rc;

    rc = read_file(path, &buf, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }

    rc = csv_rows(replay, buf, len, err, errlen);
    free(buf);
    return rc;
}

static const char *string_field(struct json_object *obj, const char *key,
                                size_t *len)
{
    struct json_object *value;

    if (!json_object_object_get_ex(obj, key, &value) ||
        !json_object_is_type(value, json_type_string))
        return NULL;
    *len = (size_t)json_object_get_string_len(value);
    return json_object_get_string(value);
}

static int jsonl_line(struct replay *replay, const char *line, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;
    const char *model, *prompt, *answer;
    size_t mlen, plen, alen;
    int rc = -EINVAL;

    obj = json_tokener_parse_ex(tok, line, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
        goto out_free;

    model = string_field(obj, "model", &mlen);
    prompt = string_field(obj, "prompt", &plen);
    answer = string_field(obj, "response", &alen);
    if (model == NULL || prompt == NULL || answer == NULL ||
        memchr(model, '\0', mlen) != NULL)
        goto out_free;

    insert(replay, model, prompt, plen, answer, alen);
    rc = 0;

out_free:
    json_object_put(obj);
    json_tokener_free(tok);
    return rc;
}

static bool blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            return false;
    }
    return true;
}

int replay_load_jsonl(struct replay *replay, const char *path, char *err,
                      size_t errlen)
{
    size_t len, pos = 0, lineno = 0;
    char *buf;
    int rc;

    rc = read_file(path, &buf, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }

    while (pos < len && rc == 0) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

        lineno++;
        if (!blank(buf + pos, n) && n < INT32_MAX)
            rc = jsonl_line(replay, buf + pos, n);
        pos += n + 1;
    }
    if (rc < 0)
        snprintf(err, errlen,
                 "line %zu is not {\"model\",\"prompt\",\"response\"}", lineno);
    free(buf);
    return rc;
}
