/* SPDX-License-Identifier: Apache-2.0 */
/* lb/haproxy.c - the HAProxy that berth-lb drives (docs/lb.md "HAProxy"): master-worker mode
 * (-W, master socket -S run_dir/master.sock, pid file run_dir/haproxy.pid, daemonized so it
 * outlives a restart of berth-lb, which adopts it by its pid file). haproxy.cfg is rendered
 * from the backends; a text that differs from the file is written as haproxy.cfg.new, checked
 * with `haproxy -c` (a child reaped on SIGCHLD: the loop does not wait), then renamed over
 * haproxy.cfg and HAProxy started, or reloaded with SIGUSR2 to its master. A reload starts a
 * new worker, which starts from the servers the old one had (servers.state, written from
 * "show servers state" just before, and again after each change sent to the old worker while
 * the master re-executes); the old one finishes its connections for at most drain_timeout
 * (hard-stop-after). Servers change through runtime.c, never by a reload. Every exchange
 * starts with "show info", whose Pid says which worker took it: old and new share
 * haproxy.sock while a reload hands it over (lb_hap_answered). */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/lbd.h"

extern char **environ;

char *lb_path(const struct lbd *l, const char *name)
{
    return xasprintf("%s/%s", l->cfg.run_dir, name);
}

static pid_t spawn(struct lbd *l, char *const argv[])
{
    (void) l;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        log_msg(LOG_ERR, r, "cannot run '%s'", argv[0]);
        return -1;
    }
    return pid;
}

static bool is_haproxy(pid_t pid)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
    if (read_file_at(AT_FDCWD, path, comm, sizeof(comm)) <= 0)
        return false;
    return str_has_prefix(comm, "haproxy");
}

