/*
 * POST /v1/chat/completions for the simulator: validates the request as
 * OpenAI does, picks the fault, builds the answer and hands it to a call.
 */
#ifndef PROVIDER_SIM_CHAT_H
#define PROVIDER_SIM_CHAT_H

#include <event2/http.h>

#include "sim.h"

/* Answers req (now or later); authentication was checked already. */
void chat_handle(struct sim *sim, struct evhttp_request *req);

#endif
