/* agentd/agent.h - private header of berth-agent: the daemon's one context (struct agent),
 * the container record (struct container) and the functions the agentd files share.
 * main.c builds the context and runs the loop; api*.c serve HTTP; container.c owns the
 * table and the state machine; launch.c spawns executors; store.c persists records;
 * logs.c serves output; resources.c does the node's arithmetic; recover.c and orphans.c
 * rebuild the table and clean up at start; gc.c removes old sandboxes. */
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

/* Node resources (resources.c): cpus in millicores, mem and disk in bytes, ports a count. */
enum res_kind {
    RES_CPUS,
    RES_MEM,
    RES_DISK,
    RES_PORTS,
    _RES_MAX,
};
struct res_amounts {
    uint64_t v[_RES_MAX];
};

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
    /* the executor's start time (clock ticks since boot, /proc/PID/stat field 22), stored
     * with the record so a restarted agent can tell its executor from a reused pid; 0 when
     * unknown (a record of an older agent) */
    uint64_t pid_start;
    uint64_t launched_at_ns; /* monotonic, for berth_launch_duration_seconds */
    /* the last two usage samples (sampler.c); has_usage once one was taken */
    struct iso_stats usage, usage_prev;
    uint64_t usage_at_ns, usage_prev_at_ns;
    bool has_usage;
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
    struct evhttp *http;     /* the unix socket */
    struct evhttp *http_tcp; /* listen = ...,tcp:HOST:PORT, or NULL */
    char *token;             /* from token_file, or NULL */
    struct evconnlistener *listener;
    struct event *ev_sigterm, *ev_sigint, *ev_sigchld;
    struct sqlite3 *db;
    struct iso_host *host;
    unsigned iso_flags;
    char *executor_path;
    char **masks; /* hidden from tasks (agent_masks_init), ancestors first, NULL-terminated */
    char *socket_path;
    char *sandboxes_dir; /* work_dir/sandboxes */
    char *runtime_root;  /* work_dir/containers */
    char node_id[33];
    char hostname[256];
    /* node resources (resources.c) */
    struct res_amounts total, reserved, allocatable;
    /* usage sampling (sampler.c) */
    struct event *ev_sample;
    int proc_stat_fd, meminfo_fd;
    uint64_t node_cpu_ns, node_mem_used, sample_at_ns;
    double node_cpu_cores; /* busy cores over the last interval */
    uint64_t sample_passes, sample_pass_ns_total;
    /* launch durations (POST received -> RUNNING), a Prometheus histogram */
    uint64_t launch_buckets[12], launch_count;
    double launch_sum;
    struct container *containers;
    /* logs -f followers */
    int inotify_fd;
    struct event *ev_inotify;
    struct follower *followers;
    struct exec_run *execs;
    uint64_t launches_total;
    /* recovery (recover.c), sandbox GC (gc.c), fault injection for the tests (fault.c) */
    char boot_id[40];     /* /proc/sys/kernel/random/boot_id: pids mean nothing across boots */
    struct event *ev_gc;  /* the next GC pass */
    bool gc_full_warned;  /* "disk above the watermark and nothing left to remove", once */
    char *fault_point;    /* BERTH_FAULT=POINT[:N], or NULL */
    unsigned fault_count; /* passes of fault_point left before the agent dies */
    struct link *link;    /* the master link (link.c), NULL when standalone */
};

/* resources.c */
const char *res_name(enum res_kind k);
void res_format(enum res_kind k, uint64_t v, char *buf, size_t len);
/* Fill total/reserved/allocatable; err names the config line of a reservation that does not
 * fit. Needs a->host (own cgroup limits). */
int resources_measure(struct agent *a, struct berr **err);
void resources_allocated(struct agent *a, struct res_amounts *ret);
/* 0 when c fits what is free for its role; else INSUFFICIENT_RESOURCES naming the resource. */
int resources_admit(struct agent *a, const struct container *c, struct berr **err);

/* sampler.c */
int sampler_start(struct agent *a, struct berr **err);
void sampler_stop(struct agent *a);
/* Sample one container now (its cgroups), keeping the previous sample for rates. */
void sampler_sample(struct agent *a, struct container *c);
extern const double launch_bucket_bounds[11];
void sampler_note_launch(struct agent *a, double seconds);

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
void agent_containers_free(struct agent *a);
struct container *ctr_free(struct container *c);

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

/* store.c: work_dir/state.db, one row per container (its JSON, the executor's start time
 * and the boot it ran in). store_open opens an existing file only (-ENOENT when there is
 * none) unless create; a file SQLite cannot read or that fails its quick_check is -EBADMSG
 * with err saying why. store_save is durable (synchronous=FULL) for STARTING and terminal
 * records, the states the API has announced; 0 or -EIO (logged). */
int store_open(struct agent *a, bool create, struct berr **err);
void store_close(struct agent *a);
int store_save(struct agent *a, struct container *c);
int store_delete(struct agent *a, const char *id);
/* Calls fn for every row, oldest first; stops at and returns the first negative result
 * (err set by fn), else the number of rows. boot_id and pid_start are NULL/0 when absent. */
