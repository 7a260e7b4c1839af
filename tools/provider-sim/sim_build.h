/*
 * What every surface's request handler shares once its own checks have
 * passed: the strict JSON body parser, the fault and directive pick from
 * the last user message, and turning the checked request (an ask) into
 * an answer and a call.
 */
#ifndef PROVIDER_SIM_BUILD_H
#define PROVIDER_SIM_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <json-c/json.h>

#include "sim.h"
#include "sim_call.h"
#include "sim_directive.h"

/* A checked request in the surface-neutral form the answer needs. */
struct ask {
    const char *model;            /* request model: text, latency, replay */
    const char *answer_model;     /* model the answer names */
    struct json_object *messages; /* chat-shaped, for the token rule */
    size_t nmessages;
    int64_t counted; /* input tokens, or -1 to count the messages */
    int64_t limit;   /* output limit, -1 when none */
    bool stream;
    bool prefix_cache; /* emulate OpenAI's automatic prompt cache */
    bool no_output;    /* embeddings: the answer has no text */
    const char *tool;  /* the tool to call, or NULL for a text answer */
    char *last_user;   /* owned; freed by ask_free */
    size_t last_user_len;
    enum sim_fault fault;
    struct directives dir;
};

/*
 * Parses the request body as one strict JSON object (no trailing
 * commas, valid UTF-8, nothing after it but whitespace). Returns 0 with
 * a new reference in *out, or -EINVAL.
 */
int build_parse_body(struct evhttp_request *req, struct json_object **out);

/*
 * Sets ask->last_user to the text of the last message with role "user"
 * in ask->messages ("" when none) and reads its directives.
 */
void build_last_user(struct ask *ask);

/* Reads the directives of ask->last_user (set by the caller). */
void build_directives(struct ask *ask);

/*
 * Picks the fault: the x-sim-fault header, else a sim:fault=NAME
 * marker in ask->last_user. Returns 0, or -EINVAL with the unknown
 * name in *name and *len.
 */
int build_pick_fault(struct evhttp_request *req, struct ask *ask,
                     const char **name, size_t *len);

/*
 * A call for the ask with its answer built (or, for a refusing fault,
 * only its model and request id), latency and fault set, ready for
 * call_begin. The answer id is id_prefix + the answer number, in hex
 * when hex_id. The caller keeps the ask.
 */
struct call *build_call(struct sim *sim, struct evhttp_request *req,
                        const struct ask *ask, const struct call_ops *ops,
                        const char *id_prefix, bool hex_id);

/* "<prefix><n>" or "<prefix><32 hex digits from n>"; caller frees. */
char *build_id(const char *prefix, uint64_t n, bool hex);

void ask_free(struct ask *ask);

#endif
