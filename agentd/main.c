/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/main.c - berth-agent's entry point: reads the configuration, measures the node,
 * opens the cgroup parent and state.db, serves the local API on one libevent loop, and on
 * SIGTERM/SIGINT frees everything and leaves the tasks running (they outlive an agent
 * restart; the next agent re-adopts them, see recover.c). */
#include <event2/event.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "agentd/agent.h"
#include "agentd/ready.h"

static const char usage[] =
        "Usage: berth-agent [--config=FILE] [--KEY=VALUE ...] [--SECTION.KEY=VALUE ...]\n"
        "\n"
        "The berth node agent: runs tasks in sandboxes of namespaces and cgroups and serves\n"
        "the local API (docs/api.md) on [agent] listen.\n"
        "\n"
        "  --config=FILE          configuration file (default /etc/berth/agent.conf; a missing\n"
        "                         default file is fine), plus FILE.d/NAME.conf\n"
        "  --KEY=VALUE            set [agent] KEY, e.g. --work_dir=/tmp/w --listen=unix:/tmp/s\n"
        "  --SECTION.KEY=VALUE    set any key, e.g. --reserved.mem=1GiB --resources.cpus=4\n"
        "  --print-default-config print the annotated default agent.conf and exit\n"
        "  --recover=cleanup      at start, kill every task this agent left and start empty\n"
        "                         (default reconnect: re-adopt them; docs/design/recovery.md)\n"
        "  --help, --version\n"
        "\n"
        "Every key is listed in docs/config.md. Flags win over the files.\n";

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void) what;
    struct agent *a = arg;
    log_info("received signal %d, stopping (tasks keep running)", (int) sig);
    event_base_loopexit(a->base, NULL);
}

static char *find_executor(const char *configured)
{
    if (configured && configured[0])
        return xstrdup(configured);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            _cleanup_free_ char *p = xasprintf("%s/berth-executor", self);
            if (access(p, X_OK) == 0)
                return TAKE_PTR(p);
        }
    }
    return xstrdup("/usr/libexec/berth/berth-executor");
}

static int node_id(struct agent *a)
{
    _cleanup_free_ char *path = xasprintf("%s/node-id", a->cfg.work_dir);
    if (read_file_at(AT_FDCWD, path, a->node_id, sizeof(a->node_id)) == 32)
        return 0;
    if (random_hex(a->node_id, 32) < 0)
        return -EIO;
    _cleanup_close_ int dfd = open(a->cfg.work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return dfd < 0 ? -errno : write_file_atomic(dfd, "node-id", a->node_id, 32, 0644);
}

static int by_length(const void *x, const void *y)
{
    size_t a = strlen(*(char *const *) x), b = strlen(*(char *const *) y);
    return (a > b) - (a < b);
}

static void masks_add(char ***masks, size_t *n, char *path_take)
{
    for (size_t i = 0; i < *n; i++) {
        if (streq((*masks)[i], path_take)) {
            free(path_take);
            return;
        }
    }
    *masks = xrealloc(*masks, (*n + 2) * sizeof(char *));
    (*masks)[(*n)++] = path_take;
    (*masks)[*n] = NULL;
}

int agent_masks_init(struct agent *a, struct berr **err)
{
    _cleanup_free_ char *sockdir = xstrdup(a->socket_path ? a->socket_path : "");
    char *slash = strrchr(sockdir, '/');
    if (slash)
        *slash = 0;
    /* berth's own: must exist (the agent made or read them) */
    const char *want[] = {a->cfg.work_dir, sockdir, a->cfg.token_file, a->cfg.api_token_file};
    size_t n = 0;
    a->masks = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        if (!want[i] || !want[i][0])
            continue;
        char *real = realpath(want[i], NULL);
        if (!real)
            return berr_set(err, errno, "resolve '%s'", want[i]);
        masks_add(&a->masks, &n, real);
    }
    /* [agent] mask_paths: the host's secrets, where they exist (globs: host keys) */
    _cleanup_free_ char *list = xstrdup(a->cfg.mask_paths);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        glob_t gl;
        if (glob(tok, GLOB_NOSORT, NULL, &gl) != 0)
            continue; /* no match: nothing to hide */
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            char *real = realpath(gl.gl_pathv[i], NULL);
            if (real)
                masks_add(&a->masks, &n, real);
        }
        globfree(&gl);
    }
    qsort(a->masks, n, sizeof(char *), by_length);
    return 0;
}

/* A file a key names must be there and readable (a token: one line of >= 16 characters):
 * said now, with the key's file:line, before recovery touches anything (review L4). */
