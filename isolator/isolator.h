/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/isolator.h - the one public header of isolator/: what a sandbox is made of.
 *  - host + cgroup: detect the cgroup mode once, create a container's cgroups under the
 *    agent's parent, write limits, attach, read usage, watch OOM, kill, remove
 *    (cgroup-host.c: the host; cgroup.c: containers, dispatching to cgroup-v1.c /
 *    cgroup-v2.c through struct cg_ops; cgroup-util.c: shared helpers);
 *  - spec: the sandbox description the agent writes to the runtime dir and the executor
 *    reads back (spec.c, JSON);
 *  - sandbox: what berth-executor does inside the new namespaces (mount.c: mounts, /dev,
 *    masks, pivot_root; mount-etc.c: its own /etc/hosts, resolv.conf, hostname; task.c:
 *    rlimits, user, caps (caps.c), no_new_privs, seccomp (seccomp.c));
 *  - network (docs/design/network.md): net-lo.c brings lo up (executor), net-link.c the
 *    bridge and veths through libnl-route, net-rules.c renders and net-nat.c applies the
 *    agent's nftables table through libnftables, net-diag.c lists listening sockets through
 *    libnl-idiag (the agent; the executor links none of them).
 * The library logs at debug level only; failures come back as struct berr. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/* ---- isolation switches ([agent] isolation) --------------------------------------------- */

enum iso_flag {
    ISO_CG_CPU = 1u << 0,     /* cgroups/cpu */
    ISO_CG_MEM = 1u << 1,     /* cgroups/mem */
    ISO_CG_PIDS = 1u << 2,    /* cgroups/pids */
    ISO_CG_DEVICES = 1u << 3, /* cgroups/devices (v1 allow-list, v2 BPF program) */
    ISO_NS_PID = 1u << 4,     /* namespaces/pid */
    ISO_NS_MOUNT = 1u << 5,   /* namespaces/mount (needed by filesystem/readonly-host) */
    ISO_NS_IPC = 1u << 6,     /* namespaces/ipc */
    ISO_NS_UTS = 1u << 7,     /* namespaces/uts */
    ISO_NS_NET = 1u << 8,     /* namespaces/net: loopback only */
    ISO_FS_RO_HOST = 1u << 9, /* filesystem/readonly-host */
    ISO_CAPS = 1u << 10,      /* linux/capabilities */
    ISO_SECCOMP = 1u << 11,   /* linux/seccomp */
};

#define ISO_DEFAULT_ISOLATION                                                                      \
    "cgroups/cpu,cgroups/mem,cgroups/pids,cgroups/devices,namespaces/pid,namespaces/mount,"        \
    "namespaces/ipc,namespaces/uts,filesystem/readonly-host,linux/capabilities,linux/seccomp"

/* Parse a comma-separated isolation list into ISO_* bits. Unknown names fail with err set
 * (code INVALID_ARGUMENT) naming the bad entry. "" means no isolation at all. */
int iso_parse_isolation(const char *s, unsigned *ret_flags, struct berr **err);
/* Write the canonical comma-separated names of flags into buf. */
void iso_format_isolation(unsigned flags, char *buf, size_t len);
/* A field of a mountinfo file, in place: the octal escapes ("\040" = space) undone. */
void iso_mountinfo_unescape(char *s);

/* ---- cgroups ---------------------------------------------------------------------------- */

enum iso_cg_version {
    ISO_CG_V1 = 1,
    ISO_CG_V2 = 2,
};

/* Limits for one container. */
struct iso_limits {
    uint64_t cpus_millis;      /* guaranteed share: weight/shares follow it; 0 = leave default */
    uint64_t cpu_limit_millis; /* quota; 0 = no quota (weight only) */
    uint64_t mem_bytes;        /* hard limit, swap forbidden; 0 = no limit */
    uint64_t pids_max;         /* 0 = no limit */
};

/* Usage of one container, read from the kernel's files. Fields the host cannot give stay 0. */
struct iso_stats {
    uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
    uint64_t nr_periods, nr_throttled, throttled_ns;
    uint64_t mem_usage, mem_working_set, mem_rss, mem_cache, mem_peak, mem_limit;
    uint64_t oom_kills;
    uint64_t pids;
    /* v2 pressure stall information (cpu/memory/io.pressure): the "some" line's avg10
     * (percent of the last 10 s some task stalled) and total (µs); "full" totals for memory
     * and io. has_pressure is false on v1 or without PSI (all stay 0). */
    bool has_pressure;
    double cpu_some_avg10, mem_some_avg10, io_some_avg10;
    uint64_t cpu_some_us, mem_some_us, mem_full_us, io_some_us, io_full_us;
};

