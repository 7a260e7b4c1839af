/*
 * The simulator's HTTP front: binds the listener, routes paths (the
 * OpenAI, Anthropic, Azure and Gemini surfaces, /health, /_sim
 * introspection) and writes replies in each provider's error shape.
 */
#ifndef PROVIDER_SIM_SERVER_H
#define PROVIDER_SIM_SERVER_H

#include <event2/http.h>
#include <json-c/json.h>

#include "sim.h"

/* Serialization flags for every JSON the simulator writes. */
#define SERVER_JSON_FLAGS                                                      \
    (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/*
 * Binds cfg.host:cfg.port (0 picks a free port) and installs the
 * routes. Stores the bound port in *port. Returns 0 or -errno.
 */
int server_start(struct sim *sim, int *port);

/* Replies with body as application/json and drops the reference. */
void server_send_json(struct evhttp_request *req, int status,
                      struct json_object *body);

/*
 * Replies with OpenAI's error object {"error":{message,type,param,code}};
 * param and code may be NULL (sent as null).
 */
void server_send_error(struct evhttp_request *req, int status, const char *type,
                       const char *message, const char *param,
                       const char *code);

/* The OpenAI error object itself, for use inside a stream. */
struct json_object *server_error_json(const char *type, const char *message,
                                      const char *param, const char *code);

/* Google's error body {"error":{code,message,status}}, a new reference;
 * status is the canonical name for the HTTP code (429 -> RESOURCE_...). */
struct json_object *server_gemini_error_json(int code, const char *message);

/* Replies with code and Google's error body. */
void server_send_gemini_error(struct evhttp_request *req, int code,
                              const char *message);

/* Anthropic's error body {"type":"error","error":{type,message},
 * "request_id"}, a new reference. */
struct json_object *server_anthropic_error_json(const char *type,
                                                const char *message,
                                                const char *request_id);

/* Replies with Anthropic's error body and a fresh request-id header. */
void server_send_anthropic_error(struct sim *sim, struct evhttp_request *req,
                                 int status, const char *type,
                                 const char *message);

#endif
