/*
 * Config loading with libfyaml. Each mapping is walked key by key, so an
 * unknown or misspelt key is an error with its line, not silently ignored.
 */
#include "config/config.h"

#include "util/log.h"

/* Attempts a task may make (the ledger keeps 8 per outcome). */
#define LEDGER_ATTEMPTS_CAP 8

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libfyaml.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct cfg_error {
    int line;
    int seq;
    char text[400];
    struct cfg_error *next;
};

typedef struct loader {
    config_t *cfg;
    const char *path;
    const char *dir;
    FILE *errout;
    int errors;
    int log_level_line;
    char yaml_error[512]; /* libfyaml's first message */
    struct cfg_error *error_list;
    bool secrets_optional; /* a provider key's variable may be unset */
} loader_t;

static int node_line(struct fy_node *node)
{
    struct fy_token *tok = node ? fy_node_get_scalar_token(node) : NULL;
    const struct fy_mark *mark = tok ? fy_token_start_mark(tok) : NULL;

    return mark ? mark->line + 1 : 0;
}

/* A mapping's line: that of its first key (a list item has no token of
 * its own). Falls back to dflt. */
static int map_line(struct fy_node *map, int dflt)
{
    void *iter = NULL;
    struct fy_node_pair *pair;
    int line;

    if (map != NULL && fy_node_is_scalar(map))
        return node_line(map) > 0 ? node_line(map) : dflt;
    if (map == NULL || !fy_node_is_mapping(map))
        return dflt;
    pair = fy_node_mapping_iterate(map, &iter);
    line = pair ? node_line(fy_node_pair_key(pair)) : 0;
    return line > 0 ? line : dflt;
}

