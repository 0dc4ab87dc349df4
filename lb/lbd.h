/* SPDX-License-Identifier: Apache-2.0 */
/* lb/lbd.h - berth-lb's daemon state, shared by main.c, stream.c (GET /v1/events over
 * libcurl's multi interface in the libevent loop, as sched/http.c does), haproxy.c (the
 * HAProxy master process: validate, start, adopt, reload) and runtime.c (the runtime API on
 * haproxy.sock with a bufferevent: the loop never waits on HAProxy). */
#pragma once

#include <curl/curl.h>
#include <event2/event.h>
#include <sys/types.h>

#include "evcurl/evcurl.h"
#include "lb/lb.h"

enum lb_hap_state {
    LB_HAP_NONE,      /* not running (or not yet known) */
    LB_HAP_STARTING,  /* the launcher (haproxy -D) runs */
    LB_HAP_RUNNING,   /* master up; worker_pid known once "show info" answered */
    LB_HAP_RELOADING, /* SIGUSR2 sent; waiting for a worker other than old_worker */
};

struct lbd;
typedef void (*lb_rt_cb)(struct lbd *l, bool ok, const char *reply);

struct lbd {
    struct lb_cfg cfg;
    struct event_base *base;
    char *token;
    struct lb_table table;
    struct lb_backends bs;
    /* the stream */
    struct evcurl ec; /* the stream's multi handle in the loop */
    CURL *h;
    struct curl_slist *hdrs;
    long status;
    char err_body[512];
    struct lb_sse_parser parser;
    struct event *ev_reconnect;
    uint64_t retry_ms;
    uint64_t events; /* events applied */
    /* HAProxy */
    enum lb_hap_state hap;
    pid_t master_pid, worker_pid, old_worker_pid, launcher_pid, check_pid;
    uint64_t reload_started_ms, start_failed_ms, launched_ms;
    bool reload_pending; /* checked: save the servers' state, then SIGUSR2 */
    bool state_stale;    /* reloading: the old worker changed since servers.state was saved */
    bool shape_dirty;    /* the frontends/backends changed since haproxy.cfg was written */
    char *pending_cfg;   /* the text haproxy -c checks */
    uint64_t reloads;
    /* the runtime API: one exchange at a time */
    struct bufferevent *rt;
    lb_rt_cb rt_cb;
    uint64_t rt_fail_ms;
    struct event *ev_tick, *ev_sync, *ev_probe, *ev_sigchld, *ev_sigterm, *ev_sigint;
    uint64_t last_alive_check_ms;
};

uint64_t lb_now_ms(void);
void lb_sync_soon(struct lbd *l);
/* lb_hap_tick again in a few ms (not at the next 100 ms tick): a reload's new worker is
 * found, and given every server, as soon as it answers. */
void lb_probe_soon(struct lbd *l);

int lb_stream_init(struct lbd *l, struct berr **err);
void lb_stream_start(struct lbd *l);
void lb_stream_free(struct lbd *l);

/* haproxy.c */
char *lb_path(const struct lbd *l, const char *name); /* run_dir/name */
void lb_hap_adopt(struct lbd *l);
void lb_hap_apply_cfg(struct lbd *l); /* render; unchanged: nothing, else check, start/reload */
void lb_hap_on_child(struct lbd *l, pid_t pid, int status);
void lb_hap_tick(struct lbd *l);
/* reply starts with "show info"'s: true when the worker that answered is the one that serves
 * (the current worker; while reloading, the old one until the new one answers) or the reply
 * names none; a worker not seen before becomes the current one (a reload's new worker,
 * found), false then, as for the old worker after the new one answered. */
bool lb_hap_answered(struct lbd *l, const char *reply);
void lb_hap_stop(struct lbd *l);
/* SIGUSR1 to the HAProxy master of run_dir's pid file: 1 sent, 0 none runs, -errno. */
int lb_hap_soft_stop(struct lbd *l);

/* runtime.c: send cmds (one line, ';'-joined) to haproxy.sock; cb gets the reply. -EBUSY
 * while an exchange is under way. */
int lb_rt_send(struct lbd *l, const char *cmds, lb_rt_cb cb);
void lb_rt_free(struct lbd *l);
