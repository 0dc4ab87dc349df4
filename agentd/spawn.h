/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/spawn.h - how the agent starts its children (launch.c), included by agent.h: a
 * spawn in the loop for the short-lived ones (exec, COMMAND checks, the trash's rm, the
 * template's builder), and the executors of launches spawned by a thread, off the loop. */
#pragma once

struct spawn {
    const char *path;
    char **argv;
    uint64_t ns_flags;     /* CLONE_NEW* */
    int fd[4];             /* become 0..3 in the child; fd[3] may be -1 */
    int template_fd;       /* > 0: becomes fd 4 (berth-executor's sandbox template) */
    struct iso_cgroup *cg; /* born in (v2) or attached to (v1) these cgroups; may be NULL */
    /* set: the child gives up just before its exec (ECANCELED); read where the child shares
     * the agent's memory (CLONE_VM: v1), ignored on v2's clone3 */
    const atomic_bool *cancel;
    bool spare; /* a spare executor's (spare.c): no launch's yet, no fault point */
};
/* Clone and exec sp->path; returns once execve succeeded (err names its errno otherwise).
 * The caller owns *ret_pidfd and must reap the child (waitid P_PIDFD). Spawns are one at a
 * time (the spawner thread's and the loop's take turns). */
int agent_spawn(struct agent *a, const struct spawn *sp, pid_t *ret_pid, int *ret_pidfd,
                struct berr **err);
int agent_dup_high(int fd); /* F_DUPFD_CLOEXEC to >= 4, closes fd */
/* A CLOEXEC pipe whose ends are >= 4 (agent_dup_high): ret[0] reads, ret[1] writes; 0, or
 * -errno with both -1. */
int agent_pipe_high(int ret[2]);
/* The fd table at its size limit now, before a thread shares it (launch.c says why). */
void agent_grow_fd_table(void);
/* Reserve launch.c's low fd slots for spawns, before the agent opens many fds. */
int agent_spawn_init(struct berr **err);
/* exec.c: `berth-executor --runtime-dir RDIR --exec-pid PID -- CMD...` (berthctl exec and
 * COMMAND health checks), NULL-terminated, the strings borrowed; free() the array only. */
char **agent_exec_argv(const struct agent *a, char *rdir, char *pid, char *const *cmd);

/* The executor of a launch, spawned off the loop (issue #18: the loop waited for each
 * executor's execve, and for a CPU for it under load): agent_spawn_executor prepares its
 * fds (c->go_rd is taken) and queues it for the spawner thread; done runs in the loop
 * once the executor exec'd (r 0: *sp says what was spawned, its fds are done's) or failed
 * (r < 0, err). Launches are spawned in the order queued. agent_spawner_stop, at the agent's
 * stop: the queued spawns are made, their done run, the thread ends. */
struct spawned {
    pid_t pid;
    uint64_t pid_start; /* its start time (proc.c), read by the thread too */
    int pidfd, status_fd;
};
typedef void spawn_done_fn(struct agent *a, const char *id, int r, const struct spawned *sp,
                           const struct berr *err);
int agent_spawn_executor(struct agent *a, struct container *c, spawn_done_fn *done,
                         struct berr **err);
void agent_spawner_stop(struct agent *a);
/* The namespaces a launch's executor is born in (CLONE_NEW*; the mount namespace is the
 * executor's to make), in network mode net. */
uint64_t agent_launch_ns(const struct agent *a, enum iso_net_mode net);
/* /dev/null, opened once (a spawned child's unused stdio). */
int agent_spawn_null(void);
/* A spare executor (spare.c): `berth-executor --spare net|host` born in namespaces ns, ctl
 * (taken) its fd 0; done (the loop's) has its outcome, id given back. */
int agent_spawn_spare(struct agent *a, const char *id, uint64_t ns, int ctl, spawn_done_fn *done,
                      struct berr **err);

/* spare.c: executors spawned ahead of their launches (issue #18). spare_start after the
 * recovery (ns: the default network mode's namespaces); spare_launch gives one of
 * namespaces ns its launch (the runtime dir, executor.log, the template or -1, stdin) and
 * *ret (its fds the caller's): 0, or -1 when none is there (spawn one then); spare_stop
 * before agent_spawner_stop. */
void spare_start(struct agent *a, uint64_t ns);
int spare_launch(struct agent *a, uint64_t ns, const char *rdir, int logfd, int tpl, int in,
                 struct spawned *ret);
void spare_stop(struct agent *a);

/* Launches queued for the spawner whose outcome the loop has not had yet (the loop's). */
unsigned agent_spawns_in_flight(void);
/* SIGKILL the executor of launch id as soon as its spawn returns (or now, spawned). */
void agent_spawn_kill(const char *id);
