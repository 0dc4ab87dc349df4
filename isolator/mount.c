/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/mount.c - the sandbox's filesystem, built by berth-executor in its fresh mount
 * namespace: a read-only recursive bind of the host root with the agent's dirs masked, the
 * sandbox dir and volumes writable, private /proc, /tmp and a minimal /dev, then pivot_root
 * (or, on a host whose root is the initramfs, MS_MOVE and chroot: mnt_move_root).
 * task.c does the per-process steps (user, caps, seccomp) that follow in the task child. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

/* Scratch state of one iso_sandbox_enter call. */
struct mnt_ctx {
    const struct iso_spec *spec;
    char *root;    /* runtime_dir/rootfs: the new root while it is built */
    char **masked; /* mask tmpfs mount points (under root), to seal read-only */
    size_t n_masked;
};

/* root + abs ("/usr" -> ".../rootfs/usr"); abs must start with '/'. */
static char *mnt_in_root(const struct mnt_ctx *m, const char *abs)
{
    return xasprintf("%s%s", m->root, abs);
}

static bool path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* A path whose components are never "..": volume targets must stay where they are put. */
static bool path_is_clean(const char *p)
{
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return false;
        c += n;
        while (*c == '/')
            c++;
    }
    return true;
}

static int mnt_bind(const char *src, const char *dst, struct berr **err)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return berr_set(err, errno, "bind '%s' on '%s'", src, dst);
    log_debug("sandbox: bound '%s' on '%s'", src, dst);
    return 0;
}

/* Bind host path src (canonical: the agent resolved it at admission) onto dst without
 * following any symlink on the way: one that is there now was planted since, e.g. by a task
 * in a shared directory, and would point the bind somewhere the policy never allowed. */
static int mnt_bind_nofollow(const char *src, const char *dst, struct berr **err)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    _cleanup_close_ int fd = (int) syscall(SYS_openat2, AT_FDCWD, src, &how, sizeof(how));
    if (fd < 0)
        return berr_set(err, errno, "open host path '%s' (symlinks refused)", src);
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (mount(proc, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return berr_set(err, errno, "bind '%s' on '%s'", src, dst);
    log_debug("sandbox: bound '%s' on '%s'", src, dst);
    return 0;
}

static unsigned long mnt_kept_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

/* Remount one mount point read-only, keeping its other per-mount flags. */
static int mnt_remount_ro(const char *path, struct berr **err)
{
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | mnt_kept_flags(path), NULL) < 0)
        return berr_set(err, errno, "remount '%s' read-only", path);
    return 0;
}

/* Undo the octal escapes of /proc/self/mountinfo ("\040" = space) in place. */
static void mnt_unescape(char *s)
{
    char *o = s;
    for (char *i = s; *i; i++) {
        if (i[0] == '\\' && i[1] >= '0' && i[1] <= '3' && i[2] >= '0' && i[2] <= '7' &&
            i[3] >= '0' && i[3] <= '7') {
            *o++ = (char) (((i[1] - '0') << 6) | ((i[2] - '0') << 3) | (i[3] - '0'));
            i += 3;
        } else {
            *o++ = *i;
        }
    }
    *o = 0;
}

/* Pre-5.12 kernels: remount path and every mount below it, one by one. */
static int mnt_ro_each(const char *path, struct berr **err)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return berr_set(err, errno, "open /proc/self/mountinfo");
    size_t plen = strlen(path);
    char *line = NULL;
    size_t cap = 0;
    int r = 0;
    while (r == 0 && getline(&line, &cap, f) > 0) {
        char mp[4096];
        /* id parent major:minor root mount-point ... */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
            continue;
        mnt_unescape(mp);
        if (strncmp(mp, path, plen) != 0 || (mp[plen] != 0 && mp[plen] != '/'))
            continue;
        r = mnt_remount_ro(mp, err);
    }
    free(line);
    return r;
}

/* Make the mount at path (and, when recursive, all mounts below it) read-only. Uses
 * mount_setattr (5.12+), which is atomic for the whole tree; falls back to remounting each
 * mount on ENOSYS. */