/* One value as written to and read back from a cgroup control file, for inspect. */
struct iso_cg_value {
    char file[48];  /* "memory.limit_in_bytes" */
    char value[48]; /* as read back after writing: "1073741824" */
};
#define ISO_CG_MAX_VALUES 16

struct iso_host;   /* the detected hierarchies and the parent cgroup of all tasks */
struct iso_cgroup; /* one container's cgroups, an open dir fd per hierarchy */

/* Detect the cgroup mode under root (normally "/sys/fs/cgroup"; unit tests pass a fake tree,
 * whose mode is given by the presence of cgroup.controllers at root for v2) and create the
 * parent cgroup of all tasks. parent is "auto" (<agent's own cgroup>/berth in each
 * hierarchy, found with libcgroup / /proc/self/cgroup) or a path relative to each hierarchy
 * root ("berth-test-123"; a leading '/' is ignored). flags selects controllers (ISO_CG_*).
 * self_cgroup, when not NULL, overrides /proc/self/cgroup (tests). On success *ret owns
 * the parent's fds. On failure err says which hierarchy and why. */
int iso_host_open(const char *root, const char *parent, unsigned flags, const char *self_cgroup,
                  struct iso_host **ret, struct berr **err);
/* Write aggregate limits on the parent (allocatable); 0 fields mean no limit. */
int iso_host_set_limits(struct iso_host *h, const struct iso_limits *l, struct berr **err);
/* The tightest CPU quota (millicores) and memory limit (bytes) on the agent's own cgroup
 * and its ancestors, as read from the kernel: 0 means none. Used to narrow what the node
 * offers when the agent itself runs in a limited cgroup. */
void iso_host_own_limits(const struct iso_host *h, uint64_t *ret_cpu_millis, uint64_t *ret_mem);
/* Remove the parent cgroups (and the ancestors iso_host_open created), leaf first: one
 * rmdir each, never waiting. 0; -EBUSY (no err) while containers remain; another -errno of
 * rmdir. For the agent's stop, after its containers were released. */
int iso_host_remove(struct iso_host *h);
struct iso_host *iso_host_free(struct iso_host *h);
enum iso_cg_version iso_host_version(const struct iso_host *h);
unsigned iso_host_flags(const struct iso_host *h);
/* Absolute paths of the parent cgroup in each hierarchy, for logs and GET /v1/node:
 * calls fn(controller_name, path, arg) for each. */
void iso_host_foreach_path(const struct iso_host *h,
                           void (*fn)(const char *ctrl, const char *path, void *arg), void *arg);

/* Create the cgroups of container `name` (its id) under the parent in every enabled
 * hierarchy. Fails with -EEXIST if any exists. *ret owns the dir fds. */
int iso_cgroup_create(struct iso_host *h, const char *name, struct iso_cgroup **ret,
                      struct berr **err);
/* Open existing cgroups of `name` (after an agent restart). -ENOENT if none exist. */
int iso_cgroup_open(struct iso_host *h, const char *name, struct iso_cgroup **ret,
                    struct berr **err);
/* Write limits (and, with ISO_CG_DEVICES, the device filter: v1 devices allow-list, v2 a
 * BPF_CGROUP_DEVICE program). Reads each value back into the cgroup's list of written
 * values (iso_cgroup_values). */
int iso_cgroup_apply(struct iso_cgroup *cg, const struct iso_limits *l, struct berr **err);
/* Values written by iso_cgroup_apply, as read back from the kernel. */
size_t iso_cgroup_values(const struct iso_cgroup *cg, const struct iso_cg_value **ret);
/* Move pid into the container's cgroup in every hierarchy (v1; on v2 the one dir). */
int iso_cgroup_attach(struct iso_cgroup *cg, pid_t pid, struct berr **err);
/* v1: fill fds with the container's per-hierarchy dir fds (at most max; returns how many;
 * 0 on v2). A freshly cloned, single-threaded child writes "0" to each one's "tasks" file to
 * move itself before it execs (async-signal-safe: openat + write). Moving the current thread
 * skips the cgroup_threadgroup_rwsem write lock, whose RCU grace period makes writing a
 * pid to cgroup.procs from the parent cost 5-15 ms (docs/performance.md). fds stay cg's. */
