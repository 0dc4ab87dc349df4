/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/agent.h - private header of berth-agent: the daemon's one context (struct agent),
 * the container record (struct container) and the functions the agentd files share.
 * File map: main.c builds the context and runs the loop; api.c, api-node.c, api-error.c,
 * api-launch.c (one launch a loop turn) and path.c serve HTTP (api.h; exec.c, logs.c,
 * metrics.c their endpoints); container.c owns the table; record.c is the container's JSON
 * (API view and state.db record); lifecycle.c is the state machine and its one transition
 * point, ctr_set_state, kill.c its kill and removal; sandbox.c prepares a launch (dirs,
 * spec.json, cgroups, limits) and launch.c spawns executors, by a thread (spawn.h); release.c
 * ends a container's cgroups and trash.c its dirs, off the loop; waiters.c answers waits;
 * decide.c holds the pure decisions (how a task ended, which updates the master lacks);
 * store.c persists rows; policy.c and resources.c judge a launch; sampler.c measures;
 * recover.c, orphans.c and proc.c rebuild the table and clean up at start; gc.c removes old
 * sandboxes; ports.c assigns ports, net.c connects tasks to the network (net-files.c: their
 * /etc files), ports-watch.c enforces ports; link.c (protocol), link-updates.c (tasks and their
 * updates), link-auth.c (keys), link-db.c (tables) and link-http.c (curl) are the master link;
 * fault.c is a test hook; health.c runs health checks. Calls go one way: api/link/gc -> lifecycle
 * -> sandbox/release/store/record; lifecycle tells the link and the GC of transitions through
 * watchers they register. */
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
#include "masterlink/masterlink.h"

struct sqlite3;

struct agent;
struct waiter;      /* a pending GET .../wait (waiters.c) */
struct trash_job;   /* a directory being removed (trash.c) */
struct release_job; /* an ended container's cgroups being removed (release.c) */
struct store_batch; /* the changes of records queued for the next commit (store.c) */

/* Node resources (resources.c): cpus in millicores, mem and disk in bytes, ports, pids counts */
enum res_kind {
    RES_CPUS,
    RES_MEM,
    RES_DISK,
    RES_PORTS,
    RES_PIDS,
    _RES_MAX,
};
struct res_amounts {
    uint64_t v[_RES_MAX];
};

struct container {
    char id[17];
    /* the master's task it runs, "" for a local launch: kept in the record so the master
     * link binds its updates by it (link.c) */
    char task_id[65];
    /* what was asked (masterlink/spec.c), the agent's defaults filled in: name, user, role
     * and pids always set, cpus_limit SET or NONE (ctr_cpu_limit) */
    struct ml_task_spec spec;
    /* spec.user on the host's passwd, resolved at admission (policy.c) for the spec the
     * executor reads (it does no NSS lookups, #18). Not recorded: a launch's alone. */
    struct iso_user user;
    char *user_home;
    /* > 0: its user namespace maps uids 0..65535 to this host uid and up (docs/security.md) */
    uint64_t userns_base;
    /* what happened */
    enum ml_state state;
    enum ml_reason reason;
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
    uint64_t sample_gen; /* the sampler's last pass that took it */
    bool kill_requested;
    bool pid1_executor; /* launched here in a pid namespace of its own, its executor pid 1 */
    /* its end awaits its commit and sync (ended_committed); removed meanwhile: in a->limbo */
    bool end_unannounced;
    /* ended before its executor was reaped (STARTING could not be stored, or its network
     * could not be made): FAILED at once, the pidfd kept to reap it */
    bool unrecorded;
    /* why the agent killed it, when a limit did (PORTS_LIMITATION), kept in the record so the
     * ending is KILLED with this reason even across a restart; ML_REASON_NONE otherwise */
    enum ml_reason limitation;
    /* bridge mode (net.c): its address, prefix length and gateway (host order), 0 when it
     * has none; kept in the record, which is the address's allocation (IPAM) */
    uint32_t net_addr, net_gateway;
    unsigned net_prefix;
    /* launch only: the pipe the executor waits on before its task (its fd 0) for the agent's
     * go, once the cgroups are made (and in bridge mode the network): its ends, or -1 */
    int go_rd, go_wr;
    char *launch_error; /* launch only: what failed after the executor was given the launch */
    /* launch only: while its executor is spawned (spawn.h), who is told it is STARTING (or
     * FAILED) then: ctr_launch's launched */
    void (*launched)(struct agent *a, const char *id, void *arg);
    void *launched_arg;
    /* health checks (health.c), live only: after a restart they start again, unknown */
    struct health *health; /* while checks run (RUNNING, no kill under way) */
    enum ml_health healthy;
    uint64_t health_checks, health_failures; /* checks done; counted failures in a row */
    double health_checked_at;
    char *health_message; /* the last check's result */
    /* live resources (not persisted) */
    struct iso_cgroup *cg;
    int pidfd;
    int status_fd;
    struct event *ev_exit, *ev_status, *ev_oom, *ev_backstop, *ev_grace;
    char status_buf[512];
    size_t status_len;
    struct waiter *waiters;
    struct container *next, **pprev; /* table order: newest first; pprev: O(1) unlink */
};

