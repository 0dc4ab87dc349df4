/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/mount.c - a sandbox's filesystem, made by berth-executor from the agent's
 * template (mount-template.c: the read-only host with the agent's dirs masked and a
 * minimal /dev, built once per agent): what the sandbox needs of the host's view (its
 * sandbox dir, volumes, /etc files) is taken as detached mounts first, then the executor
 * enters a copy of the template's mount namespace (setns + unshare) and adds what is its
 * own: a private /tmp, the sandbox dir, volumes, a fresh /proc, devpts and /dev/shm.
 * task.c does the per-process steps (user, caps, seccomp) that follow in the task child. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

/* Scratch state of one iso_sandbox_enter call: the detached mounts taken from the host's
 * view, attached once in the sandbox's namespace. */
struct sb_ctx {
    const struct iso_spec *spec;
    int sandbox; /* copy of sandbox_dir (recursive) */
    int *vols;   /* per volume, its host path (recursive; read-only ones already so) */
    int etc[MNT_ETC_FILES];
};

static void sb_ctx_done(struct sb_ctx *c)
{
    closep(&c->sandbox);
    for (size_t i = 0; c->vols && i < c->spec->n_volumes; i++)
        closep(&c->vols[i]);
    free(c->vols);
    for (size_t i = 0; i < MNT_ETC_FILES; i++)
        closep(&c->etc[i]);
}

/* A detached recursive copy of the mount tree at host path p, reached without following any
 * symlink: one that is there now was planted since (e.g. by a task in a shared directory)
 * and would point the bind somewhere the policy never allowed. Host paths come canonical
 * from the agent, which resolved them at admission. */
static int sb_tree_nofollow(const char *p, bool readonly, struct berr **err)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    _cleanup_close_ int fd = (int) syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof(how));
    if (fd < 0)
        return berr_set(err, errno, "open host path '%s' (symlinks refused)", p);
    int tree = (int) open_tree(fd, "",
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0)
        return berr_set(err, errno, "open_tree '%s'", p);
    if (readonly) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
            int e = errno;
            close(tree);
            return berr_set(err, e, "make '%s' read-only", p);
        }
    }
    return tree;
}

