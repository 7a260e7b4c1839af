/*
 * The model calls: POST /v1/chat/completions, /v1/messages, /v1/responses
 * and /v1/embeddings. Authenticate, parse, pick the model, send upstream
 * (plain or streamed, translated when the provider speaks another
 * format), price the answer and write the ledger.
 */
#ifndef TOLLGATE_CHAT_H
#define TOLLGATE_CHAT_H

#include "http/gateway.h"

struct evhttp_request;

/* The format a caller speaks. */
typedef enum surface {
    SURFACE_CHAT = 0,      /* OpenAI chat completions */
    SURFACE_MESSAGES = 1,  /* Anthropic messages */
    SURFACE_RESPONSES = 2, /* OpenAI responses */
    SURFACE_EMBEDDINGS = 3 /* OpenAI embeddings */
} surface_t;

/* Handles one request; always answers it, now or when upstream ends. */
void chat_handle(gateway_t *gw, struct evhttp_request *req, surface_t surface);

/* Cuts every call in flight (drain deadline): each answers with an error
 * or ends its stream, and is recorded. */
void chat_cut_all(gateway_t *gw);

#endif
