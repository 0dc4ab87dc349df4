/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup-internal.h - private to isolator/cgroup*.c: the detected hierarchies, one
 * cgroup node (a dir fd per hierarchy), the host (cgroup-host.c), the version ops table
 * (struct cg_ops: cgroup-v1.c, cgroup-v2.c; dispatched by cgroup.c) and the helpers they all
 * share (cgroup-util.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "isolator/isolator.h"

/* Controllers berth uses. On v1 each may live in its own hierarchy or share one ("cpu,cpuacct");
 * on v2 they all live in the one unified hierarchy. */
enum cg_ctrl {
    CG_CPU,
    CG_CPUACCT, /* v1 only: usage stats */
    CG_MEMORY,
    CG_PIDS,
    CG_DEVICES, /* v1 only: allow-list */
    CG_FREEZER, /* v1 only: kill without races */
    _CG_CTRL_MAX,
};

#define CG_MAX_HIER _CG_CTRL_MAX
#define CG_MAX_STAT_FILES 16

/* One mounted hierarchy. Plain arrays only, so a layout can be copied by value into every
 * container (a container then never points back into the host object). */
struct cg_hier {
    char name[64];  /* "cpu", "cpu,cpuacct", "memory", ... or "unified" on v2 */
    unsigned ctrls; /* 1u << enum cg_ctrl served by this hierarchy */
};

/* Facts of the host's kernel that do not change per launch (struct cg_layout has): the
 * optional files a memory cgroup has (v1), found once at iso_host_open (cg_ops probe) on the
 * parent, which as a non-root cgroup has the same files as every container below it. */
enum {
    CG_HAS_MEMSW = 1u << 0,      /* v1 memory.memsw.limit_in_bytes (swap accounting on) */
    CG_HAS_SWAPPINESS = 1u << 1, /* v1 memory.swappiness */
};

struct cg_layout {
    enum iso_cg_version version;
    const struct cg_ops *ops;
    unsigned flags; /* ISO_CG_* asked for */
    unsigned has;   /* CG_HAS_*: probed once per host, copied into every container */
    size_t n_hier;
    struct cg_hier hier[CG_MAX_HIER];
    int ctrl_hier[_CG_CTRL_MAX]; /* index into hier, -1 when not used/mounted */
};

/* One cgroup in every hierarchy of a layout: the parent of all tasks, or one container. */
struct cg_node {
    int fd[CG_MAX_HIER];     /* O_DIRECTORY|O_CLOEXEC, -1 if missing */
    char *path[CG_MAX_HIER]; /* absolute, for logs and inspect */
    struct iso_cg_value values[ISO_CG_MAX_VALUES];
    size_t n_values;
    /* Statistics files, opened on the first read and then pread() on every sampling pass
     * (no open/close, no allocation per pass). Slots are per version (enum cg1_stat /
     * cg2_stat); -1 = not open yet; a file found missing once is never retried. */
    int stat_fd[CG_MAX_STAT_FILES];
    uint32_t stat_missing;
    uint64_t tick_ns; /* USER_HZ tick in ns (cpuacct.stat), fixed at creation */
    int oom_fd;       /* eventfd (v1) or inotify (v2), -1 until iso_cgroup_oom_fd */
    int oom_ctl_fd;   /* v1: memory.oom_control kept open for the eventfd registration */
};

/* What differs between v1 and v2. Every function works on open dir fds only. */
struct cg_ops {
    enum iso_cg_version version;
    /* Prepare the parent of all tasks after it was created: v1 memory.use_hierarchy; v2
     * enable controllers from the agent's own cgroup (own_fd) down to the parent, moving
     * the agent's processes to a leaf first (never from the root cgroup, own_is_root). rel
     * is the path from own to the parent. */
    int (*host_setup)(const struct cg_layout *lay, int own_fd, bool own_is_root, const char *rel,
                      struct cg_node *parent, struct berr **err);
    /* Optional (NULL: nothing): undo what host_setup made below the parent, before the
     * parent's rmdir at the agent's stop. */
    void (*host_remove)(const struct cg_layout *lay, struct cg_node *parent);
    /* Optional (NULL: nothing to learn): fill lay->has from the parent, once per host after
     * host_setup, so that no launch looks for a file the host's kernel has or lacks. */
    void (*probe)(struct cg_layout *lay, const struct cg_node *parent);
    /* Write limits; parent=true writes only non-zero fields and never devices. */
    int (*apply)(const struct cg_layout *lay, struct cg_node *n, const struct iso_limits *l,
                 bool parent, struct berr **err);
    int (*stats)(const struct cg_layout *lay, struct cg_node *n, struct iso_stats *ret);
    /* Open n->oom_fd (and n->oom_ctl_fd). */
    int (*oom_open)(const struct cg_layout *lay, struct cg_node *n, struct berr **err);
    uint64_t (*oom_kills)(const struct cg_layout *lay, struct cg_node *n);
    /* SIGKILL every process once and return (iso_cgroup_kill): v2 cgroup.kill, else
     * cg_kill_round. Never waits or sleeps. 0, or -errno with err. */
    int (*kill)(const struct cg_layout *lay, struct cg_node *n, struct berr **err);
    /* Write the freezer's state (v1 freezer.state FROZEN/THAWED, v2 cgroup.freeze 1/0) and
     * return without waiting for the kernel to get there. 0; -EOPNOTSUPP when there is no
     * freezer (v1 freezer not mounted, v2 before Linux 5.2); another -errno. */
    int (*freeze)(const struct cg_layout *lay, struct cg_node *n, bool frozen);
    /* True while a task is in the node (iso_cgroup_populated); one read, never waits. */
    bool (*populated)(const struct cg_layout *lay, struct cg_node *n);
    /* The file in the node's (only) hierarchy whose change says it may have emptied, for
     * inotify and poll(POLLPRI): "cgroup.events" on v2; NULL on v1, which has none. */
    const char *events_file;
    /* fd for clone3(CLONE_INTO_CGROUP) or -1. */
    int (*clone_fd)(const struct cg_layout *lay, const struct cg_node *n);
    /* The CPU quota's file in the cpu controller's hierarchy and its "no quota" value
     * (iso_cgroup_unthrottle). */
    const char *quota_file, *quota_none;
};

extern const struct cg_ops cg1_ops;
extern const struct cg_ops cg2_ops;

/* The detected hierarchies and the parent of all tasks (cgroup-host.c builds it; cgroup.c
 * reads the parent's fds and paths to make containers under it). */
struct iso_host {
    struct cg_layout lay;
    char *root;
    char *rel;                /* parent path relative to the agent's own cgroup: "berth" */
    char *mount[CG_MAX_HIER]; /* hierarchy mount point: "/sys/fs/cgroup/memory" */
    char *own[CG_MAX_HIER];   /* agent's own cgroup in it: "/" or "/system.slice/x" */
    int created[CG_MAX_HIER]; /* index of the first component of rel we created, -1 none */
    struct cg_node parent;
};

/* ---- v2 device filter (cgroup-v2-devices.c) ----------------------------------------------- */

struct bpf_insn;
/* Assemble the BPF_PROG_TYPE_CGROUP_DEVICE program of the sandbox's allow-list into out (at
 * most max instructions). Returns the instruction count or -ENOSPC. Pure: unit-tested. */
int cg2_devices_program(struct bpf_insn *out, size_t max);
/* Load that program and attach it to the cgroup dirfd (BPF_CGROUP_DEVICE, ALLOW_MULTI). */
int cg2_devices_attach(int dirfd, struct berr **err);
/* How many device programs are attached to dirfd itself, or -errno. */
int cg2_devices_attached(int dirfd);

/* ---- helpers shared by all cgroup*.c (cgroup-util.c) --------------------------------------- */

/* "cpu", "memory", ... (the v1 controller name), NULL for an invalid c. */
const char *cg_ctrl_name(enum cg_ctrl c);
/* An empty node: no fds, no paths, USER_HZ tick length read once. */
void cg_node_init(struct cg_node *n);
/* Close every fd of n and free its paths; n is empty (as cg_node_init) afterwards. */
void cg_node_done(struct cg_node *n);
/* Absolute path of n per hierarchy: v1 calls fn once per controller (a joint hierarchy is
 * named once per controller, so API clients can look up "cpu" and "cpuacct" alike); v2
 * once, as "unified". */
void cg_foreach_path(const struct cg_layout *lay, const struct cg_node *n,
                     void (*fn)(const char *ctrl, const char *path, void *arg), void *arg);

/* fd of the node in the hierarchy of ctrl, or -1. */
int cg_fd(const struct cg_layout *lay, const struct cg_node *n, enum cg_ctrl c);
/* cg_set flags */
enum {
    CG_SET_QUIET = 1u << 0, /* no err: return -errno alone (as cg_write_quiet) */
    /* value is what a fresh cgroup holds: read first (one open, one pread) and write only
     * when the file holds something else; the value recorded is still the one read */
    CG_SET_IF_DIFFERENT = 1u << 1,
};
/* Write value to file under dirfd, read it back and record {file, value} in n->values: one
 * fd opened O_RDWR, one write() (cgroupfs parses each on its own), and the read-back by
 * pread at offset 0 through the same fd (cgroupfs regenerates a file read at offset 0;
 * checked on kernel 6.18's v1 files). A file that may be written but not read (EACCES/EPERM
 * on O_RDWR) is written and read back through separate opens. Sets err "write 'file' =
 * 'value': reason" unless CG_SET_QUIET. */
int cg_set(struct cg_node *n, int dirfd, const char *file, const char *value, unsigned flags,
           struct berr **err);
/* cg_set without flags, and quiet (optional files: swappiness, use_hierarchy). */
int cg_write(struct cg_node *n, int dirfd, const char *file, const char *value, struct berr **err);
int cg_write_quiet(struct cg_node *n, int dirfd, const char *file, const char *value);
/* True if dirfd/file exists. */
bool cg_has(int dirfd, const char *file);
/* Read one number; "max" (and v1's -1) read as UINT64_MAX. -errno on failure. */
int cg_read_u64(int dirfd, const char *file, uint64_t *ret);
/* Read stat file `file` of dirfd through slot of n (opened on first use, then pread):
 * bounded to len-1 bytes, NUL-terminated, trailing newline stripped. Returns the length or
 * -errno (-ENOENT for a file this kernel lacks, remembered). */
ssize_t cg_stat_read(struct cg_node *n, unsigned slot, int dirfd, const char *file, char *buf,
                     size_t len);
/* The same for a one-number file ("max" and -1 read as UINT64_MAX). */
int cg_stat_u64(struct cg_node *n, unsigned slot, int dirfd, const char *file, uint64_t *ret);
/* Find "key value" on its own line in text (flat keyed files: memory.stat, cpu.stat ...). */
int cg_keyed(const char *text, const char *key, uint64_t *ret);
/* One pass over a flat keyed file: for each of the n (<= 32) keys found, store its value
 * in *rets[i]; returns the bit mask of keys found. Cheaper than n cg_keyed() scans of a
 * 40-line memory.stat on every sampling pass. */
unsigned cg_keyed_many(const char *text, const char *const *keys, uint64_t *const *rets, size_t n);
/* Call fn(pid, arg) for each pid in dirfd/file ("cgroup.procs", or v1's per-thread "tasks"),
 * reading in fixed chunks (no allocation); fn may be NULL to just count. Stops on the first
 * negative return of fn and returns it; else the number of pids. */
int cg_foreach_pid(int dirfd, const char *file, int (*fn)(pid_t pid, void *arg), void *arg);
/* True if dirfd/file lists at least one pid (reads no further than the first). */
bool cg_lists_pid(int dirfd, const char *file);
/* "populated" of an open v2 cgroup.events, read from offset 0 (which also re-arms its
 * POLLPRI notification): 1, 0, or -errno. */
int cg_events_populated(int fd);
/* One kill round, the same on v1 and on v2 without cgroup.kill: when cgroup.procs of some
 * hierarchy lists a pid, freeze (lay->ops->freeze, without waiting for FROZEN), kill(2)
 * SIGKILL every pid cgroup.procs of each hierarchy lists (never our own), thaw (always,
 * unless there is no freezer). Never sleeps. Returns how many pids it signalled (0: nobody
 * was listed; the cgroup may still be populated by tasks that are exiting), or -errno with
 * err. */
int cg_kill_round(const struct cg_layout *lay, struct cg_node *n, struct berr **err);
