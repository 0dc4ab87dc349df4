/* agentd/lifecycle.c - the container state machine: admit and launch (STAGING -> STARTING),
 * learn from the executor's status pipe that the task runs (RUNNING), and from the pidfd
 * that the executor ended (FINISHED/FAILED/KILLED with a reason), then kill what is left in
 * the cgroups and remove them. Every transition is stored before it is announced.
 * Async callbacks carry the container id, never a pointer (STYLE.md). */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

struct ctr_ref {
    struct agent *a;
    char id[17];
};

struct waiter {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct ctr_ref *closecb_arg; /* owned; freed when the waiter is answered or gone */
    struct waiter *next;
};

/* Closures for libevent: carry the id; freed with the event (see ctr_event_new). */
static struct ctr_ref *ref_new(struct agent *a, const char *id)
{
    struct ctr_ref *r = xzalloc(sizeof(*r));
    r->a = a;
    snprintf(r->id, sizeof(r->id), "%s", id);
    return r;
}

static void sandbox_path(struct agent *a, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", a->sandboxes_dir, id);
}

static void runtime_path(struct agent *a, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", a->runtime_root, id);
}

static void set_message(struct container *c, const char *msg)
{
    free(c->message);
    c->message = msg ? xstrdup(msg) : NULL;
}

static void free_event(struct event **ev)
{
    if (*ev) {
        struct ctr_ref *r = event_get_callback_arg(*ev);
        event_free(*ev);
        free(r);
        *ev = NULL;
    }
}

static void answer_waiters(struct agent *a, struct container *c)
{
    while (c->waiters) {
        struct waiter *w = c->waiters;
        c->waiters = w->next;
        evhttp_connection_set_closecb(w->conn, NULL, NULL);
        yajl_gen g = yajl_gen_alloc(NULL);
        agent_container_json(a, c, g, false);
        api_reply_json(w->req, 200, g);
        yajl_gen_free(g);
        free(w->closecb_arg);
        free(w);
    }
}

static void waiter_closed(struct evhttp_connection *conn, void *arg)
{
    struct ctr_ref *r = arg;
    struct container *c = agent_find_id(r->a, r->id);
    for (struct waiter **p = c ? &c->waiters : NULL; p && *p; p = &(*p)->next) {
        if ((*p)->conn == conn) {
            struct waiter *w = *p;
            *p = w->next;
            free(w);
            break;
        }
    }
    free(r);
}

void agent_add_waiter(struct agent *a, struct container *c, struct evhttp_request *req)
{
    if (ml_state_terminal(c->state)) {
        yajl_gen g = yajl_gen_alloc(NULL);
        agent_container_json(a, c, g, false);
        api_reply_json(req, 200, g);
        yajl_gen_free(g);
        return;
    }
    struct waiter *w = xzalloc(sizeof(*w));
    w->req = req;
    w->conn = evhttp_request_get_connection(req);
    w->next = c->waiters;
    c->waiters = w;
    w->closecb_arg = ref_new(a, c->id);
    evhttp_connection_set_closecb(w->conn, waiter_closed, w->closecb_arg);
}

/* Kill whatever is left in the cgroups and remove them. */
static void release_cgroups(struct agent *a, struct container *c)
{
    if (!c->cg)
        return;
    _cleanup_berr_ struct berr *err = NULL;
    /* TODO(#13): blocks up to 2 s; the agent's owner replaces it with kill + cgroup.events
     * (v2) / a timer (v1) and a destroy retried on -EBUSY */
    if (iso_cgroup_kill_wait(c->cg, 2000, &err) < 0)
        log_warning("container '%s': kill leftovers: %s", c->id, berr_msg(err));
    berr_free(&err);
    agent_fault(a, "finish-after-kill");
    if (iso_cgroup_destroy(c->cg, &err) < 0)
        log_warning("container '%s': remove cgroups: %s", c->id, berr_msg(err));
    c->cg = iso_cgroup_free(c->cg);
}

