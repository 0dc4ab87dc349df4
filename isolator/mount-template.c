/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/mount-template.c - the template every sandbox of an agent starts from, built
 * once (and again when the host's mounts change) by `berth-executor --template DIR` in a
 * mount namespace of its own, which the agent then holds by an fd: a read-only recursive
 * bind of the host root with the agent's dirs and the host's secrets masked, /sys's leaky
 * dirs emptied and a minimal read-only /dev, made the namespace's root with pivot_root (or,
 * on a host whose root is the initramfs, MS_MOVE and chroot: mnt_move_root). Each sandbox
 * copies it (setns + unshare) and adds only what is its own (mount.c). */
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

/* Scratch state of one iso_template_build call. */
struct tpl_ctx {
    const struct iso_spec *spec;
    char *root;    /* runtime_dir/rootfs: the new root while it is built */
    char **masked; /* mask tmpfs mount points (under root), to seal read-only */
    size_t n_masked;
};

/* root + abs ("/usr" -> ".../rootfs/usr"); abs must start with '/'. */
static char *tpl_in_root(const struct tpl_ctx *m, const char *abs)
{
    return xasprintf("%s%s", m->root, abs);
}

/* Hide the agent's directories (work_dir: the sandboxes, the runtime dirs, state.db; the
 * socket dir) and [agent] mask_paths under empty tmpfs, files under /dev/null. */