static int preflight_file(struct agent *a, const char *key, const char *path, bool token,
                          struct berr **err)
{
    if (!path[0])
        return 0;
    _cleanup_free_ char *text = NULL;
    int r = read_file_alloc(path, 1 << 20, &text, NULL);
    if (r < 0)
        return berr_setx(err, -r, "%s: [agent] %s '%s': %s", cfg_where(&a->cfg, "agent", key), key,
                         path, strerror(-r));
    if (token && strcspn(text, "\r\n") < 16)
        return berr_setx(err, EINVAL, "%s: [agent] %s '%s': a token has at least 16 characters",
                         cfg_where(&a->cfg, "agent", key), key, path);
    return 0;
}

static int preflight(struct agent *a, struct berr **err)
{
    struct cfg_agent *cfg = &a->cfg;
    if (preflight_file(a, "token_file", cfg->token_file, true, err) < 0 ||
        preflight_file(a, "api_token_file", cfg->api_token_file, true, err) < 0 ||
        preflight_file(a, "master_ca", cfg->master_ca, false, err) < 0)
        return -EINVAL;
    struct iso_user u;
    _cleanup_berr_ struct berr *uerr = NULL;
    if (iso_user_resolve(cfg->task_user, &u, NULL, &uerr) < 0)
        return berr_setx(err, EINVAL, "%s: [agent] task_user: %s",
                         cfg_where(cfg, "agent", "task_user"), berr_msg(uerr));
    /* a unix socket path has room for 107 bytes */
    _cleanup_free_ char *listen = xstrdup(cfg->listen);
    char *save = NULL;
    for (char *tok = strtok_r(listen, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (str_has_prefix(tok, "unix:") && strlen(tok + 5) > 107)
            return berr_setx(err, ENAMETOOLONG,
                             "%s: [agent] listen: socket path '%s' has %zu bytes, at most 107",
                             cfg_where(cfg, "agent", "listen"), tok + 5, strlen(tok + 5));
    }
    return 0;
}

/* Take work_dir's lock. The agent named in it may be gone while the lock is still held for
 * a moment: a child it was cloning shares its fd table, and so the lock, until the child's
 * first call (launch.c), and a SIGKILL can fall inside that window (a restart right after
 * it failed "in use" in CI, tests/system/test_recovery_faults.py). So when that agent is
 * gone, wait for the lock up to 5 s; a live one is refused at once. Before the loop runs:
 * the wait blocks nothing else. */
static int lock_work_dir(struct agent *a, const char *lock, struct berr **err)
{
    a->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lock_fd < 0)
        return berr_set(err, errno, "open '%s'", lock);
    for (int i = 0; flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0; i++) {
        if (errno != EWOULDBLOCK)
            return berr_set(err, errno, "lock '%s'", lock);
        char pid[32] = "?";
        (void) !pread(a->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[strcspn(pid, "\n")] = 0;
        uint64_t holder = 0;
        bool gone = parse_u64(pid, &holder) == 0 && holder > 0 && holder <= INT32_MAX &&
                    kill((pid_t) holder, 0) < 0 && errno == ESRCH;
        if (!gone || i == 500)
            return berr_setx(
                    err, EBUSY, "work_dir '%s' is in use by another berth-agent (pid %s%s)",
                    a->cfg.work_dir, pid, gone ? ", gone, but its lock is still held" : "");
        if (i == 0)
            log_info("work_dir's lock is still held after berth-agent pid %s ended: waiting", pid);
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return 0;
}

static int setup(struct agent *a, struct berr **err)
{
    struct cfg_agent *cfg = &a->cfg;
    if (iso_parse_isolation(cfg->isolation, &a->iso_flags, err) < 0)
        return berr_wrap(err, "%s: [agent] isolation", cfg_where(cfg, "agent", "isolation"));
    int r = preflight(a, err);
    if (r < 0 || (r = agent_spawn_init(err)) < 0)
        return r;
    r = mkdir_p(cfg->work_dir, 0700);
    if (r < 0)
        return berr_set(err, -r, "create work_dir '%s'", cfg->work_dir);
    /* one agent per work_dir (review M10): a second would manage the same executors */
    _cleanup_free_ char *lock = xasprintf("%s/agent.lock", cfg->work_dir);
    if ((r = lock_work_dir(a, lock, err)) < 0)
        return r;
    char me[32];
    int n = snprintf(me, sizeof(me), "%d\n", (int) getpid());
    if (ftruncate(a->lock_fd, 0) < 0 || pwrite(a->lock_fd, me, (size_t) n, 0) != n)
        return berr_set(err, errno, "write '%s'", lock);
    /* Canonical from here on: the executor hides work_dir from tasks by this path inside
     * the new root, where a symlink in it would point back at the host. */
    char *real = realpath(cfg->work_dir, NULL);
    if (!real)
        return berr_set(err, errno, "work_dir '%s'", cfg->work_dir);
    free(cfg->work_dir);
    cfg->work_dir = real;
    a->sandboxes_dir = xasprintf("%s/sandboxes", cfg->work_dir);
    a->runtime_root = xasprintf("%s/containers", cfg->work_dir);
    if ((r = mkdir_p(a->sandboxes_dir, 0700)) < 0 || (r = mkdir_p(a->runtime_root, 0700)) < 0)
        return berr_set(err, -r, "create '%s'", r == 0 ? a->runtime_root : a->sandboxes_dir);
    /* 0700 also on existing dirs: state.db and spec.json hold the tasks' env, master.key
     * the agent's key; a root task may leave device nodes or setuid files in its sandbox;
     * no host user may walk there (tasks reach their sandbox through a bind mount) */
    if (chmod(cfg->work_dir, 0700) < 0 || chmod(a->sandboxes_dir, 0700) < 0 ||
        chmod(a->runtime_root, 0700) < 0)
        return berr_set(err, errno, "chmod '%s'", cfg->work_dir);
    /* each container's dirs are a hierarchy of their own: spread over ext4's block groups
     * (docs/design.md, the launch path), ready.c's too; other file systems lack the flag */
    const char *tops[] = {a->sandboxes_dir, a->runtime_root};
    for (size_t i = 0; i < ARRAY_SIZE(tops); i++)
        if ((r = dir_set_topdir(tops[i])) < 0)
            log_warning("'%s': cannot mark it a top directory (chattr +T): %s", tops[i],
                        strerror(-r));
    if ((r = node_id(a)) < 0)
        return berr_set(err, -r, "write '%s/node-id'", cfg->work_dir);
    /* [agent] hostname: two agents on one host (tests, a lab) need names of their own */
    if (cfg->hostname && *cfg->hostname)
        snprintf(a->hostname, sizeof(a->hostname), "%s", cfg->hostname);
    else if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
        snprintf(a->hostname, sizeof(a->hostname), "localhost");
    a->executor_path = find_executor(cfg->executor);
    if (access(a->executor_path, X_OK) < 0)
        return berr_set(err, errno, "executor '%s'", a->executor_path);
    if (iso_host_open("/sys/fs/cgroup", cfg->cgroup_parent, a->iso_flags, NULL, &a->host, err) < 0)
        return berr_wrap(err, "cgroup_parent '%s'", cfg->cgroup_parent);
    /* executors of an earlier run may still be in it */
    _cleanup_berr_ struct berr *oerr = NULL;
    r = iso_cgroup_open(a->host, AGENT_SUPERVISOR_CGROUP, &a->supervisor, &oerr);
    if (r == -ENOENT)
        r = iso_cgroup_create(a->host, AGENT_SUPERVISOR_CGROUP, &a->supervisor, err);
    else if (r < 0)
        berr_setx(err, -r, "%s", berr_msg(oerr));
    if (r < 0)
        return berr_wrap(err, "cgroup_parent '%s': supervisor cgroup", cfg->cgroup_parent);
    if ((r = resources_measure(a, err)) < 0 || (r = net_init(a, err)) < 0)
        return r;
    /* tasks together can never eat the host's reservation, even if our accounting were wrong */
    struct iso_limits all = {
            .cpus_millis = a->allocatable.v[RES_CPUS],
            .cpu_limit_millis = a->allocatable.v[RES_CPUS],
            .mem_bytes = a->allocatable.v[RES_MEM],
            .pids_max = a->allocatable.v[RES_PIDS],
    };
    if (iso_host_set_limits(a->host, &all, err) < 0)
        return berr_wrap(err, "limit the cgroup parent to allocatable");
    a->base = event_base_new();
    if (!a->base)
        return berr_setx(err, ENOMEM, "event_base_new failed");
    if ((r = logs_init(a, err)) < 0 || (r = release_init(a, err)) < 0 ||
        (r = trash_init(a, err)) < 0 || (r = ready_init(a, err)) < 0)
        return r;
    agent_fault_init(a);
    if ((r = agent_recover(a, err)) < 0) /* opens state.db */
        return r;
    gc_start(a);
    if ((r = health_start(a, err)) < 0)
        return r;
    if ((r = sampler_start(a, err)) < 0)
        return r;
    ports_watch_start(a);
    if (api_start(a, err) < 0)
        return berr_wrap(err, "listen '%s'", cfg->listen);
    if ((r = agent_masks_init(a, err)) < 0 || (r = template_init(a, err)) < 0)
        return r;
    /* executors ahead of the launches, of the default network mode's namespaces */
    spare_start(a, agent_launch_ns(a, iso_net_mode_from_name(cfg->network)));
    if (link_start(a, err) < 0)
        return berr_wrap(err, "master link '%s'", cfg->master);
    a->ev_sigterm = evsignal_new(a->base, SIGTERM, on_stop_signal, a);
    a->ev_sigint = evsignal_new(a->base, SIGINT, on_stop_signal, a);
    event_add(a->ev_sigterm, NULL);
    event_add(a->ev_sigint, NULL);
    return 0;
}

static void teardown(struct agent *a)
{
    /* the launches whose executors are being spawned go on to STARTING (or FAILED), so the
     * flush records them and answers their 201s */
    spare_stop(a);
    agent_spawner_stop(a);
    if (a->batch)
        (void) store_flush(a); /* what the last turn queued, and the answers waiting on it */
    link_stop(a);
    api_stop(a);
    exec_free_all(a);
    logs_free(a);
    sampler_stop(a);
    gc_stop(a);
    ports_watch_stop(a);
    health_stop(a);
    template_free(a); /* its events: before the base */
    ctr_free_all(a);
    net_free(a);
    release_free(a);
    ready_free(a);
    trash_free(a);
    if (a->ev_sigterm)
        event_free(a->ev_sigterm);
    if (a->ev_sigint)
        event_free(a->ev_sigint);
    if (a->host) {
        /* both only when empty: executors outlive the agent, and so do their cgroups */
        if (a->supervisor && !iso_cgroup_populated(a->supervisor)) {
            _cleanup_berr_ struct berr *err = NULL;
            (void) iso_cgroup_destroy(a->supervisor, &err);
        }
        a->supervisor = iso_cgroup_free(a->supervisor);
        iso_host_remove(a->host);
        a->host = iso_host_free(a->host);
    }
    store_checkpoints_stop(a); /* its connection first: the loop's closes last */
    store_close(a);
    if (a->base)
        event_base_free(a->base);
    for (char **m = a->masks; m && *m; m++)
        free(*m);
    free(a->masks);
    free(a->executor_path);
    free(a->sandboxes_dir);
    free(a->runtime_root);
    free(a->fault_point);
    closep(&a->lock_fd);
    cfg_done(&a->cfg);
}

/* How much higher the loop's priority than the agent's other threads and children (nice) */
#define LOOP_NICE_BY 10

int main(int argc, char **argv)
{
    log_set_ident("berth-agent");
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (streq(argv[i], "--version")) {
            printf("berth-agent %s\n", BERTH_VERSION);
            return 0;
        }
        if (streq(argv[i], "--print-default-config")) { /* the packages' agent.conf */
            fputs(cfg_default_text, stdout);
            return 0;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(log_libevent);               /* libevent's warnings, rate-limited */
    _cleanup_free_ char *notify = notify_socket_take(); /* Type=notify (common/notify.c) */
    struct agent a = {.inotify_fd = -1,
                      .cg_inotify_fd = -1,
                      .proc_stat_fd = -1,
                      .meminfo_fd = -1,
                      .netns_fd = -1,
                      .template_fd = -1,
                      .mounts_fd = -1,
                      .lock_fd = -1};
    _cleanup_berr_ struct berr *err = NULL;
    if (cfg_load(&a.cfg, argc, argv, &err) < 0) {
        log_error("%s", berr_msg(err));
        cfg_done(&a.cfg);
        return 1;
    }
    log_set_level_name(a.cfg.log_level);
    int rc = 0;
    if (setup(&a, &err) < 0) {
        log_error("cannot start: %s", berr_msg(err));
        rc = 1;
    } else {
        log_info("serving on '%s' (cgroup v%d, work_dir '%s')", a.socket_path,
                 (int) iso_host_version(a.host), a.cfg.work_dir);
        if (notify_send(notify, "READY=1") < 0)
            log_warning("cannot notify '%s' that the agent is ready", notify);
        /* The loop answers, and hands out the launches its helpers (the spawner, the spares,
         * the threads) work on: it runs before them. At their priority, a burst kept it off
         * both CPUs for 4-6 ms of its turns (issue #18); they, the executors and every task
         * run at the process's own (thread_priority_restore). */
        int pr = thread_raise_priority(LOOP_NICE_BY);
        if (pr < 0)
            log_warning("the loop runs at the agent's priority: nice: %s", strerror(-pr));
        event_base_dispatch(a.base);
        notify_send(notify, "STOPPING=1");
    }
    teardown(&a);
    return rc;
}
