/*
 * One answer in flight, whatever the surface: when each part is due
 * (latency, stall, stream pacing), the faults that bend it, and clean
 * teardown when the client goes away first. The surface supplies the
 * bytes through call_ops; this module only decides when and how much.
 */
#ifndef PROVIDER_SIM_CALL_H
#define PROVIDER_SIM_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "sim.h"
#include "sim_answer.h"
#include "sim_clock.h"
#include "sim_surface.h"

enum sim_fault {
    FAULT_NONE = 0,
    FAULT_429,
    FAULT_500,
    FAULT_503,
    FAULT_STALL,
    FAULT_CUT,
    FAULT_MALFORMED,
    FAULT_MIDSTREAM,
    FAULT_529,
    FAULT_SPENDCAP,
    FAULT_413,
    FAULT_FAILED
};

/* Name as written in x-sim-fault / sim:fault=, NULL for FAULT_NONE. */
const char *fault_name(enum sim_fault fault);

/* Parses a fault name; -EINVAL when it names no fault. */
int fault_parse(const char *name, size_t len, enum sim_fault *fault);

/*
 * True when the fault answers with an error status instead of an
 * answer: the status faults, and the mid-stream ones on a plain call.
 */
bool fault_refuses(enum sim_fault fault, bool stream);

/*
 * A stream is a plan of steps (events). A step's group paces it and
 * tells whether a fault stops it: -1 for the events before the content,
 * i for those that go with content chunk i, nchunks for the end.
 */
#define CALL_GROUP_HEAD (-1)

struct call_step {
    int kind;     /* the surface's own event kind */
    size_t index; /* e.g. the content chunk */
    int64_t group;
};

struct call;

/* What a surface provides; every callback may assume a valid call. */
struct call_ops {
    enum surface surface;
    /* Adds the surface's headers (request id, ...) to a 200 answer. */
    void (*add_headers)(struct call *call);
    /* The whole plain body, a new reference. */
    struct json_object *(*plain_json)(struct call *call);
    /* Fills the stream plan with call_plan_add. */
    void (*plan)(struct call *call);
    /* Appends one step's SSE bytes to out. */
    void (*render)(struct call *call, size_t step, struct evbuffer *out);
    /*
     * Appends the event a mid-stream fault ends with. Returns true when
     * that event carries usage (the Responses API's response.failed).
     */
    bool (*stream_error)(struct call *call, struct evbuffer *out);
    /* Sends the error reply of a refusing fault. */
    void (*refuse)(struct call *call);
    /* The usage object the answer sent, a new reference, or NULL. */
    struct json_object *(*usage_json)(struct call *call);
    /* True when a finished stream carried usage. */
    bool (*stream_has_usage)(struct call *call);
};

struct call {
    struct sim *sim;
    const struct call_ops *ops;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct answer answer;
    struct json_object *payload; /* surface data, e.g. embeddings */
    enum sim_fault fault;
    bool stream;
    bool include_usage;
    uint64_t start_ms; /* when the answer's clock starts (after stall) */
    uint64_t ttft_ms;
    uint64_t per_token_ms;
    struct call_step *steps;
    size_t nsteps;
    size_t next_step; /* next stream step to send */
    bool started;     /* stream headers are out */
    bool refused;     /* answered with an error status */
    struct evbuffer *out;
    struct event *watch; /* notices the client hanging up early */
    struct vclock_timer timer;
    struct call *prev, *next;
};

/*
 * A call for req, linked into sim->calls. The caller fills answer,
 * fault, stream, include_usage, latency and payload, then calls
 * call_begin.
 */
struct call *call_new(struct sim *sim, struct evhttp_request *req,
                      const struct call_ops *ops);

/* Appends a step to the stream plan (for call_ops.plan). */
void call_plan_add(struct call *call, int kind, size_t index, int64_t group);

/* Content chunks a stream sends before its cut or mid-stream fault. */
size_t call_chunks_before_fault(const struct call *call);

/* Appends one SSE event: an `event:` line when name is not NULL, the
 * data line with obj serialized, and the blank line. Drops obj. */
void call_sse(struct evbuffer *out, const char *name, struct json_object *obj);

/*
 * Sends whatever is due now and schedules the rest. From here on the
 * call owns itself: it is freed when its answer is finished, cut, or
 * its client disconnects.
 */
void call_begin(struct call *call);

/* Number of calls in flight. */
size_t call_count(const struct sim *sim);

#endif
