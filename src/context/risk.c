/*
 * The risk check: does the last user turn name something the trim took
 * away? A word counts when it is rare (five or more characters with a
 * letter, not a common English word; compared without case) or a name (a
 * capitalised or all-capital word of three or four characters, not at
 * the start of a sentence; compared with case), appears in the last user
 * turn and in removed text, and appears nowhere in what is still sent.
 */
#include "context/context_int.h"

#include <string.h>

#define LONG_WORD 5

/* Common words of five letters or more, and the common short words a
 * capital letter would otherwise make look like names. Lower case. */
static const char *const common_words[] = {
    "about",     "above",     "after",       "again",   "against",  "also",
    "always",    "and",       "another",     "answer",  "any",      "anything",
    "are",       "around",    "article",     "based",   "because",  "been",
    "before",    "being",     "below",       "best",    "better",   "between",
    "both",      "but",       "can",         "change",  "changes",  "check",
    "class",     "code",      "continue",    "could",   "create",   "data",
    "dear",      "does",      "doing",       "done",    "each",     "every",
    "example",   "examples",  "explain",     "false",   "file",     "first",
    "following", "format",    "found",       "from",    "function", "give",
    "given",     "going",     "good",        "great",   "have",     "having",
    "hello",     "help",      "here",        "however", "how",      "important",
    "include",   "including", "information", "instead", "into",     "its",
    "just",      "know",      "large",       "later",   "least",    "less",
    "like",      "list",      "little",      "looking", "make",     "many",
    "might",     "more",      "most",        "much",    "must",     "need",
    "never",     "new",       "next",        "none",    "not",      "note",
    "null",      "number",    "only",        "other",   "others",   "our",
    "over",      "paragraph", "part",        "people",  "place",    "please",
    "point",     "possible",  "print",       "provide", "question", "really",
    "response",  "return",    "rewrite",     "right",   "same",     "sentence",
    "short",     "should",    "show",        "simple",  "since",    "small",
    "some",      "something", "sorry",       "still",   "string",   "such",
    "summarize", "summary",   "sure",        "table",   "take",     "tell",
    "text",      "than",      "thank",       "thanks",  "that",     "the",
    "their",     "them",      "then",        "there",   "these",    "they",
    "thing",     "things",    "think",       "this",    "those",    "though",
    "three",     "through",   "time",        "today",   "topic",    "true",
    "under",     "until",     "use",         "used",    "user",     "using",
    "value",     "values",    "version",     "very",    "want",     "was",
    "well",      "were",      "what",        "when",    "where",    "which",
    "while",     "who",       "why",         "will",    "with",     "within",
    "without",   "words",     "work",        "would",   "write",    "years",
    "yes",       "you",       "your",        NULL,
};

typedef struct word_sets {
    ctx_set_t common;
    ctx_set_t removed; /* rare words of removed text */
    ctx_set_t kept;    /* rare words of what is still sent */
    ctx_set_t asked;   /* rare words of the last user turn, once each */
    ctx_set_t skip;    /* string buffers that were replaced */
    arena_t *arena;
} word_sets_t;

static bool word_byte(unsigned char ch)
{
    return ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') ||
           (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_upper(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

static bool sentence_start(const char *s, size_t at)
{
    while (at > 0 && (s[at - 1] == ' ' || s[at - 1] == '\t' ||
                      s[at - 1] == '"' || s[at - 1] == '('))
        at--;
    return at == 0 || strchr(".!?:\n\r", s[at - 1]) != NULL;
}

/* The word's key in the sets ("l" + lower case, or "n" + as written), or
 * NULL when it is neither rare nor a name. */
static const char *word_key(word_sets_t *ws, const char *s, size_t at,
                            size_t len, size_t *key_len)
{
    size_t chars = 0, letters = 0, upper = 0;
    char *key;

    for (size_t i = at; i < at + len; i++) {
        unsigned char ch = (unsigned char)s[i];

        chars += (ch & 0xC0) != 0x80;
        letters += ch >= 0x80 || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
        upper += is_upper(ch);
    }
    if (letters == 0 || chars < 3)
        return NULL;
    key = arena_alloc(ws->arena, len + 2);
    key[0] = 'l';
    for (size_t i = 0; i < len; i++)
        key[i + 1] =
            is_upper((unsigned char)s[at + i]) ? s[at + i] | 0x20 : s[at + i];
    key[len + 1] = '\0';
    *key_len = len + 1;
    if (ctx_set_has(&ws->common, key + 1, len, ctx_hash(key + 1, len), false))
        return NULL;
    if (chars >= LONG_WORD)
        return key;
    if (!is_upper((unsigned char)s[at]) || letters < 2 ||
        (upper < 2 && sentence_start(s, at)))
        return NULL;
    key[0] = 'n';
    memcpy(key + 1, s + at, len);
    return key;
}

typedef void (*word_fn)(word_sets_t *ws, void *arg, const char *key, size_t len,
                        const char *word, size_t word_len);

static void words_scan(word_sets_t *ws, void *arg, const char *s, size_t len,
                       word_fn fn)
{
    size_t i = 0;

    while (i < len) {
        size_t at, key_len = 0;
        const char *key;

        while (i < len && !word_byte((unsigned char)s[i]))
            i++;
        at = i;
        while (i < len && word_byte((unsigned char)s[i]))
            i++;
        if (i == at)
            break;
        key = word_key(ws, s, at, i - at, &key_len);
        if (key != NULL)
            fn(ws, arg, key, key_len, s + at, i - at);
    }
}

static void word_add(word_sets_t *ws, void *set, const char *key, size_t len,
                     const char *word, size_t word_len)
{
    ctx_set_has(set, key, len, ctx_hash(key, len), true);
}

/* Keys the strings of V (not its structural members) into SET. */
static void value_words(word_sets_t *ws, ctx_set_t *set, json_object *v,
                        int depth)
{
    if (depth > 16)
        return;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);

        if (!ctx_set_has(&ws->skip, (const char *)&s, sizeof(s),
                         ctx_hash((const char *)&s, sizeof(s)), false))
            words_scan(ws, set, s, len, word_add);
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            value_words(ws, set, json_object_array_get_idx(v, i), depth + 1);
    } else if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            if (strcmp(key, "type") != 0 && strcmp(key, "id") != 0 &&
                strcmp(key, "tool_use_id") != 0 &&
                strcmp(key, "tool_call_id") != 0 && strcmp(key, "role") != 0)
                value_words(ws, set, val, depth + 1);
        }
    }
}

