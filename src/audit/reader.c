/*
 * Reads any supported file as a stream of calls: tells the format from
 * the first bytes, then cuts records one at a time (lines, JSON values,
 * CSV rows, ledger rows), so memory does not grow with the file.
 */
#include "audit/internal.h"
#include "upstream/usage.h"
#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define DETECT_LINES 16

typedef enum cut {
    CUT_LINES = 0, /* one JSON value a line (JSONL) */
    CUT_VALUES,    /* JSON values of any layout, arrays opened */
    CUT_CSV,
    CUT_LEDGER
} cut_t;

struct audit_reader {
    FILE *f;
    cut_t cut;
    audit_read_stats_t stats;
    char *buf;
    size_t cap;
    size_t len; /* of the record in buf */
    jstream_t js;
    csv_t head;
    csv_t row;
    audit_call_t *pending; /* calls of the last record not yet given */
    size_t n_pending, next_pending, cap_pending;
    struct json_tokener *tok; /* reused: one allocation per file */
    sqlite3 *db;
    sqlite3_stmt *stmt;
    char default_model[AUDIT_NAME_MAX];
};

const char *audit_format_name(audit_format_t format)
{
    static const char *const names[] = {"unknown",
                                        "ledger",
                                        "jsonl",
                                        "usage-api",
                                        "litellm-json",
                                        "litellm-csv",
                                        "azure-csv",
                                        "sharegpt",
                                        "routellm-gsm8k",
                                        "routellm-mmlu",
                                        "routellm-mt-bench",
                                        "alpaca-eval"};

    return (size_t)format < sizeof(names) / sizeof(names[0]) ? names[format]
                                                             : "unknown";
}

bool audit_format_is_eval(audit_format_t format)
{
    return format == AUDIT_FMT_GSM8K || format == AUDIT_FMT_MMLU ||
           format == AUDIT_FMT_MT_BENCH || format == AUDIT_FMT_ALPACA;
}

const char *audit_reader_record(const audit_reader_t *r, size_t *len)
{
    bool json = r->stats.format == AUDIT_FMT_JSONL ||
                r->stats.format == AUDIT_FMT_LITELLM;

    *len = json && r->buf != NULL ? r->len : 0;
    return json ? r->buf : NULL;
}

static void bad(audit_reader_t *r, int64_t line, const char *why)
{
    int64_t i = r->stats.malformed++;

    if (i < AUDIT_BAD_LINES_KEPT) {
        r->stats.bad_lines[i] = line;
        audit_copy(r->stats.bad_why[i], sizeof(r->stats.bad_why[i]), why);
    }
}

static void pend(void *arg, const audit_call_t *call)
{
    audit_reader_t *r = arg;

    if (r->n_pending == r->cap_pending) {
        r->cap_pending = r->cap_pending == 0 ? 16 : r->cap_pending * 2;
        r->pending = realloc(r->pending, r->cap_pending * sizeof(*call));
        if (r->pending == NULL)
            die_oom();
    }
    r->pending[r->n_pending++] = *call;
}

/* Format from the CSV header; reads it. */
static int detect_csv(audit_reader_t *r)
{
    if (csv_next(&r->head, r->f) != 1)
        return -EINVAL;
    r->row.next_line = r->head.next_line;
    r->cut = CUT_CSV;
    if (csv_column(&r->head, "ContextTokens") >= 0 &&
        csv_column(&r->head, "GeneratedTokens") >= 0)
        r->stats.format = AUDIT_FMT_AZURE_CSV;
    else if (csv_column(&r->head, "request_id") >= 0 &&
             csv_column(&r->head, "model") >= 0)
        r->stats.format = AUDIT_FMT_LITELLM_CSV;
    else if (csv_column(&r->head, "prompt") == 0 && r->head.n >= 3)
        r->stats.format = r->head.n > 3 ? AUDIT_FMT_GSM8K : AUDIT_FMT_MMLU;
    else
        return -EINVAL;
    return 0;
}

static int open_ledger(audit_reader_t *r, const char *path, char *err,
                       size_t errlen);

/* A line that is one JSON object and nothing after it. */
static bool whole_object(const char *line)
{
    struct json_tokener *tok = json_tokener_new();
    size_t len = strlen(line), end;
    struct json_object *obj;
    bool whole;

    if (tok == NULL)
        die_oom();
    obj = json_tokener_parse_ex(tok, line, (int)len);
    end = json_tokener_get_parse_end(tok);
    while (end < len && (line[end] == '\n' || line[end] == '\r' ||
                         line[end] == ' ' || line[end] == '\t'))
        end++;
    whole = json_object_is_type(obj, json_type_object) && end == len;
    json_object_put(obj);
    json_tokener_free(tok);
    return whole;
}

/* One of the first lines being a whole JSON object means JSONL (the
 * first may be the malformed one). */