static void finish(struct agent *a, struct container *c, enum ml_state st, enum ml_reason reason)
{
    c->state = st;
    c->reason = reason;
    c->finished_at = now_realtime();
    free_event(&c->ev_exit);
    free_event(&c->ev_status);
    free_event(&c->ev_oom);
    free_event(&c->ev_backstop);
    closep(&c->pidfd);
    c->pidfd = -1;
    closep(&c->status_fd);
    c->status_fd = -1;
    sampler_sample(a, c); /* the final figures (an OOM kill, the last CPU seconds) */
    /* the end is recorded before the cgroups go: a crash in between leaves a terminal record
     * and cgroups no live container holds, which the next start removes as orphans */
    store_save(a, c);
    agent_fault(a, "finish-after-record");
    release_cgroups(a, c);
    log_info("container '%s' (%s): %s%s%s%s%s", c->id, c->name, ml_state_name(st),
             reason ? "/" : "", reason ? ml_reason_name(reason) : "",
             c->message && c->message[0] ? ": " : "", c->message ? c->message : "");
    answer_waiters(a, c);
    logs_container_ended(a, c->id);
    gc_container_ended(a);
}

/* The executor's status.json (isolator/status.c), or -ENOENT / -EINVAL. */
static int read_exit_status(struct agent *a, struct container *c, struct iso_status *ret)
{
    char path[4096];
    runtime_path(a, c->id, path, sizeof(path));
    strncat(path, "/status.json", sizeof(path) - strlen(path) - 1);
    _cleanup_free_ char *text = NULL;
    if (read_file_alloc(path, 65536, &text, NULL) < 0)
        return -ENOENT;
    _cleanup_berr_ struct berr *err = NULL;
    return iso_status_from_json(text, ret, &err);
}

/* The executor is gone: decide how the task ended. wstatus is its wait status, or -1 when
 * unknown (an executor re-adopted after a restart is not our child). */
static void executor_ended(struct agent *a, struct container *c, int wstatus)
{
    int code = -1, sig = 0;
    struct iso_status st = {0}, line = {0};
    bool have = read_exit_status(a, c, &st) == 0;
    if (have && st.kind == ISO_STATUS_EXITED)
        code = st.code;
    else if (have && st.kind == ISO_STATUS_SIGNALED)
        sig = st.code;
    _cleanup_free_ char *launch_error =
            have && st.kind == ISO_STATUS_LAUNCH_ERROR ? xstrdup(st.message) : NULL;
    iso_status_done(&st);
    /* the status pipe's ERROR line is the same news, earlier */
    if (!launch_error && iso_status_from_line(c->status_buf, &line) == 0 &&
        line.kind == ISO_STATUS_LAUNCH_ERROR)
        launch_error = TAKE_PTR(line.message);
    iso_status_done(&line);
    uint64_t ooms = c->cg ? iso_cgroup_oom_kills(c->cg) : 0;
    if (launch_error) {
        set_message(c, launch_error);
        finish(a, c, ML_FAILED, ML_REASON_LAUNCH_FAILED);
        return;
    }
    if (!have && wstatus < 0 && !c->kill_requested && ooms == 0) {
        /* no status.json, and its exit status went to its new parent: saying FINISHED or
         * FAILED would be a guess */
        set_message(c, "the task ended and left no exit status (berth-executor's status.json), "
                       "and the executor was not the agent's child (an agent restart came "
                       "between): how it ended is unknown");
        finish(a, c, ML_LOST, ML_REASON_AGENT_RESTARTED_LOST);
        return;
    }
    if (!have && wstatus >= 0) {
        /* no word from the executor: it died itself (SIGKILL by request, OOM, crash) */
        if (WIFSIGNALED(wstatus)) {
            sig = WTERMSIG(wstatus);
        } else if (WIFEXITED(wstatus)) {
            code = WEXITSTATUS(wstatus);
        }
        if (!c->kill_requested) {
            char msg[128];
            snprintf(msg, sizeof(msg), "berth-executor ended without a status (%s %d)",
                     sig ? "signal" : "exit", sig ? sig : code);
            set_message(c, msg);
        }
    }
    c->exit_code = sig ? -1 : code;
    c->signal = sig;
    if (c->kill_requested) {
        finish(a, c, ML_KILLED, ML_REASON_KILLED_BY_REQUEST);
    } else if (ooms > 0 && !(code == 0 && !sig)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "the kernel OOM-killed %llu process(es) at the %s limit",
                 (unsigned long long) ooms, "memory");
        set_message(c, msg);
        finish(a, c, ML_FAILED, ML_REASON_MEMORY_LIMIT);
    } else if (sig) {
        finish(a, c, ML_FAILED, ML_REASON_SIGNALED);
    } else {
        finish(a, c, code == 0 ? ML_FINISHED : ML_FAILED, ML_REASON_EXITED);
    }
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct ctr_ref *r = arg;
    struct container *c = agent_find_id(r->a, r->id);
    if (!c)
        return;
    size_t room = sizeof(c->status_buf) - 1 - c->status_len;
    ssize_t n = room ? read(fd, c->status_buf + c->status_len, room) : 0;
    if (n > 0) {
        c->status_len += (size_t) n;
        c->status_buf[c->status_len] = 0;
        struct iso_status line = {0};
        bool running = c->state == ML_STARTING &&
                       iso_status_from_line(c->status_buf, &line) == 0 &&
                       line.kind == ISO_STATUS_RUNNING;
        iso_status_done(&line); /* an ERROR line is read again when the executor ends */
        if (running) {
            c->state = ML_RUNNING;
            c->started_at = now_realtime();
            if (c->launched_at_ns)
                sampler_note_launch(r->a, (double) (now_monotonic_ns() - c->launched_at_ns) / 1e9);
            store_save(r->a, c);
            agent_fault(r->a, "launch-after-running");
            /* nothing follows RUNNING on the pipe (ERROR only comes before the task's
             * exec): free the fd, a thousand containers need every one */
            free_event(&c->ev_status);
            closep(&c->status_fd);
            c->status_fd = -1;
        }
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* EOF: the executor closed its status fd; the pidfd tells us when it is gone */
    free_event(&c->ev_status);
    closep(&c->status_fd);
    c->status_fd = -1;
}

