/* SPDX-License-Identifier: Apache-2.0 */
/* apps/apps.h - berth-apps (docs/apps.md): a framework on berth-master's scheduler API
 * (sched/sched.h) that keeps long-running apps. model.c holds the pure decisions (an app
 * definition's parse and defaults, the backoff delay, the deployment step plan; unit-tested in
 * tests/unit/apps_test.c), config.c the settings, store.c apps.db, keeper.c the framework
 * (offers, launches, updates, reconciliation), deploy.c what each app needs next, api.c the
 * HTTP API, events.c its GET /v1/events (issue #17), main.c the loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "apps/constraints.h"
#include "common/common.h"
#include "masterlink/masterlink.h"

#define APPS_DEFAULT_CONFIG "/etc/berth/apps.conf"
#define APP_MAX_INSTANCES 1000

/* ---- the app definition (model.c) -------------------------------------------------------- */

struct app_port {
    char *name;
    unsigned service_port; /* 0: none */
};

struct app_def {
    char *id;
    char *command; /* or args */
    char **args;
    unsigned instances;
    uint64_t cpus_millis, mem_bytes, pids;
    struct app_port *ports;
    size_t n_ports;
    char *network;
    char **env; /* "K=V" */
    char *user;
    char *role;
    char *health_json; /* the health check object as given (NULL: none) */
    struct ml_health_check *hc;
    struct app_constraint *cons;
    size_t n_cons;
    double mhc, moc;                                /* upgrade_strategy */
    double bo_seconds, bo_factor, bo_max, bo_reset; /* backoff */
    char **labels;                                  /* k, v, k, v, ..., NULL */
};

/* Parse and check an app definition (defaults filled). 0, or -EINVAL with err
 * (INVALID_ARGUMENT) naming the field. */
int app_def_parse(yajl_val v, struct app_def *ret, struct berr **err);
void app_def_done(struct app_def *d);
/* The definition's fields into an open map; without_instances leaves "instances" out (what
 * makes a version: every other field). */
void app_def_gen_fields(yajl_gen g, const struct app_def *d, bool without_instances);
char *app_def_encode(const struct app_def *d, bool without_instances);
bool app_id_valid(const char *s);

/* Seconds an instance's replacement waits after n ends in a row (n >= 1). */
double app_backoff_delay(const struct app_def *d, unsigned n);

/* One instance as the planner sees it. */
struct plan_inst {
    bool current;   /* of the version being kept (the serving one) */
    bool running;   /* RUNNING */
    bool healthy;   /* counts as healthy (RUNNING, and the check passes or there is none) */
    bool killing;   /* asked to end: still occupies until it ends */
    double started; /* when launched (newest: largest) */
};
struct plan {
    unsigned launch; /* instances of the current version to launch now */
    size_t n_kill;   /* indexes into the instances, in kill order */
    size_t *kill;    /* malloc'd (n entries at most) */
    bool done;       /* n current, all healthy, no other left */
};
/* The next step toward target instances of the current version under the upgrade strategy:
 * at least ceil(mhc × target) healthy, at most floor((1 + moc) × target) occupying (killing
 * ones included; when both bounds are tight one more may run, or nothing could move). hold:
 * only replace (launch up to target live ones), never kill. Free p->kill. */
void app_plan(const struct plan_inst *in, size_t n, unsigned target, double mhc, double moc,
              bool hold, struct plan *p);
unsigned app_plan_max_running(unsigned target, double moc, double mhc);
unsigned app_plan_min_healthy(unsigned target, double mhc);

/* Pick n distinct ports from port ranges "[A-B,...]" not in used[0..n_used); 0 or -ENOSPC. */
int app_ports_pick(const char *ranges, const uint16_t *used, size_t n_used, size_t n,
                   uint16_t *out);

/* RFC 3339 UTC with milliseconds. */
void app_time_format(double t, char *buf, size_t len);
