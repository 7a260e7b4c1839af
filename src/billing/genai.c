/*
 * pydantic genai-prices data (data.json, v1 or v2 keys) into price
 * entries and match rules. Runs at start from billing_import_file(),
 * never on the request path; the compiled clauses are matched by lookups.
 *
 * The file is an array of providers, each with models. A model's `prices`
 * is one price object, or a list of {constraint, prices} where the
 * constraint is a start date or a daily UTC window and the last entry in
 * force wins; every element becomes its own entry, registered under
 * "<provider>/<model id>" and, unless another provider of the same file
 * took it first, under the bare model id. The model's `match` clause tree
 * becomes a lookup rule naming the "<provider>/<id>" entry.
 *
 * Values are USD per million tokens (per thousand for *_kcount keys), or
 * {"base": 3, "tiers": [{"start": 200000, "price": 6}]}: above `start`
 * input tokens the whole request moves to `price`, which is the
 * long-context cliff of price_t. More than one tier, or two keys with
 * different starts, is not a shape price_t holds: the entry is rejected.
 */
#include "billing/internal.h"
#include "util/arena.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLAUSE_DEPTH_MAX 16
#define REGEX_MAX 512
#define WHY_MAX 160

enum clause_kind {
    CLAUSE_EQUALS,
    CLAUSE_STARTS_WITH,
    CLAUSE_ENDS_WITH,
    CLAUSE_CONTAINS,
    CLAUSE_REGEX,
    CLAUSE_OR,
    CLAUSE_AND
};

struct clause {
    enum clause_kind kind;
    char *text;
    regex_t regex;
    clause_t **kids;
    size_t n_kids;
};

static const char *const clause_names[] = {
    [CLAUSE_EQUALS] = "equals",
    [CLAUSE_STARTS_WITH] = "starts_with",
    [CLAUSE_ENDS_WITH] = "ends_with",
    [CLAUSE_CONTAINS] = "contains",
    [CLAUSE_REGEX] = "regex",
    [CLAUSE_OR] = "or",
    [CLAUSE_AND] = "and",
};

void clause_free(clause_t *clause)
{
    if (clause == NULL)
        return;
    for (size_t i = 0; i < clause->n_kids; i++)
        clause_free(clause->kids[i]);
    if (clause->kind == CLAUSE_REGEX && clause->text != NULL)
        regfree(&clause->regex);
    free(clause->kids);
    free(clause->text);
    free(clause);
}

/* Python's \d, \w and \s in POSIX extended form; the data uses \d. */
static int regex_translate(const char *in, char *out, size_t outlen)
{
    static const struct {
        char letter;
        const char *posix;
    } classes[] = {{'d', "[0-9]"}, {'w', "[[:alnum:]_]"}, {'s', "[[:space:]]"}};
    size_t n = 0;

    for (; *in != '\0'; in++) {
        const char *add = NULL;
        char one[3] = {*in, '\0', '\0'};

        if (*in == '\\' && in[1] != '\0') {
            one[1] = *++in;
            for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
                if (classes[i].letter == *in)
                    add = classes[i].posix;
        }
        if (add == NULL)
            add = one;
        if (n + strlen(add) >= outlen)
            return -ENAMETOOLONG;
        memcpy(out + n, add, strlen(add));
        n += strlen(add);
    }
    out[n] = '\0';
    return 0;
}

static clause_t *clause_new(enum clause_kind kind)
{
    clause_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        die_oom();
    c->kind = kind;
    return c;
}

