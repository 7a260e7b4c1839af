/*
 * The dashboard's data and the one-file HTML page that shows it: `tollgate
 * report --format html` writes it, and /dashboard serves the same page.
 * The page is the bundle that `make dashboard` builds (a chart library
 * from npm and web/dashboard.js, concatenated into build/dashboard/), with
 * the data inlined as a JSON script block the page's code reads.
 */
#include "report/internal.h"

#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Windows shorter than this are charted by the hour, longer by day. */
#define HOURLY_BELOW_MS (3 * MS_PER_DAY_R)
#define BUNDLE_MAX (8 << 20)

static json_object *query_json(const report_opts_t *base, int n_by,
                               const report_dim_t *by, bool compare, bool leaks,
                               char *err, size_t errlen)
{
    report_opts_t opts = *base;
    report_t report;
    json_object *obj = NULL;
    int rc;

    memcpy(opts.by, by, (size_t)n_by * sizeof(report_dim_t));
    opts.n_by = n_by;
    opts.compare = compare;
    opts.leaks = leaks;
    rc = leaks ? report_query_leaks(&opts, &report, err, errlen)
               : report_query(&opts, &report, err, errlen);
    if (rc == 0)
        obj = report_to_json(&report);
    report_free(&report);
    return obj;
}

static report_dim_t bucket_dim(const report_opts_t *opts)
{
    int64_t until = opts->has_until ? opts->until_ms : opts->now_ms;

    if (opts->has_since && until - opts->since_ms < HOURLY_BELOW_MS)
        return REPORT_BY_HOUR;
    return REPORT_BY_DAY;
}

static bool add_part(json_object *root, const char *name, json_object *part)
{
    if (part == NULL)
        return false;
    json_object_object_add(root, name, part);
    return true;
}

json_object *report_dashboard_data(const report_opts_t *opts, char *err,
                                   size_t errlen)
{
    const report_dim_t task_model[] = {REPORT_BY_TASK, REPORT_BY_MODEL};
    report_dim_t bucket = bucket_dim(opts);
    const report_dim_t by_bucket[] = {bucket};
    const report_dim_t bucket_task[] = {bucket, REPORT_BY_TASK};
    const report_dim_t bucket_model[] = {bucket, REPORT_BY_MODEL};
    json_object *root = json_object_new_object();
    bool ok;

    json_object_object_add(root, "bucket",
                           json_object_new_string(report_dim_name(bucket)));
    ok =
        add_part(root, "report",
                 query_json(opts, 2, task_model, opts->has_since, false, err,
                            errlen)) &&
        add_part(root, "by_bucket",
                 query_json(opts, 1, by_bucket, false, false, err, errlen)) &&
        add_part(root, "by_bucket_task",
                 query_json(opts, 2, bucket_task, false, false, err, errlen)) &&
        add_part(
            root, "by_bucket_model",
            query_json(opts, 2, bucket_model, false, false, err, errlen)) &&
        add_part(root, "leaks",
                 query_json(opts, 2, task_model, false, true, err, errlen));
    if (!ok) {
        json_object_put(root);
        return NULL;
    }
    return root;
}

/* ---- the bundle ---- */

static bool has_bundle(const char *dir)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/dashboard.js", dir);
    return access(path, R_OK) == 0;
}

int report_bundle_dir(char *dir, size_t len)
{
    static const char *const relative[] = {"build/dashboard", "../dashboard",
                                           "../../build/dashboard"};
    const char *env = getenv("TOLLGATE_DASHBOARD_DIR");
    char exe[PATH_MAX];
    ssize_t n;

    if (env != NULL && env[0] != '\0') {
        snprintf(dir, len, "%s", env);
        return has_bundle(dir) ? 0 : -ENOENT;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = '\0';
    for (size_t i = 0; i < sizeof(relative) / sizeof(relative[0]); i++) {
        char copy[PATH_MAX];

        snprintf(copy, sizeof(copy), "%s", exe);
        snprintf(dir, len, "%s/%s", dirname(copy), relative[i]);
        if (has_bundle(dir))
            return 0;
    }
    return -ENOENT;
}

/* Reads dir/name whole; caller frees. NULL when missing or too big. */
static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[PATH_MAX];
    FILE *f;
    char *text;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    text = malloc(BUNDLE_MAX + 1);
    if (text == NULL)
        die_oom();
    *len = fread(text, 1, BUNDLE_MAX + 1, f);
    fclose(f);
    if (*len > BUNDLE_MAX) {
        free(text);
        return NULL;
    }
    text[*len] = '\0';
    return text;
}

/* A <script> or <style> element ends at the first "</script" or
 * "</style": one inside the bundle (in a string) is written "<\/", which
 * means the same in a JavaScript string and cannot end the element. */
static void put_raw(FILE *out, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (p[0] == '<' && p[1] == '/' &&
            (strncasecmp(p + 2, "script", 6) == 0 ||
             strncasecmp(p + 2, "style", 5) == 0)) {
            fputs("<\\/", out);
            p++;
            continue;
        }
        fputc(*p, out);
    }
}

/* JSON in an HTML script block: "<", ">" and "&" as \u escapes, which
 * JSON allows in strings (the only place they can be), so no task name
 * can close the block or start markup. */
static void put_json(FILE *out, json_object *data)
{
    const char *text = json_object_to_json_string_ext(
        data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '<')
            fputs("\\u003c", out);
        else if (*p == '>')
            fputs("\\u003e", out);
        else if (*p == '&')
            fputs("\\u0026", out);
        else
            fputc(*p, out);
    }
}

static const char page_head[] =
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\">\n<title>Tollgate: cost per useful outcome</title>\n"
    "<style>\n";

int report_write_html(json_object *data, FILE *out, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    char *js = NULL, *css = NULL;
    size_t js_len, css_len;
    int rc = -ENOENT;

    if (report_bundle_dir(dir, sizeof(dir)) < 0 ||
        (js = read_file(dir, "dashboard.js", &js_len)) == NULL ||
        (css = read_file(dir, "dashboard.css", &css_len)) == NULL) {
        snprintf(err, errlen,
                 "the dashboard bundle is not built: run `make dashboard` "
                 "(or set TOLLGATE_DASHBOARD_DIR)");
        goto out;
    }
    fputs(page_head, out);
    put_raw(out, css);
    fputs("</style>\n</head>\n<body>\n<main id=\"app\"><noscript>This page "
          "draws its tables and charts with JavaScript.</noscript></main>\n"
          "<script type=\"application/json\" id=\"tollgate-data\">",
          out);
    put_json(out, data);
    fputs("</script>\n<script>\n", out);
    put_raw(out, js);
    fputs("\n</script>\n</body>\n</html>\n", out);
    rc = ferror(out) ? -EIO : 0;
    if (rc < 0)
        snprintf(err, errlen, "cannot write the page");
out:
    free(js);
    free(css);
    return rc;
}