static void on_exit_ev(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = agent_find_id(r->a, r->id);
    if (!c)
        return;
    int wstatus = -1;
    siginfo_t si = {0};
    /* P_PIDFD reaps exactly this child, never another one that reused its pid */
    int w = waitid(P_PIDFD, (id_t) c->pidfd, &si, WEXITED | WNOHANG);
    if (w == 0 && si.si_pid == 0)
        return; /* spurious wake-up: still running */
    if (w < 0 && errno != ECHILD)
        return;
    /* ECHILD: an executor adopted after an agent restart is not our child; its status file
     * says how the task ended (wstatus stays unknown) */
    if (w == 0 && si.si_code == CLD_EXITED)
        wstatus = W_EXITCODE(si.si_status, 0);
    else if (w == 0 && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED))
        wstatus = si.si_status & 0x7f;
    /* drain a status line written just before exit */
    if (c->status_fd >= 0)
        on_status(c->status_fd, EV_READ, c->ev_status ? event_get_callback_arg(c->ev_status) : r);
    executor_ended(r->a, c, wstatus);
}

static void on_oom(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = agent_find_id(r->a, r->id);
    if (!c || !c->cg)
        return;
    int64_t n = iso_cgroup_oom_ack(c->cg);
    if (n > 0)
        log_info("container '%s': the kernel OOM-killed in the task (%lld so far)", c->id,
                 (long long) n);
}

static void on_backstop(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = agent_find_id(r->a, r->id);
    if (!c || !c->cg || ml_state_terminal(c->state))
        return;
    /* the executor should have SIGKILLed the sandbox by now; do it from outside */
    log_warning("container '%s': still alive after the grace period, killing its cgroup", c->id);
    _cleanup_berr_ struct berr *err = NULL;
    if (iso_cgroup_kill(c->cg, &err) < 0)
        log_warning("container '%s': kill: %s", c->id, berr_msg(err));
}

static struct event *ctr_event_new(struct agent *a, struct container *c, int fd, short what,
                                   event_callback_fn cb)
{
    struct event *ev = event_new(a->base, fd, what, cb, ref_new(a, c->id));
    if (ev && fd >= 0)
        event_add(ev, NULL);
    return ev;
}