/* Its network mode (spec.network, the agent's default filled in at admission). */
static inline enum iso_net_mode ctr_net_mode(const struct container *c)
{
    enum iso_net_mode m = iso_net_mode_from_name(c->spec.network ? c->spec.network : "host");
    return (int) m < 0 ? ISO_NET_HOST : m;
}

/* The CPU limit written to the cgroup: 0 = none (may burst). */
static inline uint64_t ctr_cpu_limit(const struct container *c)
{
    return c->spec.cpus_limit == ML_CPUS_LIMIT_SET ? c->spec.cpus_limit_millis : 0;
}

struct agent {
    struct cfg_agent cfg;
    struct event_base *base;
    struct evhttp *http;     /* the unix socket */
    struct evhttp *http_tcp; /* listen = ...,tcp:HOST:PORT, or NULL */
    char *token;             /* from token_file, or NULL */
    struct evconnlistener *listener;
    struct event *ev_sigterm, *ev_sigint, *ev_sigchld;
    struct sqlite3 *db;
    struct store_batch *batch; /* store.c's group commit */
    struct iso_host *host;
    /* PARENT/supervisor: where executors live, so that their set-up, supervision and end are
     * not charged to their tasks (conmon's choice; issue #18). Tasks join their own cgroups
     * just before their execve (iso_host_join_files). */
    struct iso_cgroup *supervisor;
    unsigned iso_flags;
    char *executor_path;
    char **masks; /* hidden from tasks (agent_masks_init), ancestors first, NULL-terminated */
    char *socket_path;
    ino_t socket_ino; /* the socket we bound, so we never unlink another's */
    dev_t socket_dev;
    int lock_fd;         /* work_dir/agent.lock, flock'ed while we run (main.c) */
    char *sandboxes_dir; /* work_dir/sandboxes */
    char *runtime_root;  /* work_dir/containers */
    /* template.c: the sandbox template's mount namespace, and the host's mountinfo whose
     * POLLPRI says the host's mounts changed since it was built (looked at by ev_mounts) */
    int template_fd, mounts_fd;
    struct event *ev_mounts;
    struct tpl_build *tpl_builds, *tpl_pending; /* builders not reaped; the one answering */
    bool template_again, template_failed;       /* one more build after it; the last one failed */
    uint64_t template_builds; /* builds that succeeded, the first included (GET /metrics) */
    char node_id[33];
    char hostname[256];
    /* node resources (resources.c); role_use: what live containers hold, by role (res_hold) */
    struct res_amounts total, reserved, allocatable;
    uint64_t *role_use;
    /* POST /v1/containers beyond the launch a turn takes (api-launch.c) */
    struct queued_launch *launch_q, **launch_q_tail;
    unsigned launches_this_turn;
    uint64_t launches_deferred_total; /* berth_api_launches_deferred_total */
    struct event *ev_launch_turn;
    /* usage sampling (sampler.c) */
    struct event *ev_sample, *ev_sample_more; /* the interval; the pass's next slice */
    uint64_t sample_gen;                      /* the pass under way (container.sample_gen) */
    int proc_stat_fd, meminfo_fd;
    uint64_t node_cpu_ns, node_mem_used, sample_at_ns;
    double node_cpu_cores; /* busy cores over the last interval */
    uint64_t sample_passes, sample_slices, sample_pass_ns_total;
    /* launch durations (POST received -> RUNNING), a Prometheus histogram */
    uint64_t launch_buckets[12], launch_count;
    double launch_sum;
    struct container *containers;
    struct ml_table ctr_by_id, ctr_by_name; /* the list's indexes (container.c) */
    bool ctr_names_shared;   /* records of older agents that share a name were loaded */
    struct container *limbo; /* removed before their end was announced (lifecycle.c) */
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
    /* told of every stored transition (ctr_watch_add) */
    void (*watchers[4])(struct agent *a, struct container *c);
    unsigned n_watchers;
    /* release.c: ended containers' cgroups being removed; inotify on cgroup.events (v2) */
    struct release_job *releases;
    int cg_inotify_fd;
    struct event *ev_cg_inotify;
    /* trash.c: directories being removed (by its thread, or an rm), and the batch the next
     * turn hands over (also on the list) */
    char *trash_dir;
    struct trash_job *trash, *trash_batch;
    struct event *ev_trash;
    uint64_t trash_rm_total; /* rm processes started (berth_agent_trash_rm_total) */
    uint64_t userns_next;    /* the user namespace slice to try first (lifecycle.c) */
    /* ports.c: the [resources] ports ranges, and where the next assignment starts */
    struct port_range *port_ranges;
    size_t n_port_ranges;
    uint16_t port_cursor;
    /* net.c: rtnetlink and nftables, opened when first needed; the bridge and the table are
     * ready once this run made them; the next address to try */
    struct iso_net *net;
    struct iso_nat *nat;
    bool net_ready;
    uint32_t ipam_cursor;
    /* ports-watch.c: the enforce_ports timer */
    struct event *ev_ports_watch;
    uint64_t ports_watch_passes, ports_watch_kills;
    int netns_fd; /* the agent's own network namespace (health.c returns to it) */
    uint64_t health_checks_total;
};