static clause_t *clause_leaf(enum clause_kind kind, json_object *value,
                             char *why, size_t whylen)
{
    char pattern[REGEX_MAX];
    clause_t *c;

    if (!json_object_is_type(value, json_type_string)) {
        snprintf(why, whylen, "%s clause is not a string", clause_names[kind]);
        return NULL;
    }
    c = clause_new(kind);
    if (kind == CLAUSE_REGEX) {
        if (regex_translate(json_object_get_string(value), pattern,
                            sizeof(pattern)) < 0 ||
            regcomp(&c->regex, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(why, whylen, "regex %.80s does not compile",
                     json_object_get_string(value));
            free(c);
            return NULL;
        }
    }
    if ((c->text = strdup(json_object_get_string(value))) == NULL)
        die_oom();
    return c;
}

static clause_t *clause_build(json_object *spec, int depth, char *why,
                              size_t whylen);

static clause_t *clause_group(enum clause_kind kind, json_object *list,
                              int depth, char *why, size_t whylen)
{
    size_t n = json_object_is_type(list, json_type_array)
                   ? json_object_array_length(list)
                   : 0;
    clause_t *c;

    if (n == 0) {
        snprintf(why, whylen, "%s clause is not a list", clause_names[kind]);
        return NULL;
    }
    c = clause_new(kind);
    if ((c->kids = calloc(n, sizeof(clause_t *))) == NULL)
        die_oom();
    for (size_t i = 0; i < n; i++) {
        c->kids[i] = clause_build(json_object_array_get_idx(list, i), depth + 1,
                                  why, whylen);
        if (c->kids[i] == NULL) {
            clause_free(c);
            return NULL;
        }
        c->n_kids++;
    }
    return c;
}

static clause_t *clause_build(json_object *spec, int depth, char *why,
                              size_t whylen)
{
    if (depth > CLAUSE_DEPTH_MAX ||
        !json_object_is_type(spec, json_type_object) ||
        json_object_object_length(spec) != 1) {
        snprintf(why, whylen, "match clause is not an object of one key");
        return NULL;
    }
    json_object_object_foreach(spec, key, value)
    {
        for (int k = CLAUSE_EQUALS; k <= CLAUSE_AND; k++) {
            if (strcmp(key, clause_names[k]) != 0)
                continue;
            if (k == CLAUSE_OR || k == CLAUSE_AND)
                return clause_group(k, value, depth, why, whylen);
            return clause_leaf(k, value, why, whylen);
        }
        snprintf(why, whylen, "unknown match clause %.40s", key);
    }
    return NULL;
}

clause_t *clause_compile(json_object *spec, char *why, size_t whylen)
{
    return clause_build(spec, 0, why, whylen);
}

static bool ends_with(const char *name, const char *tail)
{
    size_t n = strlen(name), t = strlen(tail);

    return n >= t && memcmp(name + n - t, tail, t) == 0;
}

bool clause_match(const clause_t *c, const char *name)
{
    switch (c->kind) {
    case CLAUSE_EQUALS:
        return strcmp(name, c->text) == 0;
    case CLAUSE_STARTS_WITH:
        return strncmp(name, c->text, strlen(c->text)) == 0;
    case CLAUSE_ENDS_WITH:
        return ends_with(name, c->text);
    case CLAUSE_CONTAINS:
        return strstr(name, c->text) != NULL;
    case CLAUSE_REGEX:
        return regexec(&c->regex, name, 0, NULL, 0) == 0;
    case CLAUSE_OR:
        for (size_t i = 0; i < c->n_kids; i++)
            if (clause_match(c->kids[i], name))
                return true;
        return false;
    case CLAUSE_AND:
        for (size_t i = 0; i < c->n_kids; i++)
            if (!clause_match(c->kids[i], name))
                return false;
        return true;
    }
    return false;
}

/* genai-prices price keys and where they go. */
enum key_kind { KEY_RATE, KEY_REQUEST_FEE, KEY_SEARCH_FEE };

static const struct genai_key {
    const char *name;
    enum key_kind kind;
    price_rate_t rate;
} genai_keys[] = {
    {"input_mtok", KEY_RATE, RATE_INPUT},
    {"cache_read_mtok", KEY_RATE, RATE_CACHED},
    /* The generic write first: the 5-minute key, if present, wins. */
    {"cache_write_mtok", KEY_RATE, RATE_WRITE_5M},
    {"cache_write_5m_mtok", KEY_RATE, RATE_WRITE_5M},
    {"cache_write_1h_mtok", KEY_RATE, RATE_WRITE_1H},
    {"output_mtok", KEY_RATE, RATE_OUTPUT},
    {"output_reasoning_mtok", KEY_RATE, RATE_REASONING},
    {"input_audio_mtok", KEY_RATE, RATE_AUDIO_IN},
    {"output_audio_mtok", KEY_RATE, RATE_AUDIO_OUT},
    {"requests_kcount", KEY_REQUEST_FEE, RATE_INPUT},
    {"web_searches_kcount", KEY_SEARCH_FEE, RATE_INPUT},
};

/* One element of a model's prices being read. */
struct element {
    price_t price;
    char why[WHY_MAX];
};

static int number_read(struct element *el, const char *key, json_object *v,
                       int shift, int64_t *out)
{
    const char *text;
    size_t len;

    if (json_decimal_text(v, &text, &len) != 0 ||
        !(json_object_is_type(v, json_type_double) ||
          json_object_is_type(v, json_type_int)) ||
        decimal_scaled(text, len, shift, out) < 0 || *out > PRICE_RATE_MAX) {
        snprintf(el->why, sizeof(el->why),
                 "%s is not a whole number of picodollars up to $1000", key);
        return -EINVAL;
    }
    return 0;
}

/* {"base": b, "tiers": [{"start": s, "price": p}]}: one tier only. */
static int tiered_read(struct element *el, const char *key, json_object *v,
                       pico_t *base, pico_t *tier)
{
    json_object *b, *tiers, *t0, *start, *price;
    int64_t threshold;

    if (!json_object_object_get_ex(v, "base", &b) ||
        !json_object_object_get_ex(v, "tiers", &tiers) ||
        !json_object_is_type(tiers, json_type_array) ||
        json_object_array_length(tiers) != 1 ||
        !json_object_object_get_ex(t0 = json_object_array_get_idx(tiers, 0),
                                   "start", &start) ||
        !json_object_object_get_ex(t0, "price", &price)) {
        snprintf(el->why, sizeof(el->why),
                 "%s is not a price or one base and one tier", key);
        return -EINVAL;
    }
    if (number_read(el, key, b, SHIFT_PER_MILLION, base) < 0 ||
        number_read(el, key, price, SHIFT_PER_MILLION, tier) < 0 ||
        number_read(el, key, start, SHIFT_NONE, &threshold) < 0)
        return -EINVAL;

    if (el->price.tier_threshold != 0 &&
        el->price.tier_threshold != threshold) {
        snprintf(el->why, sizeof(el->why),
                 "two long-context thresholds (%lld and %lld tokens)",
                 (long long)el->price.tier_threshold, (long long)threshold);
        return -EINVAL;
    }
    el->price.tier_threshold = threshold;
    return 0;
}

static int key_read(struct element *el, const struct genai_key *k,
                    json_object *v)
{
    price_t *p = &el->price;

    if (k->kind == KEY_REQUEST_FEE)
        return number_read(el, k->name, v, SHIFT_PER_THOUSAND,
                           &p->fee_per_request);
    if (k->kind == KEY_SEARCH_FEE)
        return number_read(el, k->name, v, SHIFT_PER_THOUSAND,
                           &p->fee_per_web_search);
    if (json_object_is_type(v, json_type_object))
        return tiered_read(el, k->name, v,
                           price_rate_ref(p, SERVICE_STANDARD, k->rate, false),
                           price_rate_ref(p, SERVICE_STANDARD, k->rate, true));
    return number_read(el, k->name, v, SHIFT_PER_MILLION,
                       price_rate_ref(p, SERVICE_STANDARD, k->rate, false));
}

static int prices_read(struct element *el, json_object *prices)
{
    if (!json_object_is_type(prices, json_type_object)) {
        snprintf(el->why, sizeof(el->why), "prices is not an object");
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(genai_keys) / sizeof(genai_keys[0]); i++) {
        json_object *v;

        if (json_object_object_get_ex(prices, genai_keys[i].name, &v) &&
            !json_object_is_type(v, json_type_null) &&
            key_read(el, &genai_keys[i], v) < 0)
            return -EINVAL;
    }
    return 0;
}

/* "2026-03-13" into unix seconds at midnight UTC. */
static int date_read(const char *text, int64_t *out)
{
    int y, m, d, n = 0;

    if (sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || text[n] != '\0' ||
        y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
        return -EINVAL;
    *out = date_to_unix(y, m, d);
    return 0;
}

/* "00:30:00Z" into seconds into the day. */
static int time_read(const char *text, int32_t *out)
{
    int h, m, s, n = 0;

    if (sscanf(text, "%2d:%2d:%2d%n", &h, &m, &s, &n) != 3 ||
        (text[n] != '\0' && strcmp(text + n, "Z") != 0) || h > 23 || m > 59 ||
        s > 59 || h < 0 || m < 0 || s < 0)
        return -EINVAL;
    *out = h * 3600 + m * 60 + s;
    return 0;
}

/* {start_date} or {start_time, end_time}; adds "@..." to the origin. */
static int constraint_read(struct element *el, json_object *constraint)
{
    price_t *p = &el->price;
    size_t base = strlen(p->origin);

    json_object_object_foreach(constraint, key, value)
    {
        const char *text = json_object_get_string(value);
        int rc = -EINVAL;

        if (strcmp(key, "start_date") == 0)
            rc = date_read(text, &p->valid_from);
        else if (strcmp(key, "start_time") == 0)
            rc = time_read(text, &p->day_from);
        else if (strcmp(key, "end_time") == 0)
            rc = time_read(text, &p->day_to);
        if (rc < 0 || !json_object_is_type(value, json_type_string)) {
            snprintf(el->why, sizeof(el->why),
                     "constraint %.40s is not a date or a time of day", key);
            return -EINVAL;
        }
        size_t used = strlen(p->origin);

        snprintf(p->origin + used, sizeof(p->origin) - used, "%s%s",
                 used == base ? "@" : "-", text);
    }
    return 0;
}

/* Reads one element; 0 priced, 1 unpriced, -EINVAL rejected. */
static int element_read(struct element *el, json_object *item, bool listed)
{
    json_object *prices = item, *constraint;

    if (listed) {
        if (!json_object_is_type(item, json_type_object) ||
            !json_object_object_get_ex(item, "prices", &prices)) {
            snprintf(el->why, sizeof(el->why), "price list item has no prices");
            return -EINVAL;
        }
        if (json_object_object_get_ex(item, "constraint", &constraint) &&
            constraint_read(el, constraint) < 0)
            return -EINVAL;
    }
    if (prices_read(el, prices) < 0)
        return -EINVAL;

    /* genai-prices bills a unit it has no price for at 0: embeddings list
     * only input_mtok. Without an input price the entry is unpriced. */
    if (el->price.input == PRICE_ABSENT)
        return 1;
    if (el->price.output == PRICE_ABSENT)
        el->price.output = 0;
    return 0;
}

/* A dated element ends where a later, later-starting one begins. */
static void valid_to_fill(struct element *els, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        price_t *p = &els[i].price;

        if (p->day_from != p->day_to)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            const price_t *q = &els[j].price;

            if (q->day_from == q->day_to && q->valid_from > p->valid_from &&
                (p->valid_to == 0 || q->valid_from < p->valid_to))
                p->valid_to = q->valid_from;
        }
    }
}