static int write_spec(struct agent *a, struct container *c, struct berr **err)
{
    char sandbox[4096], rdir[4096];
    sandbox_path(a, c->id, sandbox, sizeof(sandbox));
    runtime_path(a, c->id, rdir, sizeof(rdir));
    /* 65536 open files, or the agent's own hard limit: without CAP_SYS_RESOURCE (some
     * container hosts drop it even for root) a hard limit can only go down */
    struct rlimit rl;
    uint64_t nofile = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < nofile)
        nofile = rl.rlim_max;
    struct iso_spec s = {
            .id = c->id,
            .hostname = c->name,
            .flags = a->iso_flags,
            .sandbox_dir = sandbox,
            .runtime_dir = rdir,
            .mask_dirs = a->masks,
            .user = c->user,
            .argv = c->argv,
            .env = c->env,
            .volumes = c->volumes,
            .n_volumes = c->n_volumes,
            .nofile = nofile,
            .grace_ms = a->cfg.kill_grace_ms,
            .userns_base = c->userns_base,
            .log_max_bytes = a->cfg.log_max_bytes,
            .log_max_files = a->cfg.log_max_files,
    };
    _cleanup_free_ char *json = iso_spec_to_json(&s);
    _cleanup_close_ int dfd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berr_set(err, errno, "open '%s'", rdir);
    int r = write_file_replace(dfd, "spec.json", json, strlen(json), 0600);
    if (r < 0)
        return berr_set(err, -r, "write '%s/spec.json'", rdir);
    return 0;
}

static void cg_path_json(const char *ctrl, const char *path, void *arg)
{
    yajl_gen g = arg;
    json_kv_str(g, ctrl, path);
}

static char *gen_take(yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *s = xstrndup((const char *) buf, len);
    yajl_gen_free(g);
    return s;
}

/* Create dirs, cgroups and limits, then start the executor. On failure err says why and
 * the caller marks the container LAUNCH_FAILED. */
static int launch_sandbox(struct agent *a, struct container *c, struct berr **err)
{
    char sandbox[4096], rdir[4096];
    sandbox_path(a, c->id, sandbox, sizeof(sandbox));
    runtime_path(a, c->id, rdir, sizeof(rdir));
    if (mkdir(rdir, 0700) < 0)
        return berr_set(err, errno, "create '%s'", rdir);
    if (mkdir(sandbox, 0755) < 0)
        return berr_set(err, errno, "create '%s'", sandbox);
    /* Empty stdout/stderr from the start, so `logs -f` right after the launch has a file to
     * follow before the executor runs (it opens them O_APPEND and chows them to the task's
     * user): under emulation (tests/vm) that can take a second. */
    for (int i = 0; i < 2; i++) {
        char out[4200];
        snprintf(out, sizeof(out), "%s/%s", sandbox, i ? "stderr" : "stdout");
        int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0)
            return berr_set(err, errno, "create '%s'", out);
        close(fd);
    }
    char rootfs[4200];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", rdir);
    if (mkdir(rootfs, 0700) < 0 && errno != EEXIST)
        return berr_set(err, errno, "create '%s'", rootfs);
    if (write_spec(a, c, err) < 0)
        return -EIO;
    agent_fault(a, "launch-after-dirs");
    int r = iso_cgroup_create(a->host, c->id, &c->cg, err);
    if (r < 0)
        return berr_wrap(err, "create cgroups");
    agent_fault(a, "launch-after-cgroup");
    struct iso_limits l = {
            .cpus_millis = c->cpus_millis,
            .cpu_limit_millis = c->cpu_limit_millis,
            .mem_bytes = c->mem_bytes,
            .pids_max = c->pids_max,
    };
    if (iso_cgroup_apply(c->cg, &l, err) < 0)
        return berr_wrap(err, "limit");
    agent_fault(a, "launch-after-limits");
    const struct iso_cg_value *vals;
    size_t n = iso_cgroup_values(c->cg, &vals);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    for (size_t i = 0; i < n; i++)
        json_kv_str(g, vals[i].file, vals[i].value);
    yajl_gen_map_close(g);
    c->limits_json = gen_take(g);
    g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    iso_cgroup_foreach_path(c->cg, cg_path_json, g);
    yajl_gen_map_close(g);
    c->cgroups_json = gen_take(g);
    if (a->iso_flags & ISO_CG_MEM) {
        _cleanup_berr_ struct berr *oerr = NULL;
        int ofd = iso_cgroup_oom_fd(c->cg, &oerr);
        if (ofd >= 0) {
            c->ev_oom = ctr_event_new(a, c, ofd, EV_READ | EV_PERSIST, on_oom);
        } else {
            log_debug("container '%s': no OOM notification: %s", c->id, berr_msg(oerr));
        }
    }
    int pidfd = -1, stfd = -1;
    if (agent_spawn_executor(a, c, &pidfd, &stfd, err) < 0)
        return -EIO;
    /* with the pid, how to recognise it after a restart (pids get reused) */
    c->pid_start = agent_proc_start(c->pid);
    agent_fault(a, "launch-after-exec");
    c->pidfd = pidfd;
    c->status_fd = stfd;
    c->ev_status = ctr_event_new(a, c, stfd, EV_READ | EV_PERSIST, on_status);
    c->ev_exit = ctr_event_new(a, c, pidfd, EV_READ, on_exit_ev);
    return 0;
}