#define AGENT_SUPERVISOR_CGROUP "supervisor"

/* policy.c: 0 when the parsed launch c is within the agent's policy for its origin (and its
 * volumes' host paths made canonical); -EPERM with err (code FORBIDDEN) naming the rule, or
 * -errno (INVALID_ARGUMENT) for a volume whose host path does not resolve. */
int policy_check(struct agent *a, struct container *c, bool from_master, struct berr **err);
int policy_userns_pick(struct agent *a, struct container *c, struct berr **err);

/* resources.c */
const char *res_name(enum res_kind k);
void res_format(enum res_kind k, uint64_t v, char *buf, size_t len);
/* Every kind of r under key k (/v1/node, SUBSCRIBE): cpus as a decimal, the rest as counts. */
void res_amounts_gen(yajl_gen g, const char *k, const struct res_amounts *r);
/* "roles": each [role.NAME] reservation's cpus and mem (/v1/node, SUBSCRIBE). */
void res_roles_gen(yajl_gen g, const struct agent *a);
/* Fill total/reserved/allocatable; err names the config line of a reservation that does not
 * fit. Needs a->host (own cgroup limits). */
int resources_measure(struct agent *a, struct berr **err);
void resources_allocated(struct agent *a, struct res_amounts *ret);
/* What the live tasks use now, from their latest samples: busy cores and memory charged
 * (/v1/node's "used" and the heartbeat's are this one sum). */
void resources_used(struct agent *a, double *ret_cores, uint64_t *ret_mem);
/* Busy cores between c's last two samples (0 until there are two): the one computation the
 * API, the metrics, /v1/node and the heartbeat share. */
