/*
 * HTTP to providers: libcurl's multi interface driven by the gateway's
 * libevent loop, so many upstream calls share one thread and none blocks
 * it (curl resolves names on its own threads).
 */
#ifndef TOLLGATE_UPSTREAM_H
#define TOLLGATE_UPSTREAM_H

#include <stddef.h>

struct event_base;

typedef struct upstream upstream_t;
typedef struct upstream_call upstream_call_t;

typedef struct upstream_handlers {
    /* The status line and headers are complete. */
    void (*on_headers)(void *ctx, int status, const char *content_type,
                       const char *retry_after, const char *request_id);
    /* Body bytes as they arrive. Return 0 when taken, -1 to abort the
     * transfer, or UPSTREAM_PAUSE to leave them with curl and pause the
     * transfer until upstream_resume(). */
    int (*on_data)(void *ctx, const char *data, size_t len);
    /* The transfer ended: curl_code 0 is success; otherwise a CURLcode
     * with curl's message in error. The call is freed after this. */
    void (*on_done)(void *ctx, int curl_code, const char *error);
} upstream_handlers_t;

typedef struct upstream_request {
    const char *url;
    const char *api_key; /* sent as a bearer token; NULL for none */
    /* Header that carries api_key instead of "Authorization: Bearer"
     * ("x-api-key" for Anthropic, "api-key" for Azure); NULL: bearer. */
    const char *key_header;
    /* More "Name: value" headers, NULL-terminated; may be NULL. */
    const char *const *headers;
    const char *body;    /* must stay valid until on_done or cancel */
    size_t body_len;
    long connect_timeout_ms; /* 0: curl's default */
} upstream_request_t;

/* Binds a curl multi handle to the loop. Owned by the caller. Returns
 * NULL if curl cannot start. */
upstream_t *upstream_new(struct event_base *base);
void upstream_free(upstream_t *up);

/* Starts a POST. Returns the call, or NULL if curl refused to start it
 * (then no handler runs). */
upstream_call_t *upstream_start(upstream_t *up, const upstream_request_t *rq,
                                const upstream_handlers_t *handlers, void *ctx);

#define UPSTREAM_PAUSE 1

/* Resumes a paused call; curl may hand over the held bytes before this
 * returns. Must not be called from inside one of the call's handlers. */
void upstream_resume(upstream_call_t *call);

/* Stops a call that has not ended; no handler runs after this. Must not
 * be called from inside one of the call's own handlers. */
void upstream_cancel(upstream_call_t *call);

/* True when the curl code means nothing reached the provider (so the
 * call is "unreachable" rather than "dropped"). */
int upstream_code_unreachable(int curl_code);
int upstream_code_timeout(int curl_code);

#endif