/* What the importer knows of the provider whose models it reads. */
struct provider_ctx {
    const char *id;
    int index;
    char source[sizeof(((price_t *)0)->source)];
};

/* True when another provider of this file already has the bare name. */
static bool bare_taken(const import_ctx_t *ctx, const struct provider_ctx *pc,
                       const char *bare)
{
    for (const price_t *e = table_name_first(ctx->table, bare); e != NULL;
         e = table_name_next(ctx->table, e)) {
        if (strcmp(e->source, pc->source) == 0 &&
            strcmp(e->provider, pc->id) != 0)
            return true;
    }
    return false;
}

static void elements_put(import_ctx_t *ctx, const struct provider_ctx *pc,
                         struct element *els, size_t n, const char *bare)
{
    bool with_bare =
        strlen(bare) < sizeof(els[0].price.model) && !bare_taken(ctx, pc, bare);

    valid_to_fill(els, n);
    for (size_t i = 0; i < n; i++) {
        billing_put(ctx->table, &els[i].price);
        if (!with_bare)
            continue;
        snprintf(els[i].price.model, sizeof(els[i].price.model), "%s", bare);
        billing_put(ctx->table, &els[i].price);
    }
}

/* Reads every element of a model; 0, 1 (some unpriced) or -EINVAL with
 * the reason in els[0].why. */