/* A user namespace slice for c when [agent] userns asks for one: the next free one of
 * userns_range (round robin, so a slice a task just left is not handed out at once). 0 when
 * c needs none, -ENOSPC when all are taken by live containers. */
static int userns_pick(struct agent *a, struct container *c, struct berr **err)
{
    if (streq(a->cfg.userns, "none"))
        return 0;
    if (streq(a->cfg.userns, "root")) {
        struct iso_user u;
        _cleanup_berr_ struct berr *uerr = NULL;
        if (iso_user_resolve(c->user, &u, &uerr) < 0 || u.uid != 0)
            return 0;
    }
    uint64_t n = (a->cfg.userns_last - a->cfg.userns_first + 1) / ISO_USERNS_SIZE;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t slot = (a->userns_next + i) % n;
        uint64_t base = a->cfg.userns_first + slot * ISO_USERNS_SIZE;
        bool used = false;
        for (struct container *o = a->containers; o && !used; o = o->next)
            used = o->userns_base == base && !ml_state_terminal(o->state);
        if (!used) {
            c->userns_base = base;
            a->userns_next = slot + 1;
            return 0;
        }
    }
    return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                     "every user namespace slice of [agent] userns_range is in use");
}

int agent_launch(struct agent *a, enum ctr_origin origin, const char *body, size_t len,
                 struct container **ret, struct berr **err)
{
    yajl_val req = json_parse(body, len, err);
    if (!req)
        return -EINVAL;
    struct container *c = xzalloc(sizeof(*c));
    c->pidfd = c->status_fd = -1;
    c->exit_code = -1;
    int r = request_parse_launch(a, req, c, err);
    yajl_tree_free(req);
    if (r < 0) {
        ctr_free(c);
        return r;
    }
    do {
        if (random_hex(c->id, 16) < 0) {
            ctr_free(c);
            return berr_setc(err, EIO, BERR_INTERNAL, "no randomness for an id");
        }
    } while (agent_find_id(a, c->id));
    if (!c->name)
        c->name = xasprintf("c-%.8s", c->id);
    for (struct container *o = a->containers; o; o = o->next) {
        if (streq(o->name, c->name)) {
            r = berr_setc(err, EEXIST, BERR_CONFLICT, "name '%s' is used by container '%s'", c->name,
                          o->id);
            ctr_free(c);
            return r;
        }
    }
    if ((r = policy_check(a, c, origin == CTR_ORIGIN_MASTER, err)) < 0 ||
        (r = resources_admit(a, c, err)) < 0 || (r = userns_pick(a, c, err)) < 0) {
        ctr_free(c);
        return r;
    }
    c->created_at = now_realtime();
    c->launched_at_ns = now_monotonic_ns();
    c->state = ML_STAGING;
    /* the record comes before any side effect (dirs, cgroups, processes), so a crash at any
     * later point leaves something the next start can clean up (recover.c) */
    if (store_save(a, c) < 0) {
        ctr_free(c);
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot record the container in state.db");
    }
    c->next = a->containers;
    a->containers = c;
    a->launches_total++;
    agent_fault(a, "launch-after-record");
    _cleanup_berr_ struct berr *lerr = NULL;
    if (launch_sandbox(a, c, &lerr) < 0) {
        set_message(c, berr_msg(lerr));
        finish(a, c, ML_FAILED, ML_REASON_LAUNCH_FAILED);
    } else {
        c->state = ML_STARTING;
        if (store_save(a, c) < 0) {
            /* the 201 would promise a container the next start cannot know: undo it */
            _cleanup_berr_ struct berr *kerr = NULL;
            (void) iso_cgroup_kill(c->cg, &kerr);
            siginfo_t si;
            (void) waitid(P_PIDFD, (id_t) c->pidfd, &si, WEXITED); /* dead: reap it */
            set_message(c, "cannot record the launch in state.db");
            finish(a, c, ML_FAILED, ML_REASON_LAUNCH_FAILED);
        } else {
            agent_fault(a, "launch-after-starting");
        }
    }
    *ret = c;
    return 0;
}

