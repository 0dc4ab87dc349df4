/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/sandbox.c - the host side of a launch, before the executor runs: the sandbox dir
 * (the task's files and output) and the runtime dir (spec.json, status.json, executor.log,
 * the /etc files), the spec berth-executor reads (isolator/spec.c), and the container's
 * cgroups with their limits, read back for the API. lifecycle.c calls sandbox_prepare
 * between the record and the executor, and sandbox_cgroups while the executor enters its
 * sandbox (it waits for them before its task: the go pipe); launch.c spawns the executor;
 * release.c and trash.c undo it at the end. */
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "agentd/agent.h"
#include "agentd/ready.h"

void sandbox_path(struct agent *a, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", a->sandboxes_dir, id);
}

void runtime_path(struct agent *a, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", a->runtime_root, id);
}

static int write_spec(struct agent *a, struct container *c, const char *sandbox, const char *rdir,
                      struct berr **err)
{
    /* 65536 open files, or the agent's own hard limit: without CAP_SYS_RESOURCE (some
     * container hosts drop it even for root) a hard limit can only go down */
    struct rlimit rl;
    uint64_t nofile = 65536;
    _cleanup_(strv_freep) char **join = iso_host_join_files(a->host, c->id);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < nofile)
        nofile = rl.rlim_max;
    /* isolator/ does not know masterlink's volume type: the same three fields */
    size_t nv = c->spec.n_volumes;
    _cleanup_free_ struct iso_volume *vols = xcalloc(nv + 1, sizeof(*vols));
    for (size_t i = 0; i < nv; i++)
        vols[i] = (struct iso_volume){.host = c->spec.volumes[i].host,
                                      .container = c->spec.volumes[i].container,
                                      .readonly = c->spec.volumes[i].readonly};
    /* its network (net.c): a namespace of its own unless host, its /etc files, PORT0.. */
    enum iso_net_mode net = ctr_net_mode(c);
    unsigned flags =
            (a->iso_flags & ~(unsigned) ISO_NS_NET) | (net != ISO_NET_HOST ? ISO_NS_NET : 0);
    _cleanup_close_ int dfd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berr_set(err, errno, "open '%s'", rdir);
    bool etc = a->iso_flags & ISO_NS_MOUNT; /* /etc files bound over the sandbox's own */
    if (etc && net_etc_files(a, c, dfd, rdir, err) < 0)
        return -berr_errno(*err);
    char **env = ports_env(&c->spec);
    struct iso_spec s = {
            .id = c->id,
            .hostname = c->spec.name,
            .flags = flags,
            .sandbox_dir = (char *) sandbox,
            .runtime_dir = (char *) rdir,
            .mask_dirs = a->masks,
            .user = c->spec.user,
            .ids = c->user,
            .home = c->user_home,
            .argv = c->spec.command.argv,
            .env = env,
            .volumes = vols,
            .n_volumes = nv,
            .nofile = nofile,
            .grace_ms = a->cfg.kill_grace_ms,
            .userns_base = c->userns_base,
            .log_max_bytes = a->cfg.log_max_bytes,
            .log_max_files = a->cfg.log_max_files,
            .cgroup_join = join,
            .net = net,
            .etc_dir = etc ? (char *) rdir : NULL,
    };
    _cleanup_free_ char *json = iso_spec_to_json(&s);
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
    int r = write_file_replace(dfd, "spec.json", json, strlen(json), 0600);
    if (r < 0)
        return berr_set(err, -r, "write '%s/spec.json'", rdir);
    return 0;
}

static void cg_path_json(const char *ctrl, const char *path, void *arg)
{
    json_kv_str(arg, ctrl, path);
}

/* Create and limit the cgroups; keep what the kernel read back for the API. */
int sandbox_cgroups(struct agent *a, struct container *c, struct berr **err)
{
    int r = iso_cgroup_create(a->host, c->id, &c->cg, err);
    if (r < 0)
        return berr_wrap(err, "create cgroups");
    agent_fault(a, "launch-after-cgroup");
    struct iso_limits l = {
            .cpus_millis = c->spec.cpus_millis,
            .cpu_limit_millis = ctr_cpu_limit(c),
            .mem_bytes = c->spec.mem_bytes,
            .pids_max = c->spec.pids,
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
    c->limits_json = json_gen_take(g);
    g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    iso_cgroup_foreach_path(c->cg, cg_path_json, g);
    yajl_gen_map_close(g);
    c->cgroups_json = json_gen_take(g);
    return 0;
}

int sandbox_prepare(struct agent *a, struct container *c, struct berr **err)
{
    char sandbox[4096], rdir[4096];
    sandbox_path(a, c->id, sandbox, sizeof(sandbox));
    runtime_path(a, c->id, rdir, sizeof(rdir));
    /* made ahead by ready.c's thread (their files too), or here */
    bool made = ready_take(a, sandbox, rdir);
    if (!made && mkdir(rdir, 0700) < 0)
        return berr_set(err, errno, "create '%s'", rdir);
    if (!made && mkdir(sandbox, 0755) < 0)
        return berr_set(err, errno, "create '%s'", sandbox);
    /* Empty stdout/stderr from the start, so `logs -f` right after the launch has a file to
     * follow before the executor runs (it opens them O_APPEND and chows them to the task's
     * user): under emulation (tests/vm) that can take a second. */
    for (int i = 0; i < 2 && !made; i++) {
        char out[4200];
        snprintf(out, sizeof(out), "%s/%s", sandbox, i ? "stderr" : "stdout");
        int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0)
            return berr_set(err, errno, "create '%s'", out);
        close(fd);
    }
    /* no rootfs mount point any more: the executor copies the agent's template (#18) */
    int r = write_spec(a, c, sandbox, rdir, err);
    if (r == 0)
        agent_fault(a, "launch-after-dirs");
    return r;
}