static pid_t read_pid_file(struct lbd *l)
{
    _cleanup_free_ char *path = lb_path(l, "haproxy.pid");
    char buf[32] = "";
    uint64_t v;
    if (read_file_at(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
        return 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (parse_u64(buf, &v) < 0 || v < 2 || v > INT32_MAX)
        return 0;
    return (pid_t) v;
}

void lb_hap_adopt(struct lbd *l)
{
    pid_t pid = read_pid_file(l);
    if (pid > 0 && is_haproxy(pid) && kill(pid, 0) == 0) {
        l->master_pid = pid;
        l->hap = LB_HAP_RUNNING;
        l->worker_pid = 0;
        log_info("adopted the running HAProxy (master pid %d)", (int) pid);
    }
}

static void start(struct lbd *l)
{
    _cleanup_free_ char *cfg = lb_path(l, "haproxy.cfg");
    _cleanup_free_ char *pidf = lb_path(l, "haproxy.pid");
    _cleanup_free_ char *ms = lb_path(l, "master.sock");
    _cleanup_free_ char *msopt = xasprintf("%s,mode,600", ms);
    char *argv[] = {l->cfg.haproxy, "-W", "-D", "-S", msopt, "-p", pidf, "-f", cfg, NULL};
    l->launcher_pid = spawn(l, argv);
    if (l->launcher_pid < 0) {
        l->launcher_pid = 0;
        l->start_failed_ms = lb_now_ms();
        l->shape_dirty = true;
        return;
    }
    l->hap = LB_HAP_STARTING;
    log_info("starting HAProxy (%s -W -D -f %s)", l->cfg.haproxy, cfg);
}

static void reload(struct lbd *l)
{
    if (kill(l->master_pid, SIGUSR2) < 0) {
        log_msg(LOG_ERR, errno, "cannot reload HAProxy (master pid %d)", (int) l->master_pid);
        l->hap = LB_HAP_NONE;
        l->shape_dirty = true;
        return;
    }
    l->reloads++;
    l->old_worker_pid = l->worker_pid;
    l->worker_pid = 0;
    l->reload_started_ms = lb_now_ms();
    l->hap = LB_HAP_RELOADING;
    l->state_stale = false;
    log_info("reloading HAProxy (master pid %d, the frontends changed; reload %llu)",
             (int) l->master_pid, (unsigned long long) l->reloads);
    /* the new worker starts from servers.state; what changes meanwhile goes to the old
     * worker, which serves until the new one takes the sockets, and into servers.state
     * again (on_refresh); the new worker gets every server once it answers */
    lb_probe_soon(l);
}

void lb_hap_apply_cfg(struct lbd *l)
{
    if (l->check_pid || l->reload_pending || l->hap == LB_HAP_STARTING ||
        l->hap == LB_HAP_RELOADING)
        return; /* again when that is done */
    if (l->start_failed_ms && lb_now_ms() - l->start_failed_ms < 1000)
        return;
    l->shape_dirty = false;
    _cleanup_free_ char *text = lb_render(&l->cfg, &l->bs);
    _cleanup_free_ char *path = lb_path(l, "haproxy.cfg");
    _cleanup_free_ char *old = NULL;
    if (l->hap == LB_HAP_RUNNING && read_file_alloc(path, 64 << 20, &old, NULL) >= 0 &&
        streq(old, text)) {
        log_debug("haproxy.cfg unchanged: no reload");
        return;
    }
    int r;
    _cleanup_free_ char *newp = lb_path(l, "haproxy.cfg.new");
    if ((r = write_file_replace(AT_FDCWD, newp, text, strlen(text), 0644)) < 0) {
        log_msg(LOG_ERR, -r, "cannot write '%s'", newp);
        l->shape_dirty = true;
        l->start_failed_ms = lb_now_ms();
        return;
    }
    char *argv[] = {l->cfg.haproxy, "-c", "-q", "-f", newp, NULL};
    l->check_pid = spawn(l, argv);
    if (l->check_pid < 0) {
        l->check_pid = 0;
        l->shape_dirty = true;
        l->start_failed_ms = lb_now_ms();
        return;
    }
    free(l->pending_cfg);
    l->pending_cfg = xstrdup(text);
}

static void check_done(struct lbd *l, int status)
{
    l->check_pid = 0;
    free(l->pending_cfg);
    l->pending_cfg = NULL;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        log_error("haproxy -c rejected the rendered haproxy.cfg.new (kept for a look): "
                  "HAProxy keeps its configuration");
        return;
    }
    _cleanup_free_ char *newp = lb_path(l, "haproxy.cfg.new");
    _cleanup_free_ char *path = lb_path(l, "haproxy.cfg");
    if (rename(newp, path) < 0) {
        log_msg(LOG_ERR, errno, "cannot rename '%s'", newp);
        return;
    }
    lb_backends_forget(&l->bs); /* a new worker: every slot is sent again */
    if (l->hap == LB_HAP_RUNNING && kill(l->master_pid, 0) == 0) {
        l->reload_pending = true;
        lb_hap_tick(l);
    } else {
        /* a fresh HAProxy: no servers from an old one (a state file of version 1 and no
         * server, so HAProxy does not warn about a missing one) */
        _cleanup_free_ char *state = lb_path(l, "servers.state");
        write_file_replace(AT_FDCWD, state, "1\n", 2, 0600);
        start(l);
    }
}

/* The servers as the running worker has them, for the new worker to start from (global
 * server-state-file): no request meets an empty backend after a reload. */
static void save_state(struct lbd *l, const char *state)
{
    _cleanup_free_ char *path = lb_path(l, "servers.state");
    int r = state ? write_file_replace(AT_FDCWD, path, state, strlen(state), 0600) : -EIO;
    if (r < 0)
        log_msg(LOG_WARNING, -r,
                "cannot save the servers' state to '%s': the new worker starts without what "
                "changed since, until berth-lb sends it every server",
                path);
}

static void on_state(struct lbd *l, bool ok, const char *reply)
{
    save_state(l, ok ? reply : NULL);
    l->reload_pending = false;
    reload(l);
}

/* After the launcher: HAProxy runs once its pid file names a live master. */
static void check_started(struct lbd *l)
{
    pid_t m = read_pid_file(l);
    if (m > 0 && kill(m, 0) == 0 && is_haproxy(m)) {
        l->master_pid = m;
        l->worker_pid = 0;
        l->launched_ms = 0;
        l->hap = LB_HAP_RUNNING;
        log_info("HAProxy runs (master pid %d)", (int) m);
    } else if (lb_now_ms() - l->launched_ms > 10000) {
        /* not started again: one that came up late would share the ports (SO_REUSEPORT) */
        log_error("HAProxy's pid file names no running master 10 s after its start: see its "
                  "messages above; berth-lb waits for it");
        l->launched_ms = lb_now_ms();
    }
}

void lb_hap_on_child(struct lbd *l, pid_t pid, int status)
{
    if (pid == l->check_pid) {
        check_done(l, status);
    } else if (pid == l->launcher_pid) {
        l->launcher_pid = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            log_error("HAProxy did not start (status 0x%x): again in 1 s", status);
            l->hap = LB_HAP_NONE;
            l->shape_dirty = true;
            l->start_failed_ms = lb_now_ms();
            return;
        }
        /* the launcher exits once its master forked; the master writes the pid file */
        l->launched_ms = lb_now_ms();
        check_started(l);
    }
    lb_sync_soon(l);
}

/* The pid in a reply that starts with "show info"'s, 0 if none. */
static pid_t info_pid(const char *reply)
{
    const char *p = strstr(reply, "\nPid: ");
    if (!p && str_has_prefix(reply, "Pid: "))
        p = reply - 1;
    uint64_t v = 0;
    if (!p || parse_u64(strndupa(p + 6, strcspn(p + 6, "\r\n")), &v) < 0 || v > INT32_MAX)
        return 0;
    return (pid_t) v;
}

