/*
 * One chat completion in flight: when each part of the answer is due
 * (latency, stall, stream pacing), the faults that bend it, and clean
 * teardown when the client goes away first.
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

enum sim_fault {
    FAULT_NONE = 0,
    FAULT_429,
    FAULT_500,
    FAULT_503,
    FAULT_STALL,
    FAULT_CUT,
    FAULT_MALFORMED,
    FAULT_MIDSTREAM
};

/* Name as written in x-sim-fault / sim:fault=, NULL for FAULT_NONE. */
const char *fault_name(enum sim_fault fault);

/* Parses a fault name; -EINVAL when it names no fault. */
int fault_parse(const char *name, size_t len, enum sim_fault *fault);

struct call {
    struct sim *sim;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct answer answer;
    enum sim_fault fault;
    bool stream;
    bool include_usage;
    uint64_t start_ms; /* when the answer's clock starts (after stall) */
    uint64_t ttft_ms;
    uint64_t per_token_ms;
    size_t next_chunk; /* next content chunk to send */
    bool started;      /* stream headers and role chunk are out */
    bool refused;      /* answered with an error status */
    struct evbuffer *out;
    struct event *watch; /* notices the client hanging up early */
    struct vclock_timer timer;
    struct call *prev, *next;
};

/*
 * A call for req, linked into sim->calls. The caller fills answer,
 * fault, stream, include_usage and latency, then calls call_begin.
 */
struct call *call_new(struct sim *sim, struct evhttp_request *req);

/*
 * Sends whatever is due now and schedules the rest. From here on the
 * call owns itself: it is freed when its answer is finished, cut, or
 * its client disconnects.
 */
void call_begin(struct call *call);

/* Number of calls in flight. */
size_t call_count(const struct sim *sim);

#endif