size_t iso_cgroup_self_attach_fds(const struct iso_cgroup *cg, int *fds, size_t max);
/* v2: the dir fd for clone3(CLONE_INTO_CGROUP); v1: -1 (see iso_cgroup_self_attach_fds). */
int iso_cgroup_clone_fd(const struct iso_cgroup *cg);
/* Lift cg's CPU quota (the parent's still holds): for a task being SIGKILLed, whose exit
 * (unmapping its memory...) would otherwise wait out its quota - a 0.001-CPU task took
 * 100 ms to die (issue #18). 0, or -errno with err. */
int iso_cgroup_unthrottle(struct iso_cgroup *cg, struct berr **err);
/* The files a process writes "0" to, to move itself into the cgroups of container `name`
 * (iso_cgroup_create makes them): v1 each hierarchy's "tasks" (a thread moving itself skips
 * the RCU grace period of a write of its pid to cgroup.procs), v2 "cgroup.procs". Known
 * before the cgroups exist: "<parent>/<name>/<file>" per hierarchy, a NULL-terminated
 * vector of absolute paths (the caller frees it). The executor opens each "<parent>" before
 * it enters the sandbox, and "<name>/<file>" under it once the agent says the cgroups are
 * made; its task child writes them before its execve, so only the task is charged to the
 * task's cgroups (issue #18). */
char **iso_host_join_files(const struct iso_host *h, const char *name);
/* An fd that becomes readable when the kernel OOM-kills in this cgroup (v1: eventfd
 * registered on memory.oom_control; v2: inotify on memory.events). Owned by cg. -ENOTSUP
 * without the memory controller. After it fires call iso_cgroup_oom_ack(). */
int iso_cgroup_oom_fd(struct iso_cgroup *cg, struct berr **err);
/* Drain the OOM fd; returns the current OOM-kill count (or -errno). */
int64_t iso_cgroup_oom_ack(struct iso_cgroup *cg);
/* Number of OOM kills the kernel counted in this cgroup. */
uint64_t iso_cgroup_oom_kills(struct iso_cgroup *cg);
/* Read usage now. */
int iso_cgroup_stats(struct iso_cgroup *cg, struct iso_stats *ret);
/* True while a task is in the cgroup, by one read and without waiting: v2 cgroup.events
 * "populated" (cgroup.procs where that file is missing); v1 the per-thread "tasks" file of
 * every hierarchy, which, unlike cgroup.procs, lists a thread until the kernel stops
 * counting it. False therefore means iso_cgroup_destroy can succeed. */
bool iso_cgroup_populated(struct iso_cgroup *cg);
/* The processes in the cgroup now (cgroup.procs; *ret malloc'd, NULL when none). 0 or
 * -errno. */
int iso_cgroup_pids(struct iso_cgroup *cg, pid_t **ret, size_t *ret_n);
/* Send SIGKILL to every process in the cgroup once and return: v2 writes cgroup.kill (the
 * kernel also kills what forks meanwhile); without it (v1, v2 before Linux 5.14), when
 * cgroup.procs lists anyone: freeze, one round of kill(2) over cgroup.procs, thaw (always;
 * no wait for FROZEN: a task still FREEZING gets its SIGKILL on thaw). Never waits or sleeps,
 * so the agent's loop never blocks. The tasks die asynchronously: the caller learns that
 * the cgroup is empty from iso_cgroup_populated when the file of iso_cgroup_events_path
 * changes (v2) or on a timer (v1), and on v1 (or v2 without cgroup.kill) repeats the kill
 * while it is still populated, since a task may have forked between the read and its
 * SIGKILL.
 * 0, or -errno with err. */
int iso_cgroup_kill(struct iso_cgroup *cg, struct berr **err);
/* The file whose change (inotify IN_MODIFY) says the cgroup may have emptied: v2 the
 * container's cgroup.events as an absolute path (malloc'd, the caller frees it); NULL on
 * v1, where no file says so. */
