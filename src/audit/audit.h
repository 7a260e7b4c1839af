/*
 * Audit and replay of spend that already happened: importers for logs
 * people already have (Tollgate's ledger, chat JSONL and Batch output,
 * OpenAI Usage API pages, LiteLLM spend logs, evaluation sets), the
 * workflows found in them, the four leaks, and a policy replayed on them.
 */
#ifndef TOLLGATE_AUDIT_H
#define TOLLGATE_AUDIT_H

#include "billing/billing.h"
#include "util/common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The formats a reader tells from a file's first bytes. */
typedef enum audit_format {
    AUDIT_FMT_UNKNOWN = 0,
    AUDIT_FMT_LEDGER,    /* Tollgate's SQLite ledger */
    AUDIT_FMT_JSONL,     /* one call a line: chat, Batch, Anthropic, ... */
    AUDIT_FMT_USAGE_API, /* OpenAI organisation usage pages */
    AUDIT_FMT_LITELLM,   /* LiteLLM spend logs, JSON array */
    AUDIT_FMT_LITELLM_CSV,
    AUDIT_FMT_AZURE_CSV, /* TIMESTAMP,ContextTokens,GeneratedTokens */
    AUDIT_FMT_SHAREGPT,  /* conversations[] of from/value */
    AUDIT_FMT_GSM8K,     /* RouteLLM evals: gsm8k_responses.csv */
    AUDIT_FMT_MMLU,      /* RouteLLM evals: mmlu_<subject>.csv */
    AUDIT_FMT_MT_BENCH,  /* RouteLLM evals: mt_bench_judgements.jsonl */
    AUDIT_FMT_ALPACA     /* AlpacaEval 2 judgments_vs_*.jsonl */
} audit_format_t;

/* "ledger", "jsonl", "usage-api", ... */
const char *audit_format_name(audit_format_t format);

#define AUDIT_NAME_MAX 96
#define AUDIT_LABEL_MAX 72

/*
 * One call (or, from the Usage API, one bucket of `count` calls) as every
 * importer normalises it. Text never outlives the line it came from: what
 * later steps need of the prompt is kept as hashes and token estimates.
 */
typedef struct audit_call {
    int64_t line;  /* where it started in its file, 1-based */
    int64_t at;    /* unix seconds; 0 when the source has no time */
    int64_t count; /* calls this record stands for, >= 1 */
    char owner[AUDIT_NAME_MAX]; /* who owns the spend, "" unknown */
    char key[AUDIT_NAME_MAX];   /* the API key or project, "" unknown */
    char team[AUDIT_NAME_MAX];  /* the key's team (ledger), "" unknown */
    char task[AUDIT_NAME_MAX];  /* the gateway's task (ledger), "" none */
    char model[AUDIT_NAME_MAX];
    char label[AUDIT_LABEL_MAX]; /* the workflow's normalised prefix */
    uint64_t workflow;           /* hash of the normalised prefix; 0 none */
    uint64_t request_hash;       /* the whole request as sent; 0 none */
    uint64_t turn_hash;          /* workflow + last user turn as written */
    usage_t usage;               /* usage.estimated: counted by us */
    bool has_cost;               /* the source priced it (ledger) */
    bool cost_fallback;          /* cost is used only when usage is unpriced */
    pico_t cost;
    bool is_retry; /* the source says it was a retry */
    bool failed;   /* an error answer (status >= 400) */
    int n_messages;
    int64_t prompt_est;  /* estimated tokens of the whole prompt */
    int64_t prefix_est;  /* of which the system prompt */
    int64_t history_est; /* of which turns before the last four */
    int64_t answer_est;  /* estimated tokens of the answer text */
} audit_call_t;

