/*
 * Names of the simulator's wire surfaces, as /_sim/usage records them.
 */
#include "sim_surface.h"

const char *surface_name(enum surface surface)
{
    static const char *const names[] = {
        [SURFACE_CHAT] = "openai.chat",
        [SURFACE_AZURE] = "azure.chat",
        [SURFACE_GEMINI] = "gemini.chat",
        [SURFACE_MESSAGES] = "anthropic.messages",
        [SURFACE_RESPONSES] = "openai.responses",
        [SURFACE_EMBEDDINGS] = "openai.embeddings",
        [SURFACE_AZURE_EMBEDDINGS] = "azure.embeddings",
    };

    return (unsigned)surface < SURFACE_COUNT ? names[surface] : "unknown";
}
