/*
 * Evaluation sets with labelled answers from several models: RouteLLM's
 * GSM8K and MMLU CSVs and MT-Bench judgements, AlpacaEval 2 judgments.
 * They feed replay (quality from the labels) and, one call per answer
 * with estimated usage, the audit. Also ShareGPT conversations.
 */
#include "audit/internal.h"
#include "upstream/usage.h"
#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MMLU_OUTPUT_TOKENS 1 /* the answer letter after "Answer:" */
#define CHARS_PER_TOKEN 4    /* AlpacaEval without its output texts */

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v = get(o, key);

    return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                    : NULL;
}

/* Text between the first `open` and the next `close` after it. */
static bool between(const char *text, const char *open, const char *close,
                    const char **out, size_t *len)
{
    const char *a = strstr(text, open), *b;

    if (a == NULL)
        return false;
    a += strlen(open);
    b = strstr(a, close);
    if (b == NULL)
        return false;
    *out = a;
    *len = (size_t)(b - a);
    return true;
}

/* Last occurrence of needle in [text, text + len). */
static const char *last_in(const char *text, size_t len, const char *needle)
{
    const char *hit = NULL, *p = text;
    size_t n = strlen(needle);

    while ((p = memmem(p, len - (size_t)(p - text), needle, n)) != NULL) {
        hit = p;
        p += n;
    }
    return hit;
}

/*
 * The prompt and answer of one MT-Bench judge prompt. Turn 1 has them
 * between [Question] and [The Start of Assistant's Answer]; turn 2 in
 * the conversation block, the answer after the last "### Assistant A:".
 */
static bool mt_bench_texts(const char *judge, const char **prompt,
                           size_t *prompt_len, const char **answer,
                           size_t *answer_len)
{
    static const char conv_open[] =
        "<|The Start of Assistant A's Conversation with User|>";
    static const char conv_close[] =
        "<|The End of Assistant A's Conversation with User|>";
    const char *conv, *mark;
    size_t conv_len;

    if (between(judge, "[Question]\n", "[The Start of Assistant's Answer]",
                prompt, prompt_len))
        return between(judge, "[The Start of Assistant's Answer]\n",
                       "[The End of Assistant's Answer]", answer, answer_len);
    if (!between(judge, conv_open, conv_close, &conv, &conv_len))
        return false;
    mark = last_in(conv, conv_len, "### Assistant A:");
    if (mark == NULL)
        return false;
    *prompt = conv;
    *prompt_len = (size_t)(mark - conv);
    *answer = mark + strlen("### Assistant A:");
    *answer_len = conv_len - (size_t)(*answer - conv);
    return true;
}

/* MT-Bench scores come in halves: quality is the score times two. */
static int64_t mt_bench_quality(struct json_object *score)
{
    if (json_object_is_type(score, json_type_int))
        return json_object_get_int64(score) * 2;
    return (int64_t)(json_object_get_double(score) * 2 + 0.5);
}

/* AlpacaEval: 2 when the judge preferred the model, 1 for a tie with the
 * reference (and for the reference itself), 0 when it lost. */
static int64_t alpaca_quality(struct json_object *preference)
{
    double p = json_object_get_double(preference);

    return p > 1.5 ? 2 : p == 1.5 ? 1 : 0;
}

static void call_from_texts(audit_call_t *call, const char *model,
                            const char *prompt, size_t prompt_len,
                            int64_t answer_est)
{
    call->count = 1;
    audit_copy(call->model, sizeof(call->model), model);
    call->prompt_est = usage_estimate_tokens(prompt, prompt_len);
    call->answer_est = answer_est;
    audit_set_workflow(call, NULL, 0, prompt, prompt_len, prompt, prompt_len);
    call->request_hash = audit_hash(call->turn_hash, model, strlen(model));
    shape_estimate_usage(call);
}

int eval_line_call(shape_t shape, struct json_object *obj, audit_call_t *call,
                   char *why)
{
    const char *prompt, *answer, *judge = str(obj, "user_prompt");
    const char *instruction = str(obj, "instruction");
    size_t plen, alen;

    if (shape == SHAPE_ALPACA) {
        if (instruction == NULL || str(obj, "generator_2") == NULL)
            goto bad;
        call_from_texts(call, str(obj, "generator_2"), instruction,
                        strlen(instruction),
                        (json_object_get_int64(get(obj, "output_2_chars")) +
                         CHARS_PER_TOKEN - 1) /
                            CHARS_PER_TOKEN);
        return 1;
    }
    if (judge == NULL || str(obj, "model") == NULL ||
        !mt_bench_texts(judge, &prompt, &plen, &answer, &alen))
        goto bad;
    call_from_texts(call, str(obj, "model"), prompt, plen,
                    usage_estimate_tokens(answer, alen));
    return 1;
bad:
    snprintf(why, 64, "evaluation line without its fields");
    return -EINVAL;
}

