/*
 * The request handlers of the surfaces beyond chat completions:
 * Anthropic Messages, OpenAI Responses and embeddings (OpenAI and
 * Azure). Each checks its request in its provider's terms, then builds
 * the answer and hands it to a call. Keys were checked by the router.
 */
#ifndef PROVIDER_SIM_SURFACES_H
#define PROVIDER_SIM_SURFACES_H

#include <event2/http.h>

#include "sim.h"

/* POST /v1/messages; errors in Anthropic's shape. */
void messages_handle(struct sim *sim, struct evhttp_request *req);

/* POST /v1/responses; errors in OpenAI's shape. */
void responses_handle(struct sim *sim, struct evhttp_request *req);

/*
 * POST /v1/embeddings, or an Azure deployment's embeddings when
 * deployment_model (the model the deployment serves) is not NULL.
 */
void embeddings_handle(struct sim *sim, struct evhttp_request *req,
                       const char *deployment_model);

#endif