double ctr_cpu_cores(const struct container *c);
/* 0 when c fits what is free for its role; else INSUFFICIENT_RESOURCES naming the resource.
 * res_hold counts (sign 1) or uncounts (-1) what c holds: a container of the table while not
 * terminal (container.c, lifecycle.c), so that admission walks no list. */
int resources_admit(struct agent *a, const struct container *c, struct berr **err);
void res_hold(struct agent *a, const struct container *c, int sign);

/* ports.c: ports as a resource. Pure (unit-tested): ports_ranges_parse reads "[A-B,C]"
 * (0, or -EINVAL); ports_pick gives every entry of ports without a host port a free one of
 * the ranges, round robin from *cursor, after checking the named ones are in the ranges and
 * free, marking them all in used (a 65536-bit map); -errno with err (INSUFFICIENT_RESOURCES
 * naming ports) when they do not fit, used then half-marked. */
struct port_range {
    uint16_t lo, hi;
};
int ports_ranges_parse(const char *s, struct port_range **ret, size_t *ret_n);
bool ports_in_ranges(const struct port_range *r, size_t nr, unsigned port);
uint64_t ports_count_free(const struct port_range *r, size_t nr, const uint64_t *used);
int ports_pick(const struct port_range *r, size_t nr, uint64_t *used, uint16_t *cursor,
               struct ml_port *ports, size_t n, struct berr **err);
/* "[31000-31001,31005-31005]" of the ports marked in used (malloc'd). */
char *ports_ranges_text(const uint64_t *used);
/* The host ports the live containers hold. */
void ports_used(struct agent *a, uint64_t used[1024]);
/* Give c's spec its host ports (and container ports, the same unless named); 0 or -errno
 * with err (nothing of c's is kept by the agent, so a refusal frees nothing). */
int ports_assign(struct agent *a, struct container *c, struct berr **err);
/* The task's environment: its own plus PORT0.., HOST_PORT0.., PORT_<NAME>, PORTS (ours win) */
char **ports_env(const struct ml_task_spec *s);

/* net.c: network modes (docs/design/network.md). net_init (at start: the ranges, the
 * defaults) fails with err on a configuration that cannot work. net_admit fills c's mode,
 * checks it is allowed and its ports fit it, assigns ports and, for bridge, an address.
 * net_etc_files writes c's hosts/resolv.conf/hostname into its runtime dir rdir (open as
 * dfd; in the dir itself, not one of their own: an inode less per launch, issue #18).
 * net_connect (bridge, after the executor is cloned) makes the bridge and the
 * table if this run has not, the veth, the address, the route and the NAT mappings (the
 * caller then says go to the executor); -errno with err (the caller kills the executor).
 * net_release (a terminal container) removes its mappings and veth. net_sweep (recovery)
 * removes veths and mappings no live container owns, rebuilds the table from the records,
 * and with no bridge task left removes the table and the bridge; counts them. */
int net_init(struct agent *a, struct berr **err);
void net_free(struct agent *a);
int net_admit(struct agent *a, struct container *c, struct berr **err);
int net_etc_files(struct agent *a, struct container *c, int dfd, const char *rdir,
                  struct berr **err);
int net_connect(struct agent *a, struct container *c, struct berr **err);
void net_release(struct agent *a, struct container *c);
void net_sweep(struct agent *a, bool dry_run, unsigned *ret_links, unsigned *ret_rules);
/* "bth" + the first 12 hex digits of the id: the host end of c's veth (IFNAMSIZ - 1). */
void net_ifname(const char *id, char buf[16]);

/* ipam.c (pure, unit-tested): offsets into the subnet; ipam_reserve marks the network, the
 * gateway (offset 1) and the broadcast; ipam_pick gives the first free offset at or after
 * *cursor (wrapping; moves it past), 0 when none is free. */
uint32_t ipam_size(unsigned prefix);
bool ipam_in_subnet(uint32_t subnet, unsigned prefix, uint32_t addr);
void ipam_mark(uint64_t *used, uint32_t offset);
void ipam_reserve(uint64_t *used, uint32_t size);
uint32_t ipam_pick(const uint64_t *used, uint32_t size, uint32_t *cursor);