static int elements_read(const struct provider_ctx *pc, const char *full,
                         json_object *prices, struct element *els, size_t n)
{
    bool listed = json_object_is_type(prices, json_type_array);
    int status = 0;

    for (size_t i = 0; i < n; i++) {
        struct element *el = &els[i];
        int rc;

        el->why[0] = '\0';
        billing_price_init(&el->price, full, pc->source);
        snprintf(el->price.provider, sizeof(el->price.provider), "%s", pc->id);
        price_origin_set(&el->price, pc->source, full);
        rc = element_read(
            el, listed ? json_object_array_get_idx(prices, i) : prices, listed);
        if (rc < 0) {
            if (el != &els[0])
                memcpy(els[0].why, el->why, sizeof(el->why));
            return -EINVAL;
        }
        status |= rc;
    }
    return status;
}

static void model_add(import_ctx_t *ctx, const struct provider_ctx *pc,
                      const char *id, const char *full, json_object *model)
{
    json_object *prices = NULL, *match = NULL;
    clause_t *clause = NULL;
    struct element *els;
    char why[WHY_MAX] = "no prices";
    size_t n = 1;
    int rc = -EINVAL;

    json_object_object_get_ex(model, "prices", &prices);
    if (json_object_is_type(prices, json_type_array))
        n = json_object_array_length(prices);
    if (json_object_object_get_ex(model, "match", &match) &&
        (clause = clause_compile(match, why, sizeof(why))) == NULL) {
        import_reject(ctx, full, "%s", why);
        return;
    }

    if ((els = calloc(n > 0 ? n : 1, sizeof(*els))) == NULL)
        die_oom();
    if (prices != NULL && n > 0)
        rc = elements_read(pc, full, prices, els, n);
    if (rc < 0) {
        import_reject(ctx, full, "%s", prices == NULL ? why : els[0].why);
    } else if (rc > 0) {
        ctx->tally.unpriced++;
    } else {
        elements_put(ctx, pc, els, n, id);
        ctx->tally.loaded++;
        if (clause != NULL)
            table_rule_add(ctx->table, pc->index, clause, full);
        clause = NULL;
    }
    clause_free(clause);
    free(els);
}