/* ShareGPT: one call per assistant turn, the history before it as the
 * prompt (a client that resends everything). */
int sharegpt_calls(struct json_object *obj, int64_t line, const char *model,
                   usage_result_fn *fn, void *arg, char *why)
{
    struct json_object *conv = get(obj, "conversations");
    size_t n = json_object_array_length(conv);
    int64_t sum = 0, *turn = calloc(n + 1, sizeof(*turn));
    const char *first = NULL, *last = NULL, *id = str(obj, "id");
    uint64_t history = AUDIT_HASH_SEED;

    if (turn == NULL)
        die_oom();
    if (!json_object_is_type(conv, json_type_array)) {
        snprintf(why, 64, "conversations is not an array");
        free(turn);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *m = json_object_array_get_idx(conv, i);
        const char *from = str(m, "from"), *text = str(m, "value");
        audit_call_t call = {0};

        turn[i] = text == NULL ? 0 : usage_estimate_tokens(text, strlen(text));
        if (from != NULL && strcmp(from, "human") == 0) {
            first = first == NULL ? text : first;
            last = text;
        }
        if (from == NULL || strcmp(from, "gpt") != 0 || i == 0) {
            history = audit_hash(history, text, text ? strlen(text) : 0);
            sum += turn[i];
            continue;
        }
        call.line = line;
        call.n_messages = (int)i;
        call_from_texts(&call, model, first != NULL ? first : "",
                        first != NULL ? strlen(first) : 0, turn[i]);
        /* Each turn resends a different history: its last ask is its own,
         * and only the same whole history is a duplicate request. */
        audit_set_workflow(&call, NULL, 0, first, first ? strlen(first) : 0,
                           last, last ? strlen(last) : 0);
        call.request_hash = audit_hash(history, model, strlen(model));
        call.prompt_est = sum;
        for (size_t k = 0; k + 4 < i; k++)
            call.history_est += turn[k];
        audit_copy(call.owner, sizeof(call.owner), id);
        shape_estimate_usage(&call);
        fn(arg, &call);
        history = audit_hash(history, text, text ? strlen(text) : 0);
        sum += turn[i];
    }
    free(turn);
    return 0;
}

/* --- evaluation sets in memory ------------------------------------- */

static eval_item_t *set_add(eval_set_t *set)
{
    if (set->n_items == set->cap) {
        set->cap = set->cap == 0 ? 256 : set->cap * 2;
        set->items = realloc(set->items, set->cap * sizeof(*set->items));
        if (set->items == NULL)
            die_oom();
    }
    memset(&set->items[set->n_items], 0, sizeof(eval_item_t));
    return &set->items[set->n_items++];
}

static eval_answer_t *item_answer(eval_item_t *item, const char *model)
{
    eval_answer_t *a;

    for (int i = 0; i < item->n_answers; i++)
        if (strcmp(item->answers[i].model, model) == 0)
            return &item->answers[i];
    if (item->n_answers == EVAL_MAX_ANSWERS)
        return NULL;
    a = &item->answers[item->n_answers++];
    audit_copy(a->model, sizeof(a->model), model);
    a->output_estimated = true;
    return a;
}

static void set_bad(eval_set_t *set, int64_t line)
{
    if (set->malformed++ == 0)
        set->first_bad_line = line;
}

/* A GSM8K or MMLU row: one True/False column per model, and for GSM8K a
 * "<model>_response" column with the answer text. */