/* Step 1, in the host's view: everything the sandbox takes from it. */
static int sb_open_trees(struct sb_ctx *c, struct berr **err)
{
    const struct iso_spec *s = c->spec;
    c->sandbox = (int) open_tree(AT_FDCWD, s->sandbox_dir,
                                 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (c->sandbox < 0)
        return berr_set(err, errno, "open_tree '%s'", s->sandbox_dir);
    c->vols = xcalloc(s->n_volumes + 1, sizeof(int));
    for (size_t i = 0; i < s->n_volumes; i++)
        c->vols[i] = -1;
    for (size_t i = 0; i < s->n_volumes; i++) {
        const struct iso_volume *v = &s->volumes[i];
        if (!path_is_clean(v->container) || !path_is_clean(v->host))
            return berr_setx(err, EINVAL, "volume '%s': '..' not allowed", v->container);
        if ((c->vols[i] = sb_tree_nofollow(v->host, v->readonly, err)) < 0)
            return berr_wrap(err, "volume '%s'", v->container);
    }
    if (s->etc_dir)
        return mnt_etc_open(s->etc_dir, c->etc, err);
    return 0;
}

/* Step 2: a copy of the template's namespace becomes ours; "/" is its root. */
static int sb_enter_template(int template_fd, struct berr **err)
{
    if (template_fd < 0)
        return berr_setx(err, EBADF, "no mount namespace template from the agent");
    if (setns(template_fd, CLONE_NEWNS) < 0)
        return berr_set(err, errno, "enter the agent's template (setns)");
    if (unshare(CLONE_NEWNS) < 0)
        return berr_set(err, errno, "copy the agent's template (unshare)");
    return 0;
}

/* The sandbox dir, writable, at its own path. Visible in the template (no read-only host):
 * on itself. Under /tmp: made in the private /tmp. Inside a mask (work_dir's: the template
 * holds an empty mount point for the sandboxes' dir there): a tmpfs of our own on that dir,
 * holding just our sandbox dir, read-only once it is bound. */
static int sb_sandbox(struct sb_ctx *c, struct berr **err)
{
    const char *sb = c->spec->sandbox_dir;
    int e = mkdir(sb, 0755) < 0 ? errno : 0;
    if (e == ENOENT) {
        int r = mkdir_p(sb, 0755);
        e = r < 0 ? -r : 0;
    }
    bool own_parent = e == EROFS;
    if (e && e != EEXIST && !own_parent)
        return berr_set(err, e, "create '%s'", sb);
    _cleanup_free_ char *parent = xstrdup(sb);
    dirname(parent);
    if (own_parent) {
        int r = mnt_tmpfs(parent, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m", err);
        if (r < 0)
            return r;
        if (mkdir(sb, 0755) < 0)
            return berr_set(err, errno, "create '%s'", sb);
    }
    if (move_mount(c->sandbox, "", AT_FDCWD, sb, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return berr_set(err, errno, "bind the sandbox dir on '%s'", sb);
    closep(&c->sandbox);
    log_debug("sandbox: bound '%s'%s", sb, own_parent ? " (in a tmpfs of its own)" : "");
    return own_parent ? mnt_make_ro(parent, false, err) : 0;
}

/* The mount point of a volume whose container path rel is relative to the sandbox dir
 * (sandbox_fd): every missing component is created, and every existing one must be a
 * directory reached without a symlink or "..". A task may have planted a symlink in a
 * shared volume mounted before this one (review M6). Returns an fd of the mount point, or
 * -errno with err set. */
static int mnt_volume_target(int sandbox_fd, const char *rel, bool is_dir, struct berr **err)
{
    _cleanup_close_ int dir = fcntl(sandbox_fd, F_DUPFD_CLOEXEC, 3);
    if (dir < 0)
        return berr_set(err, errno, "dup");
    _cleanup_free_ char *copy = xstrdup(rel);
    char *save = NULL;
    char *comp = strtok_r(copy, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        bool last = next == NULL;
        int fd;
        if (!last || is_dir) {
            if (mkdirat(dir, comp, 0755) < 0 && errno != EEXIST)
                return berr_set(err, errno, "create '%s' in '%s'", comp, rel);
            fd = mnt_open_at(dir, comp, O_PATH | O_DIRECTORY, 0, false);
        } else {
            fd = mnt_open_at(dir, comp, O_WRONLY | O_CREAT | O_NOCTTY, 0644, false);
        }
        if (fd < 0)
            return berr_set(err, errno, "'%s' in '%s' (symlinks and '..' refused)", comp, rel);
        closep(&dir);
        dir = fd;
        comp = next;
    }
    return TAKE_FD(dir);
}

/* Volumes: absolute container paths must already exist in the root (we never create
 * directories in the read-only view) and are resolved in it without following symlinks;
 * relative ones are created inside the sandbox dir (mnt_volume_target). */
static int sb_volumes(struct sb_ctx *c, struct berr **err)
{
    const struct iso_spec *s = c->spec;
    if (!s->n_volumes)
        return 0;
    _cleanup_close_ int root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int sb_fd = open(s->sandbox_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0 || sb_fd < 0)
        return berr_set(err, errno, "open '%s'", root_fd < 0 ? "/" : s->sandbox_dir);
    for (size_t i = 0; i < s->n_volumes; i++) {
        const struct iso_volume *v = &s->volumes[i];
        struct stat st;
        if (fstat(c->vols[i], &st) < 0)
            return berr_set(err, errno, "volume '%s': host path '%s'", v->container, v->host);
        _cleanup_close_ int target = -1;
        if (v->container[0] == '/') {
            target = mnt_open_at(root_fd, v->container, O_PATH, 0, true);
            if (target < 0)
                return berr_set(err, errno,
                                "volume '%s': mount point (it must exist, reached without "
                                "symlinks)",
                                v->container);
        } else if ((target = mnt_volume_target(sb_fd, v->container, S_ISDIR(st.st_mode), err)) <
                   0) {
            return berr_wrap(err, "volume '%s'", v->container);
        }
        if (move_mount(c->vols[i], "", target, "",
                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return berr_set(err, errno, "volume '%s': bind '%s'", v->container, v->host);
        closep(&c->vols[i]);
        log_debug("sandbox: bound '%s' on '%s'", v->host, v->container);
    }
    return 0;
}

/* An empty read-only directory over dst: the template's /dev/shm (an empty directory of its
 * read-only /dev, until sb_dev mounts the sandbox's own on it) bound, not a tmpfs of its
 * own: each superblock a sandbox holds costs every memory cgroup's removal a walk over two
 * more lists (the kernel's memcg_reparent_list_lrus; issue #18, docs/performance.md). A
 * tmpfs as before when /dev/shm is not that. */
static int sb_empty_ro(const char *dst, struct berr **err)
{
    struct stat dev, shm;
    struct statvfs sv;
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de = NULL;
    if (stat("/dev", &dev) == 0 && statvfs("/dev", &sv) == 0 && (sv.f_flag & ST_RDONLY) &&
        stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && shm.st_dev == dev.st_dev &&
        (d = opendir("/dev/shm"))) {
        while ((de = readdir(d)) && (streq(de->d_name, ".") || streq(de->d_name, "..")))
            ;
    }
    if (d && !de && mount("/dev/shm", dst, NULL, MS_BIND, NULL) == 0) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                              MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
        if (mount_setattr(AT_FDCWD, dst, 0, &attr, sizeof(attr)) == 0)
            return 0;
        (void) umount2(dst, MNT_DETACH);
    }
    return mnt_tmpfs(dst, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0", err);
}

/* Fresh proc for the new pid namespace, with the kernel knobs read-only and the leaky
 * files hidden (the list docker and runc use; sysfs's share is in the template). */
static int sb_proc(bool harden, struct berr **err)
{
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return berr_set(err, errno, "mount proc on '/proc'");
    if (!harden)
        return 0;
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus",
                                     "/proc/fs"};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
        if (!path_exists(ro[i]))
            continue;
        int r = mnt_bind(ro[i], ro[i], err);
        if (r < 0 || (r = mnt_make_ro(ro[i], true, err)) < 0)
            return r;
    }
    static const char *const nulled[] = {"/proc/kcore",         "/proc/keys",
                                         "/proc/timer_list",    "/proc/sched_debug",
                                         "/proc/latency_stats", "/proc/timer_stats"};
    for (size_t i = 0; i < ARRAY_SIZE(nulled); i++) {
        int r = path_exists(nulled[i]) ? mnt_bind("/dev/null", nulled[i], err) : 0;
        if (r < 0)
            return r;
    }
    static const char *const emptied[] = {"/proc/acpi", "/proc/scsi"};
    for (size_t i = 0; i < ARRAY_SIZE(emptied); i++) {
        struct stat st;
        if (stat(emptied[i], &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        int r = sb_empty_ro(emptied[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The sandbox's own devpts and /dev/shm, on the template's read-only /dev. */
static int sb_dev(struct berr **err)
{
    if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
        return berr_set(err, errno, "mount devpts on '/dev/pts'");
    return mnt_tmpfs("/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", err);
}

static int sb_build(struct sb_ctx *c, int template_fd, struct berr **err)
{
    const struct iso_spec *s = c->spec;
    bool ro = s->flags & ISO_FS_RO_HOST;
    int r;
    if ((r = sb_open_trees(c, err)) < 0 || (r = sb_enter_template(template_fd, err)) < 0)
        return r;
    /* /tmp first: sandbox dirs and volumes may live under the host's /tmp (tests do). */
    if (path_exists("/tmp") && (r = mnt_tmpfs("/tmp", MS_NOSUID | MS_NODEV, "mode=1777", err)) < 0)
        return r;
    if ((r = sb_sandbox(c, err)) < 0 || (r = sb_volumes(c, err)) < 0 || (r = sb_proc(ro, err)) < 0)
        return r;
    if (s->etc_dir && (r = mnt_etc_attach(c->etc, err)) < 0)
        return r;
    if (ro && (r = sb_dev(err)) < 0)
        return r;
    return 0;
}

/* See isolator.h. Every mount lands in the copy of the template, so failure needs no
 * cleanup: the executor exits and the namespace goes with it. Returns 0 or -errno with err
 * set. */
int iso_sandbox_enter(const struct iso_spec *s, int template_fd, struct berr **err)
{
    if (s->flags & ISO_NS_MOUNT) {
        struct sb_ctx c = {.spec = s, .sandbox = -1, .etc = {-1, -1, -1}};
        int r = sb_build(&c, template_fd, err);
        sb_ctx_done(&c);
        if (r < 0)
            return berr_wrap(err, "sandbox");
    }
    if ((s->flags & ISO_NS_UTS) && s->hostname && *s->hostname &&
        sethostname(s->hostname, strlen(s->hostname)) < 0)
        return berr_set(err, errno, "sandbox: set hostname '%s'", s->hostname);
    if (chdir(s->sandbox_dir) < 0)
        return berr_set(err, errno, "sandbox: chdir '%s'", s->sandbox_dir);
    return 0;
}
