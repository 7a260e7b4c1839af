/*
 * Context trimming internals: the request read into messages, turns and
 * editable pieces, shared by the counting, rule and risk files.
 */
#ifndef TOLLGATE_CONTEXT_INT_H
#define TOLLGATE_CONTEXT_INT_H

#include "context/context.h"

#include <json-c/json.h>

typedef enum msg_role {
    ROLE_SYSTEM = 0, /* system or developer */
    ROLE_USER,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_OTHER
} msg_role_t;

#define NO_RULE (-1)

typedef struct ctx_msg {
    json_object *obj;
    msg_role_t role;
    bool turn_start;
    int turn;             /* -1 for the leading system prompt */
    int assistants_after; /* assistant messages after this one */
    int64_t raw;          /* counted tokens, before any edit */
    int dropped;          /* NO_RULE, or the rule that dropped it */
} ctx_msg_t;

typedef enum piece_kind {
    PIECE_TEXT = 0,  /* user or system text */
    PIECE_TOOL,      /* a tool result's whole content */
    PIECE_TOOL_TEXT, /* a text part inside a tool result's content */
    PIECE_DOC        /* a document block or file part */
} piece_kind_t;

/* A text the rules may replace, where it sits, and this pass's verdict. */
typedef struct piece {
    piece_kind_t kind;
    int msg;             /* message index; -1 for Anthropic's system */
    int parent;          /* PIECE_TOOL_TEXT: its PIECE_TOOL, else -1 */
    bool editable;       /* false: a source only (system, assistant) */
    json_object *holder; /* object or array holding the value */
    const char *key;     /* member name; NULL: holder[index] */
    size_t index;
    const char *text; /* NULL for a PIECE_TOOL with array content */
    size_t len;
    int64_t tokens; /* raw tokens it adds to its message */
    uint64_t hash;
    size_t n_paras; /* paragraphs, for the repeated rule */
    struct para *paras;
    const char *cut_text; /* the head-and-tail form, once made */
    size_t cut_len;
    size_t cut_head; /* text[cut_head, cut_tail) is what the cut drops */
    size_t cut_tail;
    int64_t cut_tokens;
    /* this pass */
    int rule;
    const char *new_text;
    size_t new_len;
    int64_t new_tokens;
    bool as_block; /* the replacement is a text block, not a string */
} piece_t;

typedef struct para {
    size_t off;
    size_t len;
    uint64_t hash;
} para_t;

typedef struct convo {
    arena_t *arena;
    context_surface_t surface;
    const context_policy_t *policy;
    const tokens_encoding_t *enc;
    const char *model;
    bool exact;
    int64_t percent; /* estimate scale: 100 = counts as they are */
    bool estimated;
    json_object *root; /* deep copy of the request; ours to edit */
    ctx_msg_t *m;
    size_t n;
    size_t *turn_start; /* n_turns + 1 entries; last = n */
    size_t n_turns;
    size_t frozen;     /* messages [0, frozen) are never touched */
    size_t first_turn; /* the oldest turn that may be dropped */
    size_t last_user;  /* the last turn's user message, or n */
    int64_t fixed;     /* tools, system and reply priming */
    piece_t *pieces;
    size_t n_pieces;
    size_t pieces_cap;
} convo_t;

/* A set of byte strings (not copied) in arena memory; grows as needed. */
typedef struct ctx_set_entry {
    uint64_t hash;
    const char *text;
    size_t len;
} ctx_set_entry_t;

typedef struct ctx_set {
    arena_t *arena;
    ctx_set_entry_t *slots;
    size_t mask;
    size_t count;
} ctx_set_t;

void ctx_set_init(arena_t *arena, ctx_set_t *set, size_t hint);

/* Whether TEXT is in the set; adds it when ADD and it was not. */
bool ctx_set_has(ctx_set_t *set, const char *text, size_t len, uint64_t hash,
                 bool add);

/* FNV-1a, 64 bits. */
uint64_t ctx_hash(const char *s, size_t len);

/* Raw tokens of a text: BPE with an encoding, else bytes / 4. */
int64_t ctx_count(const convo_t *c, const char *s, size_t len);

/* Counts each message, the fixed part, and sets c->estimated. */
void ctx_count_request(convo_t *c);

/* Reads c->root into messages, turns, pieces and the frozen prefix. */
int ctx_parse(convo_t *c);

/* Freezes what precedes the last cache breakpoint or sits in OpenAI's
 * cached prefix (after counting), and finds the first droppable turn. */
void ctx_freeze(convo_t *c);

/* Whether a paragraph is long enough to count as repeated. */
bool ctx_para_long(const para_t *para);

/* Decides every piece's replacement given which messages are dropped. */
void ctx_rules_plan(convo_t *c);

/* The head-and-tail form of a piece over tool_output_max. */
void ctx_rules_cut(convo_t *c, piece_t *p);

/* Sets out->risk and the shared words. */
void ctx_risk_check(const convo_t *c, context_result_t *out);

#define MARK_TOOL "[tool result removed by the gateway: "
#define MARK_DOC                                                               \
    "[document removed by the gateway: identical to one sent earlier in "      \
    "this conversation]"
#define MARK_REPEAT "[instructions repeated from earlier removed]"

#endif