static void fail(loader_t *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Errors are kept and printed in line order once the file is read, since
 * some checks (a model's provider) can only run at the end. */
static void fail(loader_t *ld, int line, const char *fmt, ...)
{
    struct cfg_error *e = arena_alloc(ld->cfg->arena, sizeof(*e));
    va_list ap;

    e->line = line;
    e->seq = ld->errors++;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    e->next = ld->error_list;
    ld->error_list = e;
}

static int error_cmp(const void *a, const void *b)
{
    const struct cfg_error *x = *(const struct cfg_error *const *)a;
    const struct cfg_error *y = *(const struct cfg_error *const *)b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void print_errors(loader_t *ld)
{
    struct cfg_error **sorted;
    struct cfg_error *e;
    int i = 0;

    if (ld->errors == 0)
        return;
    sorted = arena_alloc(ld->cfg->arena, sizeof(*sorted) * (size_t)ld->errors);
    for (e = ld->error_list; e != NULL; e = e->next)
        sorted[i++] = e;
    qsort(sorted, (size_t)ld->errors, sizeof(*sorted), error_cmp);
    for (i = 0; i < ld->errors; i++)
        fprintf(ld->errout, "%s:%d: %s\n", ld->path, sorted[i]->line,
                sorted[i]->text);
}

static const char *scalar(loader_t *ld, struct fy_node *node, int line,
                          const char *what)
{
    size_t len;
    const char *s;

    if (node == NULL || !fy_node_is_scalar(node)) {
        fail(ld, line, "%s must be a single value", what);
        return NULL;
    }
    s = fy_node_get_scalar(node, &len);
    return arena_strndup(ld->cfg->arena, s ? s : "", s ? len : 0);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void get_int(loader_t *ld, struct fy_node *node, int line,
                    const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = scalar(ld, node, line, what);

    if (s != NULL && !parse_int(s, lo, hi, out))
        fail(ld, line,
             "%s must be a whole number from %" PRId64 " to %" PRId64
             ", not '%s'",
             what, lo, hi, s);
}

/* Expands ${VAR} and ${VAR:-default}; an unset VAR without a default is
 * an error, since a path silently made empty would point elsewhere. */
static const char *expand(loader_t *ld, const char *s, int line)
{
    char out[4096];
    size_t o = 0;

    while (*s != '\0' && o < sizeof(out) - 1) {
        const char *close, *dflt;
        char name[256];
        size_t nlen;
        const char *val;

        if (s[0] != '$' || s[1] != '{' || (close = strchr(s, '}')) == NULL) {
            out[o++] = *s++;
            continue;
        }
        dflt = strstr(s, ":-");
        if (dflt != NULL && dflt > close)
            dflt = NULL;
        nlen = (size_t)((dflt ? dflt : close) - (s + 2));
        if (nlen >= sizeof(name))
            nlen = sizeof(name) - 1;
        memcpy(name, s + 2, nlen);
        name[nlen] = '\0';
        val = getenv(name);
        if ((val == NULL || *val == '\0') && dflt != NULL) {
            size_t dl = (size_t)(close - dflt - 2);

            if (dl >= sizeof(out) - o)
                dl = sizeof(out) - o - 1;
            memcpy(out + o, dflt + 2, dl);
            o += dl;
        } else if (val == NULL) {
            fail(ld, line, "environment variable %s is not set", name);
        } else {
            size_t vl = strlen(val);

            if (vl >= sizeof(out) - o)
                vl = sizeof(out) - o - 1;
            memcpy(out + o, val, vl);
            o += vl;
        }
        s = close + 1;
    }
    out[o] = '\0';
    return arena_strdup(ld->cfg->arena, out);
}

static const char *get_path(loader_t *ld, struct fy_node *node, int line,
                            const char *what)
{
    const char *s = scalar(ld, node, line, what);

    if (s == NULL)
        return NULL;
    s = expand(ld, s, line);
    if (s[0] == '/' || ld->dir[0] == '\0')
        return s;
    return arena_printf(ld->cfg->arena, "%s/%s", ld->dir, s);
}

typedef void (*field_fn)(loader_t *ld, void *obj, const char *key,
                         struct fy_node *value, int line);

/* Calls fn for each key of a mapping. */
static void walk(loader_t *ld, struct fy_node *map, int line, const char *what,
                 void *obj, field_fn fn)
{
    struct fy_node_pair *pair;
    void *iter = NULL;

    if (map == NULL || !fy_node_is_mapping(map)) {
        fail(ld, line, "%s must be a mapping of keys to values", what);
        return;
    }
    while ((pair = fy_node_mapping_iterate(map, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        const char *key = k ? fy_node_get_scalar0(k) : NULL;

        if (key == NULL) {
            fail(ld, line, "%s has a key that is not plain text", what);
            continue;
        }
        fn(ld, obj, key, fy_node_pair_value(pair), node_line(k));
    }
}

static void provider_field(loader_t *ld, void *obj, const char *key,
                           struct fy_node *v, int line)
{
    cfg_provider_t *p = obj;

    if (strcmp(key, "name") == 0)
        p->name = scalar(ld, v, line, "provider name");
    else if (strcmp(key, "kind") == 0)
        p->kind = scalar(ld, v, line, "provider kind");
    else if (strcmp(key, "base_url") == 0)
        p->base_url = scalar(ld, v, line, "base_url");
    else if (strcmp(key, "api_key_env") == 0)
        p->api_key_env = scalar(ld, v, line, "api_key_env");
    else if (strcmp(key, "api_version") == 0)
        p->api_version = scalar(ld, v, line, "api_version");
    else
        fail(ld, line,
             "unknown provider key '%s' (expected name, kind, "
             "base_url, api_key_env, api_version)",
             key);
}

static const struct {
    const char *name;
    provider_kind_t type;
    const char *default_version;
} provider_kinds[] = {
    {"openai", PROVIDER_OPENAI, NULL},
    {"openai-compatible", PROVIDER_OPENAI, NULL},
    {"azure", PROVIDER_AZURE, "2024-10-21"},
    {"gemini", PROVIDER_GEMINI, NULL},
    {"anthropic", PROVIDER_ANTHROPIC, "2023-06-01"},
};

static void check_kind(loader_t *ld, cfg_provider_t *p)
{
    size_t n = sizeof(provider_kinds) / sizeof(provider_kinds[0]);

    if (p->kind == NULL) {
        fail(ld, p->line,
             "provider needs a kind (openai, openai-compatible, azure, "
             "gemini or anthropic)");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p->kind, provider_kinds[i].name) != 0)
            continue;
        p->type = provider_kinds[i].type;
        if (p->api_version == NULL)
            p->api_version = provider_kinds[i].default_version;
        return;
    }
    fail(ld, p->line,
         "provider kind '%s' is not supported (expected openai, "
         "openai-compatible, azure, gemini or anthropic)",
         p->kind);
}

static void check_provider(loader_t *ld, cfg_provider_t *p)
{
    size_t n;

    if (p->name == NULL)
        fail(ld, p->line, "provider needs a name");
    check_kind(ld, p);
    if (p->base_url == NULL) {
        fail(ld, p->line, "provider needs a base_url");
        return;
    }
    if (strncmp(p->base_url, "http://", 7) != 0 &&
        strncmp(p->base_url, "https://", 8) != 0)
        fail(ld, p->line, "base_url must start with http:// or https://");
    n = strlen(p->base_url);
    while (n > 0 && p->base_url[n - 1] == '/')
        n--;
    p->base_url = arena_strndup(ld->cfg->arena, p->base_url, n);
    if (p->api_key_env != NULL) {
        p->api_key = getenv(p->api_key_env);
        if (p->api_key != NULL && p->api_key[0] == '\0')
            p->api_key = NULL;
        if (p->api_key == NULL && !ld->secrets_optional)
            fail(ld, p->line,
                 "provider '%s' takes its key from $%s, "
                 "which is not set",
                 p->name ? p->name : "?", p->api_key_env);
    }
}

/* Config price keys: USD per million tokens unless said otherwise. */
static const struct {
    const char *name;
    size_t offset;
    int64_t scale; /* multiplies the per-million reading */
} price_keys[] = {
    {"input", offsetof(price_t, input), 1},
    {"cached_input", offsetof(price_t, cached_input), 1},
    {"cache_write", offsetof(price_t, cache_write), 1},
    {"cache_write_1h", offsetof(price_t, cache_write_1h), 1},
    {"output", offsetof(price_t, output), 1},
    {"reasoning_output", offsetof(price_t, reasoning_output), 1},
    {"audio_input", offsetof(price_t, audio_input), 1},
    {"audio_output", offsetof(price_t, audio_output), 1},
    {"long_context_input", offsetof(price_t, tier_input), 1},
    {"long_context_cached_input", offsetof(price_t, tier_cached_input), 1},
    {"long_context_cache_write", offsetof(price_t, tier_cache_write), 1},
    {"long_context_cache_write_1h", offsetof(price_t, tier_cache_write_1h), 1},
    {"long_context_output", offsetof(price_t, tier_output), 1},
    /* USD per 1,000 searches, and USD per request. */
    {"web_search_per_1k", offsetof(price_t, fee_per_web_search), 1000},
    {"per_request", offsetof(price_t, fee_per_request), 1000000},
};

static void price_field(loader_t *ld, void *obj, const char *key,
                        struct fy_node *v, int line)
{
    price_t *price = obj;
    const char *s;
    int64_t n;

    if (strcmp(key, "long_context_threshold") == 0) {
        n = 0;
        get_int(ld, v, line, key, 1, INT32_MAX, &n);
        price->tier_threshold = n;
        return;
    }
    for (size_t i = 0; i < sizeof(price_keys) / sizeof(price_keys[0]); i++) {
        pico_t *rate = (pico_t *)((char *)price + price_keys[i].offset);

        if (strcmp(key, price_keys[i].name) != 0)
            continue;
        s = scalar(ld, v, line, key);
        if (s != NULL && (billing_parse_price(s, strlen(s), true, rate) < 0 ||
                          *rate > PRICE_RATE_MAX / price_keys[i].scale))
            fail(ld, line,
                 "price %s '%s' is not a decimal number of USD "
                 "per million tokens (at most $1000 a token)",
                 key, s);
        else if (s != NULL)
            *rate *= price_keys[i].scale;
        return;
    }
    fail(ld, line,
         "unknown price key '%s' (expected input, cached_input, "
         "cache_write, cache_write_1h, output, reasoning_output, "
         "audio_input, audio_output, long_context_threshold, "
         "long_context_input, long_context_cached_input, "
         "long_context_cache_write, long_context_cache_write_1h, "
         "long_context_output, web_search_per_1k, per_request)",
         key);
}

static void price_init(price_t *price)
{
    billing_price_init(price, "", "config");
}

struct model_ctx {
    cfg_model_t *model;
    const char *provider_name;
};

static void model_field(loader_t *ld, void *obj, const char *key,
                        struct fy_node *v, int line)
{
    struct model_ctx *mc = obj;
    cfg_model_t *m = mc->model;
    int64_t n;

    if (strcmp(key, "name") == 0) {
        m->name = scalar(ld, v, line, "model name");
    } else if (strcmp(key, "provider") == 0) {
        mc->provider_name = scalar(ld, v, line, "model provider");
    } else if (strcmp(key, "upstream") == 0) {
        m->upstream = scalar(ld, v, line, "upstream model id");
    } else if (strcmp(key, "tier") == 0) {
        n = 0;
        get_int(ld, v, line, "tier", 0, 100, &n);
        m->tier = (int)n;
    } else if (strcmp(key, "price_entry") == 0) {
        m->price_entry = scalar(ld, v, line, "price_entry");
    } else if (strcmp(key, "max_tokens") == 0) {
        get_int(ld, v, line, "max_tokens", 1, 10000000, &m->max_tokens);
    } else if (strcmp(key, "price") == 0) {
        m->has_price = true;
        walk(ld, v, line, "price", &m->price, price_field);
    } else {
        fail(ld, line,
             "unknown model key '%s' (expected name, provider, "
             "upstream, tier, price, price_entry, max_tokens)",
             key);
    }
}

static void check_model(loader_t *ld, struct model_ctx *mc)
{
    cfg_model_t *m = mc->model;

    if (m->name == NULL)
        fail(ld, m->line, "model needs a name");
    if (mc->provider_name == NULL) {
        fail(ld, m->line, "model '%s' needs a provider",
             m->name ? m->name : "?");
    } else {
        m->provider_name = mc->provider_name;
    }
    if (m->upstream == NULL)
        m->upstream = m->name;
    if (m->has_price) {
        if (m->price.input == PRICE_ABSENT || m->price.output == PRICE_ABSENT)
            fail(ld, m->line,
                 "model '%s' price needs at least input and "
                 "output",
                 m->name ? m->name : "?");
        snprintf(m->price.model, sizeof(m->price.model), "%s",
                 m->name ? m->name : "");
        snprintf(m->price.origin, sizeof(m->price.origin), "config#%s",
                 m->name ? m->name : "");
    }
}

static void key_field(loader_t *ld, void *obj, const char *key,
                      struct fy_node *v, int line)
{
    cfg_key_t *k = obj;
    const char *s;

    if (strcmp(key, "name") == 0) {
        k->name = scalar(ld, v, line, "key name");
    } else if (strcmp(key, "sha256") == 0) {
        s = scalar(ld, v, line, "sha256");
        if (s == NULL)
            return;
        for (int i = 0; i < 32; i++) {
            int hi = strlen(s) == 64 ? hex_digit(s[2 * i]) : -1;
            int lo = hi >= 0 ? hex_digit(s[2 * i + 1]) : -1;

            if (lo < 0) {
                fail(ld, line,
                     "sha256 must be 64 hex characters (make "
                     "it with: tollgate hash-key)");
                return;
            }
            k->sha256[i] = (unsigned char)(hi << 4 | lo);
        }
        k->line = line;
    } else if (strcmp(key, "team") == 0) {
        k->team = scalar(ld, v, line, "team");
    } else if (strcmp(key, "owner") == 0) {
        k->owner = scalar(ld, v, line, "owner");
    } else if (strcmp(key, "default_task") == 0) {
        k->default_task = scalar(ld, v, line, "default_task");
    } else if (strcmp(key, "secret") == 0 || strcmp(key, "key") == 0) {
        fail(ld, line,
             "keys are stored as sha256, never in clear; hash "
             "the secret with: tollgate hash-key");
    } else {
        fail(ld, line,
             "unknown key field '%s' (expected name, sha256, "
             "team, owner, default_task)",
             key);
    }
}

/* Reads a sequence of mappings into a fresh array of `size`-byte items. */
static void *load_list(loader_t *ld, struct fy_node *seq, int line,
                       const char *what, size_t size, size_t *count)
{
    size_t n;
    char *items;

    *count = 0;
    if (seq == NULL || !fy_node_is_sequence(seq)) {
        fail(ld, line, "%s must be a list", what);
        return NULL;
    }
    n = (size_t)fy_node_sequence_item_count(seq);
    items = arena_alloc(ld->cfg->arena, (n ? n : 1) * size);
    memset(items, 0, (n ? n : 1) * size);
    *count = n;
    return items;
}

static void load_providers(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->providers = load_list(ld, seq, line, "providers",
                               sizeof(cfg_provider_t), &cfg->n_providers);
    if (cfg->providers == NULL)
        return;
    while ((item = fy_node_sequence_iterate(seq, &iter)) != NULL) {
        cfg_provider_t *p = &cfg->providers[i++];

        p->line = map_line(item, line);
        walk(ld, item, p->line, "a provider", p, provider_field);
        check_provider(ld, p);
    }
}

static void load_models(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->models =
        load_list(ld, seq, line, "models", sizeof(cfg_model_t), &cfg->n_models);
    if (cfg->models == NULL)
        return;
    while ((item = fy_node_sequence_iterate(seq, &iter)) != NULL) {
        struct model_ctx mc = {&cfg->models[i++], NULL};

        mc.model->line = map_line(item, line);
        price_init(&mc.model->price);
        walk(ld, item, mc.model->line, "a model", &mc, model_field);
        check_model(ld, &mc);
    }
}

static void load_keys(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->keys =
        load_list(ld, seq, line, "keys", sizeof(cfg_key_t), &cfg->n_keys);
    if (cfg->keys == NULL)
        return;
    while ((item = fy_node_sequence_iterate(seq, &iter)) != NULL) {
        cfg_key_t *k = &cfg->keys[i++];
        int item_line = map_line(item, line);
        bool has_hash;

        k->line = 0;
        walk(ld, item, item_line, "a key", k, key_field);
        has_hash = k->line != 0;
        k->has_hash = has_hash;
        k->line = item_line;
        if (k->name == NULL)
            fail(ld, item_line, "key needs a name");
        if (!has_hash)
            fail(ld, item_line, "key '%s' needs a sha256",
                 k->name ? k->name : "?");
    }
}

static void load_prices(loader_t *ld, struct fy_node *v, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;

    if (v != NULL && fy_node_is_scalar(v)) {
        cfg->price_files = arena_alloc(cfg->arena, sizeof(char *));
        cfg->price_files[0] = get_path(ld, v, line, "prices");
        cfg->n_price_files = cfg->price_files[0] ? 1 : 0;
        return;
    }
    if (v == NULL || !fy_node_is_sequence(v)) {
        fail(ld, line, "prices must be a file or a list of files");
        return;
    }
    cfg->price_files = arena_alloc(
        cfg->arena,
        sizeof(char *) * (size_t)(fy_node_sequence_item_count(v) + 1));
    while ((item = fy_node_sequence_iterate(v, &iter)) != NULL) {
        const char *p =
            get_path(ld, item, map_line(item, line), "prices entry");

        if (p != NULL)
            cfg->price_files[cfg->n_price_files++] = p;
    }
}

/* Dollars as decimal text ("10", "0.50") into picodollars. */
static void get_usd(loader_t *ld, struct fy_node *v, int line, const char *what,
                    pico_t *out)
{
    const char *s = scalar(ld, v, line, what);
    pico_t per_million;

    if (s == NULL)
        return;
    /* USD per million tokens read as pico per token is USD * 10^6; one
     * more 10^6 makes it picodollars (so at most 6 decimals). */
    if (billing_parse_price(s, strlen(s), true, &per_million) < 0 ||
        per_million > INT64_MAX / 1000000) {
        fail(ld, line, "%s must be a decimal amount of USD, not '%s'", what, s);
        return;
    }
    *out = per_million * 1000000;
}

static void step_field(loader_t *ld, void *obj, const char *key,
                       struct fy_node *v, int line)
{
    cfg_budget_t *b = obj;
    int64_t n = 0;

    if (strcmp(key, "at_percent") == 0) {
        get_int(ld, v, line, key, 1, 100, &n);
        b->step_percent = (int)n;
    } else if (strcmp(key, "model") == 0) {
        b->step_model = scalar(ld, v, line, key);
    } else if (strcmp(key, "max_tokens") == 0) {
        get_int(ld, v, line, key, 1, 10000000, &b->step_max_tokens);
    } else {
        fail(ld, line,
             "unknown step_down key '%s' (expected at_percent, model, "
             "max_tokens)",
             key);
    }
}

static void budget_field(loader_t *ld, void *obj, const char *key,
                         struct fy_node *v, int line)
{
    cfg_budget_t *b = obj;

    if (strcmp(key, "scope") == 0)
        b->scope = scalar(ld, v, line, key);
    else if (strcmp(key, "name") == 0)
        b->name = scalar(ld, v, line, key);
    else if (strcmp(key, "period") == 0)
        b->period = scalar(ld, v, line, key);
    else if (strcmp(key, "limit_usd") == 0)
        get_usd(ld, v, line, key, &b->hard);
    else if (strcmp(key, "soft_usd") == 0)
        get_usd(ld, v, line, key, &b->soft);
    else if (strcmp(key, "step_down") == 0)
        walk(ld, v, line, "step_down", b, step_field);
    else
        fail(ld, line,
             "unknown budget key '%s' (expected scope, name, period, "
             "limit_usd, soft_usd, step_down)",
             key);
}

static const char *const scope_names[] = {"key", "team", "task", "global"};
static const char *const period_names[] = {"day", "week", "month", "total"};

static bool one_of(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

/* A scope with its name: global takes none, the others need one. */
static void check_scope(loader_t *ld, const char *scope, const char **name,
                        int line, bool allow_global)
{
    if (!one_of(scope, scope_names, allow_global ? 4 : 3)) {
        fail(ld, line, "scope must be key, team, task%s, not '%s'",
             allow_global ? " or global" : "", scope ? scope : "");
        return;
    }
    if (strcmp(scope, "global") == 0) {
        if (*name != NULL && (*name)[0] != '\0')
            fail(ld, line, "a global budget takes no name");
        *name = "";
    } else if (*name == NULL || (*name)[0] == '\0') {
        fail(ld, line, "a %s scope needs a name", scope);
    }
}

static void load_budgets(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->budgets = load_list(ld, seq, line, "budgets", sizeof(cfg_budget_t),
                             &cfg->n_budgets);
    while (cfg->budgets && (item = fy_node_sequence_iterate(seq, &iter))) {
        cfg_budget_t *b = &cfg->budgets[i++];

        b->line = map_line(item, line);
        b->hard = b->soft = -1;
        walk(ld, item, b->line, "a budget", b, budget_field);
        check_scope(ld, b->scope, &b->name, b->line, true);
        if (!one_of(b->period, period_names, 4))
            fail(ld, b->line, "period must be day, week, month or total");
        if (b->hard < 0 && b->soft < 0)
            fail(ld, b->line, "a budget needs limit_usd or soft_usd");
        if (b->step_percent > 0 && b->step_model == NULL &&
            b->step_max_tokens == 0)
            fail(ld, b->line, "step_down needs a model or max_tokens");
    }
}

static void ratelimit_field(loader_t *ld, void *obj, const char *key,
                            struct fy_node *v, int line)
{
    cfg_ratelimit_t *r = obj;

    if (strcmp(key, "scope") == 0)
        r->scope = scalar(ld, v, line, key);
    else if (strcmp(key, "name") == 0)
        r->name = scalar(ld, v, line, key);
    else if (strcmp(key, "requests_per_minute") == 0)
        get_int(ld, v, line, key, 1, INT32_MAX, &r->rpm);
    else if (strcmp(key, "tokens_per_minute") == 0)
        get_int(ld, v, line, key, 1, INT64_C(1000000000000), &r->tpm);
    else if (strcmp(key, "concurrent") == 0)
        get_int(ld, v, line, key, 1, INT32_MAX, &r->concurrent);
    else
        fail(ld, line,
             "unknown rate limit key '%s' (expected scope, name, "
             "requests_per_minute, tokens_per_minute, concurrent)",
             key);
}

static void load_ratelimits(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->ratelimits = load_list(ld, seq, line, "rate_limits",
                                sizeof(cfg_ratelimit_t), &cfg->n_ratelimits);
    while (cfg->ratelimits && (item = fy_node_sequence_iterate(seq, &iter))) {
        cfg_ratelimit_t *r = &cfg->ratelimits[i++];

        r->line = map_line(item, line);
        walk(ld, item, r->line, "a rate limit", r, ratelimit_field);
        check_scope(ld, r->scope, &r->name, r->line, true);
        if (r->rpm == 0 && r->tpm == 0 && r->concurrent == 0)
            fail(ld, r->line,
                 "a rate limit needs requests_per_minute, "
                 "tokens_per_minute or concurrent");
    }
}

static void rule_field(loader_t *ld, void *obj, const char *key,
                       struct fy_node *v, int line)
{
    cfg_approval_rule_t *r = obj;
    int64_t n = 0;

    if (strcmp(key, "name") == 0) {
        r->name = scalar(ld, v, line, key);
    } else if (strcmp(key, "cost_over_usd") == 0) {
        get_usd(ld, v, line, key, &r->cost_over);
    } else if (strcmp(key, "task") == 0) {
        r->task = scalar(ld, v, line, key);
    } else if (strcmp(key, "min_tier") == 0) {
        get_int(ld, v, line, key, 0, 100, &n);
        r->min_tier = (int)n;
    } else if (strcmp(key, "budget_percent_over") == 0) {
        get_int(ld, v, line, key, 0, 1000, &n);
        r->budget_percent = (int)n;
    } else if (strcmp(key, "budget_scope") == 0) {
        r->budget_scope = scalar(ld, v, line, key);
    } else if (strcmp(key, "approvers") == 0) {
        r->approvers = scalar(ld, v, line, key);
    } else {
        fail(ld, line,
             "unknown approval rule key '%s' (expected name, "
             "cost_over_usd, task, min_tier, budget_percent_over, "
             "budget_scope, approvers)",
             key);
    }
}

static void load_rules(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->approval_rules =
        load_list(ld, seq, line, "approval_rules", sizeof(cfg_approval_rule_t),
                  &cfg->n_approval_rules);
    while (cfg->approval_rules &&
           (item = fy_node_sequence_iterate(seq, &iter))) {
        cfg_approval_rule_t *r = &cfg->approval_rules[i++];

        r->line = map_line(item, line);
        r->cost_over = -1;
        r->min_tier = r->budget_percent = -1;
        walk(ld, item, r->line, "an approval rule", r, rule_field);
        if (r->name == NULL)
            fail(ld, r->line, "an approval rule needs a name");
        if (r->cost_over < 0 && r->task == NULL && r->min_tier < 0 &&
            r->budget_percent < 0)
            fail(ld, r->line,
                 "an approval rule needs a condition (cost_over_usd, "
                 "task, min_tier or budget_percent_over)");
        if (r->budget_percent >= 0 && !one_of(r->budget_scope, scope_names, 4))
            fail(ld, r->line,
                 "budget_percent_over needs budget_scope (key, team, "
                 "task or global)");
        if (r->approvers == NULL)
            r->approvers = "the gateway's admin";
    }
}

/* A plain YAML scalar as the JSON value it reads as: a number, true,
 * false, null, else a string; a quoted scalar is always a string. */
static struct json_object *scalar_json(struct fy_node *node)
{
    const char *s = fy_node_get_scalar0(node);
    char *end;
    long long i;
    double d;

    if (s == NULL)
        return NULL;
    if (fy_node_get_style(node) != FYNS_PLAIN)
        return json_object_new_string(s);
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
        return json_object_new_boolean(s[0] == 't');
    if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0 || s[0] == '\0')
        return NULL;
    errno = 0;
    i = strtoll(s, &end, 10);
    if (*end == '\0' && errno == 0)
        return json_object_new_int64(i);
    d = strtod(s, &end);
    if (*end == '\0' && errno == 0)
        return json_object_new_double(d);
    return json_object_new_string(s);
}

/* A YAML subtree as JSON, for modules that read JSON (checks, schema). */
static struct json_object *yaml_json(struct fy_node *node, int depth)
{
    struct json_object *out;
    struct fy_node_pair *pair;
    struct fy_node *item;
    void *iter = NULL;

    if (node == NULL || depth > 64)
        return NULL;
    if (fy_node_is_scalar(node))
        return scalar_json(node);
    if (fy_node_is_sequence(node)) {
        out = json_object_new_array();
        while ((item = fy_node_sequence_iterate(node, &iter)) != NULL)
            json_object_array_add(out, yaml_json(item, depth + 1));
        return out;
    }
    out = json_object_new_object();
    while ((pair = fy_node_mapping_iterate(node, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        const char *key = k ? fy_node_get_scalar0(k) : NULL;

        if (key != NULL)
            json_object_object_add(
                out, key, yaml_json(fy_node_pair_value(pair), depth + 1));
    }
    return out;
}

static struct json_object *keep_json(loader_t *ld, struct fy_node *v)
{
    config_t *cfg = ld->cfg;
    struct json_object *j = yaml_json(v, 0);

    if (j == NULL)
        return NULL;
    cfg->owned_json = realloc(cfg->owned_json, sizeof(*cfg->owned_json) *
                                                   (cfg->n_owned_json + 1));
    if (cfg->owned_json == NULL)
        die_oom();
    cfg->owned_json[cfg->n_owned_json++] = j;
    return j;
}

static const char **name_list(loader_t *ld, struct fy_node *v, int line,
                              const char *what, size_t *n)
{
    void *iter = NULL;
    struct fy_node *item;
    const char **out;

    *n = 0;
    if (v == NULL || !fy_node_is_sequence(v)) {
        fail(ld, line, "%s must be a list of model names", what);
        return NULL;
    }
    out = arena_alloc(ld->cfg->arena,
                      sizeof(char *) *
                          ((size_t)fy_node_sequence_item_count(v) + 1));
    while ((item = fy_node_sequence_iterate(v, &iter)) != NULL) {
        const char *s = scalar(ld, item, line, what);

        if (s != NULL)
            out[(*n)++] = s;
    }
    return out;
}

static void get_share(loader_t *ld, struct fy_node *v, int line,
                      const char *what, double *out)
{
    const char *s = scalar(ld, v, line, what);
    char *end;
    double d;

    if (s == NULL)
        return;
    d = strtod(s, &end);
    if (*end != '\0' || !(d >= 0 && d <= 1))
        fail(ld, line, "%s must be a number from 0 to 1, not '%s'", what, s);
    else
        *out = d;
}

static void retry_field(loader_t *ld, void *obj, const char *key,
                        struct fy_node *v, int line)
{
    cfg_task_t *t = obj;
    int64_t n = 0;

    if (strcmp(key, "max") == 0) {
        get_int(ld, v, line, "retry max", 0, 10, &n);
        t->retry_max = (int)n;
    } else if (strcmp(key, "base_ms") == 0) {
        get_int(ld, v, line, key, 1, 600000, &t->retry_base_ms);
    } else if (strcmp(key, "max_ms") == 0) {
        get_int(ld, v, line, key, 1, 600000, &t->retry_max_ms);
    } else if (strcmp(key, "budget_share") == 0) {
        get_share(ld, v, line, key, &t->retry_budget_share);
    } else {
        fail(ld, line,
             "unknown retry key '%s' (expected max, base_ms, max_ms, "
             "budget_share)",
             key);
    }
}

static void task_route(loader_t *ld, cfg_task_t *t, struct fy_node *v, int line)
{
    const char *s;

    if (v != NULL && fy_node_is_scalar(v)) {
        s = scalar(ld, v, line, "route");
        if (s != NULL && strcmp(s, "auto") == 0)
            t->route_auto = true;
        else
            fail(ld, line, "route must be a list of models, or auto");
        return;
    }
    t->route = name_list(ld, v, line, "route", &t->n_route);
}

static void task_field(loader_t *ld, void *obj, const char *key,
                       struct fy_node *v, int line)
{
    cfg_task_t *t = obj;
    int64_t n = 0;

    if (strcmp(key, "name") == 0) {
        t->name = scalar(ld, v, line, key);
    } else if (strcmp(key, "route") == 0) {
        task_route(ld, t, v, line);
    } else if (strcmp(key, "models") == 0) {
        t->route = name_list(ld, v, line, key, &t->n_route);
    } else if (strcmp(key, "target_pass_rate") == 0) {
        get_share(ld, v, line, key, &t->target_pass_rate);
    } else if (strcmp(key, "explore_share") == 0) {
        get_share(ld, v, line, key, &t->explore_share);
    } else if (strcmp(key, "min_samples") == 0) {
        get_int(ld, v, line, key, 1, 1000000, &n);
        t->min_samples = (int)n;
    } else if (strcmp(key, "start_rules") == 0) {
        t->start_rules = keep_json(ld, v);
    } else if (strcmp(key, "checks") == 0) {
        t->checks = keep_json(ld, v);
    } else if (strcmp(key, "context") == 0) {
        t->context = keep_json(ld, v);
    } else if (strcmp(key, "requested_model") == 0) {
        t->requested_model = scalar(ld, v, line, key);
    } else if (strcmp(key, "on_check_fail") == 0) {
        t->on_check_fail = scalar(ld, v, line, key);
    } else if (strcmp(key, "reask_message") == 0) {
        t->reask_message = scalar(ld, v, line, key);
    } else if (strcmp(key, "max_attempts") == 0) {
        get_int(ld, v, line, key, 1, LEDGER_ATTEMPTS_CAP, &n);
        t->max_attempts = (int)n;
    } else if (strcmp(key, "stream_checks") == 0) {
        t->stream_checks = scalar(ld, v, line, key);
    } else if (strcmp(key, "fallbacks") == 0) {
        t->fallbacks = name_list(ld, v, line, key, &t->n_fallbacks);
    } else if (strcmp(key, "retry") == 0) {
        walk(ld, v, line, "retry", t, retry_field);
    } else {
        fail(ld, line,
             "unknown task key '%s' (expected name, route, models, "
             "target_pass_rate, explore_share, min_samples, start_rules, "
             "checks, context, requested_model, on_check_fail, "
             "reask_message, max_attempts, stream_checks, fallbacks, "
             "retry)",
             key);
    }
}

static bool word_ok(const char *s, const char *a, const char *b, const char *c)
{
    return s == NULL || strcmp(s, a) == 0 || strcmp(s, b) == 0 ||
           (c != NULL && strcmp(s, c) == 0);
}

static void check_task(loader_t *ld, cfg_task_t *t)
{
    if (t->name == NULL)
        fail(ld, t->line, "a task needs a name");
    if (t->route_auto && t->n_route == 0)
        fail(ld, t->line, "route: auto needs models (cheapest first)");
    if (!word_ok(t->requested_model, "honour", "map", "override"))
        fail(ld, t->line, "requested_model must be honour, map or override");
    if (!word_ok(t->on_check_fail, "escalate", "reask", NULL))
        fail(ld, t->line, "on_check_fail must be escalate or reask");
    if (!word_ok(t->stream_checks, "buffer", "after", NULL))
        fail(ld, t->line, "stream_checks must be buffer or after");
    if (t->route_auto && t->target_pass_rate <= 0)
        t->target_pass_rate = 0.9;
}

static void load_tasks(loader_t *ld, struct fy_node *seq, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node *item;
    size_t i = 0;

    cfg->tasks =
        load_list(ld, seq, line, "tasks", sizeof(cfg_task_t), &cfg->n_tasks);
    while (cfg->tasks && (item = fy_node_sequence_iterate(seq, &iter))) {
        cfg_task_t *t = &cfg->tasks[i++];

        t->line = map_line(item, line);
        t->max_attempts = 3;
        t->retry_max = 2;
        t->retry_base_ms = 500;
        t->retry_max_ms = 8000;
        t->retry_budget_share = 0.2;
        t->explore_share = 0.05;
        t->min_samples = 30;
        walk(ld, item, t->line, "a task", t, task_field);
        check_task(ld, t);
    }
}

/* aliases: {name: target}, names that price as another entry. */
static void load_aliases(loader_t *ld, struct fy_node *v, int line)
{
    config_t *cfg = ld->cfg;
    void *iter = NULL;
    struct fy_node_pair *pair;
    size_t n;

    if (v == NULL || !fy_node_is_mapping(v)) {
        fail(ld, line, "aliases must map names to price entries");
        return;
    }
    n = (size_t)fy_node_mapping_item_count(v) + 1;
    cfg->alias_names = arena_alloc(cfg->arena, sizeof(char *) * n);
    cfg->alias_targets = arena_alloc(cfg->arena, sizeof(char *) * n);
    while ((pair = fy_node_mapping_iterate(v, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        const char *name = k ? fy_node_get_scalar0(k) : NULL;
        const char *target = scalar(ld, fy_node_pair_value(pair),
                                    k ? node_line(k) : line, "alias target");

        if (name == NULL || target == NULL)
            continue;
        cfg->alias_names[cfg->n_aliases] = arena_strdup(cfg->arena, name);
        cfg->alias_targets[cfg->n_aliases++] = target;
    }
}

static void parse_listen(loader_t *ld, const char *s, int line)
{
    config_t *cfg = ld->cfg;
    const char *colon = strrchr(s, ':');
    int64_t port;

    if (colon == NULL || !parse_int(colon + 1, 0, 65535, &port)) {
        fail(ld, line, "listen must be HOST:PORT, such as 127.0.0.1:8080");
        return;
    }
    cfg->listen_host = arena_strndup(cfg->arena, s, (size_t)(colon - s));
    cfg->listen_port = (int)port;
}

static void top_field(loader_t *ld, void *obj, const char *key,
                      struct fy_node *v, int line)
{
    config_t *cfg = ld->cfg;
    int64_t n = 0;
    const char *s;

    if (strcmp(key, "listen") == 0) {
        if ((s = scalar(ld, v, line, "listen")) != NULL)
            parse_listen(ld, s, line);
    } else if (strcmp(key, "ledger") == 0) {
        cfg->ledger_path = get_path(ld, v, line, "ledger");
    } else if (strcmp(key, "ledger_queue") == 0) {
        get_int(ld, v, line, key, 1, 10000000, &n);
        cfg->ledger_queue = (size_t)n;
    } else if (strcmp(key, "max_body_bytes") == 0) {
        get_int(ld, v, line, key, 1, INT32_MAX, &n);
        cfg->max_body_bytes = (size_t)n;
    } else if (strcmp(key, "max_response_bytes") == 0) {
        get_int(ld, v, line, key, 1, INT32_MAX, &n);
        cfg->max_response_bytes = (size_t)n;
    } else if (strcmp(key, "connect_timeout_ms") == 0) {
        get_int(ld, v, line, key, 1, INT32_MAX, &cfg->connect_timeout_ms);
    } else if (strcmp(key, "first_byte_timeout_ms") == 0) {
        get_int(ld, v, line, key, 1, INT32_MAX, &cfg->first_byte_timeout_ms);
    } else if (strcmp(key, "total_timeout_ms") == 0) {
        get_int(ld, v, line, key, 1, INT32_MAX, &cfg->total_timeout_ms);
    } else if (strcmp(key, "client_timeout_ms") == 0) {
        get_int(ld, v, line, key, 1, INT32_MAX, &cfg->client_timeout_ms);
    } else if (strcmp(key, "drain_timeout_ms") == 0) {
        get_int(ld, v, line, key, 0, INT32_MAX, &cfg->drain_timeout_ms);
    } else if (strcmp(key, "admin_key_env") == 0) {
        cfg->admin_key_env = scalar(ld, v, line, key);
    } else if (strcmp(key, "log_level") == 0) {
        s = scalar(ld, v, line, key);
        ld->log_level_line = line;
        if (s != NULL)
            cfg->log_level = s;
    } else if (strcmp(key, "prices") == 0) {
        load_prices(ld, v, line);
    } else if (strcmp(key, "aliases") == 0) {
        load_aliases(ld, v, line);
    } else if (strcmp(key, "budgets") == 0) {
        load_budgets(ld, v, line);
    } else if (strcmp(key, "tasks") == 0) {
        load_tasks(ld, v, line);
    } else if (strcmp(key, "rate_limits") == 0) {
        load_ratelimits(ld, v, line);
    } else if (strcmp(key, "approval_rules") == 0) {
        load_rules(ld, v, line);
    } else if (strcmp(key, "budget_timezone") == 0) {
        cfg->budget_timezone = scalar(ld, v, line, key);
    } else if (strcmp(key, "webhook_url") == 0) {
        cfg->webhook_url = scalar(ld, v, line, key);
    } else if (strcmp(key, "default_max_tokens") == 0) {
        get_int(ld, v, line, key, 1, 10000000, &cfg->default_max_tokens);
    } else if (strcmp(key, "providers") == 0) {
        load_providers(ld, v, line);
    } else if (strcmp(key, "models") == 0) {
        load_models(ld, v, line);
    } else if (strcmp(key, "keys") == 0) {
        load_keys(ld, v, line);
    } else {
        fail(ld, line, "unknown setting '%s'", key);
    }
}

static void set_defaults(config_t *cfg)
{
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 8080;
    cfg->ledger_path = NULL; /* tollgate.db beside the config */
    cfg->ledger_queue = 65536;
    cfg->max_body_bytes = 4 * 1024 * 1024;
    cfg->max_response_bytes = 64 * 1024 * 1024;
    cfg->connect_timeout_ms = 10000;
    cfg->first_byte_timeout_ms = 300000;
    cfg->total_timeout_ms = 600000;
    cfg->drain_timeout_ms = 30000;
    cfg->client_timeout_ms = 60000;
    cfg->default_max_tokens = 4096;
    cfg->log_level = "info";
}

/* After the whole file is read, so providers may come after models. */
static void resolve_providers(loader_t *ld)
{
    config_t *cfg = ld->cfg;

    for (size_t m = 0; m < cfg->n_models; m++) {
        cfg_model_t *model = &cfg->models[m];

        if (model->provider_name == NULL)
            continue;
        for (size_t i = 0; i < cfg->n_providers; i++)
            if (cfg->providers[i].name &&
                strcmp(cfg->providers[i].name, model->provider_name) == 0)
                model->provider = &cfg->providers[i];
        if (model->provider == NULL)
            fail(ld, model->line,
                 "model '%s' names provider '%s', which is not configured",
                 model->name ? model->name : "?", model->provider_name);
    }
}

static bool model_known(const config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_models; i++)
        if (cfg->models[i].name && strcmp(cfg->models[i].name, name) == 0)
            return true;
    return false;
}

/* Routes, fallbacks and step-downs name configured models. */
static void resolve_task_models(loader_t *ld)
{
    config_t *cfg = ld->cfg;

    for (size_t i = 0; i < cfg->n_tasks; i++) {
        const cfg_task_t *t = &cfg->tasks[i];

        for (size_t j = 0; j < t->n_route; j++)
            if (!model_known(cfg, t->route[j]))
                fail(ld, t->line,
                     "task '%s' routes to model '%s', which "
                     "is not configured",
                     t->name ? t->name : "?", t->route[j]);
        for (size_t j = 0; j < t->n_fallbacks; j++)
            if (!model_known(cfg, t->fallbacks[j]))
                fail(ld, t->line,
                     "task '%s' falls back to model '%s', "
                     "which is not configured",
                     t->name ? t->name : "?", t->fallbacks[j]);
    }
    for (size_t i = 0; i < cfg->n_budgets; i++)
        if (cfg->budgets[i].step_model != NULL &&
            !model_known(cfg, cfg->budgets[i].step_model))
            fail(ld, cfg->budgets[i].line,
                 "step_down model '%s' is not configured",
                 cfg->budgets[i].step_model);
}

static void check_duplicates(loader_t *ld)
{
    config_t *cfg = ld->cfg;

    for (size_t i = 0; i < cfg->n_models; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->models[i].name && cfg->models[j].name &&
                strcmp(cfg->models[i].name, cfg->models[j].name) == 0)
                fail(ld, cfg->models[i].line,
                     "model '%s' is configured "
                     "twice (first at line %d)",
                     cfg->models[i].name, cfg->models[j].line);
    for (size_t i = 0; i < cfg->n_providers; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->providers[i].name && cfg->providers[j].name &&
                strcmp(cfg->providers[i].name, cfg->providers[j].name) == 0)
                fail(ld, cfg->providers[i].line,
                     "provider '%s' is configured twice (first at line %d)",
                     cfg->providers[i].name, cfg->providers[j].line);
    for (size_t i = 0; i < cfg->n_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->keys[i].name && cfg->keys[j].name &&
                strcmp(cfg->keys[i].name, cfg->keys[j].name) == 0)
                fail(ld, cfg->keys[i].line,
                     "key name '%s' is used twice (first at line %d)",
                     cfg->keys[i].name, cfg->keys[j].line);
    for (size_t i = 0; i < cfg->n_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->keys[i].has_hash && cfg->keys[j].has_hash &&
                memcmp(cfg->keys[i].sha256, cfg->keys[j].sha256, 32) == 0)
                fail(ld, cfg->keys[i].line,
                     "key '%s' has the same sha256 "
                     "as key at line %d",
                     cfg->keys[i].name ? cfg->keys[i].name : "?",
                     cfg->keys[j].line);
    if (cfg->admin_key_env != NULL) {
        cfg->admin_key = getenv(cfg->admin_key_env);
        if (cfg->admin_key != NULL && cfg->admin_key[0] == '\0')
            cfg->admin_key = NULL;
    }
    if (log_parse_level(cfg->log_level) < 0)
        fail(ld, ld->log_level_line,
             "log_level '%s' is not one of error, warn, info, debug",
             cfg->log_level);
}

/* Keeps libfyaml's first message, "FILE:LINE:COL: error: text". */
static void yaml_diag(struct fy_diag *diag, void *user, const char *buf,
                      size_t len)
{
    loader_t *ld = user;
    size_t plen = strlen(ld->path);

    /* Only messages about a place in the file; the rest is libfyaml
     * saying that it stopped. */
    if (ld->yaml_error[0] != '\0' || len <= plen ||
        strncmp(buf, ld->path, plen) != 0 || buf[plen] != ':')
        return;
    if (len >= sizeof(ld->yaml_error))
        len = sizeof(ld->yaml_error) - 1;
    memcpy(ld->yaml_error, buf, len);
    ld->yaml_error[len] = '\0';
    ld->yaml_error[strcspn(ld->yaml_error, "\n")] = '\0';
}

/* Reports why libfyaml gave no document, at the line it named. */
static void fail_yaml(loader_t *ld)
{
    const char *p = ld->yaml_error;
    size_t plen = strlen(ld->path);
    int line = 0;
    const char *msg;

    if (p[0] == '\0') {
        fail(ld, 1, "the file is empty");
        return;
    }
    if (strncmp(p, ld->path, plen) == 0 && p[plen] == ':')
        line = atoi(p + plen + 1);
    msg = strstr(p, "error: ");
    fail(ld, line, "YAML syntax: %s", msg ? msg + 7 : p);
}

static struct fy_document *read_yaml(loader_t *ld, const char *path)
{
    struct fy_diag_cfg dcfg;
    struct fy_diag *diag;
    struct fy_parse_cfg pcfg = {.flags = FYPCF_DEFAULT_DOC & ~FYPCF_QUIET};
    struct fy_document *doc;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fail(ld, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    fclose(f);
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = yaml_diag;
    dcfg.user = ld;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    pcfg.diag = diag;
    doc = fy_document_build_from_file(&pcfg, path);
    if (doc == NULL || fy_document_root(doc) == NULL)
        fail_yaml(ld);
    fy_diag_destroy(diag);
    return doc;
}

config_t *config_load(const char *path, FILE *errout, int *n_errors)
{
    return config_load_opts(path, errout, n_errors, 0);
}

config_t *config_load_opts(const char *path, FILE *errout, int *n_errors,
                           unsigned flags)
{
    struct fy_document *doc;
    struct fy_node *root;
    loader_t ld = {.secrets_optional = flags & CONFIG_SECRETS_OPTIONAL};
    const char *slash;
    arena_t *arena = arena_new(16384);

    ld.cfg = arena_alloc(arena, sizeof(config_t));
    memset(ld.cfg, 0, sizeof(config_t));
    ld.cfg->arena = arena;
    ld.cfg->path = arena_strdup(arena, path);
    ld.path = path;
    ld.errout = errout;
    slash = strrchr(path, '/');
    ld.dir = slash ? arena_strndup(arena, path, (size_t)(slash - path)) : "";
    set_defaults(ld.cfg);

    doc = read_yaml(&ld, path);
    if (doc == NULL)
        goto out;
    root = fy_document_root(doc);
    if (root == NULL)
        goto out_doc;
    walk(&ld, root, 1, "the config", NULL, top_field);
    if (ld.cfg->ledger_path == NULL)
        ld.cfg->ledger_path =
            ld.dir[0] ? arena_printf(arena, "%s/tollgate.db", ld.dir)
                      : "tollgate.db";
    resolve_providers(&ld);
    resolve_task_models(&ld);
    check_duplicates(&ld);
    if (ld.cfg->n_models == 0)
        fail(&ld, 1, "no models are configured");

out_doc:
    fy_document_destroy(doc);
out:
    print_errors(&ld);
    *n_errors = ld.errors;
    if (ld.errors > 0) {
        config_free(ld.cfg); /* the JSON subtrees it kept, and the arena */
        return NULL;
    }
    return ld.cfg;
}

void config_free(config_t *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; i < config->n_owned_json; i++)
        json_object_put(config->owned_json[i]);
    free(config->owned_json);
    arena_free(config->arena);
}

const cfg_task_t *config_find_task(const config_t *config, const char *name)
{
    for (size_t i = 0; i < config->n_tasks; i++)
        if (config->tasks[i].name != NULL &&
            strcmp(config->tasks[i].name, name) == 0)
            return &config->tasks[i];
    return NULL;
}

const cfg_model_t *config_find_model(const config_t *config, const char *name)
{
    for (size_t i = 0; i < config->n_models; i++)
        if (strcmp(config->models[i].name, name) == 0)
            return &config->models[i];
    return NULL;
}

const cfg_key_t *config_find_key(const config_t *config,
                                 const unsigned char digest[32])
{
    const cfg_key_t *found = NULL;

    /* Visit every key so the time taken does not say which one matched. */
    for (size_t i = 0; i < config->n_keys; i++)
        if (CRYPTO_memcmp(config->keys[i].sha256, digest, 32) == 0)
            found = &config->keys[i];
    return found;
}

void config_hash_secret(const char *secret, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
}