static int tpl_masks(struct tpl_ctx *m, struct berr **err)
{
    const struct iso_spec *s = m->spec;
    size_t n = 0;
    while (s->mask_dirs && s->mask_dirs[n])
        n++;
    m->masked = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *dir = s->mask_dirs[i];
        /* each sandbox's private /tmp hides all of the host's /tmp; a mask there would make
         * the task's own /tmp read-only (review L6: the socket under /tmp) */
        if (streq(dir, "/tmp") || str_has_prefix(dir, "/tmp/"))
            continue;
        _cleanup_free_ char *p = tpl_in_root(m, dir);
        struct stat st;
        /* A mask may sit inside an earlier one (hidden already), or not exist at all: skip
         * it. A file (the token_file) gets /dev/null over it. */
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

/* The directory the sandboxes live in, made inside the mask that hides it (empty): each
 * sandbox puts a tmpfs of its own on it holding its one sandbox dir (mount.c). Under /tmp
 * nothing is needed: each sandbox's /tmp is a fresh tmpfs it is made in. */
static int tpl_sandboxes_dir(struct tpl_ctx *m, struct berr **err)
{
    const char *dir = m->spec->sandbox_dir;
    if (streq(dir, "/tmp") || str_has_prefix(dir, "/tmp/"))
        return 0;
    _cleanup_free_ char *p = tpl_in_root(m, dir);
    if (path_exists(p))
        return 0;
    int r = mkdir_p(p, 0755);
    if (r < 0)
        return berr_set(err, -r, "create '%s'", p);
    return 0;
}

static int tpl_seal_masks(struct tpl_ctx *m, struct berr **err)
{
    for (size_t i = 0; i < m->n_masked; i++) {
        int r = mnt_remount_ro(m->masked[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* What is sysfs's in docker's and runc's masked list: an empty read-only tmpfs on each.
 * (/proc's share is each sandbox's: its proc is its own, mount.c.) */
static int tpl_sys(struct tpl_ctx *m, struct berr **err)
{
    static const char *const emptied[] = {"/sys/firmware", "/sys/kernel/debug"};
    for (size_t i = 0; i < ARRAY_SIZE(emptied); i++) {
        _cleanup_free_ char *p = tpl_in_root(m, emptied[i]);
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
 * mknod, so it also works where /dev is itself a bind), the mount points of each sandbox's
 * own devpts and /dev/shm, and the usual symlinks; then read-only, since every sandbox
 * shares this tmpfs. Disks stay invisible, and the devices cgroup denies them anyway. */
static int tpl_dev(struct tpl_ctx *m, struct berr **err)
{
    _cleanup_free_ char *dev = tpl_in_root(m, "/dev");
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
    return mnt_make_ro(dev, false, err);
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
        iso_mountinfo_unescape(f);
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
 * - pivot_root detached the old root and with it every host mount from the template's
 *   namespace. rootfs itself cannot be detached, so every mount that is neither the new
 *   root, below it, nor an ancestor holding it is (the host's /proc and /sys among them:
 *   the kernel consults such full mounts before it lets anyone mount a new proc or sysfs).
 * - pivot_root made the template the namespace's root, where even a chroot escape ends.
 *   Here the new root is moved on top of "/": a walk up ("..") from its top reaches
 *   rootfs's "/", and the lookup steps straight back down into the mount on it, so a root
 *   task that chroots out (docker's default set keeps CAP_SYS_CHROOT; other users have no
 *   capability at all) still ends in the sandbox. Uncovering rootfs takes umount or a new
 *   mount namespace, both CAP_SYS_ADMIN, which no task has.
 * - Entering the namespace (setns: every executor, and `berthctl exec` into a sandbox's
 *   copy) needs nothing more: the kernel resolves the namespace's "/" down through the
 *   mounts on it, so the joiner lands on the moved root, not on rootfs; for the same reason
 *   a task does not count as chrooted (it may still create a user namespace, which the
 *   kernel refuses to chrooted processes).
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
    log_debug("template: '/' is rootfs: moved '%s' onto it (no pivot_root)", root);
    return 0;
}

static int mnt_pivot(const char *root, struct berr **err)
{
    /* pivot_root(".", "."): the old root ends up stacked on the new one, so no put_old
     * directory is needed inside the (read-only) new root; detach it right away. */
    if (chdir(root) < 0)
        return berr_set(err, errno, "chdir '%s'", root);
    if (syscall(SYS_pivot_root, ".", ".") < 0) {
        int e = errno;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ char **points = NULL;
        size_t n;
        bool rootfs = false;
        if (e == EINVAL && mnt_list(&text, &points, &n, &rootfs) == 0 && rootfs) {
            /* mountinfo names paths without symlinks: compare in that form */
            _cleanup_free_ char *real = realpath(root, NULL);
            if (!real)
                return berr_set(err, errno, "realpath '%s'", root);
            return mnt_move_root(real, err);
        }
        return berr_set(err, e, "pivot_root '%s'", root);
    }
    if (umount2(".", MNT_DETACH) < 0)
        return berr_set(err, errno, "detach the old root");
    if (chdir("/") < 0)
        return berr_set(err, errno, "chdir /");
    return 0;
}

static int tpl_build(struct tpl_ctx *m, struct berr **err)
{
    bool ro = m->spec->flags & ISO_FS_RO_HOST;
    /* Nothing we mount may leak back to the host through shared propagation, and the
     * host's later mounts must not reach the template (the agent builds a new one then). */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return berr_set(err, errno, "make / private");
    if (mkdir(m->root, 0700) < 0 && errno != EEXIST)
        return berr_set(err, errno, "create '%s'", m->root);
    int r = mnt_bind("/", m->root, err);
    if (r < 0)
        return r;
    if (ro && ((r = mnt_make_ro(m->root, true, err)) < 0 || (r = tpl_masks(m, err)) < 0 ||
               (r = tpl_sandboxes_dir(m, err)) < 0 || (r = tpl_seal_masks(m, err)) < 0 ||
               (r = tpl_sys(m, err)) < 0 || (r = tpl_dev(m, err)) < 0))
        return r;
    return mnt_pivot(m->root, err);
}

int iso_template_build(const struct iso_spec *s, struct berr **err)
{
    struct tpl_ctx m = {.spec = s, .root = xasprintf("%s/rootfs", s->runtime_dir)};
    int r = tpl_build(&m, err);
    free(m.root);
    for (size_t i = 0; i < m.n_masked; i++)
        free(m.masked[i]);
    free(m.masked);
    return r < 0 ? berr_wrap(err, "template") : 0;
}