/* Signals that end a task: the executor gives SIGTERM/INT/HUP/QUIT a grace period, then
 * SIGKILL. Any other signal (USR1, USR2) is only passed on (review M2). */
static bool ends_task(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT || sig == SIGKILL;
}

static int send_to_executor(struct container *c, int sig, uint64_t grace_ms, struct berr **err)
{
    /* SI_QUEUE carries the grace period to the executor, which escalates to SIGKILL */
    siginfo_t si = {0};
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = (int) (grace_ms > INT32_MAX ? INT32_MAX : grace_ms);
    if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, &si, 0) < 0 && errno != ESRCH)
        return berr_set(err, errno, "signal berth-executor of '%s'", c->id);
    return 0;
}

int agent_kill(struct agent *a, struct container *c, int sig, uint64_t grace_ms, struct berr **err)
{
    if (ml_state_terminal(c->state))
        return berr_setc(err, EINVAL, BERR_CONFLICT, "container '%s' is already %s", c->id,
                         ml_state_name(c->state));
    if (!ends_task(sig)) {
        if (c->pidfd < 0)
            return berr_setc(err, ESRCH, BERR_CONFLICT, "container '%s' has no executor to signal",
                             c->id);
        return send_to_executor(c, sig, 0, err);
    }
    /* recorded first: an agent that dies before the task does finishes the kill when it
     * re-adopts the executor (agent_adopt), and reports KILLED either way */
    c->kill_requested = true;
    (void) store_save(a, c);
    agent_fault(a, "kill-after-record");
    if (sig == SIGKILL || c->pidfd < 0) {
        if (c->cg && iso_cgroup_kill(c->cg, err) < 0)
            return berr_wrap(err, "kill container '%s'", c->id);
        agent_fault(a, "kill-after-signal");
        return 0;
    }
    int r = send_to_executor(c, sig, grace_ms, err);
    if (r < 0)
        return r;
    agent_fault(a, "kill-after-signal");
    /* backstop: the executor may not have installed its handlers yet, or may be stuck. A
     * later kill may shorten the grace, never lengthen it (review L7): the executor keeps its
     * earlier deadline too. */
    struct timeval tv = {.tv_sec = (time_t) (grace_ms / 1000) + 2,
                         .tv_usec = (suseconds_t) (grace_ms % 1000) * 1000};
    struct timeval due, now, left;
    if (c->ev_backstop && evtimer_pending(c->ev_backstop, &due)) {
        event_base_gettimeofday_cached(a->base, &now);
        timersub(&due, &now, &left);
        if (timercmp(&left, &tv, <))
            return 0;
    }
    free_event(&c->ev_backstop);
    c->ev_backstop = ctr_event_new(a, c, -1, 0, on_backstop);
    evtimer_add(c->ev_backstop, &tv);
    return 0;
}

