/*
 * The content rules: stale tool results become a marker, huge tool
 * outputs keep their head and tail, documents and paragraphs already sent
 * earlier in the conversation are removed. A pass decides every piece
 * afresh from which messages are still kept, so that a text is removed as
 * a repeat only while its earlier copy stays in the request.
 */
#include "context/context_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A text piece this long that equals an earlier one is a resent
 * document; shorter equal texts ("yes", "continue") are left alone. */
#define DOC_MIN 512

/* Tokens kept free for the cut marker. */
#define CUT_MARK_ROOM 24

static bool piece_live(const convo_t *c, const piece_t *p)
{
    return p->editable && p->msg >= 0 && (size_t)p->msg >= c->frozen;
}

static void piece_set(convo_t *c, piece_t *p, int rule, const char *text,
                      size_t len)
{
    p->rule = rule;
    p->new_text = text;
    p->new_len = len;
    p->new_tokens = ctx_count(c, text, len);
}

/* A piece whose replacement would not be shorter stays as it is. */
static void piece_keep_if_longer(piece_t *p)
{
    if (p->rule != NO_RULE && p->new_tokens >= p->tokens)
        p->rule = NO_RULE;
}

static bool is_marker(const piece_t *p, const char *mark)
{
    size_t n = strlen(mark);

    return p->text != NULL && p->len >= n && memcmp(p->text, mark, n) == 0;
}

static void tool_stale(convo_t *c, piece_t *p)
{
    int age = c->policy->tool_result_age;
    const char *mark;

    if (age <= 0 || c->m[p->msg].assistants_after < age ||
        is_marker(p, MARK_TOOL))
        return;
    mark = arena_printf(c->arena,
                        MARK_TOOL "%" PRId64 " tokens, %d replies "
                                  "old]",
                        p->tokens, c->m[p->msg].assistants_after);
    piece_set(c, p, CONTEXT_RULE_TOOL_RESULTS, mark, strlen(mark));
    piece_keep_if_longer(p);
}

static void tool_cut(convo_t *c, piece_t *p)
{
    if (c->policy->tool_output_max <= 0 || p->text == NULL ||
        p->tokens <= c->policy->tool_output_max)
        return;
    if (p->parent >= 0 && c->pieces[p->parent].rule != NO_RULE)
        return;
    if (p->cut_text == NULL)
        ctx_rules_cut(c, p);
    if (p->cut_len == 0)
        return;
    p->rule = CONTEXT_RULE_TOOL_OUTPUT;
    p->new_text = p->cut_text;
    p->new_len = p->cut_len;
    p->new_tokens = p->cut_tokens;
    piece_keep_if_longer(p);
}

static void doc_piece(convo_t *c, piece_t *p, ctx_set_t *docs)
{
    bool seen = ctx_set_has(docs, p->text, p->len, p->hash, true);

    if (!seen || !piece_live(c, p) || !c->policy->drop_documents)
        return;
    piece_set(c, p, CONTEXT_RULE_DOCUMENTS, MARK_DOC, strlen(MARK_DOC));
    p->as_block = true;
    piece_keep_if_longer(p);
}

/* The text with the repeated paragraphs taken out, each with the space
 * before it, so that kept code keeps its indentation. */
static const char *paras_remove(convo_t *c, const piece_t *p, const bool *gone,
                                size_t *out_len)
{
    char *out = arena_alloc(c->arena, p->len + 1);
    size_t len = 0, from = 0;

    for (size_t k = 0; k < p->n_paras; k++) {
        size_t end = p->paras[k].off + p->paras[k].len;

        if (!gone[k]) {
            memcpy(out + len, p->text + from, end - from);
            len += end - from;
        }
        from = end;
    }
    memcpy(out + len, p->text + from, p->len - from);
    len += p->len - from;
    while (gone[p->n_paras - 1] && len > 0 &&
           (out[len - 1] == '\n' || out[len - 1] == ' '))
        len--;
    out[len] = '\0';
    *out_len = len;
    return out;
}

static void text_repeats(convo_t *c, piece_t *p, ctx_set_t *paras)
{
    bool *gone = arena_alloc(c->arena, p->n_paras + 1);
    size_t n_gone = 0, len = 0;
    const char *text;

    for (size_t k = 0; k < p->n_paras; k++) {
        const para_t *q = &p->paras[k];

        gone[k] = ctx_para_long(q) &&
                  ctx_set_has(paras, p->text + q->off, q->len, q->hash, false);
        n_gone += gone[k];
    }
    if (n_gone == 0)
        return;
    if (n_gone == p->n_paras) {
        if ((size_t)p->msg == c->last_user)
            return;
        text = MARK_REPEAT;
        len = strlen(MARK_REPEAT);
    } else {
        text = paras_remove(c, p, gone, &len);
    }
    piece_set(c, p, CONTEXT_RULE_REPEATED, text, len);
    piece_keep_if_longer(p);
}