static void detect_json(audit_reader_t *r)
{
    char *line = NULL;
    size_t cap = 0;
    r->cut = CUT_VALUES;
    for (int i = 0; i < DETECT_LINES && r->cut == CUT_VALUES; i++) {
        if (getline(&line, &cap, r->f) < 0)
            break;
        if (whole_object(line))
            r->cut = CUT_LINES;
    }
    free(line);
    rewind(r->f);
}

audit_reader_t *audit_reader_open(const char *path, char *err, size_t errlen)
{
    audit_reader_t *r = calloc(1, sizeof(*r));
    char magic[16] = {0};
    int c;

    if (r == NULL)
        die_oom();
    if ((r->f = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fread(magic, 1, sizeof(magic), r->f) == sizeof(magic) &&
        memcmp(magic, "SQLite format 3", 16) == 0) {
        if (open_ledger(r, path, err, errlen) < 0)
            goto fail;
        return r;
    }
    rewind(r->f);
    while ((c = getc(r->f)) == ' ' || c == '\n' || c == '\r' || c == '\t')
        ;
    rewind(r->f);
    if (c == '{' || c == '[') {
        if (c == '{')
            detect_json(r);
        else
            r->cut = CUT_VALUES;
        return r;
    }
    if (c != EOF && detect_csv(r) == 0)
        return r;
    snprintf(err, errlen,
             "%s: not a format audit reads (ledger, JSONL, "
             "JSON, CSV)",
             path);
fail:
    audit_reader_close(r);
    return NULL;
}

void audit_reader_close(audit_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->f != NULL)
        fclose(r->f);
    if (r->tok != NULL)
        json_tokener_free(r->tok);
    sqlite3_finalize(r->stmt);
    sqlite3_close(r->db);
    csv_free(&r->head);
    csv_free(&r->row);
    free(r->pending);
    free(r->buf);
    free(r);
}

audit_format_t audit_reader_format(const audit_reader_t *r)
{
    return r->stats.format;
}

const audit_read_stats_t *audit_reader_stats(const audit_reader_t *r)
{
    return &r->stats;
}

void audit_reader_set_model(audit_reader_t *r, const char *model)
{
    audit_copy(r->default_model, sizeof(r->default_model), model);
}

/* The next record's text in r->buf. */
static int next_json_text(audit_reader_t *r, int64_t *line)
{
    size_t len;
    ssize_t n;

    if (r->cut == CUT_VALUES) {
        n = jstream_next(&r->js, r->f, &r->buf, &r->cap, &len, line);
        r->len = len;
        return (int)n;
    }
    do {
        n = getline(&r->buf, &r->cap, r->f);
        if (n < 0)
            return 0;
        *line = ++r->js.line;
    } while (n <= 1 && (r->buf[0] == '\n' || n == 0));
    r->len = (size_t)n;
    return 1;
}

/* One JSON record into calls (queued in pending). */
static void json_record(audit_reader_t *r, struct json_object *obj,
                        int64_t line)
{
    shape_t shape = shape_of(obj);
    audit_call_t call = {0};
    char why[64] = "not JSON, or no known record shape";
    int rc = -EINVAL;

    if (r->stats.format == AUDIT_FMT_UNKNOWN)
        r->stats.format = shape_format(shape);
    if (shape == SHAPE_USAGE_PAGE)
        rc = shape_usage_results(obj, line, pend, r, why);
    else if (shape == SHAPE_SHAREGPT)
        rc = sharegpt_calls(obj, line, r->default_model, pend, r, why);
    else if (shape == SHAPE_MT_BENCH || shape == SHAPE_ALPACA)
        rc = eval_line_call(shape, obj, &call, why);
    else if (shape != SHAPE_NONE)
        rc = shape_call(shape, obj, &call, why);
    if (rc < 0)
        bad(r, line, why);
    else if (rc == 0 && shape != SHAPE_USAGE_PAGE && shape != SHAPE_SHAREGPT)
        r->stats.skipped++;
    if (rc == 1) {
        call.line = line;
        pend(r, &call);
    }
}

/* Most lines of a chat log: no tree for the request. False when the
 * line needs json-c. */
static bool fast_record(audit_reader_t *r, int64_t line)
{
    audit_call_t call = {0};
    char why[64] = "";
    int rc = shape_fast_chat(r->buf, r->len, r->tok, &call, why);

    if (rc == -EAGAIN)
        return false;
    if (r->stats.format == AUDIT_FMT_UNKNOWN)
        r->stats.format = shape_format(SHAPE_CHAT_LOG);
    if (rc < 0) {
        bad(r, line, why);
    } else if (rc == 0) {
        r->stats.skipped++;
    } else {
        call.line = line;
        pend(r, &call);
    }
    return true;
}