bool lb_hap_answered(struct lbd *l, const char *reply)
{
    pid_t pid = info_pid(reply);
    if (pid <= 0)
        return true; /* no Pid (the line refused whole, its errors logged): nothing to learn */
    if (l->hap != LB_HAP_RUNNING && l->hap != LB_HAP_RELOADING)
        return false;
    if (l->hap == LB_HAP_RELOADING && pid == l->old_worker_pid)
        return true; /* the new worker has not taken the socket yet: the old one serves */
    if (l->hap == LB_HAP_RUNNING && pid == l->worker_pid)
        return true;
    if (l->hap == LB_HAP_RUNNING && pid == l->old_worker_pid)
        return false; /* the reload's old worker, answering while it hands the socket over */
    if (l->hap == LB_HAP_RELOADING)
        log_info("HAProxy reloaded: worker pid %d (was %d)", (int) pid, (int) l->old_worker_pid);
    else
        log_info("HAProxy worker pid %d", (int) pid);
    l->worker_pid = pid;
    l->hap = LB_HAP_RUNNING;
    l->state_stale = false;
    return false;
}

/* Every slot to the worker again, now. */
static void resend_all(struct lbd *l)
{
    lb_backends_forget(&l->bs);
    lb_sync_soon(l);
}

/* "show info": the worker that answers. */
static void on_info(struct lbd *l, bool ok, const char *reply)
{
    if (ok && !lb_hap_answered(l, reply))
        resend_all(l); /* a new worker */
    /* while reloading, the next one in a few ms: runtime.c's finish */
}

/* "show info;show servers state" while the master re-executes for a reload: the servers as
 * the old worker has them now, with what was pushed to it since the SIGUSR2, for the new
 * master to read if it has not yet (a re-execution that takes longer than berth-apps'
 * kill_delay would otherwise start the new worker on instances already gone). */
static void on_refresh(struct lbd *l, bool ok, const char *reply)
{
    if (!ok)
        return; /* state_stale: again */
    if (!lb_hap_answered(l, reply)) {
        resend_all(l); /* the new worker, found */
        return;
    }
    const char *state = strstr(reply, "\n1\n# be_id");
    if (l->hap != LB_HAP_RELOADING || !state)
        return;
    l->state_stale = false;
    save_state(l, state + 1);
}

void lb_hap_tick(struct lbd *l)
{
    uint64_t now = lb_now_ms();
    if (l->hap == LB_HAP_STARTING && !l->launcher_pid && l->launched_ms)
        check_started(l);
    if ((l->hap == LB_HAP_RUNNING || l->hap == LB_HAP_RELOADING) &&
        now - l->last_alive_check_ms >= 500) {
        l->last_alive_check_ms = now;
        if (kill(l->master_pid, 0) < 0 || !is_haproxy(l->master_pid)) {
            log_error("HAProxy's master (pid %d) is gone: starting it again", (int) l->master_pid);
            l->hap = LB_HAP_NONE;
            l->master_pid = l->worker_pid = 0;
            l->shape_dirty = true;
        }
    }
    if (l->hap == LB_HAP_RELOADING && now - l->reload_started_ms > 10000) {
        log_warning("no new HAProxy worker 10 s after the reload: keeping the old one");
        l->hap = LB_HAP_RUNNING;
        l->worker_pid = l->old_worker_pid = 0; /* whichever answers */
    }
    if (l->reload_pending && l->hap == LB_HAP_RUNNING) {
        if (!l->rt)
            lb_rt_send(l, "show servers state", on_state);
        return;
    }
    if (l->hap == LB_HAP_RELOADING && l->state_stale && !l->rt)
        lb_rt_send(l, "show info;show servers state", on_refresh);
    if ((l->hap == LB_HAP_RUNNING && !l->worker_pid) || l->hap == LB_HAP_RELOADING)
        if (!l->rt && (l->hap == LB_HAP_RELOADING || now - l->rt_fail_ms >= 100))
            lb_rt_send(l, "show info", on_info);
}

void lb_hap_stop(struct lbd *l)
{
    if (l->check_pid > 0) {
        kill(l->check_pid, SIGKILL);
        waitpid(l->check_pid, NULL, 0);
    }
    if (l->launcher_pid > 0)
        waitpid(l->launcher_pid, NULL, 0);
    if (!l->cfg.keep_haproxy)
        lb_hap_soft_stop(l);
}

int lb_hap_soft_stop(struct lbd *l)
{
    pid_t pid = l->master_pid ? l->master_pid : read_pid_file(l);
    if (pid <= 0 || !is_haproxy(pid))
        return 0;
    log_info("stopping HAProxy (master pid %d): its workers finish their connections", (int) pid);
    return kill(pid, SIGUSR1) < 0 ? -errno : 1; /* soft stop */
}
