/*
 * The curl multi socket API on libevent: curl tells us which sockets to
 * watch and when its timer is due; libevent tells curl when they fire.
 * Finished transfers are collected after every socket action.
 */
#include "upstream/upstream.h"

#include "util/arena.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EASY_POOL_MAX 256

struct upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int running;
    /* Finished easy handles, reset and kept for the next call: making one
     * costs more than the rest of a call's setup. */
    CURL *pool[EASY_POOL_MAX];
    int pooled;
};

struct upstream_call {
    upstream_t *up;
    CURL *easy;
    struct curl_slist *headers;
    upstream_handlers_t handlers;
    void *ctx;
    int status;
    char content_type[128];
    char retry_after[32];
    char request_id[128];
    int headers_done;
    char error[CURL_ERROR_SIZE];
};

static void check_done(upstream_t *up);

static void on_socket_event(evutil_socket_t fd, short kind, void *arg)
{
    upstream_t *up = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) |
                 (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(up->multi, fd, action, &up->running);
    check_done(up);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    upstream_t *up = userp;
    struct event *ev = socketp;
    short kind;

    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL) {
            event_free(ev);
            curl_multi_assign(up->multi, s, NULL);
        }
        return 0;
    }
    kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                   (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev != NULL) {
        event_del(ev);
        event_assign(ev, up->base, s, kind, on_socket_event, up);
    } else {
        ev = event_new(up->base, s, kind, on_socket_event, up);
        if (ev == NULL)
            die_oom();
        curl_multi_assign(up->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static void on_timer(evutil_socket_t fd, short kind, void *arg)
{
    upstream_t *up = arg;

    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &up->running);
    check_done(up);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    upstream_t *up = userp;
    struct timeval tv;

    if (timeout_ms < 0) {
        evtimer_del(up->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(up->timer, &tv);
    return 0;
}

upstream_t *upstream_new(struct event_base *base)
{
    upstream_t *up = calloc(1, sizeof(*up));

    if (up == NULL)
        die_oom();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    up->base = base;
    up->multi = curl_multi_init();
    if (up->multi == NULL)
        goto fail;
    up->timer = evtimer_new(base, on_timer, up);
    if (up->timer == NULL)
        die_oom();
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 256L);
    return up;

fail:
    free(up);
    return NULL;
}

void upstream_free(upstream_t *up)
{
    if (up == NULL)
        return;
    while (up->pooled > 0)
        curl_easy_cleanup(up->pool[--up->pooled]);
    curl_multi_cleanup(up->multi);
    event_free(up->timer);
    free(up);
    curl_global_cleanup();
}

static void call_free(upstream_call_t *call)
{
    upstream_t *up = call->up;

    curl_multi_remove_handle(up->multi, call->easy);
    if (up->pooled < EASY_POOL_MAX) {
        curl_easy_reset(call->easy);
        up->pool[up->pooled++] = call->easy;
    } else {
        curl_easy_cleanup(call->easy);
    }
    curl_slist_free_all(call->headers);
    free(call);
}

static void copy_value(char *dst, size_t size, const char *v, size_t len)
{
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 &&
           (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t header_cb(char *line, size_t size, size_t n, void *arg)
{
    upstream_call_t *call = arg;
    size_t len = size * n;
    long status = 0;

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new status line: a 100-continue or a redirect came first. */
        call->content_type[0] = call->retry_after[0] = '\0';
        call->request_id[0] = '\0';
    } else if (len > 13 && strncasecmp(line, "content-type:", 13) == 0) {
        copy_value(call->content_type, sizeof(call->content_type), line + 13,
                   len - 13);
    } else if (len > 12 && strncasecmp(line, "retry-after:", 12) == 0) {
        copy_value(call->retry_after, sizeof(call->retry_after), line + 12,
                   len - 12);
    } else if (len > 13 && strncasecmp(line, "x-request-id:", 13) == 0) {
        copy_value(call->request_id, sizeof(call->request_id), line + 13,
                   len - 13);
    } else if (len > 11 && strncasecmp(line, "request-id:", 11) == 0) {
        /* Anthropic's name for it. */
        copy_value(call->request_id, sizeof(call->request_id), line + 11,
                   len - 11);
    } else if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && !call->headers_done) {
            call->headers_done = 1;
            call->status = (int)status;
            call->handlers.on_headers(call->ctx, call->status,
                                      call->content_type, call->retry_after,
                                      call->request_id);
        }
    }
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
    upstream_call_t *call = arg;
    size_t len = size * n;

    int rc = call->handlers.on_data(call->ctx, data, len);

    if (rc == UPSTREAM_PAUSE)
        return CURL_WRITEFUNC_PAUSE;
    if (rc < 0)
        return 0; /* curl reports CURLE_WRITE_ERROR */
    return len;
}

static void check_done(upstream_t *up)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
        upstream_call_t *call = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
        if (call == NULL)
            continue;
        {
            int code = (int)msg->data.result;
            const char *err = call->error[0]
                                  ? call->error
                                  : curl_easy_strerror(msg->data.result);
            char msgcopy[CURL_ERROR_SIZE];
            upstream_handlers_t h = call->handlers;
            void *ctx = call->ctx;

            snprintf(msgcopy, sizeof(msgcopy), "%s", err);
            call_free(call);
            h.on_done(ctx, code, msgcopy);
        }
    }
}

upstream_call_t *upstream_start(upstream_t *up, const upstream_request_t *rq,
                                const upstream_handlers_t *handlers, void *ctx)
{
    upstream_call_t *call = calloc(1, sizeof(*call));
    CURL *e;

    if (call == NULL)
        die_oom();
    e = up->pooled > 0 ? up->pool[--up->pooled] : curl_easy_init();
    if (e == NULL) {
        free(call);
        return NULL;
    }
    call->up = up;
    call->easy = e;
    call->handlers = *handlers;
    call->ctx = ctx;

    call->headers = curl_slist_append(NULL, "Content-Type: application/json");
    call->headers = curl_slist_append(call->headers, "Expect:");
    if (rq->api_key != NULL) {
        char auth[1024];

        if (rq->key_header != NULL)
            snprintf(auth, sizeof(auth), "%s: %s", rq->key_header,
                     rq->api_key);
        else
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                     rq->api_key);
        call->headers = curl_slist_append(call->headers, auth);
    }
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++)
        call->headers = curl_slist_append(call->headers, rq->headers[i]);

    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (rq->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);

    if (curl_multi_add_handle(up->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(call->headers);
        free(call);
        return NULL;
    }
    return call;
}

void upstream_resume(upstream_call_t *call)
{
    if (call != NULL)
        curl_easy_pause(call->easy, CURLPAUSE_CONT);
}

void upstream_cancel(upstream_call_t *call)
{
    if (call != NULL)
        call_free(call);
}

int upstream_code_unreachable(int code)
{
    return code == CURLE_COULDNT_CONNECT ||
           code == CURLE_COULDNT_RESOLVE_HOST ||
           code == CURLE_COULDNT_RESOLVE_PROXY ||
           code == CURLE_SSL_CONNECT_ERROR ||
           code == CURLE_PEER_FAILED_VERIFICATION ||
           code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT;
}

int upstream_code_timeout(int code)
{
    return code == CURLE_OPERATION_TIMEDOUT;
}