/* One model's answer to one evaluation item, with its label. */
typedef struct eval_answer {
    char model[AUDIT_NAME_MAX];
    int64_t quality;  /* in units of the set's scale */
    const char *text; /* NULL when the set has no answer text */
    size_t text_len;
    int64_t output_tokens;
    bool output_estimated; /* always true: sets carry no usage */
    bool output_guessed;   /* no text at all: a fixed figure (MMLU) */
} eval_answer_t;

#define EVAL_MAX_ANSWERS 8

/*
 * One evaluation item: a prompt and each model's labelled answer. Text
 * pointers stay valid until the next read from the same reader.
 */
typedef struct eval_item {
    int64_t line;
    const char *prompt;
    size_t prompt_len;
    int64_t input_tokens; /* estimated from the prompt text */
    eval_answer_t answers[EVAL_MAX_ANSWERS];
    int n_answers;
} eval_item_t;

/* What a reader saw. Malformed lines are counted and the first few
 * named; they are never fatal. */
#define AUDIT_BAD_LINES_KEPT 16
typedef struct audit_read_stats {
    audit_format_t format;
    int64_t lines;     /* records read (lines, rows, array elements) */
    int64_t calls;     /* calls produced */
    int64_t malformed; /* records that could not be read */
    int64_t skipped;   /* well-formed records that are not calls */
    int64_t estimated; /* calls whose usage was counted by us */
    int64_t bad_lines[AUDIT_BAD_LINES_KEPT];
    char bad_why[AUDIT_BAD_LINES_KEPT][64];
} audit_read_stats_t;

typedef struct audit_reader audit_reader_t;

/*
 * Opens a file and tells its format from its content. Returns the reader
 * (owned by the caller, freed with audit_reader_close) or NULL with a
 * message in err when the file cannot be read or no format fits.
 */
audit_reader_t *audit_reader_open(const char *path, char *err, size_t errlen);
void audit_reader_close(audit_reader_t *reader);
audit_format_t audit_reader_format(const audit_reader_t *reader);
const audit_read_stats_t *audit_reader_stats(const audit_reader_t *reader);

/* The model of calls whose source names none (Azure trace, ShareGPT). */
void audit_reader_set_model(audit_reader_t *reader, const char *model);

/* The text of the record the last call came from (a JSONL line), valid
 * until the next read; NULL for formats whose records are not JSON. */
const char *audit_reader_record(const audit_reader_t *reader, size_t *len);

/* True for the evaluation-set formats, which eval_set_load reads. */
bool audit_format_is_eval(audit_format_t format);

/*
 * The next call into *call. Returns 1, 0 at the end, or a negative code
 * when the file cannot be read any further (a malformed record is
 * counted and skipped, not returned). Evaluation sets give one call per
 * labelled answer, with estimated usage.
 */
int audit_reader_next(audit_reader_t *reader, audit_call_t *call);

/*
 * A whole evaluation set (every item of the files given, which must be
 * of one format), in memory: sets are small (14,042 items for all of
 * MMLU) and their items are spread over lines, as MT-Bench's two models.
 */
typedef struct eval_set {
    audit_format_t format;
    eval_item_t *items;
    size_t n_items;
    size_t cap;
    int64_t scale;       /* quality units per point of the set's measure:
                            1 (right), 2 (MT-Bench halves, Alpaca wins) */
    bool output_guessed; /* some answers had no text at all */
    int64_t malformed;
    int64_t first_bad_line;
    struct arena *arena; /* owns every text */
} eval_set_t;

/*
 * Adds the items of one evaluation file (GSM8K or MMLU CSV, MT-Bench
 * judgements, AlpacaEval judgments with model_outputs/ beside it) to
 * set, which starts zeroed. Returns 0 or a negative code with a message
 * in err; malformed records are counted, not fatal.
 */
int eval_set_load(eval_set_t *set, const char *path, char *err, size_t errlen);
void eval_set_free(eval_set_t *set);