char *iso_cgroup_events_path(const struct iso_cgroup *cg);
/* Kill until empty, waiting at most timeout_ms: while iso_cgroup_populated is true (v2:
 * read from cgroup.events), iso_cgroup_kill and then wait for cgroup.events to change (v2,
 * at most 100 ms at a time) or sleep 1 ms (v1, the first 20 rounds; then 10 ms). An empty
 * cgroup is not signalled; a populated one is killed at least once, even with timeout 0.
 * 0 when empty; -EBUSY with err ("processes remain in the cgroup <timeout_ms> ms after
 * SIGKILL") when tasks remain; another -errno with err. BLOCKS: only for start-up
 * (orphans.c) before the agent's loop runs and its stop (release.c) after it ended; the
 * only sleep in isolator/. */
int iso_cgroup_kill_wait(struct iso_cgroup *cg, unsigned timeout_ms, struct berr **err);
/* rmdir the container's directory in each hierarchy, one attempt each, never waiting.
 * 0 when all are gone (ENOENT counts as gone, so calling it again is fine). -EBUSY, with
 * err ("rmdir '<path>': Device or resource busy"), while the kernel still counts a task in
 * it (iso_cgroup_populated is true, or the last task is still exiting): the caller tries
 * again later (and, to swallow it, berr_free()s err). Any other -errno with err, which
 * takes precedence over EBUSY. cg stays valid either way; free it with iso_cgroup_free. */
int iso_cgroup_destroy(struct iso_cgroup *cg, struct berr **err);
/* Absolute cgroup directory per hierarchy, for inspect: fn(controller_name, path, arg). */
void iso_cgroup_foreach_path(const struct iso_cgroup *cg,
                             void (*fn)(const char *ctrl, const char *path, void *arg), void *arg);
struct iso_cgroup *iso_cgroup_free(struct iso_cgroup *cg);

/* ---- sandbox spec (agent -> executor) --------------------------------------------------- */

struct iso_volume {
    char *host;      /* absolute host path */
    char *container; /* absolute path inside, or relative to the sandbox dir */
    bool readonly;
};

/* A task's user as the host's passwd and group files have it (user.c). */
struct iso_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int n_groups;
};
/* Resolve a user name or numeric uid ("" or NULL: root) on the host's passwd, with the
 * home directory in *ret_home (malloc'd; "/" without one) when ret_home is not NULL. A
 * numeric uid missing from passwd resolves to itself (gid = uid, no groups); an unknown
 * name fails with ENOENT "user 'x' unknown". The agent's alone: it does these NSS lookups
 * and writes the answer into the spec, the executor does none (issue #18). */
int iso_user_resolve(const char *user, struct iso_user *ret, char **ret_home, struct berr **err);

/* A task's network (docs/design/network.md): the host's; its own namespace with lo only;
 * its own namespace with a veth on the agent's bridge. */
enum iso_net_mode {
    ISO_NET_HOST,
    ISO_NET_NONE,
    ISO_NET_BRIDGE,
    _ISO_NET_MAX,
    _ISO_NET_INVALID = -EINVAL,
};
const char *iso_net_mode_name(enum iso_net_mode m);
enum iso_net_mode iso_net_mode_from_name(const char *s); /* _ISO_NET_INVALID if unknown */

struct iso_spec {
    char *id;            /* container id */
    char *hostname;      /* uts name */
    unsigned flags;      /* ISO_* */
    char *sandbox_dir;   /* absolute host path; the task's cwd, writable */
    char *runtime_dir;   /* absolute host path; executor-private (status file); masked */
    char **mask_dirs;    /* NULL-terminated host paths to hide, canonical: dirs get an empty
                          * tmpfs (work_dir, socket dir), files /dev/null (token_file) */
    char *user;          /* user name or numeric uid ("nobody"), for messages */
    struct iso_user ids; /* the user resolved by the agent (iso_user_resolve) */
    char *home;          /* its home directory: HOME when env has none */
    char **argv;         /* NULL-terminated; for shell commands {"/bin/sh","-c",cmd} */
    char **env;          /* NULL-terminated "K=V" */
    struct iso_volume *volumes;
    size_t n_volumes;
    uint64_t nofile;   /* RLIMIT_NOFILE soft=hard; 0 = leave */
    uint64_t grace_ms; /* default SIGTERM -> SIGKILL grace */
    /* > 0: the task runs in its own user namespace, uids and gids 0..ISO_USERNS_SIZE-1
     * inside mapped to userns_base.. on the host (docs/security.md) */
    uint64_t userns_base;
    /* > 0: the output files are capped at this many bytes each and rotated, keeping
     * log_max_files files (the current one included) per stream */
    uint64_t log_max_bytes, log_max_files;
    /* the files the task child writes "0" to, to join the task's cgroups before its execve
     * (iso_host_join_files); NULL: it stays where the executor is */
    char **cgroup_join;
    /* its network; with ISO_NET_NONE or ISO_NET_BRIDGE flags has ISO_NS_NET (the agent cloned
     * the executor into a new network namespace) and the executor brings lo up; with
     * ISO_NET_BRIDGE the agent's go on fd 0, which every executor waits for before its task
     * (the cgroups made), says the veth, address and route are there too (the agent's to
     * make, from outside) */
    enum iso_net_mode net;
    /* host dir holding hosts, resolv.conf and hostname, bound read-only over the sandbox's
     * /etc/hosts, /etc/resolv.conf and /etc/hostname (mount-etc.c); NULL: none */
    char *etc_dir;
};