int agent_remove(struct agent *a, struct container *c, struct berr **err)
{
    if (!ml_state_terminal(c->state))
        return berr_setc(err, EBUSY, BERR_CONFLICT, "container '%s' is %s: kill it first", c->id,
                         ml_state_name(c->state));
    /* the record goes first: a crash halfway leaves dirs without a record, which the next
     * start removes (orphans.c); the other order would leave a record of a container whose
     * sandbox is half gone */
    if (store_delete(a, c->id) < 0)
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot remove the record of '%s' from state.db",
                         c->id);
    agent_fault(a, "remove-after-record");
    for (struct container **p = &a->containers; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    char path[4096];
    for (int i = 0; i < 2; i++) {
        (i == 0 ? sandbox_path : runtime_path)(a, c->id, path, sizeof(path));
        int r = rm_rf(path);
        if (r < 0)
            log_warning("container '%s': remove '%s': %s (the next start retries)", c->id, path,
                        strerror(-r));
    }
    ctr_free(c);
    return 0;
}

/* Take over a container that was live (STARTING or RUNNING) when the agent last stopped:
 * re-adopt its executor when it still runs (the same process: pid, start time, cgroup),
 * else learn how the task ended from the status.json the executor left, else LOST. */
int agent_adopt(struct agent *a, struct container *c, struct berr **ret_err)
{
    /* Every "cannot tell" (EMFILE, EACCES...) stops here: concluding "gone" from an error
     * would make the sweep kill a running task. */
    _cleanup_berr_ struct berr *err = NULL;
    int r = iso_cgroup_open(a->host, c->id, &c->cg, &err);
    if (r < 0 && r != -ENOENT)
        return berr_setx(ret_err, -r, "container '%s': reopen cgroups: %s", c->id, berr_msg(err));
    if (r < 0)
        c->cg = NULL;
    berr_free(&err);
    /* pidfd first, then the checks (agent_is_executor says why) */
    int pidfd = c->pid > 0 ? (int) syscall(SYS_pidfd_open, c->pid, 0) : -1;
    if (c->pid > 0 && pidfd < 0 && errno != ESRCH)
        return berr_set(ret_err, errno, "container '%s': pidfd_open(%d)", c->id, (int) c->pid);
    if (pidfd >= 0 && (r = agent_is_executor(a, c, pidfd)) <= 0) {
        close(pidfd);
        pidfd = -1;
        if (r < 0)
            return berr_set(ret_err, -r, "container '%s': check executor pid %d in /proc", c->id,
                            (int) c->pid);
    }
    if (pidfd >= 0) {
        c->pidfd = pidfd;
        bool changed = false;
        if (!c->pid_start) {
            c->pid_start = agent_proc_start(c->pid); /* a record of an older agent */
            changed = true;
        }
        if (c->state != ML_RUNNING) {
            /* STARTING: the RUNNING line went to the old agent's pipe; the executor's start
             * is the closest truthful time we have */
            c->state = ML_RUNNING;
            if (c->started_at <= 0)
                c->started_at = agent_ticks_to_realtime(c->pid_start);
            changed = true;
        }
        if (changed)
            (void) store_save(a, c);
        c->ev_exit = ctr_event_new(a, c, pidfd, EV_READ, on_exit_ev);
        if (c->cg && (a->iso_flags & ISO_CG_MEM)) {
            int ofd = iso_cgroup_oom_fd(c->cg, &err);
            if (ofd >= 0)
                c->ev_oom = ctr_event_new(a, c, ofd, EV_READ | EV_PERSIST, on_oom);
        }
        /* debug: with a thousand containers, recover.c's one summary line is what helps */
        log_debug("container '%s' (%s): re-adopted executor pid %d", c->id, c->name, (int) c->pid);
        if (c->kill_requested) {
            /* a kill was under way when the agent stopped; its grace period has had the
             * restart's time: finish it with SIGKILL (the end comes through the pidfd) */
            log_info("container '%s': completing the kill requested before the restart", c->id);
            berr_free(&err);
            if (c->cg ? iso_cgroup_kill(c->cg, &err) < 0
                      : syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
                log_warning("container '%s': kill: %s", c->id,
                            err ? berr_msg(err) : strerror(errno));
        }
        return 0;
    }
    /* gone: status.json says how, or a kill we had recorded, or an OOM kill; else LOST */
    executor_ended(a, c, -1);
    return 0;
}
