/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/net-lo.c - the network namespace's first step, taken by berth-executor inside it:
 * bring the loopback up (a new namespace's lo is down, so 127.0.0.1 would not even answer
 * the task itself), and the names of the network modes. One ioctl, no libnl: pid-1 code
 * stays small. net-link.c (libnl-route) does the bridge and the veth from the agent's side. */
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "isolator/isolator.h"

static const char *const net_mode_names[_ISO_NET_MAX] = {
        [ISO_NET_HOST] = "host",
        [ISO_NET_NONE] = "none",
        [ISO_NET_BRIDGE] = "bridge",
};

const char *iso_net_mode_name(enum iso_net_mode m)
{
    return m >= 0 && m < _ISO_NET_MAX ? net_mode_names[m] : NULL;
}

enum iso_net_mode iso_net_mode_from_name(const char *s)
{
    for (int i = 0; s && i < _ISO_NET_MAX; i++)
        if (streq(net_mode_names[i], s))
            return (enum iso_net_mode) i;
    return _ISO_NET_INVALID;
}

int iso_net_lo_up(struct berr **err)
{
    _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berr_set(err, errno, "network: socket");
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return berr_set(err, errno, "network: get the flags of lo");
    if (ifr.ifr_flags & IFF_UP)
        return 0;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return berr_set(err, errno, "network: bring lo up");
    return 0;
}
