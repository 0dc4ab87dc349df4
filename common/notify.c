/* SPDX-License-Identifier: Apache-2.0 */
/* common/notify.c - the service manager's readiness protocol (sd_notify), shared by both
 * daemons so that berth-agent.service and berth-master.service can be Type=notify: one
 * datagram "READY=1" to $NOTIFY_SOCKET once the daemon listens, "STOPPING=1" on SIGTERM.
 * agentd/main.c and master/main.c call it once each; what "listens" means is theirs.
 *
 * Why not libsystemd's sd_notify(): the protocol is a stable, documented interface (one
 * AF_UNIX datagram of "KEY=VALUE\n" lines to a path or an abstract address), it costs 40
 * lines, and linking libsystemd would add a dependency to every build and package for one
 * call (and one the rpm and non-systemd hosts would carry for nothing). Why not Type=exec
 * with an ExecStartPost socket probe: the probe must guess the address from the config
 * (listen= may name another one), polls, and cannot tell a second daemon's socket from ours;
 * the daemon itself knows exactly when its listener is bound. */
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/common.h"

char *notify_socket_take(void)
{
    const char *e = getenv("NOTIFY_SOCKET");
    char *s = e && e[0] ? xstrdup(e) : NULL;
    /* nothing we start (executors, exec helpers) may talk to our service manager */
    unsetenv("NOTIFY_SOCKET");
    return s;
}

int notify_send(const char *socket_path, const char *state)
{
    if (!socket_path)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(socket_path);
    if ((socket_path[0] != '/' && socket_path[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
        return -EAFNOSUPPORT; /* e.g. vsock:..., which our daemons never run under */
    memcpy(sa.sun_path, socket_path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace; the address length counts the name only */
    socklen_t salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len +
                                   (socket_path[0] == '/' ? 1 : 0));
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    size_t n = strlen(state);
    ssize_t r = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *) &sa, salen);
    if (r < 0)
        return -errno;
    log_debug("notify '%s': %s", socket_path, state);
    return (size_t) r == n ? 0 : -EIO;
}