#define ISO_USERNS_SIZE 65536
/* The host uid (or gid) of id inside the spec's user namespace (id itself without one). */
static inline uint32_t iso_host_id(const struct iso_spec *s, uint32_t id)
{
    return s->userns_base ? (uint32_t) (s->userns_base + id) : id;
}
/* Write pid's uid_map and gid_map: 0..ISO_USERNS_SIZE-1 -> base.. (as root in the parent
 * user namespace, after pid unshared CLONE_NEWUSER). */
int iso_userns_map(pid_t pid, uint64_t base, struct berr **err);

/* JSON codec for the spec (runtime_dir/spec.json). to_json returns a malloc'd string. */
char *iso_spec_to_json(const struct iso_spec *s);
int iso_spec_from_json(const char *json, struct iso_spec *ret, struct berr **err);
void iso_spec_done(struct iso_spec *s); /* frees members; tolerates a half-built spec */

/* ---- what the executor reports (status.c) ----------------------------------------------- */

enum iso_status_kind {
    ISO_STATUS_NONE,
    ISO_STATUS_RUNNING,      /* the task exec'd (pipe only) */
    ISO_STATUS_EXITED,       /* code = exit code */
    ISO_STATUS_SIGNALED,     /* code = signal */
    ISO_STATUS_LAUNCH_ERROR, /* code = errno, message says what failed */
};
struct iso_status {
    enum iso_status_kind kind;
    int code;
    char *message; /* owned */
};
/* status.json's text (malloc'd, newline-terminated); for EXITED, SIGNALED, LAUNCH_ERROR. */
char *iso_status_to_json(const struct iso_status *s);
/* 0, or -EINVAL with err when the text is not one of the three shapes. */
int iso_status_from_json(const char *json, struct iso_status *ret, struct berr **err);
/* The status pipe's line: "RUNNING\n" or "ERROR <errno> <message>\n" (malloc'd). */
char *iso_status_line(const struct iso_status *s);
/* What the pipe said so far (NUL-terminated): 0 with *ret for a whole line, -EAGAIN when
 * none is complete yet. */
int iso_status_from_line(const char *buf, struct iso_status *ret);
void iso_status_done(struct iso_status *s);

/* ---- inside the sandbox (berth-executor) ------------------------------------------------ */

/* The template of every sandbox of an agent (mount-template.c), built by `berth-executor
 * --template DIR` as root in a fresh mount namespace (a copy of the host's), which the
 * agent then holds by an fd: make "/" private, bind the host's root read-only at
 * s->runtime_dir/rootfs with s->mask_dirs masked, an empty mount point for the sandboxes'
 * dir s->sandbox_dir inside its mask, /sys/firmware and /sys/kernel/debug emptied and a
 * minimal read-only /dev (all with ISO_FS_RO_HOST; a writable bind of the host's root
 * without), and make it the namespace's root with pivot_root (on a host whose root is the
 * initramfs: move it onto "/" and chroot). 0, or -errno with err set. */
