/* SPDX-License-Identifier: Apache-2.0 */
/* executor/supervise.c - berth-executor after the task has exec'd: as pid 1 of the
 * sandbox it reaps every process, forwards the agent's signals to all of them, enforces
 * the SIGTERM -> SIGKILL grace period with a timerfd, and when the task child ends kills
 * what is left and writes status.json (status.c). launch.c got us here. */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "executor/executor.h"

/* Send sig to every process of the sandbox. As pid 1 of a pid namespace, kill(-1) reaches
 * all of them (not us), including daemons that left the task's session. Without a pid
 * namespace kill(-1) would hit the whole host, so only the task's process group gets it. */
static void sup_kill_all(struct exe *e, int sig)
{
    if (e->pid1)
        (void) kill(-1, sig);
    else if (e->task_pid > 0)
        (void) kill(-e->task_pid, sig);
}

static void sup_arm_grace(struct exe *e, uint64_t ms)
{
    if (e->timer_fd < 0) {
        e->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (e->timer_fd < 0) {
            log_msg(LOG_WARNING, errno, "timerfd: killing now instead of after the grace");
            sup_kill_all(e, SIGKILL);
            return;
        }
    }
    /* a second kill may shorten the grace, never lengthen it (review L7) */
    struct itimerspec cur;
    if (timerfd_gettime(e->timer_fd, &cur) == 0 && (cur.it_value.tv_sec || cur.it_value.tv_nsec) &&
        (uint64_t) cur.it_value.tv_sec * 1000 + (uint64_t) cur.it_value.tv_nsec / 1000000 <= ms)
        return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t) (ms / 1000);
    its.it_value.tv_nsec = (long) (ms % 1000) * 1000000L;
    if (timerfd_settime(e->timer_fd, 0, &its, NULL) < 0) {
        log_msg(LOG_WARNING, errno, "timerfd_settime: killing now");
        sup_kill_all(e, SIGKILL);
    }
}

/* A signal from the agent (or anyone allowed to signal us). With sigqueue(3) or
 * pidfd_send_signal and si_code SI_QUEUE, the value is the grace period in ms (0 = SIGKILL
 * right after the signal); otherwise the spec's grace applies. */
static void sup_forward(struct exe *e, const struct signalfd_siginfo *si)
{
    int sig = (int) si->ssi_signo;
    log_info("forwarding signal %d to the sandbox", sig);
    sup_kill_all(e, sig);
    if (sig != SIGTERM && sig != SIGINT && sig != SIGQUIT && sig != SIGHUP)
        return;
    uint64_t grace = e->spec.grace_ms ? e->spec.grace_ms : EXE_DEFAULT_GRACE_MS;
    if (si->ssi_code == SI_QUEUE && si->ssi_int >= 0)
        grace = (uint64_t) si->ssi_int;
    if (grace == 0)
        sup_kill_all(e, SIGKILL);
    else
        sup_arm_grace(e, grace);
}

/* Reap without blocking. Returns true once the task child itself has been reaped. */
static bool sup_reap(struct exe *e, int *task_status)
{
    bool done = false;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        if (pid == e->task_pid) {
            *task_status = st;
            done = true;
        }
    }
    return done;
}

/* The task has ended: nothing may outlive it in the sandbox. As pid 1 we wait for every
 * process (they all get SIGKILL); otherwise reparented orphans outside the task's group
 * may not die from our kill, so we only collect what is already dead. */
static void sup_finish(struct exe *e)
{
    sup_kill_all(e, SIGKILL);
    if (e->pid1) {
        for (;;) {
            pid_t pid = waitpid(-1, NULL, 0);
            if (pid < 0 && errno == EINTR)
                continue;
            if (pid < 0)
                break; /* ECHILD: the namespace is empty but for us */
        }
    } else {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
    exe_relay_drain(e); /* every writer is gone: the rest of the output, up to EOF */
}

int exe_supervise(struct exe *e)
{
    int task_status = 0;
    for (;;) {
        /* unused slots have fd -1, which poll skips */
        struct pollfd pfd[4] = {
                {.fd = e->sig_fd, .events = POLLIN},
                {.fd = e->timer_fd, .events = POLLIN},
                {.fd = e->relay[0].rd, .events = POLLIN},
                {.fd = e->relay[1].rd, .events = POLLIN},
        };
        int n = poll(pfd, 4, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* cannot happen with valid fds; never report a made-up status */
            log_msg(LOG_ERR, errno, "poll: killing the sandbox");
            sup_kill_all(e, SIGKILL);
            while (waitpid(e->task_pid, &task_status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        if (e->timer_fd >= 0 && (pfd[1].revents & POLLIN)) {
            uint64_t ticks;
            (void) !read(e->timer_fd, &ticks, sizeof(ticks));
            log_info("grace period over: killing the sandbox");
            sup_kill_all(e, SIGKILL);
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[2 + i].revents && exe_relay_pump(e, i) == 0)
                closep(&e->relay[i].rd); /* EOF: the task and its children closed it */
        }
        if (!(pfd[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        bool task_done = false;
        while (read(e->sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
            if (si.ssi_signo == SIGCHLD)
                task_done |= sup_reap(e, &task_status);
            else
                sup_forward(e, &si);
        }
        /* SIGCHLDs coalesce; reaping once more after the queue is empty loses nothing. */
        task_done |= sup_reap(e, &task_status);
        if (task_done)
            break;
    }
    sup_finish(e);
    return exe_report_exit(e, task_status);
}
