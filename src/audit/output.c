/*
 * Prints a finished audit: an aligned table for people (money rounded to
 * 6 decimals, and said so), CSV and JSON for tools (money exact: integer
 * picodollars and 12-decimal USD strings), as `tollgate report` does.
 */
#include "audit/spend.h"
#include "util/arena.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_TOP 15

static const char *usd6(pico_t pico, char *out, size_t outlen)
{
    pico_t micro = audit_scale(pico, 1, 1000000);
    pico_t abs = micro < 0 ? -micro : micro;

    snprintf(out, outlen, "%s%" PRId64 ".%06" PRId64, micro < 0 ? "-" : "",
             abs / 1000000, abs % 1000000);
    return out;
}

static pico_t agg_money(const agg_t *g)
{
    return g->spend + g->estimated;
}

static int cmp_agg(const void *x, const void *y)
{
    const agg_t *a = *(const agg_t *const *)x, *b = *(const agg_t *const *)y;
    pico_t ma = agg_money(a), mb = agg_money(b);

    if (ma != mb)
        return ma > mb ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The groups of a map plus its overflow, by spend (agg_t first in each
 * element), then name. Owned by the caller. */
const agg_t **audit_ranked(const amap_t *map, const agg_t *other, size_t *n)
{
    const agg_t **rows = malloc((map->n + 1) * sizeof(*rows));

    if (rows == NULL)
        die_oom();
    *n = 0;
    for (size_t i = 0; i < map->n; i++)
        rows[(*n)++] = amap_at(map, i);
    if (other->calls > 0)
        rows[(*n)++] = other;
    qsort(rows, *n, sizeof(*rows), cmp_agg);
    return rows;
}

/* Weeks read best in time order. */
static int cmp_name(const void *x, const void *y)
{
    return strcmp((*(const agg_t *const *)x)->name,
                  (*(const agg_t *const *)y)->name);
}

static void table_sources(const audit_t *a, FILE *out)
{
    fprintf(out, "%-40s %-18s %9s %9s %9s %8s %9s\n", "SOURCE", "FORMAT",
            "RECORDS", "CALLS", "MALFORMED", "SKIPPED", "ESTIMATED");
    for (size_t i = 0; i < a->n_sources; i++) {
        const audit_read_stats_t *s = &a->sources[i].stats;
        fprintf(out,
                "%-40.40s %-18s %9" PRId64 " %9" PRId64 " %9" PRId64
                " %8" PRId64 " %9" PRId64 "\n",
                a->sources[i].path, audit_format_name(s->format), s->lines,
                s->calls, s->malformed, s->skipped, s->estimated);
        for (int64_t k = 0; k < s->malformed && k < AUDIT_BAD_LINES_KEPT; k++)
            fprintf(out, "  malformed: %s:%" PRId64 ": %s\n",
                    a->sources[i].path, s->bad_lines[k], s->bad_why[k]);
    }
}

static void table_group(const char *title, const agg_t **rows, size_t n,
                        int top, FILE *out)
{
    char s[32], e[32];

    fprintf(out, "\n%-44s %9s %12s %12s %16s %14s %8s\n", title, "CALLS",
            "INPUT", "OUTPUT", "SPEND_USD", "ESTIMATED_USD", "UNPRICED");
    for (size_t i = 0; i < n && (int)i < top; i++)
        fprintf(out,
                "%-44.44s %9" PRId64 " %12" PRId64 " %12" PRId64
                " %16s %14s %8" PRId64 "\n",
                rows[i]->name, rows[i]->calls, rows[i]->input_tokens,
                rows[i]->output_tokens, usd6(rows[i]->spend, s, sizeof(s)),
                usd6(rows[i]->estimated, e, sizeof(e)), rows[i]->unpriced);
    if (n > (size_t)top)
        fprintf(out, "  ... %zu more (--format json lists all)\n",
                n - (size_t)top);
}

static void table_workflows(const audit_t *a, int top, FILE *out)
{
    size_t n;
    const agg_t **rows = audit_ranked(&a->workflows, &a->other_wf.agg, &n);
    char s[32];

    fprintf(out, "\n%-44s %-20s %9s %8s %16s %7s %7s\n", "BY WORKFLOW", "OWNER",
            "CALLS", "IN:OUT", "SPEND_USD", "RETRY", "DUPS");
    for (size_t i = 0; i < n && (int)i < top; i++) {
        const workflow_t *w = (const workflow_t *)rows[i];
        int64_t ratio = w->agg.output_tokens > 0
                            ? w->agg.input_tokens / w->agg.output_tokens
                            : 0;
        fprintf(out,
                "%-44.44s %-20.20s %9" PRId64 " %7" PRId64 ":1 %16s"
                " %7" PRId64 " %7" PRId64 "\n",
                w->agg.name, w->several_owners ? "(several)" : w->owner,
                w->agg.calls, ratio,
                usd6(w->agg.spend + w->agg.estimated, s, sizeof(s)), w->retries,
                w->duplicates);
    }
    if (n > (size_t)top)
        fprintf(out, "  ... %zu more\n", n - (size_t)top);
    free(rows);
}

static void table_leaks(const audit_totals_t *t, FILE *out)
{
    char a[32], b[32], c[32];

    fprintf(out, "\n%-10s %16s  %s\n", "LEAK", "USD", "HOW IT WAS COMPUTED");
    fprintf(out,
            "%-10s %16s  premium model in a workflow of >= %d calls "
            "with answers of <= %d tokens\n%28s  on average: spend "
            "minus the same usage at the provider's cheaper tier\n",
            "routing", usd6(t->leak_routing, a, sizeof(a)), ROUTE_MIN_CALLS,
            SHORT_ANSWER, "");
    fprintf(out,
            "%-10s %16s  resent system prompts >= %d tokens priced as "
            "cache reads (%s)\n%28s  + turns before the last four "
            "dropped (%s)\n",
            "context", usd6(t->leak_context, a, sizeof(a)), CACHE_MIN_PREFIX,
            usd6(t->leak_prefix, b, sizeof(b)), "",
            usd6(t->leak_history, c, sizeof(c)));
    fprintf(out,
            "%-10s %16s  same owner, workflow and last user turn "
            "within %d s, or a ledger retry\n",
            "retries", usd6(t->leak_retries, a, sizeof(a)), RETRY_WINDOW);
    fprintf(out,
            "%-10s %16s  exact duplicate requests (%s) + days above "
            "%dx a workflow's\n%28s  median volume, spend above the "
            "median (%s)\n",
            "volume", usd6(t->leak_volume, a, sizeof(a)),
            usd6(t->leak_duplicates, b, sizeof(b)), OUTLIER_FACTOR, "",
            usd6(t->leak_outliers, c, sizeof(c)));
}

static int write_table(const audit_t *a, FILE *out)
{
    const audit_totals_t *t = &a->totals;
    int top = a->opts.top > 0 ? a->opts.top : TABLE_TOP;
    const agg_t **rows;
    size_t n;
    char s[32], e[32];

    table_sources(a, out);
    fprintf(out,
            "\ntotal: %" PRId64 " calls, spend %s USD exact + %s USD "
            "estimated (%" PRId64 " calls, usage counted by us), %" PRId64
            " unpriced; %" PRId64 " workflows\n",
            t->calls, usd6(t->spend, s, sizeof(s)),
            usd6(t->estimated, e, sizeof(e)), t->estimated_calls,
            t->unpriced_calls, t->workflows);
    rows = audit_ranked(&a->owners, &a->other_owner, &n);
    table_group("BY OWNER", rows, n, top, out);
    free(rows);
    table_workflows(a, top, out);
    rows = audit_ranked(&a->models, &a->other_model, &n);
    table_group("BY MODEL", rows, n, top, out);
    free(rows);
    rows = audit_ranked(&a->weeks, &a->other_week, &n);
    qsort(rows, n, sizeof(*rows), cmp_name);
    table_group("BY WEEK (starting Monday)", rows, n, 1000, out);
    free(rows);
    table_leaks(t, out);
    fputs("\nmoney in this table is rounded to 6 decimals; --format json or "
          "csv is exact\n",
          out);
    return ferror(out) ? -EIO : 0;
}

/* A CSV field in quotes, quotes inside doubled (RFC 4180). */
static void csv_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_row(FILE *out, const char *section, const agg_t *g,
                    const char *owner)
{
    char s[40], e[40];

    fprintf(out, "%s,", section);
    csv_quoted(out, g->name);
    fputc(',', out);
    csv_quoted(out, owner);
    fprintf(out,
            ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%s,%" PRId64 ",%s,%" PRId64
            ",%" PRId64 "\n",
            g->calls, g->input_tokens, g->output_tokens,
            pico_format_usd(g->spend, s, sizeof(s)), g->spend,
            pico_format_usd(g->estimated, e, sizeof(e)), g->estimated,
            g->unpriced);
}

static void csv_map(FILE *out, const char *section, const amap_t *map,
                    const agg_t *other)
{
    size_t n;
    const agg_t **rows = audit_ranked(map, other, &n);

    for (size_t i = 0; i < n; i++)
        csv_row(out, section, rows[i], "");
    free(rows);
}

static void csv_leak(FILE *out, const char *name, pico_t v)
{
    char s[40];

    fprintf(out, "leak,%s,,,,,%s,%" PRId64 ",,,\n", name,
            pico_format_usd(v, s, sizeof(s)), v);
}

static int write_csv(const audit_t *a, FILE *out)
{
    const audit_totals_t *t = &a->totals;

    fputs("section,name,owner,calls,input_tokens,output_tokens,spend_usd,"
          "spend_pico,estimated_usd,estimated_pico,unpriced\n",
          out);
    csv_row(out, "total", &a->total, "");
    csv_map(out, "owner", &a->owners, &a->other_owner);
    csv_map(out, "model", &a->models, &a->other_model);
    csv_map(out, "week", &a->weeks, &a->other_week);
    for (size_t i = 0; i < a->workflows.n; i++) {
        const workflow_t *w = amap_at(&a->workflows, i);
        csv_row(out, "workflow", &w->agg,
                w->several_owners ? "(several)" : w->owner);
    }
    csv_leak(out, "routing", t->leak_routing);
    csv_leak(out, "context", t->leak_context);
    csv_leak(out, "context_prefix", t->leak_prefix);
    csv_leak(out, "context_history", t->leak_history);
    csv_leak(out, "retries", t->leak_retries);
    csv_leak(out, "volume", t->leak_volume);
    csv_leak(out, "volume_duplicates", t->leak_duplicates);
    csv_leak(out, "volume_outliers", t->leak_outliers);
    return ferror(out) ? -EIO : 0;
}

int audit_write(const audit_t *a, FILE *out)
{
    switch (a->opts.format) {
    case AUDIT_OUT_CSV:
        return write_csv(a, out);
    case AUDIT_OUT_JSON:
        return audit_write_json(a, out);
    case AUDIT_OUT_HTML:
        return audit_write_html(a, out);
    default:
        return write_table(a, out);
    }
}
