/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/mount-etc.c - a sandbox's own /etc/hosts, /etc/resolv.conf and /etc/hostname: the
 * files the agent wrote into the spec's etc_dir (agentd/net-files.c renders them) are bound
 * read-only over the host's, inside the new root, before pivot_root. mount.c builds the rest
 * of the root and calls this once the host view is read-only. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

/* One file: the target is looked up inside the new root (RESOLVE_IN_ROOT: an absolute
 * symlink such as /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf resolves in the
 * sandbox's view, never in the host's), and the source goes on it as a detached read-only
 * mount (open_tree, mount_setattr, move_mount: no window in which it is writable). A target
 * the host does not have is skipped: the read-only view cannot make one. */
static int mnt_etc_one(int rootfd, const char *src, const char *target, struct berr **err)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
    _cleanup_close_ int tfd = (int) syscall(SYS_openat2, rootfd, target, &how, sizeof(how));
    struct stat st;
    if (tfd < 0 && (errno == ENOENT || errno == ELOOP))
        return 0;
    if (tfd < 0)
        return berr_set(err, errno, "open '/%s' in the sandbox", target);
    if (fstat(tfd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    _cleanup_close_ int tree = (int) open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0)
        return berr_set(err, errno, "open_tree '%s'", src);
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                          MOUNT_ATTR_NOEXEC};
    if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
        return berr_set(err, errno, "make '%s' read-only", src);
    if (move_mount(tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return berr_set(err, errno, "bind '%s' on '/%s'", src, target);
    log_debug("sandbox: bound '%s' on '/%s'", src, target);
    return 0;
}

int mnt_etc_files(const char *root, const char *etc_dir, struct berr **err)
{
    static const char *const names[] = {"hosts", "resolv.conf", "hostname"};
    _cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return berr_set(err, errno, "open '%s'", root);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        _cleanup_free_ char *src = xasprintf("%s/%s", etc_dir, names[i]);
        _cleanup_free_ char *target = xasprintf("etc/%s", names[i]);
        if (access(src, F_OK) < 0)
            continue; /* the agent writes only those the task's mode needs */
        int r = mnt_etc_one(rootfd, src, target, err);
        if (r < 0)
            return r;
    }
    return 0;
}
