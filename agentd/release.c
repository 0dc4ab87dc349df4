/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/release.c - an ended container's cgroups: kill what is left in them and remove
 * them, without ever blocking the agent's loop (STYLE.md; systemd: "wait for the proper
 * event, instead of time-based poll loops"). The kill is one write of cgroup.kill (or one
 * freeze/kill/thaw round on v1) and returns at once; on cgroup v2 the kernel says the
 * cgroup emptied by modifying cgroup.events, which we watch with inotify (as systemd does);
 * v1 has no such file, and its pids' release is re-checked on a short backoff timer, each
 * round killing again. rmdir can still fail EBUSY for a moment while the kernel frees the
 * last task: retried on the same timer. A job that never ends is given up after
 * RELEASE_GIVE_UP_MS: the next start's orphan sweep removes the cgroup.
 *
 * Rejected: waiting in the handler (today's v2 kill waited up to 2 s per container, 50
 * kills at once stalled every client for seconds); a thread per release (the loop is the
 * agent's one thread, STYLE.md). lifecycle.c starts a release at a container's end. */
#include <string.h>
#include <sys/inotify.h>
#include <time.h>

#include "agentd/agent.h"

#define RELEASE_GIVE_UP_MS 30000

struct release_job {
    struct agent *a;
    char id[17];
    struct iso_cgroup *cg;
    int wd; /* inotify watch on cgroup.events, -1 on v1 */
    struct event *ev_timer;
    bool begun; /* its first look (release_start's next turn) */
    unsigned rounds;
    uint64_t started_ns;
    struct release_job *next;
};

static void job_free(struct agent *a, struct release_job *j)
{
    for (struct release_job **p = &a->releases; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    if (j->wd >= 0)
        inotify_rm_watch(a->cg_inotify_fd, j->wd);
    if (j->ev_timer)
        event_free(j->ev_timer);
    iso_cgroup_free(j->cg);
    free(j);
}

/* 1, 2, 4 ... 64 ms, then 100 ms: quick for the usual case (the last task exits within a
 * few ms), cheap when something lingers. */
static void job_retry(struct release_job *j)
{
    unsigned ms = j->rounds < 7 ? 1u << j->rounds : 100;
    j->rounds++;
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t) ms * 1000};
    evtimer_add(j->ev_timer, &tv);
}

/* One look at the job: remove the cgroup when it is empty (known to be: release_start has
 * just looked), else wait for the next event. */
static void job_step(struct agent *a, struct release_job *j, bool empty)
{
    _cleanup_berr_ struct berr *err = NULL;
    bool late = now_monotonic_ns() - j->started_ns > (uint64_t) RELEASE_GIVE_UP_MS * 1000000;
    if (empty || !iso_cgroup_populated(j->cg)) {
        int r = iso_cgroup_destroy(j->cg, &err);
        if (r == -EBUSY && !late) {
            job_retry(j);
            return;
        }
        if (r < 0)
            log_warning("container '%s': remove cgroups: %s (the next start retries)", j->id,
                        err ? berr_msg(err) : strerror(-r));
        job_free(a, j);
        return;
    }
    if (late) {
        log_warning("container '%s': processes remain in its cgroups %d s after the kill: left "
                    "for the next start's sweep",
                    j->id, RELEASE_GIVE_UP_MS / 1000);
        job_free(a, j);
        return;
    }
    if (j->wd >= 0) {
        /* v2: cgroup.events tells us; the timer only guards against a missed event */
        struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
        evtimer_add(j->ev_timer, &tv);
        return;
    }
    /* v1: kill again (one round: what forked since), look again soon */
    if (iso_cgroup_kill(j->cg, &err) < 0)
        log_debug("container '%s': kill leftovers: %s", j->id, berr_msg(err));
    job_retry(j);
}

static void job_begin(struct release_job *j);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct release_job *j = arg;
    if (!j->begun)
        job_begin(j);
    else
        job_step(j->a, j, false);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct agent *a = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *) p;
            p += sizeof(*ev) + ev->len;
            for (struct release_job *j = a->releases; j; j = j->next) {
                if (j->wd == ev->wd) {
                    evtimer_del(j->ev_timer);
                    job_step(a, j, false);
                    break;
                }
            }
        }
    }
}

/* The first look, a turn after release_start: the answers of that turn (GET .../wait, whose
 * write the loop makes as soon as it polls) go out before the cgroups' removal, 0.2-0.3 ms
 * of every `berthctl run --wait` here (six rmdirs and the reads before them; issue #18). */
static void job_begin(struct release_job *j)
{
    struct agent *a = j->a;
    j->begun = true;
    /* usually the executor's end took the sandbox with it (pid 1 of its pid namespace) and
     * this finds the cgroup empty; a task that escaped into another namespace is not */
    bool populated = iso_cgroup_populated(j->cg);
    if (populated) {
        _cleanup_berr_ struct berr *err = NULL;
        if (iso_cgroup_kill(j->cg, &err) < 0)
            log_warning("container '%s': kill leftovers: %s", j->id, berr_msg(err));
        agent_fault(a, "finish-after-kill");
        _cleanup_free_ char *events = iso_cgroup_events_path(j->cg);
        if (events && a->cg_inotify_fd >= 0)
            j->wd = inotify_add_watch(a->cg_inotify_fd, events, IN_MODIFY);
    } else {
        agent_fault(a, "finish-after-kill");
    }
    job_step(j->a, j, !populated);
}

void release_start(struct agent *a, struct container *c)
{
    if (!c->cg)
        return;
    struct release_job *j = xzalloc(sizeof(*j));
    j->a = a;
    snprintf(j->id, sizeof(j->id), "%s", c->id);
    j->cg = TAKE_PTR(c->cg);
    j->wd = -1;
    j->started_ns = now_monotonic_ns();
    j->ev_timer = evtimer_new(a->base, on_timer, j);
    j->next = a->releases;
    a->releases = j;
    static const struct timeval next_turn = {0, 0};
    evtimer_add(j->ev_timer, &next_turn);
}

int release_init(struct agent *a, struct berr **err)
{
    a->cg_inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (a->cg_inotify_fd < 0)
        return berr_set(err, errno, "inotify_init1");
    a->ev_cg_inotify = event_new(a->base, a->cg_inotify_fd, EV_READ | EV_PERSIST, on_inotify, a);
    if (!a->ev_cg_inotify || event_add(a->ev_cg_inotify, NULL) < 0)
        return berr_setx(err, ENOMEM, "cannot watch cgroup events");
    return 0;
}

/* The loop has stopped: finish what is pending here, bounded, so that an agent stopped
 * right after a task ended leaves no cgroup behind (what still fails is left for the next
 * start's sweep, with a warning). */
static void job_finish_now(struct release_job *j)
{
    _cleanup_berr_ struct berr *err = NULL;
    int r = iso_cgroup_kill_wait(j->cg, 1000, &err);
    for (int i = 0; r == 0 && i < 200; i++) {
        berr_free(&err);
        if ((r = iso_cgroup_destroy(j->cg, &err)) != -EBUSY)
            break;
        r = 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL); /* the last task is still exiting */
    }
    if (r < 0 || err)
        log_warning("container '%s': remove cgroups at stop: %s (the next start retries)", j->id,
                    err ? berr_msg(err) : strerror(-r));
}

void release_free(struct agent *a)
{
    while (a->releases) {
        job_finish_now(a->releases);
        job_free(a, a->releases);
    }
    if (a->ev_cg_inotify)
        event_free(a->ev_cg_inotify);
    a->ev_cg_inotify = NULL;
    closep(&a->cg_inotify_fd);
    a->cg_inotify_fd = -1;
}
