/*
 * `tollgate prices`: import a price file and show what it holds, or check
 * a config's models against every price source. Runs as its own command,
 * never inside the gateway.
 */
#include "billing/internal.h"
#include "config/config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define EXIT_CLEAN 0
#define EXIT_FINDINGS 1
#define EXIT_USAGE 2
#define PICO_PER_MTOK_UNIT INT64_C(1000000)

static const char *const service_names[] = {"standard", "batch", "flex",
                                            "priority"};

static void prices_usage(FILE *out)
{
    fputs("usage: tollgate prices import FILE [--json] [-v]\n"
          "       tollgate prices check --config FILE [--all]\n",
          out);
}

/* Picodollars per token as USD per million tokens: "2.5", "0.075". */
static void mtok_format(pico_t pico, char *out, size_t outlen)
{
    int64_t whole = pico / PICO_PER_MTOK_UNIT;
    int64_t frac = pico % PICO_PER_MTOK_UNIT;
    char digits[8];
    size_t n;

    if (frac == 0) {
        snprintf(out, outlen, "%" PRId64, whole);
        return;
    }
    snprintf(digits, sizeof(digits), "%06" PRId64, frac);
    for (n = strlen(digits); n > 0 && digits[n - 1] == '0'; n--)
        digits[n - 1] = '\0';
    snprintf(out, outlen, "%" PRId64 ".%s", whole, digits);
}

static void reject_print(const char *entry, const char *why, void *arg)
{
    fprintf((FILE *)arg, "  rejected %s: %s\n", entry, why);
}

/* {"input": "2.5", "tier_input": "5", ...} in USD per million tokens. */
static json_object *rates_json(const price_t *p, service_tier_t service)
{
    json_object *rates = json_object_new_object();
    char name[40], text[32];

    for (int k = 0; k < PRICE_RATES; k++) {
        for (int tier = 0; tier <= 1; tier++) {
            pico_t rate = billing_rate_get(p, service, k, tier);

            if (rate < 0)
                continue;
            snprintf(name, sizeof(name), "%s%s", tier ? "tier_" : "",
                     billing_rate_name(k));
            mtok_format(rate, text, sizeof(text));
            json_object_object_add(rates, name, json_object_new_string(text));
        }
    }
    return rates;
}

static void extras_json(json_object *o, const price_t *p)
{
    json_object *geo = json_object_new_object();
    char text[48];

    for (int s = SERVICE_BATCH; s <= SERVICE_PRIORITY; s++) {
        if (price_service_rates((price_t *)p, s)->present)
            json_object_object_add(o, service_names[s], rates_json(p, s));
    }
    for (int i = 0; i < p->n_geo && i < PRICE_GEO_MAX; i++) {
        snprintf(text, sizeof(text), "%" PRId64 "/%" PRId64, p->geo[i].num,
                 p->geo[i].den);
        json_object_object_add(geo, p->geo[i].name,
                               json_object_new_string(text));
    }
    json_object_object_add(o, "geo", geo);
    json_object_object_add(o, "fee_per_request_pico",
                           json_object_new_int64(p->fee_per_request));
    json_object_object_add(o, "fee_per_web_search_pico",
                           json_object_new_int64(p->fee_per_web_search));
}

static json_object *entry_json(const price_t *p)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "model", json_object_new_string(p->model));
    json_object_object_add(o, "origin", json_object_new_string(p->origin));
    json_object_object_add(o, "provider", json_object_new_string(p->provider));
    json_object_object_add(o, "valid_from",
                           json_object_new_int64(p->valid_from));
    json_object_object_add(o, "valid_to", json_object_new_int64(p->valid_to));
    if (p->day_from != p->day_to) {
        json_object_object_add(o, "day_from", json_object_new_int(p->day_from));
        json_object_object_add(o, "day_to", json_object_new_int(p->day_to));
    }
    json_object_object_add(o, "tier_threshold",
                           json_object_new_int64(p->tier_threshold));
    json_object_object_add(o, "usd_per_mtok", rates_json(p, SERVICE_STANDARD));
    extras_json(o, p);
    return o;
}

static void table_json_print(const price_table_t *table)
{
    json_object *all = json_object_new_array();

    for (size_t i = 0; i < billing_table_size(table); i++)
        json_object_array_add(all, entry_json(billing_table_at(table, i)));
    puts(json_object_to_json_string_ext(
        all, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(all);
}

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    bool json = false, verbose = false;
    billing_import_t counts = {0};
    price_table_t *table;
    char err[512] = "";
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "jv", opts, NULL)) != -1) {
        if (c == '?')
            return EXIT_USAGE;
        json |= c == 'j';
        verbose |= c == 'v';
    }
    if (optind + 1 != argc) {
        prices_usage(stderr);
        return EXIT_USAGE;
    }

    table = billing_table_new_empty();
    rc = billing_import_file(table, argv[optind], &counts,
                             verbose ? reject_print : NULL,
                             json ? stderr : stdout, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "tollgate prices: %s\n", err);
        billing_table_free(table);
        return EXIT_USAGE;
    }
    fprintf(json ? stderr : stdout, "%s: %d loaded, %d unpriced, %d rejected\n",
            argv[optind], counts.loaded, counts.unpriced, counts.rejected);
    if (json)
        table_json_print(table);
    billing_table_free(table);
    return counts.rejected > 0 ? EXIT_FINDINGS : EXIT_CLEAN;
}

