/* agentd/main.c - berth-agent's entry point: reads the configuration, measures the node,
 * opens the cgroup parent and state.db, serves the local API on one libevent loop, and on
 * SIGTERM/SIGINT frees everything and leaves the tasks running (they outlive an agent
 * restart; the next agent re-adopts them, see recover.c). */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "agentd/agent.h"

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

int agent_masks_init(struct agent *a, struct berr **err)
{
    _cleanup_free_ char *sockdir = xstrdup(a->socket_path ? a->socket_path : "");
    char *slash = strrchr(sockdir, '/');
    if (slash)
        *slash = 0;
    const char *want[] = {a->cfg.work_dir, sockdir, a->cfg.token_file};
    a->masks = xcalloc(ARRAY_SIZE(want) + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        if (!want[i] || !want[i][0])
            continue;
        char *real = realpath(want[i], NULL);
        if (!real)
            return berr_set(err, errno, "resolve '%s'", want[i]);
        a->masks[n++] = real;
    }
    qsort(a->masks, n, sizeof(char *), by_length);
    return 0;
}

static int setup(struct agent *a, struct berr **err)
{
    struct cfg_agent *cfg = &a->cfg;
    if (iso_parse_isolation(cfg->isolation, &a->iso_flags, err) < 0)
        return berr_wrap(err, "[agent] isolation");
    if (mkdir_p(cfg->work_dir, 0755) < 0)
        return berr_set(err, errno, "create work_dir '%s'", cfg->work_dir);
    /* Canonical from here on: the executor hides work_dir from tasks by this path inside
     * the new root, where a symlink in it would point back at the host. */
    char *real = realpath(cfg->work_dir, NULL);
    if (!real)
        return berr_set(err, errno, "work_dir '%s'", cfg->work_dir);
    free(cfg->work_dir);
    cfg->work_dir = real;
    a->sandboxes_dir = xasprintf("%s/sandboxes", cfg->work_dir);
    a->runtime_root = xasprintf("%s/containers", cfg->work_dir);
    if (mkdir_p(a->sandboxes_dir, 0700) < 0 || mkdir_p(a->runtime_root, 0700) < 0)
        return berr_set(err, errno, "create '%s'", a->sandboxes_dir);
    /* 0700 also on an existing dir: a root task may leave device nodes or setuid files in
     * its sandbox, and no host user may walk there (tasks reach it through a bind mount) */
    if (chmod(a->sandboxes_dir, 0700) < 0 || chmod(a->runtime_root, 0700) < 0)
        return berr_set(err, errno, "chmod '%s'", a->sandboxes_dir);
    if (node_id(a) < 0)
        return berr_set(err, errno, "write '%s/node-id'", cfg->work_dir);
    if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
        snprintf(a->hostname, sizeof(a->hostname), "localhost");
    a->executor_path = find_executor(cfg->executor);
    if (access(a->executor_path, X_OK) < 0)
        return berr_set(err, errno, "executor '%s'", a->executor_path);
    if (iso_host_open("/sys/fs/cgroup", cfg->cgroup_parent, a->iso_flags, NULL, &a->host, err) < 0)
        return berr_wrap(err, "cgroup_parent '%s'", cfg->cgroup_parent);
    if (resources_measure(a, err) < 0)
        return -EINVAL;
    /* tasks together can never eat the host's reservation, even if our accounting were wrong */
    struct iso_limits all = {
            .cpus_millis = a->allocatable.v[RES_CPUS],
            .cpu_limit_millis = a->allocatable.v[RES_CPUS],
            .mem_bytes = a->allocatable.v[RES_MEM],
    };
    if (iso_host_set_limits(a->host, &all, err) < 0)
        return berr_wrap(err, "limit the cgroup parent to allocatable");
    a->base = event_base_new();
    if (!a->base)
        return berr_setx(err, ENOMEM, "event_base_new failed");
    if (logs_init(a, err) < 0)
        return -EIO;
    agent_fault_init(a);
    if (agent_recover(a, err) < 0) /* opens state.db */
        return -EIO;
    gc_start(a);
    if (sampler_start(a, err) < 0)
        return -EIO;
    if (api_start(a, err) < 0)
        return berr_wrap(err, "listen '%s'", cfg->listen);
    if (agent_masks_init(a, err) < 0)
        return -EINVAL;
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
    link_stop(a);
    api_stop(a);
    exec_free_all(a);
    logs_free(a);
    sampler_stop(a);
    gc_stop(a);
    agent_containers_free(a);
    if (a->ev_sigterm)
        event_free(a->ev_sigterm);
    if (a->ev_sigint)
        event_free(a->ev_sigint);
    if (a->host) {
        iso_host_remove(a->host); /* only when no task is left in it */
        a->host = iso_host_free(a->host);
    }
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
    cfg_done(&a->cfg);
}

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
    _cleanup_free_ char *notify = notify_socket_take(); /* Type=notify (common/notify.c) */
    struct agent a = {.inotify_fd = -1, .proc_stat_fd = -1, .meminfo_fd = -1};
    _cleanup_berr_ struct berr *err = NULL;
    if (cfg_load(&a.cfg, argc, argv, &err) < 0) {
        log_error("%s", berr_msg(err));
        cfg_done(&a.cfg);
        return 1;
    }
    if (streq(a.cfg.log_level, "debug"))
        log_set_level(LOG_DEBUG);
    else if (streq(a.cfg.log_level, "warning"))
        log_set_level(LOG_WARNING);
    else if (streq(a.cfg.log_level, "error"))
        log_set_level(LOG_ERR);
    int rc = 0;
    if (setup(&a, &err) < 0) {
        log_error("cannot start: %s", berr_msg(err));
        rc = 1;
    } else {
        log_info("serving on '%s' (cgroup v%d, work_dir '%s')", a.socket_path,
                 (int) iso_host_version(a.host), a.cfg.work_dir);
        if (notify_send(notify, "READY=1") < 0)
            log_warning("cannot notify '%s' that the agent is ready", notify);
        event_base_dispatch(a.base);
        notify_send(notify, "STOPPING=1");
    }
    teardown(&a);
    return rc;
}