int iso_template_build(const struct iso_spec *s, struct berr **err);
/* In the executor, as root, in the host's mount namespace: with ISO_NS_MOUNT take what the
 * sandbox needs of the host (its sandbox dir, volumes, /etc files), enter a copy of the
 * template's namespace template_fd (setns + unshare: it becomes the sandbox's, "/" its
 * root) and add a private /tmp, the sandbox dir, volumes, a fresh /proc (hardened with
 * ISO_FS_RO_HOST, and devpts and /dev/shm), the /etc files. Then set the hostname when
 * ISO_NS_UTS and chdir to the sandbox dir; without ISO_NS_MOUNT only those two. */
int iso_sandbox_enter(const struct iso_spec *s, int template_fd, struct berr **err);

/* A spare executor's launch (`berth-executor --spare`, agentd/spare.c and executor/spare.c):
 * one SOCK_SEQPACKET message of a flags byte and the runtime dir, with three fds -
 * executor.log, the sandbox template, stdin (the network's go pipe or /dev/null); the
 * template's place holds /dev/null without this flag. */
#define ISO_SPARE_TEMPLATE 1u
/* What the task child's last steps need that costs time to work out, worked out by the
 * executor before the fork: the task's cgroups are charged for what the child does, and
 * a 0.001-CPU task waits out every millisecond of it (issue #18). */
struct iso_bpf {
    void *insns; /* struct sock_filter[len] */
    unsigned short len;
};
struct iso_task_plan {
    struct iso_user user;          /* spec->ids */
    const struct iso_bpf *seccomp; /* ISO_SECCOMP: the deny-list (iso_seccomp_prog) */
    int last_cap;                  /* the highest capability the kernel knows */
    bool caps_bounded;             /* iso_task_plan_enter did these two already */
    bool seccomp_loaded;
};
/* Build plan for s (in the executor, before the fork); iso_task_plan_done frees it. */
int iso_task_plan_build(const struct iso_spec *s, struct iso_task_plan *plan, struct berr **err);
/* In the executor right before the fork, after its last mount: take on the task's bounding
 * set and (without a user namespace, which the filter denies) its seccomp filter, which
 * the child inherits: the kernel's work of loading a filter (~0.1 ms: it runs the filter
 * for every syscall number) is not charged to the task. Not for a process that still
 * mounts, joins namespaces or execs a privileged program. */
int iso_task_plan_enter(const struct iso_spec *s, struct iso_task_plan *plan, struct berr **err);
void iso_task_plan_done(struct iso_task_plan *plan);
/* In the task child, last steps before execve: rlimits, user namespace (when
 * s->userns_base: enter_userns(arg, err) must leave the process in it with its maps
 * written, e.g. unshare + the parent's iso_userns_map, or setns), user
 * (setgroups/setgid/setuid), capabilities (bounding set to the default set; none for
 * non-root), no_new_privs, mark fds >= 3 close-on-exec, seccomp deny-list. Allocation is
 * allowed (the executor is single-threaded). */
int iso_task_prepare(const struct iso_spec *s, const struct iso_task_plan *plan,
                     int (*enter_userns)(void *arg, struct berr **err), void *arg,
                     struct berr **err);
/* The seccomp deny-list compiled to BPF (libseccomp's export; iso_seccomp_build, run when
 * berth is built), the program so compiled (iso_seccomp_prog, seccomp-prog.c), and its
 * load into the calling thread (needs no_new_privs). */
int iso_seccomp_build(struct iso_bpf *ret, struct berr **err);
extern const struct iso_bpf iso_seccomp_prog;
int iso_seccomp_install(const struct iso_bpf *prog, struct berr **err);
/* Capabilities kept for root tasks (CAP_CHOWN ... as in docker's default). */
extern const int iso_default_caps[];
extern const size_t iso_n_default_caps;

/* ---- network (docs/design/network.md) --------------------------------------------------- */

/* net-lo.c, in the executor: bring lo up in the current network namespace (an ioctl). 0 or
 * -errno with err. */
int iso_net_lo_up(struct berr **err);

/* net-link.c, in the agent (libnl-route): the bridge and the veths. Every link berth makes
 * carries the interface alias ISO_NET_OWNER_PREFIX + owner ("bridge", or the container id),
 * which is how a sweep tells ours from anyone else's. */
#define ISO_NET_OWNER_PREFIX "berth:"
#define ISO_NET_TASK_IF "eth0" /* the task's end of its veth, inside its namespace */
struct iso_net;
/* A NETLINK_ROUTE socket in the calling thread's network namespace. 0 or -errno with err. */
int iso_net_open(struct iso_net **ret, struct berr **err);
struct iso_net *iso_net_free(struct iso_net *n);
/* Make the bridge `name` ready: created (marked ours) when missing, IPv6 off and
 * route_localnet 0 on it, gateway/prefix its address (addr in host order), up, and
 * net.ipv4.ip_forward on. Idempotent. 0, or -errno with err (-EEXIST: `name` is no bridge). */
