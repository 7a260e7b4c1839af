/*
 * The wire formats the simulator speaks. A request's path picks its
 * surface; the surface decides the request checks, the answer's JSON,
 * the stream framing, the error shape and how usage is reported.
 */
#ifndef PROVIDER_SIM_SURFACE_H
#define PROVIDER_SIM_SURFACE_H

enum surface {
    SURFACE_CHAT = 0,         /* OpenAI POST /v1/chat/completions */
    SURFACE_AZURE,            /* Azure OpenAI deployment chat/completions */
    SURFACE_GEMINI,           /* Gemini's OpenAI-compatible chat/completions */
    SURFACE_MESSAGES,         /* Anthropic POST /v1/messages */
    SURFACE_RESPONSES,        /* OpenAI POST /v1/responses */
    SURFACE_EMBEDDINGS,       /* OpenAI POST /v1/embeddings */
    SURFACE_AZURE_EMBEDDINGS, /* Azure OpenAI deployment embeddings */
    SURFACE_COUNT
};

/* The name /_sim/usage records carry: "openai.chat", "azure.chat",
 * "gemini.chat", "anthropic.messages", "openai.responses",
 * "openai.embeddings", "azure.embeddings". */
const char *surface_name(enum surface surface);

#endif
