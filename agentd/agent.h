/* agentd/agent.h - private header of berth-agent: the daemon's one context (struct agent),
 * the container record (struct container) and the functions the agentd files share.
 * main.c builds the context and runs the loop; api*.c serve HTTP; container.c owns the
 * table and the state machine; launch.c spawns executors; store.c persists records;
 * logs.c serves output; resources.c does the node's arithmetic. */
#pragma once

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "config/config.h"
#include "isolator/isolator.h"

struct sqlite3;

enum ctr_state {
    CTR_STAGING,
    CTR_STARTING,
    CTR_RUNNING,
    CTR_FINISHED,
    CTR_FAILED,
    CTR_KILLED,
    CTR_LOST,
    _CTR_STATE_MAX,
    _CTR_STATE_INVALID = -EINVAL,
};

enum ctr_reason {
    CTR_REASON_NONE,
    CTR_REASON_EXITED,
    CTR_REASON_SIGNALED,
    CTR_REASON_MEMORY_LIMIT,
    CTR_REASON_LAUNCH_FAILED,
    CTR_REASON_KILLED_BY_REQUEST,
    CTR_REASON_AGENT_RESTARTED_LOST,
    CTR_REASON_INSUFFICIENT_RESOURCES,
    _CTR_REASON_MAX,
    _CTR_REASON_INVALID = -EINVAL,
};

const char *ctr_state_name(enum ctr_state s);
enum ctr_state ctr_state_from_name(const char *s);
const char *ctr_reason_name(enum ctr_reason r);
enum ctr_reason ctr_reason_from_name(const char *s);
static inline bool ctr_state_terminal(enum ctr_state s)
{
    return s >= CTR_FINISHED;
}

struct waiter; /* a pending GET .../wait */

struct container {
    char id[17];
    char *name;
    /* what was asked */
    char *shell; /* command.shell, or NULL */
    char **argv; /* command.argv (or {"/bin/sh","-c",shell}) */
    char **env;  /* "K=V" */
    struct iso_volume *volumes;
    size_t n_volumes;
    char *user;
    char *role;
    uint64_t cpus_millis;
    uint64_t cpu_limit_millis; /* 0 = none */
    uint64_t mem_bytes;
    uint64_t pids_max;
    /* what happened */
    enum ctr_state state;
    enum ctr_reason reason;
    int exit_code; /* -1 unless EXITED */
    int signal;    /* 0 unless SIGNALED */
    char *message;
    double created_at, started_at, finished_at;
    pid_t pid;          /* berth-executor on the host */
    char *limits_json;  /* {"file": "value"...} as read back after writing */
    char *cgroups_json; /* {"ctrl": "path"...} */
    bool kill_requested;
    /* live resources (not persisted) */
    struct iso_cgroup *cg;
    int pidfd;
    int status_fd;
    struct event *ev_exit, *ev_status, *ev_oom, *ev_backstop;
    char status_buf[512];
    size_t status_len;
    struct waiter *waiters;
    struct container *next; /* table order: newest first */
};

struct agent {
    struct cfg_agent cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *ev_sigterm, *ev_sigint, *ev_sigchld;
    struct sqlite3 *db;
    struct iso_host *host;
    unsigned iso_flags;
    char *executor_path;
    char *socket_path;
    char *sandboxes_dir; /* work_dir/sandboxes */
    char *runtime_root;  /* work_dir/containers */
    char node_id[33];
    char hostname[256];
    /* node resources: millicores and bytes */
    uint64_t total_cpus, total_mem, total_disk;
    struct container *containers;
    /* logs -f followers */
    int inotify_fd;
    struct event *ev_inotify;
    struct follower *followers;
    struct exec_run *execs;
    uint64_t launches_total;
};

/* container.c */
struct container *agent_find(struct agent *a, const char *ref, struct berr **err);
struct container *agent_find_id(struct agent *a, const char *id);
int agent_launch(struct agent *a, const char *body, size_t len, struct container **ret,
                 struct berr **err);
int agent_kill(struct agent *a, struct container *c, int sig, uint64_t grace_ms, struct berr **err);
int agent_remove(struct agent *a, struct container *c, struct berr **err);
void agent_container_json(struct agent *a, struct container *c, yajl_gen g, bool with_usage);
void agent_usage_json(struct container *c, yajl_gen g);
void agent_add_waiter(struct agent *a, struct container *c, struct evhttp_request *req);
void agent_recover(struct agent *a);
void agent_containers_free(struct agent *a);
struct container *ctr_free(struct container *c);
void ctr_allocated(struct agent *a, uint64_t *cpus, uint64_t *mem);

/* launch.c */
struct spawn {
    const char *path;
    char **argv;
    uint64_t ns_flags;     /* CLONE_NEW* */
    int fd[4];             /* become 0..3 in the child; fd[3] may be -1 */
    struct iso_cgroup *cg; /* born in (v2) or attached to (v1) these cgroups; may be NULL */
};
/* Clone and exec sp->path; returns once execve succeeded (err names its errno otherwise).
 * The caller owns *ret_pidfd and must reap the child (waitid P_PIDFD). */
int agent_spawn(struct agent *a, const struct spawn *sp, pid_t *ret_pid, int *ret_pidfd,
                struct berr **err);
int agent_dup_high(int fd); /* F_DUPFD_CLOEXEC to >= 4, closes fd */
int agent_spawn_executor(struct agent *a, struct container *c, int *ret_pidfd, int *ret_status_fd,
                         struct berr **err);

/* store.c */
int store_open(struct agent *a, struct berr **err);
void store_close(struct agent *a);
int store_save(struct agent *a, struct container *c);
int store_delete(struct agent *a, const char *id);
int store_load(struct agent *a, int (*fn)(struct agent *a, const char *json, void *arg), void *arg);

/* api.c, api-error.c */
int api_start(struct agent *a, struct berr **err);
void api_stop(struct agent *a);
void api_reply_error(struct evhttp_request *req, struct berr *err);
void api_reply_json(struct evhttp_request *req, int status, yajl_gen g);
int api_status_for_code(const char *code);

/* metrics.c, exec.c */
void metrics_serve(struct agent *a, struct evhttp_request *req);
void exec_serve(struct agent *a, struct container *c, struct evhttp_request *req);
void exec_free_all(struct agent *a);
int request_parse_launch(struct agent *a, yajl_val req, struct container *c, struct berr **err);
void agent_adopt(struct agent *a, struct container *c);

/* logs.c */
void logs_serve(struct agent *a, struct container *c, struct evhttp_request *req);
void logs_container_ended(struct agent *a, const char *id);
int logs_init(struct agent *a, struct berr **err);
void logs_free(struct agent *a);

/* json helpers (json.c) */
void json_str(yajl_gen g, const char *s);
void json_kv_str(yajl_gen g, const char *k, const char *v);
void json_kv_u64(yajl_gen g, const char *k, uint64_t v);
void json_kv_i64(yajl_gen g, const char *k, int64_t v);
void json_kv_double(yajl_gen g, const char *k, double v);
void json_kv_null(yajl_gen g, const char *k);
void json_kv_bool(yajl_gen g, const char *k, bool v);
/* Embed an already-serialised JSON value (object) under key k, or null. */
void json_kv_raw(yajl_gen g, const char *k, const char *json);
void json_cpus(yajl_gen g, uint64_t millis);
/* Parse with a depth limit (32) first, so deeply nested input cannot exhaust the stack. */
yajl_val json_parse(const char *text, size_t len, struct berr **err);
yajl_val json_get(yajl_val obj, const char *key);
