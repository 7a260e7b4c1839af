/*
 * Reads a chat request (OpenAI chat or Anthropic messages) into the shape
 * the trimming rules work on: roles, turns, and the texts they may edit.
 */
#include "context/context_int.h"

#include <errno.h>
#include <string.h>

/* Paragraphs shorter than this are never "repeated instructions": short
 * lines such as "continue" or "thanks" recur without being bloat. */
#define PARA_MIN 40

static const char *member_str(json_object *obj, const char *key)
{
    json_object *v = NULL;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *member(json_object *obj, const char *key)
{
    json_object *v = NULL;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

static bool is_type(json_object *block, const char *type)
{
    const char *t = member_str(block, "type");

    return t != NULL && strcmp(t, type) == 0;
}

static msg_role_t role_of(json_object *msg)
{
    const char *role = member_str(msg, "role");

    if (role == NULL)
        return ROLE_OTHER;
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return ROLE_SYSTEM;
    if (strcmp(role, "user") == 0)
        return ROLE_USER;
    if (strcmp(role, "assistant") == 0)
        return ROLE_ASSISTANT;
    if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0)
        return ROLE_TOOL;
    return ROLE_OTHER;
}

/* An Anthropic user message carrying tool results continues its turn. */
static bool has_tool_result(json_object *msg)
{
    json_object *content = member(msg, "content");

    if (!json_object_is_type(content, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(content); i++)
        if (is_type(json_object_array_get_idx(content, i), "tool_result"))
            return true;
    return false;
}

/* Blank lines separate paragraphs; each is hashed without its edges. */
static void paras_split(convo_t *c, piece_t *p)
{
    size_t cap = 8, pos = 0;

    p->paras = arena_alloc(c->arena, cap * sizeof(para_t));
    while (pos < p->len) {
        const char *brk = memmem(p->text + pos, p->len - pos, "\n\n", 2);
        size_t end = brk != NULL ? (size_t)(brk - p->text) : p->len;
        size_t a = pos, b = end;

        while (a < b && (p->text[a] == ' ' || p->text[a] == '\n' ||
                         p->text[a] == '\t' || p->text[a] == '\r'))
            a++;
        while (b > a && (p->text[b - 1] == ' ' || p->text[b - 1] == '\n' ||
                         p->text[b - 1] == '\t' || p->text[b - 1] == '\r'))
            b--;
        if (b > a) {
            if (p->n_paras == cap) {
                para_t *more = arena_alloc(c->arena, 2 * cap * sizeof(para_t));

                memcpy(more, p->paras, cap * sizeof(para_t));
                p->paras = more;
                cap *= 2;
            }
            p->paras[p->n_paras++] =
                (para_t){a, b - a, ctx_hash(p->text + a, b - a)};
        }
        pos = brk != NULL ? end + 2 : p->len;
    }
}

static piece_t *piece_add(convo_t *c, piece_kind_t kind, int msg,
                          json_object *holder, const char *key, size_t index)
{
    piece_t *p;

    if (c->n_pieces == c->pieces_cap) {
        size_t cap = c->pieces_cap == 0 ? 16 : c->pieces_cap * 2;
        piece_t *more = arena_alloc(c->arena, cap * sizeof(piece_t));

        if (c->n_pieces > 0)
            memcpy(more, c->pieces, c->n_pieces * sizeof(piece_t));
        c->pieces = more;
        c->pieces_cap = cap;
    }
    p = &c->pieces[c->n_pieces++];
    *p = (piece_t){.kind = kind,
                   .msg = msg,
                   .parent = -1,
                   .holder = holder,
                   .key = key,
                   .index = index,
                   .rule = NO_RULE};
    if (key != NULL && member_str(holder, key) != NULL) {
        json_object *v = member(holder, key);

        p->text = json_object_get_string(v);
        p->len = (size_t)json_object_get_string_len(v);
    }
    return p;
}

static void text_add(convo_t *c, int msg, json_object *holder, const char *key,
                     bool editable)
{
    piece_t *p = piece_add(c, PIECE_TEXT, msg, holder, key, 0);

    p->editable = editable;
    if (p->text == NULL) {
        c->n_pieces--;
        return;
    }
    p->hash = ctx_hash(p->text, p->len);
    paras_split(c, p);
}

/* A tool result's content: one piece for all of it, one per text part. */
static void tool_add(convo_t *c, int msg, json_object *holder)
{
    json_object *content = member(holder, "content");
    size_t parent = c->n_pieces;
    piece_t *p = piece_add(c, PIECE_TOOL, msg, holder, "content", 0);

    p->editable = true;
    if (!json_object_is_type(content, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i);

        if (!is_type(part, "text") || member_str(part, "text") == NULL)
            continue;
        p = piece_add(c, PIECE_TOOL_TEXT, msg, part, "text", 0);
        p->parent = (int)parent;
        p->editable = true;
    }
}

static void doc_add(convo_t *c, int msg, json_object *arr, size_t i)
{
    json_object *block = json_object_array_get_idx(arr, i);
    const char *s = json_object_to_json_string_ext(
        block, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    piece_t *p = piece_add(c, PIECE_DOC, msg, arr, NULL, i);

    p->editable = true;
    p->text = arena_strdup(c->arena, s);
    p->len = strlen(s);
    p->hash = ctx_hash(p->text, p->len);
}

static void content_pieces(convo_t *c, int msg, json_object *holder,
                           bool editable)
{
    json_object *content = member(holder, "content");

    if (json_object_is_type(content, json_type_string)) {
        text_add(c, msg, holder, "content", editable);
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i);

        if (is_type(part, "text"))
            text_add(c, msg, part, "text", editable);
        else if (editable &&
                 (is_type(part, "document") || is_type(part, "file")))
            doc_add(c, msg, content, i);
        else if (editable && is_type(part, "tool_result"))
            tool_add(c, msg, part);
    }
}

static void message_pieces(convo_t *c, size_t i)
{
    ctx_msg_t *m = &c->m[i];

    if (m->role == ROLE_SYSTEM)
        content_pieces(c, (int)i, m->obj, false);
    else if (m->role == ROLE_USER)
        content_pieces(c, (int)i, m->obj, true);
    else if (m->role == ROLE_TOOL)
        tool_add(c, (int)i, m->obj);
}

static void system_pieces(convo_t *c)
{
    json_object *sys = member(c->root, "system");

    if (c->surface != CONTEXT_ANTHROPIC || sys == NULL)
        return;
    if (json_object_is_type(sys, json_type_string)) {
        text_add(c, -1, c->root, "system", false);
        return;
    }
    if (!json_object_is_type(sys, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(sys); i++)
        text_add(c, -1, json_object_array_get_idx(sys, i), "text", false);
}

static bool turn_starts_at(const convo_t *c, size_t i, size_t lead)
{
    const ctx_msg_t *m = &c->m[i];

    if (i == lead)
        return true;
    if (m->role != ROLE_USER)
        return false;
    return c->surface == CONTEXT_OPENAI_CHAT || !has_tool_result(m->obj);
}

/* Turns, the last user turn, and how many replies follow each message. */
static void turns_mark(convo_t *c)
{
    size_t lead = 0;
    int assistants = 0;

    while (c->surface == CONTEXT_OPENAI_CHAT && lead < c->n &&
           c->m[lead].role == ROLE_SYSTEM)
        lead++;
    c->turn_start = arena_alloc(c->arena, (c->n + 1) * sizeof(size_t));
    c->last_user = c->n;
    for (size_t i = 0; i < c->n; i++) {
        c->m[i].turn = (int)c->n_turns - 1;
        if (i < lead || !turn_starts_at(c, i, lead))
            continue;
        c->m[i].turn_start = true;
        c->m[i].turn = (int)c->n_turns;
        c->turn_start[c->n_turns++] = i;
        if (c->m[i].role == ROLE_USER)
            c->last_user = i;
    }
    c->turn_start[c->n_turns] = c->n;
    for (size_t i = c->n; i-- > 0;) {
        c->m[i].assistants_after = assistants;
        assistants += c->m[i].role == ROLE_ASSISTANT;
    }
    c->frozen = lead;
}

int ctx_parse(convo_t *c)
{
    json_object *msgs = member(c->root, "messages");

    if (!json_object_is_type(msgs, json_type_array))
        return -EINVAL;
    c->n = json_object_array_length(msgs);
    c->m = arena_alloc(c->arena, (c->n + 1) * sizeof(ctx_msg_t));
    for (size_t i = 0; i < c->n; i++) {
        json_object *obj = json_object_array_get_idx(msgs, i);

        c->m[i] =
            (ctx_msg_t){.obj = obj, .role = role_of(obj), .dropped = NO_RULE};
    }
    turns_mark(c);
    system_pieces(c);
    for (size_t i = 0; i < c->n; i++)
        message_pieces(c, i);
    return 0;
}

bool ctx_para_long(const para_t *para)
{
    return para->len >= PARA_MIN;
}