static void csv_item(eval_set_t *set, const csv_t *head, const csv_t *row)
{
    eval_item_t *item;
    char name[160];

    if (row->n != head->n || csv_column(head, "prompt") != 0) {
        set_bad(set, row->line);
        return;
    }
    item = set_add(set);
    item->line = row->line;
    item->prompt = arena_strndup(set->arena, row->fields[0], row->lens[0]);
    item->prompt_len = row->lens[0];
    item->input_tokens = usage_estimate_tokens(item->prompt, item->prompt_len);
    for (int c = 1; c < head->n; c++) {
        const char *model = head->fields[c];
        eval_answer_t *a;
        int t;

        if (strstr(model, "_response") != NULL)
            continue;
        if ((a = item_answer(item, model)) == NULL)
            continue;
        a->quality = strcmp(row->fields[c], "True") == 0;
        snprintf(name, sizeof(name), "%s_response", model);
        t = csv_column(head, name);
        if (t < 0) {
            a->output_tokens = MMLU_OUTPUT_TOKENS;
            a->output_guessed = set->output_guessed = true;
            continue;
        }
        a->text = arena_strndup(set->arena, row->fields[t], row->lens[t]);
        a->text_len = row->lens[t];
        a->output_tokens = usage_estimate_tokens(a->text, a->text_len);
    }
}

static int load_csv(eval_set_t *set, FILE *f, char *err, size_t errlen)
{
    csv_t csv = {0}, head = {0};
    int rc;

    if (csv_next(&head, f) != 1 || csv_column(&head, "prompt") != 0) {
        snprintf(err, errlen, "not a RouteLLM CSV (no prompt column)");
        csv_free(&head);
        return -EINVAL;
    }
    set->format = csv_column(&head, "prompt") == 0 && head.n > 3
                      ? AUDIT_FMT_GSM8K
                      : AUDIT_FMT_MMLU;
    set->scale = 1;
    csv.next_line = head.next_line;
    while ((rc = csv_next(&csv, f)) != 0) {
        if (rc < 0)
            set_bad(set, csv.line);
        else
            csv_item(set, &head, &csv);
    }
    csv_free(&csv);
    csv_free(&head);
    return 0;
}

/* The item of a key (question and turn, or instruction), found through
 * index, which maps the key's hash to the item's position + 1. */
static eval_item_t *keyed_item(eval_set_t *set, amap_t *index, uint64_t key,
                               int64_t line)
{
    size_t *pos = amap_get(index, key, true);

    if (pos == NULL)
        return NULL;
    if (*pos == 0) {
        set_add(set)->line = line;
        *pos = set->n_items;
    }
    return &set->items[*pos - 1];
}

static void mt_bench_item(eval_set_t *set, amap_t *index,
                          struct json_object *obj, int64_t line)
{
    const char *judge = str(obj, "user_prompt"), *prompt, *answer;
    const char *model = str(obj, "model");
    int64_t key[2] = {json_object_get_int64(get(obj, "question_id")),
                      json_object_get_int64(get(obj, "turn"))};
    size_t plen, alen;
    eval_item_t *item;
    eval_answer_t *a;

    if (judge == NULL || model == NULL ||
        !mt_bench_texts(judge, &prompt, &plen, &answer, &alen) ||
        (item = keyed_item(set, index,
                           audit_hash(AUDIT_HASH_SEED, key, sizeof(key)),
                           line)) == NULL ||
        (a = item_answer(item, model)) == NULL) {
        set_bad(set, line);
        return;
    }
    if (item->prompt == NULL) {
        item->prompt = arena_strndup(set->arena, prompt, plen);
        item->prompt_len = plen;
        item->input_tokens = usage_estimate_tokens(prompt, plen);
    }
    a->quality = mt_bench_quality(get(obj, "score"));
    a->text = arena_strndup(set->arena, answer, alen);
    a->text_len = alen;
    a->output_tokens = usage_estimate_tokens(answer, alen);
}

static void alpaca_item(eval_set_t *set, amap_t *index, struct json_object *obj,
                        int64_t line)
{
    const char *instruction = str(obj, "instruction");
    const char *reference = str(obj, "generator_1");
    const char *model = str(obj, "generator_2");
    eval_item_t *item;
    eval_answer_t *a, *r;

    if (instruction == NULL || model == NULL || reference == NULL ||
        (item = keyed_item(
             set, index,
             audit_hash(AUDIT_HASH_SEED, instruction, strlen(instruction)),
             line)) == NULL ||
        (a = item_answer(item, model)) == NULL ||
        (r = item_answer(item, reference)) == NULL) {
        set_bad(set, line);
        return;
    }
    if (item->prompt == NULL) {
        item->prompt = arena_strdup(set->arena, instruction);
        item->prompt_len = strlen(instruction);
        item->input_tokens =
            usage_estimate_tokens(instruction, item->prompt_len);
    }
    a->quality = alpaca_quality(get(obj, "preference"));
    a->output_tokens = (json_object_get_int64(get(obj, "output_2_chars")) +
                        CHARS_PER_TOKEN - 1) /
                       CHARS_PER_TOKEN;
    r->quality = 1;
    r->output_tokens = (json_object_get_int64(get(obj, "output_1_chars")) +
                        CHARS_PER_TOKEN - 1) /
                       CHARS_PER_TOKEN;
}

