/* SPDX-License-Identifier: Apache-2.0 */
/* executor/template.c - `berth-executor --template DIR`: the agent spawns it in a new mount
 * namespace (a copy of the host's) to build the template every sandbox starts from
 * (isolator/mount-template.c), and receives that namespace as an fd over the unix socket on
 * fd 3; the process then exits, the agent's fd keeps the namespace and its mounts alive.
 * docs/design/sandbox.md, "The template". */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "executor/executor.h"

static int send_reply(int sock, const char *msg, int fd)
{
    struct iovec iov = {.iov_base = (void *) msg, .iov_len = strlen(msg)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int exe_template(struct exe *e, const char *dir)
{
    _cleanup_berr_ struct berr *err = NULL;
    _cleanup_free_ char *path = xasprintf("%s/spec.json", dir);
    _cleanup_free_ char *json = NULL;
    /* our namespace, opened while /proc is still the host's */
    _cleanup_close_ int ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    int r = ns < 0 ? berr_set(&err, errno, "open /proc/self/ns/mnt") : 0;
    if (r == 0 && (r = read_file_alloc(path, 1 << 20, &json, NULL)) < 0)
        berr_set(&err, -r, "read '%s'", path);
    if (r == 0 && (r = iso_spec_from_json(json, &e->spec, &err)) < 0)
        berr_wrap(&err, "'%s'", path);
    if (r == 0)
        r = iso_template_build(&e->spec, &err);
    if (r < 0) {
        _cleanup_free_ char *line = xasprintf("ERROR %d %s", berr_errno(err), berr_msg(err));
        log_error("%s", berr_msg(err));
        if (e->status_fd >= 0)
            (void) send_reply(e->status_fd, line, -1);
        return EXE_LAUNCH_FAILED;
    }
    if (e->status_fd < 0 || (r = send_reply(e->status_fd, "OK", ns)) < 0) {
        log_msg(LOG_ERR, -r, "send the template to the agent");
        return EXE_LAUNCH_FAILED;
    }
    return 0;
}
