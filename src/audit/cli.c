/*
 * `tollgate audit FILES...`: reads every file in turn, one record at a
 * time, into one audit, and prints it. Options shared with replay (the
 * price files, the model for sources without one) are parsed here.
 */
#include "audit/audit.h"
#include "audit/cli.h"
#include "report/report.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void audit_usage(FILE *out)
{
    fputs("usage: tollgate audit FILE... [--format table|csv|json|html]\n"
          "       [--since TIME] [--until TIME] [--prices FILE]...\n"
          "       [--model MODEL] [--top N]\n"
          "FILE: a Tollgate ledger, chat/Batch/Anthropic/Responses JSONL, "
          "OpenAI Usage API\n"
          "pages, LiteLLM spend logs (JSON or CSV), the Azure LLM trace, "
          "ShareGPT,\n"
          "RouteLLM or AlpacaEval sets; the format is told from the "
          "content.\n",
          out);
}

int audit_parse_format(const char *s, audit_output_t *out)
{
    if (strcmp(s, "table") == 0)
        *out = AUDIT_OUT_TABLE;
    else if (strcmp(s, "csv") == 0)
        *out = AUDIT_OUT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = AUDIT_OUT_JSON;
    else
        return -EINVAL;
    return 0;
}

int audit_load_prices(price_table_t *table, const char *path)
{
    char err[256];

    if (billing_import_file(table, path, NULL, NULL, NULL, err, sizeof(err)) <
        0) {
        fprintf(stderr, "tollgate: %s: %s\n", path, err);
        return -EINVAL;
    }
    return 0;
}

static int parse_time(const char *s, int64_t *out)
{
    int64_t ms;

    if (report_parse_time(s, (int64_t)time(NULL) * 1000, &ms) < 0) {
        fprintf(stderr, "tollgate audit: bad time '%s'\n", s);
        return -EINVAL;
    }
    *out = ms / 1000;
    return 0;
}

static int audit_option(int c, audit_opts_t *opts, price_table_t *table)
{
    switch (c) {
    case 'f':
        if (audit_parse_format(optarg, &opts->format) == 0)
            return 0;
        if (strcmp(optarg, "html") == 0) {
            opts->format = AUDIT_OUT_HTML;
            return 0;
        }
        fprintf(stderr, "tollgate audit: unknown format '%s'\n", optarg);
        return -EINVAL;
    case 's':
        opts->has_since = true;
        return parse_time(optarg, &opts->since);
    case 'u':
        opts->has_until = true;
        return parse_time(optarg, &opts->until);
    case 'p':
        return audit_load_prices(table, optarg);
    case 'm':
        opts->default_model = optarg;
        return 0;
    case 't':
        opts->top = atoi(optarg);
        return 0;
    default:
        return -EINVAL;
    }
}

/* Reads one file into the audit. Returns 0 or -EIO when it cannot be
 * opened or read to its end. */
static int audit_file(audit_t *audit, const char *path, const char *model)
{
    char err[512];
    audit_reader_t *r = audit_reader_open(path, err, sizeof(err));
    audit_call_t call;
    int rc;

    if (r == NULL) {
        fprintf(stderr, "tollgate audit: %s\n", err);
        return -EIO;
    }
    if (model != NULL)
        audit_reader_set_model(r, model);
    while ((rc = audit_reader_next(r, &call)) == 1)
        audit_add(audit, &call);
    if (rc < 0)
        fprintf(stderr, "tollgate audit: %s: read error\n", path);
    audit_add_source(audit, path, audit_reader_stats(r));
    audit_reader_close(r);
    return rc < 0 ? -EIO : 0;
}

int audit_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"prices", required_argument, NULL, 'p'},
        {"model", required_argument, NULL, 'm'},
        {"top", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    audit_opts_t opts = {0};
    price_table_t *table = billing_table_new();
    audit_t *audit;
    int c, failed = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "f:s:u:p:m:t:h", longopts, NULL)) !=
           -1) {
        if (c == 'h') {
            audit_usage(stdout);
            billing_table_free(table);
            return 0;
        }
        if (audit_option(c, &opts, table) < 0) {
            audit_usage(stderr);
            billing_table_free(table);
            return 2;
        }
    }
    if (optind >= argc) {
        audit_usage(stderr);
        billing_table_free(table);
        return 2;
    }
    audit = audit_new(table, &opts);
    for (int i = optind; i < argc; i++)
        failed |= audit_file(audit, argv[i], opts.default_model) < 0;
    audit_finish(audit, NULL);
    if (audit_write(audit, stdout) < 0)
        failed = 1;
    audit_free(audit);
    billing_table_free(table);
    return failed ? 1 : 0;
}
