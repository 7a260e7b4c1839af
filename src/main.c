/*
 * The tollgate command: serve, check, report, hash-key. Each subcommand
 * parses its own options and returns the process exit code.
 */
#include "admin/admin.h"
#include "audit/audit.h"
#include "config/config.h"
#include "http/gateway.h"
#include "proxy/router.h"
#include "report/report.h"
#include "tokens/tokens.h"
#include "util/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOLLGATE_VERSION "0.1.0"

static void usage(FILE *out)
{
    fputs("usage: tollgate COMMAND [OPTIONS]\n"
          "\n"
          "  serve --config FILE [--test-clock]   run the gateway\n"
          "  check --config FILE                  validate a config and its "
          "prices\n"
          "  report --ledger FILE [--by task,model|team|key|owner]\n"
          "         [--since TIME] [--until TIME] [--format "
          "table|csv|json]\n"
          "  prices import FILE [--json] [-v] | prices check --config FILE\n"
          "  hash-key [SECRET]                    SHA-256 of a key for the "
          "config\n"
          "                                       (reads stdin when no "
          "SECRET)\n"
          "  tokens [--model M] [--json] FILE|-   count a text or request\n"
          "  keys create|list|revoke|rotate --config FILE   run-time keys\n"
          "  approve ID --by NAME [--standing --until TIME | --deny]\n"
          "         --config FILE | approvals list --config FILE\n"
          "  audit FILE... | replay --policy FILE FILE...   spend, leaks, "
          "what-if\n"
          "  version\n",
          out);
}

static const char *config_arg(int argc, char **argv, bool *test_clock)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test-clock", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 't' && test_clock != NULL)
            *test_clock = true;
        else
            return NULL;
    }
    return path;
}

static config_t *load_config(const char *path, unsigned flags)
{
    int n_errors = 0;
    config_t *cfg = config_load_opts(path, stderr, &n_errors, flags);

    if (cfg == NULL)
        fprintf(stderr, "tollgate: %s has %d error%s\n", path, n_errors,
                n_errors == 1 ? "" : "s");
    return cfg;
}

static int cmd_serve(int argc, char **argv)
{
    gateway_opts_t opts = {0};
    const char *path = config_arg(argc, argv, &opts.test_clock);
    config_t *cfg;
    int rc;

    if (path == NULL) {
        fputs("tollgate serve: --config FILE is required\n", stderr);
        return 2;
    }
    cfg = load_config(path, 0);
    if (cfg == NULL)
        return 1;
    log_level = log_parse_level(cfg->log_level);
    rc = gateway_serve(cfg, &opts);
    config_free(cfg);
    return rc;
}

/* Lists every model with the price that will apply to it. */
static int report_model_prices(const config_t *cfg, const price_table_t *prices,
                               int *bad_entries)
{
    int unpriced = 0;

    for (size_t i = 0; i < cfg->n_models; i++) {
        const cfg_model_t *m = &cfg->models[i];
        const price_t *p = m->has_price ? &m->price : NULL;

        if (p == NULL && m->price_entry != NULL) {
            p = billing_lookup(prices, m->price_entry);
            if (p == NULL) {
                printf("  model %-28s price_entry '%s' is in no price "
                       "table\n",
                       m->name, m->price_entry);
                *bad_entries += 1;
            }
        }
        if (p == NULL)
            p = billing_lookup(prices, m->upstream);
        if (p == NULL)
            p = billing_lookup(prices, m->name);
        if (p == NULL) {
            printf("  model %-28s UNPRICED: calls will be recorded as "
                   "unpriced\n",
                   m->name);
            unpriced++;
        } else {
            printf("  model %-28s priced by %s#%s\n", m->name, p->source,
                   p->model);
        }
    }
    return unpriced;
}

static int cmd_check(int argc, char **argv)
{
    const char *path = config_arg(argc, argv, NULL);
    config_t *cfg;
    price_table_t *prices;
    int unpriced, bad_entries = 0;

    if (path == NULL) {
        fputs("tollgate check: --config FILE is required\n", stderr);
        return 2;
    }
    cfg = load_config(path, CONFIG_SECRETS_OPTIONAL);
    if (cfg == NULL)
        return 1;
    log_level = LOG_WARN;
    prices = gateway_load_prices(cfg, stderr);
    if (prices == NULL) {
        config_free(cfg);
        return 1;
    }
    printf("%s: %zu providers, %zu models, %zu keys, %zu prices known\n", path,
           cfg->n_providers, cfg->n_models, cfg->n_keys,
           billing_table_size(prices));
    unpriced = report_model_prices(cfg, prices, &bad_entries);
    /* Tasks compile their checks, rules and context policy at start:
     * a mistake there stops `serve`, so check says it first. */
    bad_entries += router_check(cfg, stdout);
    if (cfg->admin_key_env != NULL && cfg->admin_key == NULL)
        printf("  warning: $%s (admin key) is not set\n", cfg->admin_key_env);
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (cfg->providers[i].api_key_env != NULL &&
            cfg->providers[i].api_key == NULL)
            printf("  warning: provider '%s' takes its key from $%s, which "
                   "is not set (serve will need it)\n",
                   cfg->providers[i].name, cfg->providers[i].api_key_env);
    if (bad_entries > 0)
        printf("config has %d problem%s (see above)\n", bad_entries,
               bad_entries == 1 ? "" : "s");
    else
        printf("config ok%s\n", unpriced ? " (with unpriced models)" : "");
    billing_table_free(prices);
    config_free(cfg);
    return bad_entries > 0 ? 1 : 0;
}

static int cmd_hash_key(int argc, char **argv)
{
    char line[4096];
    char hex[65];
    size_t n;

    if (argc >= 2) {
        config_hash_secret(argv[1], strlen(argv[1]), hex);
    } else {
        if (fgets(line, sizeof(line), stdin) == NULL) {
            fputs("tollgate hash-key: no secret on stdin\n", stderr);
            return 2;
        }
        n = strcspn(line, "\r\n");
        config_hash_secret(line, n, hex);
    }
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        usage(cmd == NULL ? stderr : stdout);
        return cmd == NULL ? 2 : 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return report_main(argc - 1, argv + 1);
    if (strcmp(cmd, "prices") == 0)
        return prices_main(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return audit_main(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0)
        return replay_main(argc - 1, argv + 1);
    if (strcmp(cmd, "tokens") == 0)
        return tokens_main(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return keys_main(argc - 1, argv + 1);
    if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "approvals") == 0)
        return approve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "hash-key") == 0)
        return cmd_hash_key(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tollgate %s\n", TOLLGATE_VERSION);
        return 0;
    }
    fprintf(stderr, "tollgate: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
