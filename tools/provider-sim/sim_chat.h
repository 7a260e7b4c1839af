/*
 * POST chat/completions for the simulator, in OpenAI's, Azure's and
 * Gemini's compatible dialect: validates the request as OpenAI does,
 * picks the fault, builds the answer and hands it to a call.
 */
#ifndef PROVIDER_SIM_CHAT_H
#define PROVIDER_SIM_CHAT_H

#include <event2/http.h>

#include "sim.h"
#include "sim_surface.h"

/*
 * Answers req (now or later); authentication was checked already.
 * surface is SURFACE_CHAT, SURFACE_AZURE or SURFACE_GEMINI. For Azure,
 * deployment_model is the model the deployment serves, and `model` in
 * the body may be left out; it is NULL otherwise.
 */
void chat_handle(struct sim *sim, struct evhttp_request *req,
                 enum surface surface, const char *deployment_model);

#endif
