/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/user.c - a task's user on the host's passwd and group files: the agent resolves
 * it at admission and writes the ids and home into the spec, so berth-executor does no NSS
 * lookups (no NSS modules loaded into every executor, none of their work charged to the
 * task; issue #18). */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "isolator/isolator.h"

int iso_user_resolve(const char *user, struct iso_user *ret, char **ret_home, struct berr **err)
{
    struct iso_user u = {0};
    if (!user || !*user)
        user = "root";
    uint64_t num;
    bool numeric = parse_u64(user, &num) == 0;
    if (numeric && num >= (uint64_t) UINT32_MAX)
        return berr_setx(err, EINVAL, "user '%s' invalid", user);
    errno = 0;
    struct passwd *pw = numeric ? getpwuid((uid_t) num) : getpwnam(user);
    /* getpwnam(3): 0, ENOENT, ESRCH, EBADF or EPERM mean "not found"; anything else (EMFILE
     * when the agent is out of fds, EIO) is a failure to look, not an unknown user */
    int e = errno;
    if (!pw && (!e || e == ENOENT)) {
        /* glibc says "not found" when the files module could not open /etc/passwd and a
         * module after it (nss-systemd) found nothing: see whether we could have */
        int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE))
            e = errno;
        else if (fd >= 0)
            close(fd);
    }
    if (!pw && e && e != ENOENT && e != ESRCH && e != EBADF && e != EPERM)
        return berr_set(err, e, "user '%s': cannot read the host's user database", user);
    if (!pw) {
        if (!numeric)
            return berr_setx(err, ENOENT, "user '%s' unknown", user);
        u.uid = (uid_t) num;
        u.gid = (gid_t) num;
        u.n_groups = 0;
        *ret = u;
        if (ret_home)
            *ret_home = xstrdup("/");
        return 0;
    }
    u.uid = pw->pw_uid;
    u.gid = pw->pw_gid;
    if (ret_home)
        *ret_home = xstrdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
    int n = (int) ARRAY_SIZE(u.groups);
    if (getgrouplist(pw->pw_name, pw->pw_gid, u.groups, &n) < 0) {
        /* more groups than fit: take the first ones */
        gid_t *all = xcalloc((size_t) n, sizeof(gid_t));
        if (getgrouplist(pw->pw_name, pw->pw_gid, all, &n) < 0)
            n = 0;
        if (n > (int) ARRAY_SIZE(u.groups))
            n = (int) ARRAY_SIZE(u.groups);
        memcpy(u.groups, all, (size_t) n * sizeof(gid_t));
        free(all);
    }
    u.n_groups = n;
    *ret = u;
    return 0;
}