int store_load(struct agent *a,
               int (*fn)(struct agent *a, const char *id, const char *json, uint64_t pid_start,
                         const char *boot_id, struct berr **err),
               struct berr **err);
/* Delete every record (--recover=cleanup); returns how many, or -EIO (logged). */
int store_clear(struct agent *a);
/* One transaction around many saves (recovery): BEGIN / COMMIT; 0 or -EIO (logged). */
int store_begin(struct agent *a);
int store_commit(struct agent *a);

/* recover.c: build the table from state.db at start ([agent] recover = reconnect: re-adopt
 * live executors, finish or lose the others, remove orphans; cleanup: kill everything the
 * agent owns and start empty). Fails, leaving every task alone, when state.db is corrupt, or
 * missing while containers are still around; err says what to do. */
int agent_recover(struct agent *a, struct berr **err);

/* orphans.c: remove what no record owns - executors of containers that are not live
 * (SIGKILL), container cgroups under the parent that no live container holds (kill, rmdir),
 * mounts below the sandbox and runtime dirs (detach), and those dirs without a record.
 * dry_run only counts. */
struct orphan_counts {
    unsigned executors, cgroups, mounts, dirs;
    unsigned busy_cgroups; /* of cgroups: those holding a process (or that could not be read) */
};
void orphans_sweep(struct agent *a, bool dry_run, struct orphan_counts *ret);
/* orphans.c, how a process is recognised across a restart. Start time (ticks since boot)
 * of a live, non-zombie process, or 0 when it is gone. */
uint64_t agent_proc_start(pid_t pid);
/* 1 when c->pid (opened as pidfd) is the berth-executor of container c: started at
 * c->pid_start (or, for older records, naming c's runtime dir on its command line) and
 * living in c's cgroups; 0 when it is not (or is gone); -errno when /proc could not be read
 * (EMFILE...), and nobody may conclude that the task is gone. */
int agent_is_executor(struct agent *a, const struct container *c, int pidfd);
/* Realtime seconds at which a process with this start time (ticks since boot) started. */
double agent_ticks_to_realtime(uint64_t ticks);

/* gc.c: terminal containers are removed (sandbox, runtime dir, record) gc_delay after they
 * ended, and sooner, oldest first, while the work_dir file system is above
 * gc_disk_watermark. Never a live container. */
void gc_start(struct agent *a);
void gc_stop(struct agent *a);
void gc_container_ended(struct agent *a); /* schedule a pass now */

/* fault.c: test hook. BERTH_FAULT=POINT[:N] makes the agent SIGKILL itself the Nth time
 * (default: the first) it reaches agent_fault(a, "POINT"); docs/design/recovery.md lists
 * the points. */
void agent_fault_init(struct agent *a);
void agent_fault(struct agent *a, const char *point);

/* link.c: the master link ([agent] master; docs/protocol.md). link_start (after the
 * recovery and api_start: it needs state.db and the token) loads the unacknowledged updates
 * and subscribes; nothing when standalone. link_note_transition is called by store_save
 * after every saved record: it queues (in state.db) the status updates the master has not
 * had for a container launched by the master. */
struct link;
int link_start(struct agent *a, struct berr **err);
void link_stop(struct agent *a);
void link_note_transition(struct agent *a, struct container *c);

/* api.c, api-error.c */
int api_start(struct agent *a, struct berr **err);
void api_stop(struct agent *a);
void api_reply_error(struct evhttp_request *req, struct berr *err);
void api_reply_json(struct evhttp_request *req, int status, yajl_gen g);
int api_status_for_code(const char *code);

/* main.c: canonical paths tasks must not see - work_dir, the socket's dir, token_file -
 * sorted so an ancestor comes before what it contains (the executor then skips the inner
 * one, already hidden). */
int agent_masks_init(struct agent *a, struct berr **err);

/* metrics.c, exec.c */
void metrics_serve(struct agent *a, struct evhttp_request *req);
void exec_serve(struct agent *a, struct container *c, struct evhttp_request *req);
void exec_free_all(struct agent *a);
int request_parse_launch(struct agent *a, yajl_val req, struct container *c, struct berr **err);
/* lifecycle.c: take over a live container at start (recover.c); -errno with err when the
 * host could not be asked (its task is then left alone and the start fails). */
int agent_adopt(struct agent *a, struct container *c, struct berr **err);

/* logs.c */
void logs_serve(struct agent *a, struct container *c, struct evhttp_request *req);
void logs_container_ended(struct agent *a, const char *id);
int logs_init(struct agent *a, struct berr **err);
void logs_free(struct agent *a);

/* json helpers (json.c) */
void json_str(yajl_gen g, const char *s);
void json_kv_str(yajl_gen g, const char *k, const char *v);
void json_u64(yajl_gen g, uint64_t v);
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