/* One model's output file: its texts replace the length estimates. */
static void alpaca_file(eval_set_t *set, amap_t *index, const char *path)
{
    struct json_object *all = json_object_from_file(path);
    size_t n = json_object_array_length(all);

    for (size_t i = 0; i < n; i++) {
        struct json_object *o = json_object_array_get_idx(all, i);
        const char *ins = str(o, "instruction"), *out = str(o, "output");
        const char *gen = str(o, "generator");
        size_t *pos;
        eval_item_t *item;

        if (ins == NULL || out == NULL || gen == NULL)
            continue;
        pos = amap_get(index, audit_hash(AUDIT_HASH_SEED, ins, strlen(ins)),
                       false);
        if (pos == NULL)
            continue;
        item = &set->items[*pos - 1];
        for (int k = 0; k < item->n_answers; k++) {
            eval_answer_t *a = &item->answers[k];
            if (strcmp(a->model, gen) != 0)
                continue;
            a->text = arena_strdup(set->arena, out);
            a->text_len = strlen(out);
            a->output_tokens = usage_estimate_tokens(out, a->text_len);
        }
    }
    json_object_put(all);
}

/* model_outputs/<model>.json beside the judgments, when present. */
static void alpaca_outputs(eval_set_t *set, amap_t *index, const char *path)
{
    const char *slash = strrchr(path, '/');
    int dir = slash == NULL ? 0 : (int)(slash - path + 1);
    char models[EVAL_MAX_ANSWERS][AUDIT_NAME_MAX];
    char file[4096];
    int n = 0;

    for (size_t i = 0; i < set->n_items && n == 0; i++)
        for (int k = 0; k < set->items[i].n_answers; k++)
            audit_copy(models[n++], AUDIT_NAME_MAX,
                       set->items[i].answers[k].model);
    for (int k = 0; k < n; k++) {
        snprintf(file, sizeof(file), "%.*smodel_outputs/%s.json", dir, path,
                 models[k]);
        if (access(file, R_OK) == 0)
            alpaca_file(set, index, file);
    }
}

static int load_jsonl(eval_set_t *set, FILE *f, const char *path, char *err,
                      size_t errlen)
{
    jstream_t js = {0};
    amap_t index;
    char *buf = NULL;
    size_t cap = 0, len;
    int64_t line;

    amap_init(&index, sizeof(size_t), SIZE_MAX);
    while (jstream_next(&js, f, &buf, &cap, &len, &line) == 1) {
        struct json_object *obj = json_tokener_parse(buf);
        shape_t shape = shape_of(obj);

        if (shape == SHAPE_MT_BENCH) {
            set->format = AUDIT_FMT_MT_BENCH;
            mt_bench_item(set, &index, obj, line);
        } else if (shape == SHAPE_ALPACA) {
            set->format = AUDIT_FMT_ALPACA;
            alpaca_item(set, &index, obj, line);
        } else {
            set_bad(set, line);
        }
        json_object_put(obj);
    }
    set->scale = 2; /* MT-Bench half points, AlpacaEval win = 2 */
    if (set->format == AUDIT_FMT_ALPACA)
        alpaca_outputs(set, &index, path);
    free(buf);
    amap_free(&index);
    if (set->format == AUDIT_FMT_UNKNOWN) {
        snprintf(err, errlen, "no MT-Bench or AlpacaEval record in it");
        return -EINVAL;
    }
    return 0;
}

int eval_set_load(eval_set_t *set, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    int c, rc;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (set->arena == NULL)
        set->arena = arena_new(1 << 20);
    c = getc(f);
    ungetc(c, f);
    rc = c == '{' || c == '[' ? load_jsonl(set, f, path, err, errlen)
                              : load_csv(set, f, err, errlen);
    fclose(f);
    return rc;
}

void eval_set_free(eval_set_t *set)
{
    free(set->items);
    if (set->arena != NULL)
        arena_free(set->arena);
    memset(set, 0, sizeof(*set));
}