static void text_piece(convo_t *c, piece_t *p, ctx_set_t *docs,
                       ctx_set_t *paras)
{
    bool live = piece_live(c, p);
    bool doc =
        p->len >= DOC_MIN && ctx_set_has(docs, p->text, p->len, p->hash, true);

    if (live && doc && c->policy->drop_documents &&
        (size_t)p->msg != c->last_user) {
        piece_set(c, p, CONTEXT_RULE_DOCUMENTS, MARK_DOC, strlen(MARK_DOC));
        piece_keep_if_longer(p);
    }
    if (live && p->rule == NO_RULE && c->policy->drop_repeated)
        text_repeats(c, p, paras);
    for (size_t k = 0; k < p->n_paras; k++) {
        const para_t *q = &p->paras[k];

        if (ctx_para_long(q))
            ctx_set_has(paras, p->text + q->off, q->len, q->hash, true);
    }
}

static size_t paras_total(const convo_t *c)
{
    size_t n = c->n_pieces;

    for (size_t i = 0; i < c->n_pieces; i++)
        n += c->pieces[i].n_paras;
    return n;
}

void ctx_rules_plan(convo_t *c)
{
    ctx_set_t docs, paras;

    ctx_set_init(c->arena, &docs, c->n_pieces);
    ctx_set_init(c->arena, &paras, paras_total(c));
    for (size_t i = 0; i < c->n_pieces; i++) {
        piece_t *p = &c->pieces[i];

        p->rule = NO_RULE;
        p->as_block = false;
        if (p->msg >= 0 && c->m[p->msg].dropped != NO_RULE)
            continue;
        if (p->kind == PIECE_TEXT)
            text_piece(c, p, &docs, &paras);
        else if (p->kind == PIECE_DOC)
            doc_piece(c, p, &docs);
        else if (piece_live(c, p) && p->kind == PIECE_TOOL)
            tool_stale(c, p);
        if (piece_live(c, p) && p->rule == NO_RULE &&
            (p->kind == PIECE_TOOL || p->kind == PIECE_TOOL_TEXT))
            tool_cut(c, p);
    }
}

/* Down to the start of a UTF-8 character. */
static size_t char_floor(const char *s, size_t len, size_t pos)
{
    while (pos > 0 && pos < len && ((unsigned char)s[pos] & 0xC0) == 0x80)
        pos--;
    return pos;
}

/* The longest head of S within BUDGET tokens. */
static size_t head_fit(const convo_t *c, const char *s, size_t len,
                       int64_t budget)
{
    size_t lo = 0, hi = len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;

        if (ctx_count(c, s, char_floor(s, len, mid)) <= budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    return char_floor(s, len, lo);
}

/* The start of the longest tail of S (from FLOOR on) within BUDGET. */
static size_t tail_fit(const convo_t *c, const char *s, size_t len,
                       size_t floor, int64_t budget)
{
    size_t lo = floor, hi = len;

    while (lo < hi) {
        size_t mid = char_floor(s, len, lo + (hi - lo) / 2);

        if (mid < lo)
            mid = lo;
        if (ctx_count(c, s + mid, len - mid) <= budget)
            hi = mid;
        else
            lo = mid + 1;
    }
    while (lo < len && ((unsigned char)s[lo] & 0xC0) == 0x80)
        lo++;
    return lo;
}

/* Ends the head after a line break in its last quarter, if there is one,
 * and starts the tail after one in its first quarter. */
static void lines_align(const char *s, size_t len, size_t *head, size_t *tail)
{
    const char *nl = memrchr(s + *head * 3 / 4, '\n', *head - *head * 3 / 4);

    if (nl != NULL)
        *head = (size_t)(nl - s) + 1;
    nl = memchr(s + *tail, '\n', (len - *tail) / 4);
    if (nl != NULL)
        *tail = (size_t)(nl - s) + 1;
}

static bool cut_try(convo_t *c, piece_t *p, int64_t body)
{
    int64_t head_budget = body * 2 / 3;
    size_t head = head_fit(c, p->text, p->len, head_budget);
    size_t tail = tail_fit(c, p->text, p->len, head, body - head_budget);
    int64_t gone;
    char *mark, *out;

    lines_align(p->text, p->len, &head, &tail);
    gone = p->tokens - ctx_count(c, p->text, head) -
           ctx_count(c, p->text + tail, p->len - tail);
    mark = arena_printf(c->arena,
                        "\n[... %" PRId64 " tokens cut by the "
                        "gateway ...]\n",
                        gone);
    p->cut_len = head + strlen(mark) + (p->len - tail);
    out = arena_alloc(c->arena, p->cut_len + 1);
    memcpy(out, p->text, head);
    memcpy(out + head, mark, strlen(mark));
    memcpy(out + head + strlen(mark), p->text + tail, p->len - tail);
    out[p->cut_len] = '\0';
    p->cut_text = out;
    p->cut_head = head;
    p->cut_tail = tail;
    p->cut_tokens = ctx_count(c, p->cut_text, p->cut_len);
    return p->cut_tokens <= c->policy->tool_output_max;
}

void ctx_rules_cut(convo_t *c, piece_t *p)
{
    int64_t max = c->policy->tool_output_max;
    int64_t body = max - CUT_MARK_ROOM;

    for (int attempt = 0; attempt < 4 && body > 0; attempt++) {
        if (cut_try(c, p, body))
            return;
        body -= p->cut_tokens - max;
    }
    p->cut_text = "";
    p->cut_len = 0;
}
