/*
 * POST /v1/chat/completions: authenticate, parse, pick the model, send
 * upstream (plain or streamed), price the answer and write the ledger.
 */
#ifndef TOLLGATE_CHAT_H
#define TOLLGATE_CHAT_H

#include "http/gateway.h"

struct evhttp_request;

/* Handles one request; always answers it, now or when upstream ends. */
void chat_handle(gateway_t *gw, struct evhttp_request *req);

/* Cuts every call in flight (drain deadline): each answers with an error
 * or ends its stream, and is recorded. */
void chat_cut_all(gateway_t *gw);

#endif
