/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/mount-util.c - the mount helpers the template (mount-template.c) and each
 * sandbox (mount.c) share: binds, tmpfs, read-only, and symlink-free path walks. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

bool path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

bool path_is_clean(const char *p)
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

int mnt_bind(const char *src, const char *dst, struct berr **err)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
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

int mnt_remount_ro(const char *path, struct berr **err)
{
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | mnt_kept_flags(path), NULL) < 0)
        return berr_set(err, errno, "remount '%s' read-only", path);
    return 0;
}

void iso_mountinfo_unescape(char *s)
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
        iso_mountinfo_unescape(mp);
        if (strncmp(mp, path, plen) != 0 || (mp[plen] != 0 && mp[plen] != '/'))
            continue;
        r = mnt_remount_ro(mp, err);
    }
    free(line);
    return r;
}

int mnt_make_ro(const char *path, bool recursive, struct berr **err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)) == 0)
        return 0;
    if (errno != ENOSYS)
        return berr_set(err, errno, "make '%s' read-only", path);
    return recursive ? mnt_ro_each(path, err) : mnt_remount_ro(path, err);
}

int mnt_tmpfs(const char *dst, unsigned long flags, const char *opts, struct berr **err)
{
    if (mount("tmpfs", dst, "tmpfs", flags, opts) < 0)
        return berr_set(err, errno, "mount tmpfs on '%s'", dst);
    return 0;
}

int mnt_open_at(int dirfd, const char *path, int flags, mode_t mode, bool in_root)
{
    struct open_how how = {
            .flags = (uint64_t) (flags | O_CLOEXEC),
            .mode = flags & O_CREAT ? mode : 0,
            .resolve = RESOLVE_NO_SYMLINKS | (in_root ? RESOLVE_IN_ROOT : RESOLVE_BENEATH),
    };
    return (int) syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}