/*
 * Workflow normalisation: copies text into out (at most outlen - 1 bytes
 * plus NUL), with runs of digits as "#", ids (words of 6 or more
 * characters mixing letters and digits, hex runs, UUIDs) as "#",
 * e-mail addresses as "@", quoted values as "\"*\"" and whitespace runs
 * as one space. Dates and times come out as "#-#-#", "#:#". Returns the
 * length written.
 */
size_t audit_normalise(const char *text, size_t len, char *out, size_t outlen);

/* 64-bit FNV-1a of bytes, continuing from h (start from AUDIT_HASH_SEED). */
#define AUDIT_HASH_SEED UINT64_C(0xcbf29ce484222325)
uint64_t audit_hash(uint64_t h, const void *bytes, size_t len);

/*
 * Sets call->workflow, label and turn_hash from the system prompt and the
 * first and last user turns (any may be NULL): the prefix is the whole
 * normalised system prompt or, when there is none, the first user turn
 * up to its first line end or colon (at most 64 bytes), normalised.
 * turn_hash is the workflow and the last user turn exactly as written.
 */
void audit_set_workflow(audit_call_t *call, const char *system,
                        size_t system_len, const char *first_user,
                        size_t first_len, const char *last_user,
                        size_t last_len);

/*
 * The cheaper model of the same provider that the audit prices a
 * premium model's calls at ("gpt-4o" -> "gpt-4o-mini"); NULL when the
 * model is not premium or its cheaper tier has no price in table.
 */
const char *audit_cheaper_tier(const price_table_t *table, const char *model,
                               int64_t at);

/* Output formats of audit and replay. */
typedef enum audit_output {
    AUDIT_OUT_TABLE = 0,
    AUDIT_OUT_CSV,
    AUDIT_OUT_JSON,
    AUDIT_OUT_HTML /* audit only: replay has no page */
} audit_output_t;

typedef struct audit_opts {
    audit_output_t format;
    bool has_since;
    int64_t since; /* unix seconds, inclusive */
    bool has_until;
    int64_t until;             /* unix seconds, exclusive */
    const char *default_model; /* for sources with no model name */
    int top;                   /* rows per section in the table */
} audit_opts_t;

typedef struct audit audit_t;

/* A new, empty audit pricing with table (borrowed, must outlive it). */
audit_t *audit_new(const price_table_t *table, const audit_opts_t *opts);
void audit_free(audit_t *audit);

/* Adds one call: prices it (exactly from usage, or from the source's own
 * cost) and feeds every spend group and leak detector. */
void audit_add(audit_t *audit, const audit_call_t *call);

/* Records a file's reader statistics for the report. */
void audit_add_source(audit_t *audit, const char *path,
                      const audit_read_stats_t *stats);

/* Totals, for tests and benches. */
typedef struct audit_totals {
    int64_t calls;
    int64_t records;
    pico_t spend;     /* exact, from usage or the source */
    pico_t estimated; /* priced from usage we counted */
    int64_t estimated_calls;
    int64_t unpriced_calls;
    int64_t workflows;
    pico_t leak_routing; /* premium model, short templated answers */
    pico_t leak_context; /* resent prefixes + history growth */
    pico_t leak_prefix;
    pico_t leak_history;
    pico_t leak_retries; /* near-identical calls within seconds */
    pico_t leak_volume;  /* duplicates + outlier days */
    pico_t leak_duplicates;
    pico_t leak_outliers;
} audit_totals_t;

/* Ends the audit (leaks need every call first) and fills totals. */
void audit_finish(audit_t *audit, audit_totals_t *totals);

/* Writes the finished audit. Returns 0 or -EIO. */
int audit_write(const audit_t *audit, FILE *out);

/* `tollgate audit FILES... [--format] [--since] [--until] [--prices F]
 * [--model M]`. Returns 0, 1 when a file could not be read, 2 on usage
 * errors. */
int audit_main(int argc, char **argv);

/* `tollgate replay --policy FILE FILES...`. Exit codes as audit_main. */
int replay_main(int argc, char **argv);

#endif
