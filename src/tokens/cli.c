/*
 * `tollgate tokens`: counts the tokens of a text, or of a whole chat
 * request when the input is a JSON object with "messages".
 */
#include "tokens/tokens.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_MAX (1u << 30)

typedef struct cli_opts {
    const char *model;
    const char *encoding;
    const char *input;
    bool json;
} cli_opts_t;

static int opts_parse(int argc, char **argv, cli_opts_t *o)
{
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},
        {"encoding", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "m:e:jh", longs, NULL)) != -1) {
        if (c == 'm')
            o->model = optarg;
        else if (c == 'e')
            o->encoding = optarg;
        else if (c == 'j')
            o->json = true;
        else
            return -EINVAL;
    }
    if (optind != argc - 1)
        return -EINVAL;
    o->input = argv[optind];
    return 0;
}

/* Reads all of PATH ("-" is stdin) into a NUL-terminated buffer. */
static int input_read(const char *path, char **buf, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 1 << 16;
    size_t n = 0;
    int rc = 0;

    if (f == NULL)
        return -errno;
    *buf = malloc(cap);
    while (*buf != NULL && rc == 0) {
        n += fread(*buf + n, 1, cap - n - 1, f);
        if (ferror(f))
            rc = -EIO;
        else if (feof(f))
            break;
        else if (cap >= INPUT_MAX)
            rc = -EFBIG;
        else
            *buf = realloc(*buf, cap *= 2);
    }
    if (*buf == NULL)
        rc = -ENOMEM;
    else
        (*buf)[n] = '\0';
    *len = n;
    if (f != stdin)
        fclose(f);
    return rc;
}

/* The request when TEXT is a JSON object with a messages array. */
static struct json_object *chat_parse(const char *text, size_t len)
{
    struct json_object *msgs = NULL;
    struct json_object *req;
    size_t i = 0;

    while (i < len && strchr(" \t\r\n", text[i]) != NULL)
        i++;
    if (i == len || text[i] != '{')
        return NULL;
    req = json_tokener_parse(text);
    if (req != NULL && (!json_object_object_get_ex(req, "messages", &msgs) ||
                        !json_object_is_type(msgs, json_type_array))) {
        json_object_put(req);
        req = NULL;
    }
    return req;
}

/* The encoding to load; *EXACT is false when MODEL has no public
 * tokenizer and the count is only an estimate. */
static int kind_pick(const cli_opts_t *o, const char *model,
                     tokens_kind_t *kind, bool *exact)
{
    *exact = tokens_model_kind(model, kind) || model == NULL;
    if (o->encoding != NULL && tokens_kind_parse(o->encoding, kind) != 0) {
        fprintf(stderr, "tollgate tokens: unknown encoding '%s'\n",
                o->encoding);
        return -EINVAL;
    }
    return 0;
}

/* Prints OBJ as one JSON line and frees it. */
static void json_print(struct json_object *obj)
{
    puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(obj);
}

static struct json_object *detail_new(const char *kind, const char *model,
                                      tokens_kind_t enc, bool exact)
{
    struct json_object *obj = json_object_new_object();

    json_object_object_add(obj, "kind", json_object_new_string(kind));
    json_object_object_add(obj, "model",
                           model ? json_object_new_string(model) : NULL);
    json_object_object_add(obj, "encoding",
                           json_object_new_string(tokens_kind_name(enc)));
    json_object_object_add(obj, "exact", json_object_new_boolean(exact));
    return obj;
}

static void detail_int(struct json_object *obj, const char *key, int64_t v)
{
    json_object_object_add(obj, key, json_object_new_int64(v));
}

static void print_text(const cli_opts_t *o, const char *model,
                       tokens_kind_t kind, int64_t count, bool exact,
                       size_t bytes)
{
    int64_t shown = exact ? count : tokens_estimate(model, count);
    struct json_object *obj;

    if (!o->json) {
        printf("%" PRId64 "\n", shown);
        return;
    }
    obj = detail_new("text", model, kind, exact);
    detail_int(obj, "bytes", (int64_t)bytes);
    detail_int(obj, "encoding_tokens", count);
    detail_int(obj, "tokens", shown);
    json_print(obj);
}

static void print_chat(const cli_opts_t *o, const char *model,
                       tokens_kind_t kind, const tokens_chat_t *c)
{
    struct json_object *obj;

    if (!o->json) {
        printf("%" PRId64 "\n", c->total);
        return;
    }
    obj = detail_new("chat", model, kind, !c->estimated);
    detail_int(obj, "messages", c->n_messages);
    detail_int(obj, "text", c->text);
    detail_int(obj, "overhead", c->overhead);
    detail_int(obj, "tools", c->tools);
    detail_int(obj, "tokens", c->total);
    json_print(obj);
}

static const char *request_model(const cli_opts_t *o, struct json_object *req)
{
    struct json_object *m = NULL;

    if (o->model != NULL || req == NULL)
        return o->model;
    if (json_object_object_get_ex(req, "model", &m) &&
        json_object_is_type(m, json_type_string))
        return json_object_get_string(m);
    return NULL;
}

static int count_input(const cli_opts_t *o, const char *text, size_t len)
{
    struct json_object *req = chat_parse(text, len);
    const char *model = request_model(o, req);
    tokens_encoding_t *enc = NULL;
    tokens_kind_t kind;
    bool exact;
    int rc = kind_pick(o, model, &kind, &exact);

    if (rc == 0 && (rc = tokens_load(kind, NULL, &enc)) != 0)
        fprintf(stderr,
                "tollgate tokens: cannot load %s.tiktoken (%s); run "
                "scripts/fetch-tokenizer-data.sh\n",
                tokens_kind_name(kind), strerror(-rc));
    if (rc == 0 && req != NULL) {
        tokens_chat_t chat;

        tokens_count_chat(enc, model, req, &chat);
        print_chat(o, model, kind, &chat);
    } else if (rc == 0) {
        int64_t count = tokens_count(enc, text, len);

        print_text(o, model, kind, count, exact, len);
    }
    tokens_free(enc);
    json_object_put(req);
    return rc == 0 ? 0 : 1;
}

int tokens_main(int argc, char **argv)
{
    cli_opts_t o = {0};
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (opts_parse(argc, argv, &o) != 0) {
        fputs("usage: tollgate tokens [--model M] [--encoding E] [--json] "
              "FILE|-\n",
              stderr);
        return 2;
    }
    rc = input_read(o.input, &text, &len);
    if (rc != 0) {
        fprintf(stderr, "tollgate tokens: %s: %s\n", o.input, strerror(-rc));
        free(text);
        return 1;
    }
    rc = count_input(&o, text, len);
    free(text);
    return rc;
}