/* net-files.c (pure, unit-tested): a sandbox's /etc/hosts, from the host's (host mode, NULL
 * otherwise), with its hostname on its address (0: 127.0.1.1); its /etc/resolv.conf from the
 * host's without loopback nameservers (none mode: none at all), falling back to upstream's
 * (systemd-resolved's own list) when none is left. malloc'd. */
char *netfiles_hosts(const char *host_hosts, const char *hostname, uint32_t addr);
char *netfiles_resolv(enum iso_net_mode mode, const char *host_resolv, const char *upstream);

/* ports-watch.c: with [agent] enforce_ports, every enforce_ports_interval the TCP sockets
 * listening in the agent's namespace (sock_diag) are matched to the host-network tasks that
 * hold them; a task listening on a port it was not given is killed (ctr_limit). */
void ports_watch_start(struct agent *a);
void ports_watch_stop(struct agent *a);

/* sampler.c */
int sampler_start(struct agent *a, struct berr **err);
void sampler_stop(struct agent *a);
/* Sample one container now (its cgroups), keeping the previous sample for rates. */
void sampler_sample(struct agent *a, struct container *c);
extern const double launch_bucket_bounds[11];
void sampler_note_launch(struct agent *a, double seconds);

/* container.c: the table. ctr_find: an exact id, an exact name, else a unique id prefix;
 * NULL with err (NOT_FOUND, or CONFLICT for an ambiguous prefix). */
struct container *ctr_find(struct agent *a, const char *ref, struct berr **err);
struct container *ctr_find_id(struct agent *a, const char *id);
struct container *ctr_find_name(struct agent *a, const char *name); /* NULL name: none */
struct container *ctr_new(void);
/* An async callback's argument: the agent and a container's id, never a pointer (STYLE.md);
 * ctr_event_new makes an event (added when fd >= 0) that owns one, ctr_event_free both. */
struct ctr_ref {
    struct agent *a;
    char id[17];
};
struct ctr_ref *ctr_ref_new(struct agent *a, const char *id);
struct event *ctr_event_new(struct agent *a, struct container *c, int fd, short what,
                            event_callback_fn cb);
void ctr_event_free(struct event **ev);
/* onto the list and into its indexes, and out of them */
void ctr_link(struct agent *a, struct container *c);
void ctr_unlink(struct agent *a, struct container *c);
/* a->limbo: removed (unlinked) containers whose end awaits its sync; take unlinks one */
void ctr_limbo_add(struct agent *a, struct container *c);
struct container *ctr_limbo_take(struct agent *a, const char *id);
struct container *ctr_free(struct container *c);
void ctr_free_all(struct agent *a);

/* record.c: a container as JSON. CTR_GEN_USAGE adds the last sample (the API's views);
 * CTR_GEN_RECORD adds what the state.db record keeps besides (task id, version). */
#define CTR_GEN_USAGE 1u
#define CTR_GEN_RECORD 2u
void ctr_gen(struct agent *a, const struct container *c, yajl_gen g, unsigned what);
void ctr_usage_gen(const struct container *c, yajl_gen g);
char *ctr_record_encode(struct agent *a, const struct container *c);
/* Fill c (from ctr_new) from a record; -errno with err when it is not one. */
int ctr_record_decode(const char *id, const char *json, struct container *c, struct berr **err);

/* lifecycle.c: the state machine. Where a launch comes from: the agent's policy ([agent]
 * volume_paths, allow_root...) may allow more to the local API than to the master. */
enum ctr_origin {
    CTR_ORIGIN_LOCAL,
    CTR_ORIGIN_MASTER,
};
/* Admit and launch the parsed spec (taken: *spec is emptied either way). task_id names the
 * master's task ("" for a local launch; it also names the container when the spec has no
 * name). 0 with *ret (STAGING while its executor is spawned off the loop, or FAILED/
 * LAUNCH_FAILED when the sandbox could not be made); launched (may be NULL) is called with
 * arg once it is STARTING or FAILED, maybe before ctr_launch returns. -errno with err when
 * it was refused (nothing kept, launched not called). */