static int mnt_make_ro(const char *path, bool recursive, struct berr **err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)) == 0)
        return 0;
    if (errno != ENOSYS)
        return berr_set(err, errno, "make '%s' read-only", path);
    return recursive ? mnt_ro_each(path, err) : mnt_remount_ro(path, err);
}

static int mnt_tmpfs(const char *dst, unsigned long flags, const char *opts, struct berr **err)
{
    if (mount("tmpfs", dst, "tmpfs", flags, opts) < 0)
        return berr_set(err, errno, "mount tmpfs on '%s'", dst);
    return 0;
}

/* Hide the agent's directories (work_dir: other sandboxes, state.db; the socket dir; this
 * runtime dir) under empty tmpfs. They are made read-only by mnt_seal_masks once the
 * sandbox dir has been put back inside them. */
static int mnt_masks(struct mnt_ctx *m, struct berr **err)
{
    const struct iso_spec *s = m->spec;
    size_t n = 0;
    while (s->mask_dirs && s->mask_dirs[n])
        n++;
    m->masked = xcalloc(n + 2, sizeof(char *));
    for (size_t i = 0; i <= n; i++) {
        const char *dir = i < n ? s->mask_dirs[i] : s->runtime_dir;
        /* the private /tmp hides all of the host's /tmp already; a mask there would make the
         * task's own /tmp read-only (review L6: the socket under /tmp) */
        if (streq(dir, "/tmp") || str_has_prefix(dir, "/tmp/"))
            continue;
        _cleanup_free_ char *p = mnt_in_root(m, dir);
        struct stat st;
        /* A mask may sit inside an earlier one or under the private /tmp (hidden already),
         * or not exist at all: skip it. A file (the token_file) gets /dev/null over it. */
        if (stat(p, &st) < 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            int r = mnt_bind("/dev/null", p, err);
            if (r < 0)
                return r;
            continue;
        }
        int r = mnt_tmpfs(p, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m", err);
        if (r < 0)
            return r;
        m->masked[m->n_masked++] = TAKE_PTR(p);
    }
    return 0;
}

static int mnt_seal_masks(struct mnt_ctx *m, struct berr **err)
{
    for (size_t i = 0; i < m->n_masked; i++) {
        int r = mnt_remount_ro(m->masked[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The sandbox dir, writable, at its own path: created inside a mask tmpfs or the private
 * /tmp when those hide it (mkdir_p), found in the host view otherwise. */
static int mnt_sandbox(struct mnt_ctx *m, struct berr **err)
{
    _cleanup_free_ char *sb = mnt_in_root(m, m->spec->sandbox_dir);
    int r = mkdir_p(sb, 0755);
    if (r < 0 && !path_exists(sb))
        return berr_set(err, -r, "create '%s'", sb);
    return mnt_bind(m->spec->sandbox_dir, sb, err);
}

/* openat2 that never follows a symlink nor leaves dirfd (RESOLVE_BENEATH) or, with in_root,
 * treats dirfd as "/" (RESOLVE_IN_ROOT). */
static int mnt_open_at(int dirfd, const char *path, int flags, mode_t mode, bool in_root)
{
    struct open_how how = {
            .flags = (uint64_t) (flags | O_CLOEXEC),
            .mode = flags & O_CREAT ? mode : 0,
            .resolve = RESOLVE_NO_SYMLINKS | (in_root ? RESOLVE_IN_ROOT : RESOLVE_BENEATH),
    };
    return (int) syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* The mount point of a volume whose container path rel is relative to the sandbox dir
 * (sandbox_fd): every missing component is created, and every existing one must be a
 * directory reached without a symlink or "..". A task may have planted a symlink in a
 * shared volume mounted before this one (review M6): followed from the executor's view of
 * the host, it would have made root-owned files anywhere on the host. Returns an fd of the
 * mount point (bind onto /proc/self/fd/N), or -errno with err set. */
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

/* Volumes: absolute container paths must already exist in the host tree (we never create
 * directories in the read-only host view) and are resolved inside the new root without
 * following symlinks; relative ones are created inside the sandbox dir (mnt_volume_target).
 * Host paths come canonical from the agent and are bound without following symlinks. */
static int mnt_volumes(struct mnt_ctx *m, struct berr **err)
{
    const struct iso_spec *s = m->spec;
    if (!s->n_volumes)
        return 0;
    _cleanup_free_ char *sb = mnt_in_root(m, s->sandbox_dir);
    _cleanup_close_ int root_fd = open(m->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int sb_fd = open(sb, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0 || sb_fd < 0)
        return berr_set(err, errno, "open '%s'", root_fd < 0 ? m->root : sb);
    for (size_t i = 0; i < s->n_volumes; i++) {
        const struct iso_volume *v = &s->volumes[i];
        if (!path_is_clean(v->container) || !path_is_clean(v->host))
            return berr_setx(err, EINVAL, "volume '%s': '..' not allowed", v->container);
        struct stat st;
        if (stat(v->host, &st) < 0)
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
        char dst[64];
        snprintf(dst, sizeof(dst), "/proc/self/fd/%d", target);
        if (mnt_bind_nofollow(v->host, dst, err) < 0)
            return berr_wrap(err, "volume '%s'", v->container);
        if (v->readonly) {
            /* the new mount is on the same path in the root; reach it the same safe way */
            _cleanup_close_ int mp = v->container[0] == '/'
                                             ? mnt_open_at(root_fd, v->container, O_PATH, 0, true)
                                             : mnt_open_at(sb_fd, v->container, O_PATH, 0, false);
            char mpath[64];
            snprintf(mpath, sizeof(mpath), "/proc/self/fd/%d", mp);
            if (mp < 0 || mnt_make_ro(mpath, true, err) < 0)
                return berr_wrap(err, "volume '%s': read-only", v->container);
        }
    }
    return 0;
}

/* Fresh proc for the new pid namespace, with the kernel knobs read-only and the leaky
 * files hidden (the list docker and runc use). */
static int mnt_proc(struct mnt_ctx *m, bool harden, struct berr **err)
{
    _cleanup_free_ char *proc = mnt_in_root(m, "/proc");
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return berr_set(err, errno, "mount proc on '%s'", proc);
    if (!harden)
        return 0;
    static const char *const ro[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", proc, ro[i]);
        if (!path_exists(p))
            continue;
        int r = mnt_bind(p, p, err);
        if (r < 0 || (r = mnt_make_ro(p, true, err)) < 0)
            return r;
    }
    static const char *const nulled[] = {"/proc/kcore",         "/proc/keys",
                                         "/proc/timer_list",    "/proc/sched_debug",
                                         "/proc/latency_stats", "/proc/timer_stats"};
    for (size_t i = 0; i < ARRAY_SIZE(nulled); i++) {
        _cleanup_free_ char *p = mnt_in_root(m, nulled[i]);
        int r = path_exists(p) ? mnt_bind("/dev/null", p, err) : 0;
        if (r < 0)
            return r;
    }
    static const char *const emptied[] = {"/proc/acpi", "/proc/scsi", "/sys/firmware",
                                          "/sys/kernel/debug"};
    for (size_t i = 0; i < ARRAY_SIZE(emptied); i++) {
        _cleanup_free_ char *p = mnt_in_root(m, emptied[i]);
        struct stat st;
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        int r = mnt_tmpfs(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0", err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Minimal /dev: the harmless character devices bound from the host (like bubblewrap: no
 * mknod, so it also works where /dev is itself a bind), a private devpts, shm and the
 * usual symlinks. Disks stay invisible, and the devices cgroup denies them anyway. */
static int mnt_dev(struct mnt_ctx *m, struct berr **err)
{
    _cleanup_free_ char *dev = mnt_in_root(m, "/dev");
    int r = mnt_tmpfs(dev, MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", err);
    if (r < 0)
        return r;
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        _cleanup_free_ char *src = xasprintf("/dev/%s", nodes[i]);
        _cleanup_free_ char *dst = xasprintf("%s/%s", dev, nodes[i]);
        if (!path_exists(src))
            continue;
        _cleanup_close_ int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0)
            return berr_set(err, errno, "create '%s'", dst);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
            return berr_set(err, errno, "bind '%s' on '%s'", src, dst);
    }
    _cleanup_free_ char *pts = xasprintf("%s/pts", dev);
    _cleanup_free_ char *shm = xasprintf("%s/shm", dev);
    if (mkdir(pts, 0755) < 0 || mkdir(shm, 01777) < 0)
        return berr_set(err, errno, "create dirs in '%s'", dev);
    if (mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
        return berr_set(err, errno, "mount devpts on '%s'", pts);
    r = mnt_tmpfs(shm, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", err);
    if (r < 0)
        return r;
    static const char *const links[][2] = {
            {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
            {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
            {"stderr", "/proc/self/fd/2"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
        _cleanup_free_ char *l = xasprintf("%s/%s", dev, links[i][0]);
        if (symlink(links[i][1], l) < 0)
            return berr_set(err, errno, "symlink '%s'", l);
    }
    return 0;
}

/* The mount points of our namespace, unescaped, in /proc/self/mountinfo's order (parents
 * before children). *ret_points are pointers into *ret_text; free both. -errno on failure.
 * With ret_rootfs: whether the first mount on "/" (the namespace's root) is the initial
 * ramfs, "rootfs". */
static int mnt_list(char **ret_text, char ***ret_points, size_t *ret_n, bool *ret_rootfs)
{
    char *text = NULL, **points = NULL;
    size_t n = 0;
    bool rootfs = false, seen_root = false;
    int r = read_file_alloc("/proc/self/mountinfo", 4 << 20, &text, NULL);
    if (r < 0)
        return r;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        /* id parent major:minor root mount-point options [optional...] - fstype source ... */
        char *f = line;
        for (int i = 0; i < 4 && f; i++)
            if ((f = strchr(f, ' ')))
                f++;
        const char *sep = f ? strstr(f, " - ") : NULL;
        if (!f || !sep)
            continue;
        f[strcspn(f, " ")] = 0;
        mnt_unescape(f);
        if (streq(f, "/") && !seen_root) {
            seen_root = true;
            rootfs = str_has_prefix(sep + 3, "rootfs ");
        }
        points = xrealloc(points, (n + 1) * sizeof(*points));
        points[n++] = f;
    }
    *ret_text = text;
    *ret_points = points;
    *ret_n = n;
    if (ret_rootfs)
        *ret_rootfs = rootfs;
    return 0;
}

static bool path_below(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    return strncmp(path, dir, l) == 0 && (path[l] == '/' || (l == 1 && dir[0] == '/'));
}

/* pivot_root(2) refuses a root that is the namespace's very first mount (EINVAL: it has no
 * parent to be moved to): the initial ramfs, "rootfs", on diskless and PXE-booted nodes
 * that run from their initramfs. There we do what runc's --no-pivot and crun's no_pivot do,
 * MS_MOVE and chroot, and make up for what pivot_root gave us:
 * - pivot_root detached the old root and with it every host mount from the sandbox's
 *   namespace. rootfs itself cannot be detached, so every mount that is neither the new
 *   root, below it, nor an ancestor holding it is (the host's /proc and /sys among them:
 *   the kernel consults such full mounts before it lets anyone mount a new proc or sysfs).
 * - pivot_root made the sandbox the namespace's root, where even a chroot escape ends.
 *   Here the new root is moved on top of "/" and we chroot into it: a walk up ("..") from
 *   its top reaches rootfs's "/", and the lookup steps straight back down into the mount
 *   on it, so a root task that chroots out (docker's default set keeps CAP_SYS_CHROOT;
 *   other users have no capability at all) still ends in the sandbox. Uncovering rootfs
 *   takes umount or a new mount namespace, both CAP_SYS_ADMIN, which no task has.
 * - Joining the namespace (setns, `berthctl exec`) needs nothing more: the kernel resolves
 *   the namespace's "/" down through the mounts on it, so the joiner lands on the moved
 *   root, not on rootfs; for the same reason the task does not count as chrooted (it may
 *   still create a user namespace, which the kernel refuses to chrooted processes).
 * tests/system/test_sandbox.py runs on such a root in the VM suite (berthvm.root=initramfs). */
static int mnt_move_root(const char *root, struct berr **err)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_free_ char **points = NULL;
    size_t n = 0;
    int r = mnt_list(&text, &points, &n, NULL);
    if (r < 0)
        return berr_set(err, -r, "read /proc/self/mountinfo");
    for (size_t i = n; i-- > 0;) { /* children first */
        const char *p = points[i];
        if (streq(p, "/") || streq(p, root) || path_below(p, root) || path_below(root, p))
            continue;
        /* EINVAL/ENOENT: gone already with a parent detached before it */
        if (umount2(p, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            return berr_set(err, errno, "detach '%s' from the old root", p);
    }
    if (mount(root, "/", NULL, MS_MOVE, NULL) < 0)
        return berr_set(err, errno, "move '%s' onto /", root);
    /* our cwd is the moved mount's top: make it our root */
    if (chroot(".") < 0)
        return berr_set(err, errno, "chroot into '%s'", root);
    if (chdir("/") < 0)
        return berr_set(err, errno, "chdir /");
    log_debug("sandbox: '/' is rootfs: moved '%s' onto it and chrooted (no pivot_root)", root);
    return 0;
}

static int mnt_pivot(struct mnt_ctx *m, struct berr **err)
{
    /* pivot_root(".", "."): the old root ends up stacked on the new one, so no put_old
     * directory is needed inside the (read-only) new root; detach it right away. */
    if (chdir(m->root) < 0)
        return berr_set(err, errno, "chdir '%s'", m->root);
    if (syscall(SYS_pivot_root, ".", ".") < 0) {
        int e = errno;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ char **points = NULL;
        size_t n;
        bool rootfs = false;
        if (e == EINVAL && mnt_list(&text, &points, &n, &rootfs) == 0 && rootfs) {
            /* mountinfo names paths without symlinks: compare in that form */
            _cleanup_free_ char *real = realpath(m->root, NULL);
            if (!real)
                return berr_set(err, errno, "realpath '%s'", m->root);
            return mnt_move_root(real, err);
        }
        return berr_set(err, e, "pivot_root '%s'", m->root);
    }
    if (umount2(".", MNT_DETACH) < 0)
        return berr_set(err, errno, "detach the old root");
    if (chdir("/") < 0)
        return berr_set(err, errno, "chdir /");
    return 0;
}

static int mnt_build(struct mnt_ctx *m, struct berr **err)
{
    const struct iso_spec *s = m->spec;
    bool ro = s->flags & ISO_FS_RO_HOST;
    /* Nothing we mount may leak back to the host (or other sandboxes) through shared
     * propagation, and the host's later mounts need not reach us. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return berr_set(err, errno, "make / private");
    if (mkdir(m->root, 0700) < 0 && errno != EEXIST)
        return berr_set(err, errno, "create '%s'", m->root);
    int r = mnt_bind("/", m->root, err);
    if (r < 0)
        return r;
    if (ro && (r = mnt_make_ro(m->root, true, err)) < 0)
        return r;
    /* /tmp first: sandbox dirs and volumes may live under the host's /tmp (tests do). */
    _cleanup_free_ char *tmp = mnt_in_root(m, "/tmp");
    if (path_exists(tmp) && (r = mnt_tmpfs(tmp, MS_NOSUID | MS_NODEV, "mode=1777", err)) < 0)
        return r;
    if (ro && (r = mnt_masks(m, err)) < 0)
        return r;
    if ((r = mnt_sandbox(m, err)) < 0 || (r = mnt_seal_masks(m, err)) < 0)
        return r;
    if ((r = mnt_volumes(m, err)) < 0 || (r = mnt_proc(m, ro, err)) < 0)
        return r;
    if (s->etc_dir && (r = mnt_etc_files(m->root, s->etc_dir, err)) < 0)
        return r;
    if (ro && (r = mnt_dev(m, err)) < 0)
        return r;
    return mnt_pivot(m, err);
}

/* See isolator.h. Runs as root in the executor's fresh mount namespace (and pid namespace
 * for /proc). Every mount stays in that namespace, so failure needs no cleanup: the
 * executor exits and the namespace goes with it. Returns 0 or -errno with err set. */
int iso_sandbox_enter(const struct iso_spec *s, struct berr **err)
{
    if (s->flags & ISO_NS_MOUNT) {
        struct mnt_ctx m = {.spec = s, .root = xasprintf("%s/rootfs", s->runtime_dir)};
        int r = mnt_build(&m, err);
        free(m.root);
        for (size_t i = 0; i < m.n_masked; i++)
            free(m.masked[i]);
        free(m.masked);
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
