/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/mount-etc.c - a sandbox's own /etc/hosts, /etc/resolv.conf and /etc/hostname: the
 * files the agent wrote into the spec's etc_dir (agentd/net-files.c renders them) are bound
 * read-only over the ones the sandbox's root has. The runtime dir holding them is masked
 * there, so each is taken as a detached read-only mount while the executor still sees the
 * host (mnt_etc_open: open_tree, mount_setattr), and put in place once it is in the
 * sandbox's namespace (mnt_etc_attach: move_mount): no window in which one is writable. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

static const char *const etc_names[MNT_ETC_FILES] = {"hosts", "resolv.conf", "hostname"};

int mnt_etc_open(const char *etc_dir, int trees[MNT_ETC_FILES], struct berr **err)
{
    for (size_t i = 0; i < MNT_ETC_FILES; i++)
        trees[i] = -1;
    for (size_t i = 0; i < MNT_ETC_FILES; i++) {
        _cleanup_free_ char *src = xasprintf("%s/%s", etc_dir, etc_names[i]);
        if (access(src, F_OK) < 0)
            continue; /* the agent writes only those the task's mode needs */
        int tree = (int) open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
            return berr_set(err, errno, "open_tree '%s'", src);
        trees[i] = tree;
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                              MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
        if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
            return berr_set(err, errno, "make '%s' read-only", src);
    }
    return 0;
}

/* One file: the target is looked up inside the root (RESOLVE_IN_ROOT: an absolute symlink
 * such as /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf resolves in the
 * sandbox's view, never in the host's). A target the host does not have is skipped: the
 * read-only view cannot make one. */
static int mnt_etc_one(int rootfd, int tree, const char *target, struct berr **err)
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
    if (move_mount(tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return berr_set(err, errno, "bind on '/%s'", target);
    log_debug("sandbox: bound the agent's file on '/%s'", target);
    return 0;
}

int mnt_etc_attach(int trees[MNT_ETC_FILES], struct berr **err)
{
    _cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return berr_set(err, errno, "open '/'");
    int r = 0;
    for (size_t i = 0; i < MNT_ETC_FILES; i++) {
        if (trees[i] < 0)
            continue;
        _cleanup_free_ char *target = xasprintf("etc/%s", etc_names[i]);
        if (r == 0)
            r = mnt_etc_one(rootfd, trees[i], target, err);
        closep(&trees[i]);
    }
    return r;
}