static int next_json(audit_reader_t *r)
{
    int64_t line = 0;
    struct json_object *obj;

    if (next_json_text(r, &line) == 0)
        return 0;
    r->stats.lines++;
    if (r->tok == NULL && (r->tok = json_tokener_new()) == NULL)
        die_oom();
    if (fast_record(r, line))
        return 1;
    json_tokener_reset(r->tok);
    obj = json_tokener_parse_ex(r->tok, r->buf, (int)r->len);
    if (json_tokener_get_error(r->tok) != json_tokener_success) {
        json_object_put(obj);
        obj = NULL;
    }
    json_record(r, obj, line);
    json_object_put(obj);
    return 1;
}

/* One Azure trace row: token counts only, priced at --model. */
static void azure_row(audit_reader_t *r)
{
    audit_call_t call = {0};
    const char *ts = r->row.fields[0];
    char *end1, *end2;

    call.line = r->row.line;
    call.count = 1;
    call.at = shape_time_text(ts, strlen(ts));
    audit_copy(call.model, sizeof(call.model), r->default_model);
    call.usage.present = true;
    call.usage.input_tokens = strtoll(r->row.fields[1], &end1, 10);
    call.usage.output_tokens = strtoll(r->row.fields[2], &end2, 10);
    if (*end1 != '\0' || *end2 != '\0' || call.usage.input_tokens < 0 ||
        call.usage.output_tokens < 0) {
        bad(r, call.line, "token count is not a whole number");
        return;
    }
    audit_set_workflow(&call, NULL, 0, NULL, 0, NULL, 0);
    audit_copy(call.label, sizeof(call.label), "(no prompt text)");
    pend(r, &call);
}

/* A GSM8K or MMLU row: one call per model's labelled answer. */
static void eval_row(audit_reader_t *r)
{
    int tokens;
    const char *prompt = r->row.fields[0];
    size_t plen = r->row.lens[0];
    int64_t in = usage_estimate_tokens(prompt, plen);

    for (int c = 1; c < r->head.n; c++) {
        audit_call_t call = {0};
        char name[160];
        int t;

        if (strstr(r->head.fields[c], "_response") != NULL)
            continue;
        snprintf(name, sizeof(name), "%s_response", r->head.fields[c]);
        t = csv_column(&r->head, name);
        tokens = t < 0 ? 1
                       : (int)usage_estimate_tokens(r->row.fields[t],
                                                    r->row.lens[t]);
        call.line = r->row.line;
        call.count = 1;
        audit_copy(call.model, sizeof(call.model), r->head.fields[c]);
        call.prompt_est = in;
        call.answer_est = tokens;
        audit_set_workflow(&call, NULL, 0, prompt, plen, prompt, plen);
        call.request_hash =
            audit_hash(call.turn_hash, call.model, strlen(call.model));
        shape_estimate_usage(&call);
        pend(r, &call);
    }
}

static int next_csv(audit_reader_t *r)
{
    audit_call_t call = {0};
    char why[64] = "";
    int rc = csv_next(&r->row, r->f);

    if (rc == 0)
        return 0;
    r->stats.lines++;
    if (rc < 0 || r->row.n != r->head.n) {
        bad(r, r->row.line,
            rc < 0 ? "unclosed quote or too many fields"
                   : "wrong number of fields");
        return 1;
    }
    if (r->stats.format == AUDIT_FMT_AZURE_CSV) {
        azure_row(r);
    } else if (r->stats.format == AUDIT_FMT_LITELLM_CSV) {
        call.line = r->row.line;
        if (shape_litellm_csv(&r->head, &r->row, &call, why) < 0)
            bad(r, r->row.line, why);
        else
            pend(r, &call);
    } else {
        eval_row(r);
    }
    return 1;
}

int audit_reader_next(audit_reader_t *r, audit_call_t *call)
{
    int rc;

    while (r->next_pending >= r->n_pending) {
        r->n_pending = r->next_pending = 0;
        if (r->cut == CUT_LEDGER) {
            rc = ledger_next(r->stmt, call);
            if (rc == 1) {
                r->stats.lines++;
                r->stats.calls++;
            }
            return rc;
        }
        rc = r->cut == CUT_CSV ? next_csv(r) : next_json(r);
        if (rc <= 0)
            return rc;
    }
    *call = r->pending[r->next_pending++];
    if (call->model[0] == '\0')
        audit_copy(call->model, sizeof(call->model), r->default_model);
    r->stats.calls++;
    r->stats.estimated += call->usage.estimated;
    return 1;
}

static int open_ledger(audit_reader_t *r, const char *path, char *err,
                       size_t errlen)
{
    fclose(r->f);
    r->f = NULL;
    r->cut = CUT_LEDGER;
    r->stats.format = AUDIT_FMT_LEDGER;
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(r->db));
        return -EIO;
    }
    return ledger_prepare(r->db, &r->stmt, err, errlen);
}
