/* SPDX-License-Identifier: Apache-2.0 */
/* sched/sched.h - the one public header of berth's scheduler library (libberthsched): write a
 * framework for berth-master in C. It speaks the scheduler API (docs/protocol.md, "The
 * scheduler API") over libcurl's multi interface inside the caller's libevent loop: no threads,
 * no blocking call. sched_start subscribes; offers, rescinds, status updates and errors arrive
 * through the callbacks; accept, decline, kill, acknowledge, reconcile, suppress, revive and
 * teardown are calls. Status updates are acknowledged by the library once the update callback
 * returns (unless manual_ack), and a stream that ends or falls silent is subscribed again, with
 * backoff, as the same framework (its id), so tasks and offers survive a master restart.
 * The library never logs above debug and never exits; sched.c and http.c implement it. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "masterlink/masterlink.h"

struct sched;

struct sched_config {
    const char *master;       /* "https://HOST:PORT" of berth-master */
    const char *token;        /* bearer token text: submit rights in every role below */
    const char *cacert;       /* CA bundle the master's certificate chains to; NULL: system's */
    const char *name;         /* the framework's name, 1-128 characters */
    const char *const *roles; /* NULL-terminated role names; NULL: {"*"} */
    double failover_timeout;  /* seconds the master keeps its tasks while it is away; < 0: the
                               * master's default */
    const char *framework_id; /* subscribe as this framework (after a restart); NULL: new */
    bool manual_ack;          /* true: the caller calls sched_acknowledge itself */
};

/* A task's status as the master reports it (strings valid during the callback only). */
struct sched_status {
    const char *task_id, *name, *state, *reason, *message, *agent_id, *container_id;
    const char *uuid; /* NULL for reconciliation answers: nothing to acknowledge */
    bool has_exit_code;
    int64_t exit_code, signal;
    bool reconciliation;
    double timestamp;
    enum ml_health healthy; /* RUNNING with a health check: the agent's verdict (issue #16) */
};

/* Every callback gets the arg given to sched_new; any may be NULL. Calls may be made from
 * inside them; sched_free may not. */
struct sched_callbacks {
    /* SUBSCRIBED: again is true when it was a re-subscription with the framework's id */
    void (*subscribed)(struct sched *s, const char *framework_id, bool again, void *arg);
    void (*offers)(struct sched *s, const struct ml_offer *offers, size_t n, void *arg);
    void (*rescind)(struct sched *s, const char *offer_id, void *arg);
    void (*update)(struct sched *s, const struct sched_status *st, void *arg);
    /* An ERROR event, a refused call (call names it), or a refused SUBSCRIBE. fatal: the
     * library stopped (the framework was removed, or the token is refused) and will not
     * subscribe again. code: the API's error code (BERR_CODE_NONE when unknown). */
    void (*error)(struct sched *s, const char *call, enum berr_code code, const char *message,
                  bool fatal, void *arg);
    /* The stream ended; the library subscribes again after a backoff. */
    void (*disconnected)(struct sched *s, const char *why, void *arg);
};

/* ACCEPT's answer: the ids of the tasks made (n of them, in the launches' order), or err
 * (the offers came back to the master; ECANCELED: sched_free came first, and what became
 * of them is for the next subscription's reconciliation). Called exactly once. */
typedef void (*sched_accept_cb)(struct sched *s, const struct berr *err, char *const *task_ids,
                                size_t n, void *arg);

/* A new framework client (not subscribed yet). cfg's strings are copied. 0, or -errno with
 * err (a bad config, no libcurl). Free with sched_free. */
int sched_new(struct event_base *base, const struct sched_config *cfg,
              const struct sched_callbacks *cb, void *arg, struct sched **ret, struct berr **err);
/* Subscribe (and keep subscribing until fatal or sched_free). 0 or -errno. */
int sched_start(struct sched *s);
/* Drop the stream and every call under way; the framework stays registered at the master
 * until its failover_timeout (use sched_teardown first to end it). Each ACCEPT still on its
 * way gets its cb first, with ECANCELED (no call can be made from it). */
void sched_free(struct sched *s);
/* The framework's id once SUBSCRIBED (or the configured one), else NULL. */
const char *sched_framework_id(const struct sched *s);
bool sched_connected(const struct sched *s);

/* The calls: 0 when sent, -ENOTCONN while not subscribed, -EINVAL on bad arguments. Their
 * refusals reach the error callback (ACCEPT's reach its own cb too). */
/* LAUNCH n_tasks tasks (task_ids: NULL, or the framework's own id per task, NULL entries for
 * the master's) from offers of one agent; what is left is kept from this framework for
 * refuse_seconds (< 0: the master's default, 5). cb may be NULL. */
int sched_accept(struct sched *s, const char *const *offer_ids, size_t n_offers,
                 const struct ml_task_spec *tasks, const char *const *task_ids, size_t n_tasks,
                 double refuse_seconds, sched_accept_cb cb, void *arg);
int sched_decline(struct sched *s, const char *const *offer_ids, size_t n, double refuse_seconds);
int sched_revive(struct sched *s);
int sched_suppress(struct sched *s);
/* grace_seconds < 0: the agent's default. */
int sched_kill(struct sched *s, const char *task_id, double grace_seconds);
int sched_acknowledge(struct sched *s, const char *task_id, const char *uuid);
/* n == 0: implicit (every task the master holds for this framework). */
int sched_reconcile(struct sched *s, const char *const *task_ids, size_t n);
/* End the framework: its tasks are killed and the library stops (fatal error callback).
 * Sent once the calls already on their way have ended, the acknowledgement of the update
 * being handled included (the master refuses calls of a framework that is gone). */
int sched_teardown(struct sched *s);
