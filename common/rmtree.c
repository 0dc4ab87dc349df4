/* SPDX-License-Identifier: Apache-2.0 */
/* common/rmtree.c - remove a directory tree by file descriptors (rmtree.h says why). The
 * same walk as systemd's rm_rf_children: open each directory O_NOFOLLOW below its parent's
 * fd, unlink what is in it, remove it from the parent; entries are read with getdents64
 * into a buffer on the stack, one open directory per level. */
#include "common/rmtree.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void keep_first(int *err, int r)
{
    if (*err == 0 && r < 0)
        *err = r;
}

static bool is_dir(int dirfd, const struct linux_dirent64 *de)
{
    if (de->d_type != DT_UNKNOWN)
        return de->d_type == DT_DIR;
    struct stat st;
    return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Empty the directory open at fd (on dev), depth levels below the top. */
static int rm_children(int fd, dev_t dev, unsigned depth, const atomic_bool *stop)
{
    char buf[4096] __attribute__((aligned(8)));
    int err = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return err;
        for (long off = 0; off < n;) {
            const struct linux_dirent64 *de = (const void *) (buf + off);
            off += de->d_reclen;
            if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                continue;
            if (stop && atomic_load_explicit(stop, memory_order_relaxed))
                return -ECANCELED;
            if (!is_dir(fd, de)) {
                if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
                    keep_first(&err, -errno);
                continue;
            }
            if (depth >= RMTREE_DEPTH_MAX) {
                keep_first(&err, -ELOOP);
                continue;
            }
            int sub = openat(fd, de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
            if (sub < 0) {
                if (errno != ENOENT)
                    keep_first(&err, -errno);
                continue;
            }
            struct stat st;
            int r = fstat(sub, &st) < 0 ? -errno : st.st_dev != dev ? -EXDEV : 0;
            if (r == 0)
                r = rm_children(sub, dev, depth + 1, stop);
            close(sub);
            if (r == -ECANCELED)
                return r;
            if (r == 0 && unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                r = -errno;
            keep_first(&err, r);
        }
    }
}

int rm_tree(const char *path, const atomic_bool *stop)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTDIR && errno != ELOOP)
            return -errno;
        /* a file or a symbolic link: itself */
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    }
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : rm_children(fd, st.st_dev, 1, stop);
    close(fd);
    if (r == 0 && rmdir(path) < 0 && errno != ENOENT)
        r = -errno;
    return r;
}