static void disagreement_print(const billing_disagreement_t *d, void *arg)
{
    char a[32], b[32];
    bool money = strcmp(d->field, "tier_threshold") != 0 &&
                 strncmp(d->field, "fee_", 4) != 0;

    (void)arg;
    if (money) {
        mtok_format(d->winner_value, a, sizeof(a));
        mtok_format(d->other_value, b, sizeof(b));
    } else {
        snprintf(a, sizeof(a), "%" PRId64, d->winner_value);
        snprintf(b, sizeof(b), "%" PRId64, d->other_value);
    }
    printf("  %s %s: %s (%s, used) vs %s (%s)\n", d->model, d->field, a,
           d->winner->origin[0] ? d->winner->origin : d->winner->source, b,
           d->other->origin[0] ? d->other->origin : d->other->source);
}

/* The table a gateway with this config would build, plus its models'
 * own prices as config entries. NULL after printing why. */
static price_table_t *check_table(const config_t *cfg)
{
    price_table_t *table = billing_table_new();
    char err[512];

    for (size_t i = 0; i < cfg->n_price_files; i++) {
        billing_import_t counts = {0};

        if (billing_import_file(table, cfg->price_files[i], &counts, NULL, NULL,
                                err, sizeof(err)) < 0) {
            fprintf(stderr, "tollgate prices: %s\n", err);
            billing_table_free(table);
            return NULL;
        }
        printf("%s: %d loaded, %d unpriced, %d rejected\n", cfg->price_files[i],
               counts.loaded, counts.unpriced, counts.rejected);
    }
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (cfg->models[i].has_price)
            billing_put(table, &cfg->models[i].price);
    }
    /* The config's aliases resolve names here as in the gateway. */
    for (size_t i = 0; i < cfg->n_aliases; i++)
        billing_alias(table, cfg->alias_names[i], cfg->alias_targets[i]);
    return table;
}

/* The entry a call to this model is priced by, as the gateway picks it. */
static const price_t *model_price(const price_table_t *table,
                                  const cfg_model_t *m, int64_t now)
{
    const char *names[3] = {m->price_entry, m->upstream, m->name};
    const price_t *p = NULL;

    if (m->has_price)
        return billing_lookup_at(table, m->name, now);
    for (int i = 0; p == NULL && i < 3; i++) {
        if (names[i] != NULL && names[i][0] != '\0')
            p = billing_lookup_at(table, names[i], now);
    }
    return p;
}

static int models_check(const config_t *cfg, const price_table_t *table,
                        int64_t now)
{
    int findings = 0;

    for (size_t i = 0; i < cfg->n_models; i++) {
        const cfg_model_t *m = &cfg->models[i];
        const price_t *p = model_price(table, m, now);
        char origin[160];

        if (p == NULL) {
            printf("model %s: UNPRICED (no entry, alias, date form or "
                   "match rule)\n",
                   m->name);
            findings++;
            continue;
        }
        billing_origin_format(p, origin, sizeof(origin));
        printf("model %s: priced by %s\n", m->name, origin);
        findings += (int)billing_disagreements(table, p->model, now,
                                               disagreement_print, NULL);
    }
    return findings;
}

static int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"all", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool all = false;
    int64_t now = (int64_t)time(NULL);
    config_t *cfg;
    price_table_t *table;
    int c, n_errors = 0, findings;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:a", opts, NULL)) != -1) {
        if (c == '?')
            return EXIT_USAGE;
        if (c == 'c')
            path = optarg;
        all |= c == 'a';
    }
    if (path == NULL || optind != argc) {
        prices_usage(stderr);
        return EXIT_USAGE;
    }
    if ((cfg = config_load_opts(path, stderr, &n_errors,
                                CONFIG_SECRETS_OPTIONAL)) == NULL)
        return EXIT_USAGE;
    if ((table = check_table(cfg)) == NULL) {
        config_free(cfg);
        return EXIT_USAGE;
    }

    findings = models_check(cfg, table, now);
    if (all) {
        printf("all sources:\n");
        findings += (int)billing_disagreements(table, NULL, now,
                                               disagreement_print, NULL);
    }
    printf("%d finding%s\n", findings, findings == 1 ? "" : "s");
    billing_table_free(table);
    config_free(cfg);
    return findings > 0 ? EXIT_FINDINGS : EXIT_CLEAN;
}

int prices_main(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (sub != NULL && strcmp(sub, "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (sub != NULL && strcmp(sub, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    prices_usage(stderr);
    return EXIT_USAGE;
}
