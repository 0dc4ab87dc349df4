/* SPDX-License-Identifier: Apache-2.0 */
/* apps/appsd.h - berth-apps' daemon state, shared by its files (apps.h holds the pure
 * model): the settings, the apps with their instances and deployments, the scheduler
 * library's handle, apps.db and the HTTP server. */
#pragma once

#include <event2/event.h>
#include <sqlite3.h>

#include "apps/apps.h"
#include "sched/sched.h"

struct sse_hub;

struct apps_cfg {
    char *listen, *work_dir, *token_file, *tls_cert, *tls_key;
    bool plain_http;
    char *master, *master_ca, *master_token_file, *role, *name;
    uint64_t failover_timeout_ms;
    uint64_t kill_delay_ms; /* a serving instance stays up this long, killing, before its KILL */
    uint64_t events_history, events_buffer, events_max_subscribers, events_keepalive_ms;
    char *log_level;
    char *config_file;
};
extern const char apps_default_config[];
int apps_cfg_load(struct apps_cfg *cfg, int argc, char **argv, struct berr **err);
void apps_cfg_done(struct apps_cfg *cfg);

/* One instance: a task berth-apps launched (or is about to). */
struct inst {
    struct inst *next;
    char task_id[65];
    char *app_id, *version;
    char agent_id[65];
    char *hostname;
    char *address;         /* its agent's address from the offer ("": none known) */
    char *pub;             /* its view as last published on GET /v1/events (events.c) */
    struct ml_attr *attrs; /* its agent's, for the constraints */
    size_t n_attrs;
    uint16_t ports[ML_MAX_PORTS];
    size_t n_ports;
    enum ml_state state;
    enum ml_health healthy;
    double started_at, running_since;
    bool killing;     /* we asked it to end */
    double killed_at; /* when the last KILL went */
    double kill_at;   /* when its KILL goes (kill_delay), 0: sent */
    bool reconciling; /* asked the master, no answer yet */
    bool ever_healthy;
};

struct dep {
    struct dep *next;
    char id[40];
    char *app_id, *kind, *version, *from_version;
    char *state; /* "running", "failed" (stopped on a version that never turns healthy) */
    char *message;
    double started_at;
    unsigned failures; /* ends of the new version's instances (never healthy) */
    char *pub;         /* its view as last published (events.c) */
};

/* Why instances of an app wait, from the last offers seen. */
struct app_waiting {
    const char *reason; /* CONSTRAINT, RESOURCES, ROLE, BACKOFF, NO_OFFERS, NULL: none */
    char message[256];
};

struct app {
    struct app *next;
    struct app_def def;      /* the definition as last given (what GET shows) */
    char *version;           /* its version */
    struct app_def *serving; /* what launches use: &def, or an older version after a failed
                              * deployment (owned then) */
    char *serving_version;
    bool deleting, hold;
    unsigned bo_n;   /* ends in a row */
    double bo_until; /* no launch before */
    struct app_waiting waiting;
    unsigned want; /* from the last plan: instances to launch */
    char *pub;     /* its view as last published (events.c) */
};

struct apps {
    struct apps_cfg cfg;
    struct event_base *base;
    sqlite3 *db;
    struct sched *s;
    char *token, *master_token;
    char *framework_id;
    bool reconciled; /* every known instance answered since the last SUBSCRIBED */
    double reconcile_sent;
    bool suppressed;
    struct app *apps;
    struct inst *insts;
    struct dep *deps;
    double last_offers_at;
    struct evhttp *http;
    struct sse_hub *events; /* GET /v1/events (events.c) */
    void *tls;              /* SSL_CTX */
    struct event *ev_tick, *ev_sigterm, *ev_sigint;
    int exit_code; /* 1 once the master refused us for good */
};

/* store.c */
int apps_store_open(struct apps *a, struct berr **err);
void apps_store_close(struct apps *a);
int apps_store_load(struct apps *a, struct berr **err);
void apps_store_meta(struct apps *a, const char *key, const char *value);
void apps_store_app(struct apps *a, struct app *app);
void apps_store_app_del(struct apps *a, const char *id);
void apps_store_version(struct apps *a, const char *app_id, const char *version, const char *def);
char *apps_store_version_get(struct apps *a, const char *app_id, const char *version);
void apps_store_inst(struct apps *a, struct inst *i);
void apps_store_inst_del(struct apps *a, const char *task_id);
void apps_store_dep(struct apps *a, struct dep *d);
void apps_store_dep_del(struct apps *a, const char *id);

/* deploy.c: the apps in memory and what each needs */
struct app *apps_find(struct apps *a, const char *id);
struct inst *apps_inst_find(struct apps *a, const char *task_id);
void apps_inst_free(struct inst *i);
void apps_inst_remove(struct apps *a, struct inst *i);
struct dep *apps_dep_of(struct apps *a, const char *app_id); /* the one under way */
struct dep *apps_dep_find(struct apps *a, const char *id);
struct dep *apps_dep_new(struct apps *a, const char *app_id, const char *kind, const char *version,
                         const char *from);
void apps_dep_remove(struct apps *a, struct dep *d);
void apps_app_free(struct app *app);
/* One pass over every app: kills, deployments' progress, want counts, suppress/revive. */
void apps_step(struct apps *a);
void apps_tick(evutil_socket_t fd, short what, void *arg);
/* The counts of an app's live instances. */
void apps_counts(struct apps *a, const struct app *app, unsigned *running, unsigned *healthy,
                 unsigned *staged);
bool apps_inst_healthy(const struct app *app, const struct inst *i);
/* Set serving to the definition of version (an older one after a failure); 0 or -errno. */
int apps_set_serving(struct apps *a, struct app *app, const char *version);

/* keeper.c: the framework */
int apps_keeper_start(struct apps *a, struct berr **err);
void apps_keeper_stop(struct apps *a);
void apps_kill(struct apps *a, struct inst *i);
/* An instance ended (update or reconciliation): backoff, deployment failures, forget it. */
void apps_inst_ended(struct apps *a, struct inst *i, const char *reason, bool unknown);

/* api.c */
int apps_api_start(struct apps *a, struct berr **err);
void apps_api_stop(struct apps *a);
void apps_app_json(struct apps *a, const struct app *app, yajl_gen g);
/* TASK (docs/apps.md); killing_always: "killing" also when false (INST of the events). */
void apps_inst_json(struct apps *a, const struct inst *i, bool killing_always, yajl_gen g);
void apps_dep_json(const struct dep *d, yajl_gen g);

/* events.c: GET /v1/events (docs/apps.md "Events") on sse/'s hub. The publishers compare an
 * object's view with the one last published and publish only a change, so they may be called
 * after any change (store.c calls them where a change is written); no-ops before
 * apps_events_start, which takes what apps.db held as published. */
struct evhttp_request;
int apps_events_start(struct apps *a, struct berr **err);
void apps_events_stop(struct apps *a); /* before evhttp_free */
void apps_events_serve(struct apps *a, struct evhttp_request *req);
void apps_events_inst(struct apps *a, struct inst *i);
void apps_events_inst_removed(struct apps *a, struct inst *i);
void apps_events_app(struct apps *a, struct app *app);
void apps_events_app_removed(struct apps *a, const char *id);
void apps_events_dep(struct apps *a, struct dep *d);
void apps_events_dep_removed(struct apps *a, struct dep *d);