static void skip_add(word_sets_t *ws, const char *text)
{
    const char **slot = arena_alloc(ws->arena, sizeof(*slot));

    *slot = text;
    ctx_set_has(&ws->skip, (const char *)slot, sizeof(*slot),
                ctx_hash((const char *)slot, sizeof(*slot)), true);
}

/* Removed texts: dropped messages, stale results, the middle of cuts. */
static void removed_collect(const convo_t *c, word_sets_t *ws)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].dropped != NO_RULE)
            value_words(ws, &ws->removed, c->m[i].obj, 0);
    for (size_t k = 0; k < c->n_pieces; k++) {
        const piece_t *p = &c->pieces[k];
        const piece_t *parent = p->parent >= 0 ? &c->pieces[p->parent] : p;
        bool stale = parent->rule == CONTEXT_RULE_TOOL_RESULTS;

        if (p->msg < 0 || c->m[p->msg].dropped != NO_RULE || p->text == NULL)
            continue;
        if (stale) {
            words_scan(ws, &ws->removed, p->text, p->len, word_add);
            skip_add(ws, p->text);
        } else if (p->rule == CONTEXT_RULE_TOOL_OUTPUT) {
            words_scan(ws, &ws->removed, p->text + p->cut_head,
                       p->cut_tail - p->cut_head, word_add);
            words_scan(ws, &ws->kept, p->text, p->cut_head, word_add);
            words_scan(ws, &ws->kept, p->text + p->cut_tail,
                       p->len - p->cut_tail, word_add);
            skip_add(ws, p->text);
        }
    }
}

static void kept_collect(const convo_t *c, word_sets_t *ws)
{
    json_object *sys = NULL;

    if (json_object_object_get_ex(c->root, "system", &sys))
        value_words(ws, &ws->kept, sys, 0);
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].dropped == NO_RULE && i != c->last_user)
            value_words(ws, &ws->kept, c->m[i].obj, 0);
    for (size_t k = 0; k < c->n_pieces; k++) {
        const piece_t *p = &c->pieces[k];

        /* a document sent with the question is not removed text */
        if (p->msg == (int)c->last_user && p->kind == PIECE_DOC)
            value_words(ws, &ws->kept,
                        json_object_array_get_idx(p->holder, p->index), 0);
    }
}

static void word_check(word_sets_t *ws, void *arg, const char *key, size_t len,
                       const char *word, size_t word_len)
{
    context_result_t *out = arg;
    uint64_t h = ctx_hash(key, len);

    if (out->n_risk_words == CONTEXT_RISK_WORDS_MAX ||
        ctx_set_has(&ws->asked, key, len, h, true) ||
        !ctx_set_has(&ws->removed, key, len, h, false) ||
        ctx_set_has(&ws->kept, key, len, h, false))
        return;
    out->risk_words[out->n_risk_words++] =
        arena_strndup(ws->arena, word, word_len);
}

static void sets_init(const convo_t *c, word_sets_t *ws)
{
    ws->arena = c->arena;
    ctx_set_init(c->arena, &ws->common, 256);
    for (size_t i = 0; common_words[i] != NULL; i++)
        ctx_set_has(&ws->common, common_words[i], strlen(common_words[i]),
                    ctx_hash(common_words[i], strlen(common_words[i])), true);
    ctx_set_init(c->arena, &ws->removed, 1024);
    ctx_set_init(c->arena, &ws->kept, 1024);
    ctx_set_init(c->arena, &ws->asked, 64);
    ctx_set_init(c->arena, &ws->skip, 16);
}

void ctx_risk_check(const convo_t *c, context_result_t *out)
{
    word_sets_t ws;

    if (c->last_user >= c->n)
        return;
    sets_init(c, &ws);
    removed_collect(c, &ws);
    kept_collect(c, &ws);
    for (size_t k = 0; k < c->n_pieces; k++) {
        const piece_t *p = &c->pieces[k];

        if (p->msg == (int)c->last_user && p->kind == PIECE_TEXT)
            words_scan(&ws, out, p->text, p->len, word_check);
    }
    out->risk = out->n_risk_words > 0;
}