int ctr_launch(struct agent *a, enum ctr_origin origin, struct ml_task_spec *spec,
               const char *task_id, void (*launched)(struct agent *a, const char *id, void *arg),
               void *arg, struct container **ret, struct berr **err);
/* The kill is recorded (kill_requested) and delivered once that is committed. */
int ctr_kill(struct agent *a, struct container *c, int sig, uint64_t grace_ms, struct berr **err);
/* End c because it broke a limit: recorded first (reason, message), its cgroup SIGKILLed once
 * that is committed; the end comes through its pidfd as KILLED with that reason. 0. */
int ctr_limit(struct agent *a, struct container *c, enum ml_reason reason, const char *message);
/* c is gone from the table at once (freed); its record's deletion committed, its dirs go. */
int ctr_remove(struct agent *a, struct container *c, struct berr **err);
/* Take over a container that was live when the agent last stopped (recover.c); -errno with
 * err when the host could not be asked (its task is then left alone and the start fails). */
int ctr_adopt(struct agent *a, struct container *c, struct berr **err);
/* The one transition point: set the state (and the times it implies), queue the record for
 * the next commit (durably for STARTING and terminal states; store.c's group commit), tell
 * the watchers (the link, the GC: their writes join that commit, what they send goes after
 * it), and on a terminal state, once committed, release the cgroups and answer the waiters
 * and log followers. Who answers a client about c does so after the commit too
 * (store_after_commit): nothing is announced before it is stored. */
void ctr_set_state(struct agent *a, struct container *c, enum ml_state st, enum ml_reason reason);
/* Queue c's record as it is (a change that is no transition: kill requested). */
void ctr_save(struct agent *a, struct container *c);
void ctr_watch_add(struct agent *a, void (*fn)(struct agent *a, struct container *c));
/* container.c: tell the watchers of a change that is no transition and is not stored (healthy). */
void ctr_notify(struct agent *a, struct container *c);

/* waiters.c: GET .../wait answers when c is terminal (at once if it is). */
void ctr_add_waiter(struct agent *a, struct container *c, struct evhttp_request *req);
void ctr_answer_waiters(struct agent *a, struct container *c);
void ctr_drop_waiters(struct container *c);

/* sandbox.c: the host side of a launch: sandbox_prepare, before the executor is given it,
 * the sandbox and runtime dirs and spec.json (which names the cgroup files the task joins:
 * iso_host_join_files); sandbox_cgroups, while the executor builds the sandbox, the cgroups
 * and their limits. On failure err says why. */
int sandbox_prepare(struct agent *a, struct container *c, struct berr **err);
int sandbox_cgroups(struct agent *a, struct container *c, struct berr **err);
void sandbox_path(struct agent *a, const char *id, char *buf, size_t len);
void runtime_path(struct agent *a, const char *id, char *buf, size_t len);

/* release.c: after a container ended (the next turn), kill what is left in its cgroups and
 * remove them, never blocking the loop: rmdir once cgroup.events says the cgroup is empty
 * (v2) or a short timer finds it so (v1). It takes c->cg (NULL afterwards). release_free
 * drops what is still under way (the next start's orphan sweep removes it). */
int release_init(struct agent *a, struct berr **err);
void release_start(struct agent *a, struct container *c);
void release_free(struct agent *a);

/* template.c: the sandbox template (docs/design/sandbox.md). init builds it (blocking,
 * before the loop) and watches the host's mounts: a change starts a build off the loop,
 * whose result replaces the template when it arrives. template_fd returns the current one
 * (-1 without namespaces/mount), never waiting for a build. template_free before the base. */
int template_init(struct agent *a, struct berr **err);
int template_fd(struct agent *a);
void template_free(struct agent *a);

/* trash.c: remove a directory tree off the loop: renamed into work_dir/trash at once (so
 * the container's paths are free), removed there by a thread (what it leaves, by rm -rf). */