static void model_import(import_ctx_t *ctx, const struct provider_ctx *pc,
                         json_object *model)
{
    json_object *id;
    char full[sizeof(((price_t *)0)->model)];

    if (!json_object_is_type(model, json_type_object) ||
        !json_object_object_get_ex(model, "id", &id) ||
        !json_object_is_type(id, json_type_string)) {
        import_reject(ctx, pc->id, "a model without an id");
        return;
    }
    if ((size_t)snprintf(full, sizeof(full), "%s/%s", pc->id,
                         json_object_get_string(id)) >= sizeof(full)) {
        import_reject(ctx, json_object_get_string(id),
                      "name longer than %zu characters", sizeof(full) - 1);
        return;
    }
    model_add(ctx, pc, json_object_get_string(id), full, model);
}

static int provider_import(import_ctx_t *ctx, json_object *provider, size_t i,
                           char *err, size_t errlen)
{
    struct provider_ctx pc;
    json_object *id, *models, *match;
    clause_t *model_match = NULL;
    char why[WHY_MAX];

    if (!json_object_is_type(provider, json_type_object) ||
        !json_object_object_get_ex(provider, "id", &id) ||
        !json_object_is_type(id, json_type_string) ||
        !json_object_object_get_ex(provider, "models", &models) ||
        !json_object_is_type(models, json_type_array)) {
        error_set(err, errlen,
                  "%s: item %zu is not a genai-prices provider (id, "
                  "models)",
                  ctx->path, i);
        return -EINVAL;
    }

    pc.id = json_object_get_string(id);
    snprintf(pc.source, sizeof(pc.source), "genai-prices:%s", ctx->file);
    if (json_object_object_get_ex(provider, "model_match", &match))
        model_match = clause_compile(match, why, sizeof(why));
    pc.index = table_provider_add(ctx->table, pc.id, model_match);

    for (size_t m = 0; m < json_object_array_length(models); m++)
        model_import(ctx, &pc, json_object_array_get_idx(models, m));
    return 0;
}

int import_genai(import_ctx_t *ctx, json_object *root, char *err, size_t errlen)
{
    size_t n = json_object_array_length(root);

    /* Check the shape first: a file that is not this format adds nothing. */
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(root, i), *v;

        if (!json_object_is_type(p, json_type_object) ||
            !json_object_object_get_ex(p, "models", &v)) {
            error_set(err, errlen,
                      "%s: item %zu is not a genai-prices provider", ctx->path,
                      i);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int rc = provider_import(ctx, json_object_array_get_idx(root, i), i,
                                 err, errlen);

        if (rc < 0)
            return rc;
    }
    return 0;
}
