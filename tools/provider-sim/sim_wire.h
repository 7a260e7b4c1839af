/*
 * The call_ops of each surface: how an answer is written on the wire
 * (plain body, stream events, mid-stream errors, refusals, usage). The
 * request handlers pick one when they build a call.
 */
#ifndef PROVIDER_SIM_WIRE_H
#define PROVIDER_SIM_WIRE_H

#include "sim_call.h"

extern const struct call_ops wire_chat_ops;       /* OpenAI chat */
extern const struct call_ops wire_azure_ops;      /* Azure OpenAI chat */
extern const struct call_ops wire_gemini_ops;     /* Gemini OpenAI-compat */
extern const struct call_ops wire_messages_ops;   /* Anthropic Messages */
extern const struct call_ops wire_responses_ops;  /* OpenAI Responses */
extern const struct call_ops wire_embeddings_ops; /* OpenAI embeddings */
extern const struct call_ops wire_azure_embeddings_ops;

/* The OpenAI-shaped reply of a refusing fault (429, 500, 503, ...). */
void wire_openai_refuse(struct call *call);

/* The Gemini-shaped reply of a refusing fault. */
void wire_gemini_refuse(struct call *call);

#endif
