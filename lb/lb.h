/* SPDX-License-Identifier: Apache-2.0 */
/* lb/lb.h - berth-lb (issue #17, docs/lb.md): HAProxy in front of berth-apps' apps. The pure
 * parts: the endpoint table kept from GET /v1/events (table.c), the backends and their
 * server-template slots (slots.c), haproxy.cfg rendered from them (render.c) and the SSE line
 * parser (sseparse.c); tests/unit/lb_test.c links them alone. The daemon's parts (lbd.h):
 * config.c, stream.c (the event stream over libcurl), haproxy.c (the process, -c, reloads),
 * runtime.c (the runtime API on a unix socket) and main.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define LB_DEFAULT_CONFIG "/etc/berth/lb.conf"
#define LB_VHOST_LABEL "lb.vhost"

struct lb_cfg {
    char *apps, *token_file, *apps_ca, *haproxy, *run_dir, *bind, *log_level;
    unsigned http_port; /* 0: no HTTP virtual-host frontend */
    unsigned slots;     /* servers per backend */
    unsigned retries;
    uint64_t drain_timeout_ms, connect_timeout_ms, idle_timeout_ms, stream_timeout_ms;
    bool keep_haproxy; /* leave HAProxy running when berth-lb exits */
    char *config_file;
};
extern const char lb_default_config[];
int lb_cfg_load(struct lb_cfg *cfg, int argc, char **argv, struct berr **err);
void lb_cfg_done(struct lb_cfg *cfg);

/* ---- table.c: the apps and instances, from the events ------------------------------------ */

struct lb_app {
    char *id;
    char *vhost; /* label lb.vhost, lower case, or NULL */
    size_t n_ports;
    unsigned *service_ports; /* 0: none for that port index */
};

struct lb_inst {
    char *id, *app_id, *address;
    size_t n_ports;
    unsigned *ports;
    bool serving; /* RUNNING, healthy true, not killing */
};

struct lb_table {
    struct lb_app **apps; /* sorted by id */
    size_t n_apps;
    struct lb_inst **insts; /* sorted by id */
    size_t n_insts;
    bool loaded; /* a snapshot came */
};

/* Apply event name with data (one JSON object): snapshot replaces the table; app_* and
 * instance_* change it; anything else is ignored. 1 when the table changed, 0 when not,
 * <0 with err for data that does not parse. */
int lb_table_apply(struct lb_table *t, const char *name, const char *data, size_t len,
                   struct berr **err);
const struct lb_app *lb_table_app(const struct lb_table *t, const char *id);
void lb_table_clear(struct lb_table *t);

/* ---- slots.c: backends and their server slots --------------------------------------------- */

enum lb_slot_state {
    LB_SLOT_FREE,
    LB_SLOT_SERVING,
    LB_SLOT_DRAINING
};

struct lb_slot_view {
    enum lb_slot_state st;
    char addr[64];
    unsigned port;
};

struct lb_slot {
    struct lb_slot_view want;    /* what HAProxy should have */
    struct lb_slot_view applied; /* what it was last told (valid when known) */
    bool known;
    char *inst; /* SERVING, DRAINING: the instance's id */
    uint64_t drain_until_ms;
};

/* One backend: an app's port index with a service port (or the vhost port 0). */
struct lb_backend {
    char *name; /* b_<app>_<index> */
    char *app_id;
    size_t port_index;
    unsigned service_port; /* 0: reached by vhost only */
    char *vhost;           /* port index 0 of an app with lb.vhost */
    bool http;             /* mode http (apps with lb.vhost) */
    struct lb_slot *slots;
    size_t n_slots;
    bool full_warned;
};

struct lb_backends {
    struct lb_backend **v; /* sorted by name */
    size_t n;
};

/* Make the backends what the table's apps call for (a backend kept keeps its slots); true when
 * the set of frontends/backends changed (names, ports, modes, vhosts): haproxy.cfg must be
 * rendered again and HAProxy reloaded. */
bool lb_backends_update(struct lb_backends *bs, const struct lb_table *t, unsigned n_slots);
/* Assign the serving instances to slots at now_ms: a new one takes the lowest free slot, one
 * that no longer serves drains until now + drain_ms, then its slot is free (maint). */
void lb_slots_assign(struct lb_backend *b, const struct lb_table *t, uint64_t now_ms,
                     uint64_t drain_ms);
/* Append to *buf the runtime API commands (joined with ';') that take HAProxy from applied to
 * want, and mark them applied; the number of slots changed. */
size_t lb_slots_commands(struct lb_backend *b, char **buf);
void lb_backends_forget(struct lb_backends *bs); /* HAProxy's state is unknown: resend all */
void lb_backends_free(struct lb_backends *bs);
/* How many of its slots serve (SERVING). */
size_t lb_backend_serving(const struct lb_backend *b);

/* ---- render.c ---------------------------------------------------------------------------- */

/* haproxy.cfg for the backends: a text that depends on the set of backends and cfg only (no
 * instance), so the same apps render the same file. */
char *lb_render(const struct lb_cfg *cfg, const struct lb_backends *bs);

/* ---- sseparse.c: text/event-stream lines into events -------------------------------------- */

struct lb_sse_parser {
    char *line;
    size_t line_len;
    char *data;
    size_t data_len;
    bool has_data;
    char name[64];
    char id[64];
    char last_id[64]; /* the id of the last event dispatched (or set by an id line) */
    size_t max;       /* bound on one event's data */
};
typedef void (*lb_sse_event_fn)(void *arg, const char *name, const char *id, const char *data,
                                size_t len);
/* Feed bytes; each complete event goes to fn. -E2BIG when an event exceeds max. */
int lb_sse_feed(struct lb_sse_parser *p, const char *buf, size_t len, lb_sse_event_fn fn,
                void *arg);
void lb_sse_reset(struct lb_sse_parser *p); /* a new stream: partial lines dropped */
void lb_sse_done(struct lb_sse_parser *p);