int iso_net_bridge_up(struct iso_net *n, const char *name, uint32_t gateway, unsigned prefix,
                      struct berr **err);
/* 1 when the bridge `name` exists and is ours, 0 when not, -errno when we cannot tell. */
int iso_net_bridge_owned(struct iso_net *n, const char *name);
/* Remove the bridge if it is ours: 1 removed, 0 absent or not ours, -errno with err. */
int iso_net_bridge_remove(struct iso_net *n, const char *name, struct berr **err);
/* One task's link: host_if (<= 15 characters) on the bridge, marked as owner's, hairpin on;
 * its peer ISO_NET_TASK_IF made inside netns_fd with addr/prefix and a default route via
 * gateway (host order). Needs iso_net_bridge_up first. 0, or -errno with err (nothing left:
 * the pair is removed again). */
struct iso_net_attach {
    const char *host_if;
    const char *owner;
    int netns_fd;
    uint32_t addr, gateway;
    unsigned prefix;
};
int iso_net_attach(struct iso_net *n, const struct iso_net_attach *at, struct berr **err);
/* Remove a task's host end (its peer goes with it): 1 removed, 0 already gone, -errno. */
int iso_net_detach(struct iso_net *n, const char *host_if, struct berr **err);
/* fn(ifname, owner, arg) for every veth marked ISO_NET_OWNER_PREFIX in this namespace, and
 * with owner NULL for every unmarked one whose name starts with unmarked_prefix (made, then
 * a crash before it was marked). */
int iso_net_foreach_veth(struct iso_net *n, const char *unmarked_prefix,
                         void (*fn)(const char *ifname, const char *owner, void *arg), void *arg,
                         struct berr **err);

/* net-rules.c (pure) and net-nat.c (libnftables): the agent's table, `inet berth`. Its map
 * ISO_NAT_MAP sends protocol . host port to task address . port; its chains (which never
 * change) DNAT through it at prerouting and output, masquerade tasks' traffic, and keep
 * tasks off the host's own ports (docs/design/network.md). */
#define ISO_NAT_TABLE "berth"
#define ISO_NAT_MAP "ports"
struct iso_nat_net {
    const char *bridge;
    uint32_t subnet; /* host order */
    unsigned prefix;
};
struct iso_nat_map {
    uint16_t host_port;
    uint32_t addr; /* the task's, host order */
    uint16_t port; /* inside the task */
};
/* The dotted quad of addr (host order). */
void iso_ipv4_format(uint32_t addr, char buf[16]);
/* nft text replacing the whole table (created if missing) with these mappings; malloc'd. */
char *iso_nat_table_text(const struct iso_nat_net *net, const struct iso_nat_map *m, size_t n);
/* "add element ..." (add) or "delete element ..." for one task's mappings (TCP and UDP of
 * each); malloc'd, NULL when n is 0. */
char *iso_nat_elements_text(bool add, const struct iso_nat_map *m, size_t n);
/* Text removing the table whether it exists or not; malloc'd. */
char *iso_nat_delete_text(void);
struct iso_nat;
int iso_nat_open(struct iso_nat **ret, struct berr **err);
struct iso_nat *iso_nat_free(struct iso_nat *n);
/* Run nft text as one transaction: 0, or -EIO with err quoting nft's message. */
int iso_nat_run(struct iso_nat *n, const char *text, struct berr **err);
/* The map's mappings as the kernel has them (*ret malloc'd): 0; -ENOENT (no err) when the
 * table does not exist; -EIO with err. */
int iso_nat_list(struct iso_nat *n, struct iso_nat_map **ret, size_t *ret_n, struct berr **err);

/* net-diag.c, in the agent (libnl-idiag): the TCP sockets listening in the caller's network
 * namespace, IPv4 and IPv6 (*ret malloc'd). 0 or -EIO with err. */
struct iso_listen {
    uint16_t port;
    uint64_t inode;
};
int iso_listen_sockets(struct iso_listen **ret, size_t *ret_n, struct berr **err);