int trash_init(struct agent *a, struct berr **err);
int trash_move(struct agent *a, const char *path);
void trash_free(struct agent *a);

/* decide.c: pure decisions, unit-tested (tests/unit/agentd_test.c). How a task ended, from
 * what is known when its executor is gone. */
struct ctr_end_facts {
    const struct iso_status *status; /* status.json as read, or NULL when absent */
    const char *pipe_error;          /* the status pipe's ERROR message, or NULL */
    int wstatus;                     /* the executor's wait status, -1 when not our child */
    bool kill_requested;
    enum ml_reason limitation; /* the agent killed it for this (PORTS_LIMITATION,
                                * HEALTH_CHECK_FAILED), or NONE */
    uint64_t oom_kills;
};
struct ctr_outcome {
    enum ml_state state;
    enum ml_reason reason;
    int exit_code; /* -1 unless EXITED */
    int signal;    /* 0 unless SIGNALED */
    char message[512];
};
void ctr_decide_end(const struct ctr_end_facts *f, struct ctr_outcome *ret);
/* The updates the master has not had for a task whose last update was last (-1: none) and
 * whose container is in state now, in order (a restart may have skipped some): fills out
 * (at most 3) and returns their number. has_pid / has_started: the container had an
 * executor / reached RUNNING before it ended. */
size_t link_catch_up_states(int last, enum ml_state now, bool has_pid, bool has_started,
                            enum ml_state out[3]);

/* store.c: work_dir/state.db, one row per container: its record (record.c), the
 * executor's start time and the boot it ran in. Rows only: it calls nothing above it.
 * store_open opens an existing file only (-ENOENT when there is none) unless create; a file
 * SQLite cannot read or that fails its quick_check is -EBADMSG with err saying why.
 * Changes are a group commit: store_put and store_drop queue them, and everything queued in
 * one turn of the loop is written by one transaction, fsynced (synchronous=FULL) when any
 * change asked to be durable (deletes always do). store_after_commit runs fn(a, r, arg) once
 * what is queued before it is committed and synced, after what was asked before it (r: 0,
 * or -EIO when the commit failed, logged); store_after_write once it is written, not
 * behind any sync; store_flush commits now (recovery, stop) and returns the same;
 * store_hold(a, true) keeps the loop's commits queued until store_hold(a, false). */
int store_open(struct agent *a, bool create, struct berr **err);
void store_close(struct agent *a);
void store_put(struct agent *a, const char *id, const char *name, double created_at,
               const char *record, uint64_t pid_start, bool durable);
void store_drop(struct agent *a, const char *id);
void store_after_commit(struct agent *a, void (*fn)(struct agent *a, int r, void *arg), void *arg);
void store_after_write(struct agent *a, void (*fn)(struct agent *a, int r, void *arg), void *arg);
/* checkpoint.c: state.db's WAL checkpoints on a thread, from store_open to store_close */
void store_checkpoints_start(struct agent *a);
void store_checkpoints_stop(struct agent *a);
int store_flush(struct agent *a);
void store_hold(struct agent *a, bool hold);
/* Drop what is queued, uncommitted (a start that gives up); the callbacks get -ECANCELED. */
void store_discard(struct agent *a);
/* Calls fn for every row, oldest first; stops at and returns the first negative result
 * (err set by fn), else the number of rows. boot_id and pid_start are NULL/0 when absent. */
int store_load(struct agent *a,
               int (*fn)(struct agent *a, const char *id, const char *json, uint64_t pid_start,
                         const char *boot_id, struct berr **err),
               struct berr **err);
/* Delete every record (--recover=cleanup); returns how many, or -EIO (logged). */
int store_clear(struct agent *a);

/* recover.c: build the table from state.db at start ([agent] recover = reconnect: re-adopt
 * live executors, finish or lose the others, remove orphans; cleanup: kill everything the
 * agent owns and start empty). Fails, leaving every task alone, when state.db is corrupt, or
 * missing while containers are still around; err says what to do. */
int agent_recover(struct agent *a, struct berr **err);

