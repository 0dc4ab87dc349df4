/* SPDX-License-Identifier: Apache-2.0 */
/* sched/sched-internal.h - what the scheduler library's files share: sched.c speaks the
 * protocol (subscribe, events, re-subscription), calls.c makes the calls, http.c runs libcurl
 * multi inside the caller's libevent loop (evcurl/: curl's hiperfifo pattern).
 * Calls go sched.c -> calls.c -> http.c; http.c hands bytes and finished requests back through the
 * two function pointers of struct sched. Private to sched/. */
#pragma once

#include <curl/curl.h>

#include "evcurl/evcurl.h"
#include "sched/sched.h"

enum sched_req_kind {
    SCHED_REQ_STREAM, /* SUBSCRIBE: the event stream */
    SCHED_REQ_CALL,
};

struct sched_req {
    struct sched *s;
    enum sched_req_kind kind;
    enum ml_sched_call_type call;
    CURL *h;
    struct curl_slist *hdrs;
    char *body;
    char *answer; /* the answer's body (bounded), or a refused stream's */
    size_t answer_len;
    bool added;                /* in the multi handle (on_kick adds it) */
    sched_accept_cb accept_cb; /* ACCEPT only */
    void *accept_arg;
    struct sched_req *next;
};

struct sched {
    struct event_base *base;
    struct sched_config cfg; /* strings owned */
    char **roles;
    struct sched_callbacks cb;
    void *arg;
    struct evcurl ec; /* the multi handle in the caller's loop */
    struct event *ev_kick, *ev_watchdog, *ev_reconnect;
    struct sched_req *reqs;
    struct sched_req *stream;
    struct ml_reader rd;
    char *framework_id;
    char stream_id[33];
    bool subscribed, stopped, started;
    bool teardown_queued; /* sched_teardown: sent once no other call is on its way */
    double heartbeat_s;
    uint64_t last_rx_ns;
    unsigned backoff_ms;
    unsigned subscribes;
    /* http.c's results, handled by sched.c: bytes of the stream (false: drop it), and a
     * request that ended (unlinked, freed after the call) */
    bool (*on_stream_data)(struct sched *s, const char *data, size_t len);
    void (*on_done)(struct sched *s, struct sched_req *r, CURLcode rc, long status);
};

/* calls.c: one call on the current stream (payload taken); NULL when not subscribed. */
struct sched_req *sched_call(struct sched *s, enum ml_sched_call_type t, char *payload_take);
/* calls.c: send a queued TEARDOWN when no other call is on its way (http.c's kick and
 * sched.c's end of a call ask). */
void sched_teardown_if_idle(struct sched *s);

/* http.c */
int sched_http_init(struct sched *s, struct berr **err);
void sched_http_free(struct sched *s);
/* Start a POST of body (taken) to the scheduler endpoint; NULL when curl refuses. */
struct sched_req *sched_req_start(struct sched *s, enum sched_req_kind kind,
                                  enum ml_sched_call_type call, char *body_take);
/* End r from our side (unlinked and freed; on_done is not called). */
void sched_req_drop(struct sched *s, struct sched_req *r);
