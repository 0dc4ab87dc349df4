/* SPDX-License-Identifier: Apache-2.0 */
/* config/network.c - the networking keys (issue #15, docs/design/network.md): [agent]
 * network, allow_host_network, enforce_ports and enforce_ports_interval, and the [network]
 * section (subnet, bridge). config.c owns every other key and hands these over; load.c reads
 * the sources. Pure: no I/O, no logging. */
#include <arpa/inet.h>
#include <string.h>

#include "common/common.h"
#include "config/config.h"

#define BAD(what, hint)                                                                            \
    berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "[%s] %s: bad %s '%s' (%s)", section, key, what, \
              value, hint)

void cfg_network_defaults(struct cfg_agent *cfg)
{
    cfg->network = xstrdup("host");
    cfg->allow_host_network = true;
    cfg->enforce_ports = false;
    cfg->enforce_ports_interval_ms = 2000;
    cfg->net_subnet = xstrdup(CFG_DEFAULT_SUBNET);
    (void) cfg_parse_subnet(CFG_DEFAULT_SUBNET, &cfg->net_addr, &cfg->net_prefix);
    cfg->net_bridge = xstrdup("berth0");
}

void cfg_network_done(struct cfg_agent *cfg)
{
    free(cfg->network);
    free(cfg->net_subnet);
    free(cfg->net_bridge);
}

int cfg_parse_subnet(const char *s, uint32_t *ret_addr, unsigned *ret_prefix)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || (size_t) (slash - s) >= INET_ADDRSTRLEN)
        return -EINVAL;
    char ip[INET_ADDRSTRLEN];
    memcpy(ip, s, (size_t) (slash - s));
    ip[slash - s] = 0;
    struct in_addr in;
    uint64_t prefix;
    if (inet_pton(AF_INET, ip, &in) != 1 || parse_u64(slash + 1, &prefix) < 0)
        return -EINVAL;
    /* /16 at most (the address bitmap stays 8 KiB), /29 at least: the gateway and a few tasks */
    if (prefix < 16 || prefix > 29)
        return -ERANGE;
    uint32_t addr = ntohl(in.s_addr), mask = ~UINT32_C(0) << (32 - prefix);
    if (addr & ~mask)
        return -EINVAL; /* host bits set: "10.0.0.5/24" is not a subnet */
    *ret_addr = addr;
    *ret_prefix = (unsigned) prefix;
    return 0;
}

/* A Linux interface name: 1-15 of [A-Za-z0-9_.-], as `ip link` takes it. */
static bool ifname_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 16 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n &&
           !streq(s, ".") && !streq(s, "..");
}

int cfg_set_network_key(struct cfg_agent *cfg, const char *section, const char *key,
                        const char *value, struct berr **err)
{
    uint64_t u;
    if (streq(section, "agent") && streq(key, "network")) {
        if (!streq(value, "host") && !streq(value, "bridge") && !streq(value, "none"))
            return BAD("network", "host, bridge or none");
        free(cfg->network);
        cfg->network = xstrdup(value);
    } else if (streq(section, "agent") && streq(key, "allow_host_network")) {
        if (parse_bool(value, &cfg->allow_host_network) < 0)
            return BAD("boolean", "true or false");
    } else if (streq(section, "agent") && streq(key, "enforce_ports")) {
        if (parse_bool(value, &cfg->enforce_ports) < 0)
            return BAD("boolean", "true or false");
    } else if (streq(section, "agent") && streq(key, "enforce_ports_interval")) {
        if (cfg_parse_duration_ms(value, &u) < 0 || u < 100 || u > 3600000)
            return BAD("duration", "100ms to 1h, e.g. 2s");
        cfg->enforce_ports_interval_ms = u;
    } else if (streq(section, "network") && streq(key, "subnet")) {
        uint32_t addr;
        unsigned prefix;
        if (cfg_parse_subnet(value, &addr, &prefix) < 0)
            return BAD("subnet", "an IPv4 network A.B.C.D/N with N from 16 to 29 and no host "
                                 "bits set, e.g. 172.31.0.0/16");
        free(cfg->net_subnet);
        cfg->net_subnet = xstrdup(value);
        cfg->net_addr = addr;
        cfg->net_prefix = prefix;
    } else if (streq(section, "network") && streq(key, "bridge")) {
        if (!ifname_ok(value))
            return BAD("interface name", "1-15 of A-Z, a-z, 0-9, '_', '.', '-'");
        free(cfg->net_bridge);
        cfg->net_bridge = xstrdup(value);
    } else {
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown key '%s' in [%s]", key,
                         section);
    }
    return 0;
}
