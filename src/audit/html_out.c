/*
 * The audit as one HTML page with no outside files: the tables of the
 * JSON form (spend by owner, workflow, model and week; the leaks and how
 * each was computed), written from that same tree so the figures agree.
 */
#include "audit/spend.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

static const char *const STYLE =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "th,td{padding:.25em .7em;border-bottom:1px solid #ddd;"
    "text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "th{background:#f4f4f4}p.note{color:#666}";

static void put_text(FILE *out, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

static const char *member_text(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    json_object_object_get_ex(o, key, &v);
    return v == NULL ? "" : json_object_get_string(v);
}

/* One cell per column; a column named *_usd or a count is a number. */
static void put_row(FILE *out, struct json_object *row, const char *const *cols)
{
    fputs("<tr>", out);
    for (; *cols != NULL; cols++) {
        bool text = strcmp(*cols, "name") == 0 || strcmp(*cols, "owner") == 0;

        fprintf(out, "<td class=\"%s\" data-col=\"%s\">", text ? "t" : "n",
                *cols);
        put_text(out, member_text(row, *cols));
        fputs("</td>", out);
    }
    fputs("</tr>\n", out);
}

static void put_table(FILE *out, const char *id, const char *title,
                      struct json_object *rows, const char *const *cols)
{
    size_t n = json_object_array_length(rows);

    fprintf(out, "<h2>%s</h2>\n<table id=\"%s\">\n<tr>", title, id);
    for (const char *const *c = cols; *c != NULL; c++)
        fprintf(out, "<th>%s</th>", *c);
    fputs("</tr>\n", out);
    for (size_t i = 0; i < n; i++)
        put_row(out, json_object_array_get_idx(rows, i), cols);
    fputs("</table>\n", out);
}

static void put_leaks(FILE *out, struct json_object *leaks)
{
    static const char *const names[] = {"routing",           "context_prefix",
                                        "context_history",   "retries",
                                        "volume_duplicates", "volume_outliers"};

    fputs("<h2>Leaks</h2>\n<table id=\"leaks\">\n"
          "<tr><th>leak</th><th>amount_usd</th><th>how</th></tr>\n",
          out);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct json_object *l = json_object_object_get(leaks, names[i]);

        fprintf(out,
                "<tr><td class=\"t\" data-col=\"name\">%s</td>"
                "<td class=\"n\" data-col=\"amount_usd\">",
                names[i]);
        put_text(out, member_text(l, "amount_usd"));
        fputs("</td><td class=\"t\">", out);
        put_text(out, member_text(l, "how"));
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n<p class=\"note\">context total: ", out);
    put_text(out, member_text(leaks, "context_total_usd"));
    fputs(" USD; volume total: ", out);
    put_text(out, member_text(leaks, "volume_total_usd"));
    fputs(" USD.</p>\n", out);
}

static void put_body(FILE *out, struct json_object *root)
{
    static const char *const groups[] = {
        "name",      "calls",         "input_tokens",    "output_tokens",
        "spend_usd", "estimated_usd", "estimated_calls", "unpriced_calls",
        NULL};
    static const char *const workflows[] = {"name",
                                            "owner",
                                            "calls",
                                            "spend_usd",
                                            "estimated_usd",
                                            "retries",
                                            "duplicates",
                                            "leak_routing_usd",
                                            "leak_prefix_usd",
                                            "leak_history_usd",
                                            "leak_retries_usd",
                                            "leak_duplicates_usd",
                                            "leak_outliers_usd",
                                            NULL};
    struct json_object *total = json_object_object_get(root, "total");

    fputs("<h1>Tollgate audit</h1>\n<p>", out);
    put_text(out, member_text(total, "calls"));
    fputs(" calls, spend <span id=\"total_spend_usd\">", out);
    put_text(out, member_text(total, "spend_usd"));
    fputs("</span> USD, estimated <span id=\"total_estimated_usd\">", out);
    put_text(out, member_text(total, "estimated_usd"));
    fputs("</span> USD. Money is exact to the picodollar.</p>\n", out);
    put_leaks(out, json_object_object_get(root, "leaks"));
    put_table(out, "by_owner", "Spend by owner",
              json_object_object_get(root, "by_owner"), groups);
    put_table(out, "by_workflow", "Spend by workflow",
              json_object_object_get(root, "by_workflow"), workflows);
    put_table(out, "by_model", "Spend by model",
              json_object_object_get(root, "by_model"), groups);
    put_table(out, "by_week", "Spend by week",
              json_object_object_get(root, "by_week"), groups);
}

int audit_write_html(const audit_t *a, FILE *out)
{
    struct json_object *root = audit_to_json(a);

    fprintf(out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head>"
            "<meta charset=\"utf-8\"><title>Tollgate audit</title>"
            "<style>%s</style></head><body>\n",
            STYLE);
    put_body(out, root);
    fputs("</body></html>\n", out);
    json_object_put(root);
    return ferror(out) ? -EIO : 0;
}