/* orphans.c: remove what no record owns - executors of containers that are not live
 * (SIGKILL), container cgroups under the parent that no live container holds (kill, rmdir),
 * mounts below the sandbox and runtime dirs (detach), and those dirs without a record.
 * dry_run only counts. Runs at start, before the loop: it may wait. */
struct orphan_counts {
    unsigned executors, cgroups, mounts, dirs;
    unsigned links, rules; /* veths and NAT mappings (net.c) */
    unsigned busy_cgroups; /* of cgroups: those holding a process (or that could not be read) */
};
void orphans_sweep(struct agent *a, bool dry_run, struct orphan_counts *ret);

/* proc.c: how a process is recognised across a restart. Start time (ticks since boot) of a
 * live, non-zombie process, or 0 when it is gone. */
uint64_t proc_start_time(pid_t pid);
/* 1 when c->pid (opened as pidfd) is the berth-executor of container c: started at
 * c->pid_start (or, for older records, naming c's runtime dir on its command line) and
 * living in c's cgroups; 0 when it is not (or is gone); -errno when /proc could not be read
 * (EMFILE...), and nobody may conclude that the task is gone. */
int proc_is_executor(struct agent *a, const struct container *c, int pidfd);
/* The container id on an executor's command line (--runtime-dir RUNTIME_ROOT/ID): 1 and id
 * set, 0 when pid is something else or gone, -errno when we cannot tell. */
int proc_executor_id(struct agent *a, pid_t pid, char id[17]);
/* Realtime seconds at which a process with this start time (ticks since boot) started. */
double proc_ticks_to_realtime(uint64_t ticks);
/* Container ids are 16 lowercase hex digits: anything else is not ours to remove. */
bool ctr_id_shaped(const char *s);

/* gc.c: terminal containers are removed (sandbox, runtime dir, record) gc_delay after they
 * ended, and sooner, oldest first, while the work_dir file system is above
 * gc_disk_watermark. Never a live container. It watches transitions (ctr_watch_add). */
void gc_start(struct agent *a);
void gc_stop(struct agent *a);

/* fault.c: test hook. BERTH_FAULT=POINT[:N] makes the agent SIGKILL itself the Nth time
 * (default: the first) it reaches agent_fault(a, "POINT") (docs/design/recovery.md). */
void agent_fault_init(struct agent *a);
void agent_fault(struct agent *a, const char *point);

/* link.c: the master link ([agent] master; docs/protocol.md). link_start (after the
 * recovery and api_start: it needs state.db and the token) loads the unacknowledged updates,
 * watches transitions and subscribes; nothing when standalone. */
struct link;
int link_start(struct agent *a, struct berr **err);
void link_stop(struct agent *a);

#include "agentd/api.h"   /* the local API (api*.c, path.c) */
#include "agentd/spawn.h" /* launch.c: spawns, and the executors' off the loop */

/* main.c: canonical paths tasks must not see - work_dir, the socket's dir, token_file -
 * sorted so an ancestor comes before what it contains (the executor then skips the inner
 * one, already hidden). */
int agent_masks_init(struct agent *a, struct berr **err);

/* health.c: health checks (issue #16) of RUNNING containers whose spec has one. health_start
 * (after the recovery) watches transitions and starts the checks of re-adopted tasks;
 * health_stop ends them all; health_end (ctr_free) ends c's; health_gen adds "healthy" and
 * "health" to a container's API view when it has a check. */
int health_start(struct agent *a, struct berr **err);
void health_stop(struct agent *a);
void health_end(struct container *c);
void health_gen(const struct container *c, yajl_gen g);

/* metrics.c, exec.c */
void metrics_serve(struct agent *a, struct evhttp_request *req);
void exec_serve(struct agent *a, struct container *c, struct evhttp_request *req);
void exec_free_all(struct agent *a);

/* logs.c */
void logs_serve(struct agent *a, struct container *c, struct evhttp_request *req);
void logs_container_ended(struct agent *a, const char *id);
int logs_init(struct agent *a, struct berr **err);
void logs_free(struct agent *a);
