/* SPDX-License-Identifier: Apache-2.0 */
/* executor/executor.h - private to executor/: the one context of berth-executor and the
 * entry points of its files: main.c (arguments), launch.c (sandbox setup and the task
 * child), supervise.c (pid 1: reap, forward signals, grace timer), status.c (status fd
 * and status.json), exec.c (`--exec-pid`: a command inside a running sandbox), template.c
 * (`--template`: the agent's sandbox template), spare.c (`--spare`: an executor started
 * ahead of its launch). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/common.h"
#include "isolator/isolator.h"

#define EXE_STATUS_FD 3
#define EXE_TEMPLATE_FD 4 /* the agent's sandbox template: a mount namespace (nsfs) fd */
#define EXE_LAUNCH_FAILED 127
#define EXE_DEFAULT_GRACE_MS 10000

struct exe {
    const char *runtime_dir; /* --runtime-dir, as given */
    int runtime_fd;          /* O_PATH of runtime_dir: status.json is written through it */
    int status_fd;           /* inherited fd 3 (status pipe) or -1 */
    int template_fd;         /* inherited fd 4 (the agent's template namespace) or -1 */
    struct iso_spec spec;
    struct iso_user user;      /* spec.ids */
    struct iso_task_plan plan; /* what the task child needs, worked out before the fork */
    char **envp;               /* spec env + PATH/HOME defaults (NULL-terminated, owned) */
    char oom_adj[32];          /* inherited oom_score_adj, restored in the task */
    int out_fd, err_fd;        /* sandbox_dir/stdout and stderr */
    int sig_fd, timer_fd;      /* signalfd, grace timerfd */
    pid_t task_pid;
    /* the task's cgroup files (spec.cgroup_join: "<parent>/<container>/<file>"): each
     * <parent> opened before the sandbox hides it, "<container>/<file>" under it once the
     * agent says go (it makes the cgroups meanwhile); the task child writes "0" to each
     * first thing, so only the task is charged to them */
    int join_fd[8];
    size_t n_join;
    bool pid1;  /* pid 1 of a pid namespace: kill(-1) reaches exactly the sandbox */
    bool lo_up; /* a spare brought up lo in its network namespace before its launch */
    /* relay.c: with spec.log_max_bytes the task writes into pipes we copy and rotate */
    int sandbox_fd;
    struct {
        int rd, wr;    /* -1 when unused */
        uint64_t size; /* bytes in the current file */
    } relay[2];        /* stdout, stderr */
};

/* status.c */
/* Adopt fd 3 as the status pipe if it is open (making it close-on-exec). Call before
 * opening anything else, so a closed fd 3 is never mistaken for one of ours. */
void exe_status_init(struct exe *e);
void exe_report_running(struct exe *e);
/* LAUNCH_FAILED: status.json {"launch_error", "errno"} and "ERROR <errno> <msg>" on fd 3. */
void exe_report_launch_error(struct exe *e, int errnum, const char *msg);
/* The task's end: status.json {"exit_code": N} or {"signal": N}. Returns the exit status
 * the executor should exit with (N or 128+signal). */
int exe_report_exit(struct exe *e, int wstatus);

/* launch.c */
/* Read runtime_dir/spec.json into e->spec and resolve the user and environment (host view).
 * Returns 0 or -errno with err set. */
int exe_load(struct exe *e, struct berr **err);
/* Steps 2-8 of docs/design/sandbox.md, then supervise. Returns the exit status. */
int exe_run(struct exe *e);

/* spare.c */
/* `--spare net|host`: wait on fd 0 for a launch (own_net: lo up first), then exe_run it.
 * Returns the exit status (0 when the agent sent none). */
int exe_spare(struct exe *e, const char *argv0, bool own_net);

/* relay.c: pipes and sandbox dir fd when the spec caps the output (else nothing). */
int exe_relay_setup(struct exe *e, struct berr **err);
/* Copy what pipe i (0 stdout, 1 stderr) holds now, rotating the file at the cap: 1 when
 * it copied (call again), 0 at EOF (every writer gone), -EAGAIN when empty now. */
int exe_relay_pump(struct exe *e, int i);
/* After the task: copy what is left, close the pipes. */
void exe_relay_drain(struct exe *e);

/* supervise.c */
/* pid-1 loop until the task child has ended; returns the executor's exit status. */
int exe_supervise(struct exe *e);

/* template.c */
/* `--template DIR`: build the agent's sandbox template from DIR/spec.json in our mount
 * namespace (iso_template_build) and send an fd of that namespace to the agent over the
 * unix socket on fd 3 (SCM_RIGHTS with "OK"), or "ERROR <errno> <message>". Exit status 0
 * or 127. */
int exe_template(struct exe *e, const char *dir);

/* exec.c */
/* `--exec-pid PID -- ARGV`: run argv in the namespaces of the sandbox whose executor is
 * pid; returns the exit status (the command's, 128+signal, or 127 on launch failure). */
int exe_exec(struct exe *e, pid_t pid, char **argv);

/* main.c */
/* The signal dispositions we change from the defaults the agent starts us with (its spawn
 * sets every one to SIG_DFL before the exec, agentd/launch.c): SIGPIPE ignored (the status
 * pipe's reader may be gone: EPIPE, not death), SIGCHLD at its default again (an inherited
 * SIG_IGN would auto-reap and hide the task's status). We install no handlers (signalfd). */
void exe_signals_own(void);
/* In a child of ours before its execve: the dispositions exe_signals_own changed back to
 * SIG_DFL (an execve keeps ignored signals; caught ones we have none of), every signal
 * unblocked. One call a signal we changed, not one for each of the 64 (issue #18: the task
 * child's path to its exec). */
void exe_signals_default(void);

void exe_done(struct exe *e);
