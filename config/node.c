/* SPDX-License-Identifier: Apache-2.0 */
/* config/node.c - what the agent tells the master about its node (issue #16): [agent]
 * hostname (the name in the registry, offers and constraints; default the host's), the
 * free-form [attributes] section (rack = r1: carried by every offer, matched by berth-apps'
 * constraints) and [agent] address (issue #17: the IP its tasks' ports are reached on). The
 * rules are masterlink's (ml_attr_*, ml_address_valid), restated here: config/ includes only
 * common/. config.c owns the other keys, load.c the sources. Pure: no I/O, no logging. */
#include <arpa/inet.h>
#include <string.h>

#include "common/common.h"
#include "config/config.h"

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

void cfg_node_defaults(struct cfg_agent *cfg)
{
    cfg->hostname = xstrdup("");
    cfg->address = xstrdup("");
    cfg->attrs = NULL;
    cfg->n_attrs = 0;
}

void cfg_node_done(struct cfg_agent *cfg)
{
    free(cfg->hostname);
    cfg->hostname = NULL;
    free(cfg->address);
    cfg->address = NULL;
    for (size_t i = 0; i < cfg->n_attrs; i++) {
        free(cfg->attrs[i].name);
        free(cfg->attrs[i].value);
    }
    free(cfg->attrs);
    cfg->attrs = NULL;
    cfg->n_attrs = 0;
}

/* The master's rule for a host name (it goes to logs and tables as it is). */
static bool hostname_ok(const char *s)
{
    size_t n = strlen(s);
    return n <= 253 && strspn(s, NAME_CHARS) == n;
}

static bool attr_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 63 && strspn(s, NAME_CHARS) == n;
}

static bool attr_value_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char) s[n] < 0x20 || (unsigned char) s[n] > 0x7e)
            return false;
    return n <= 255;
}

int cfg_set_node_key(struct cfg_agent *cfg, const char *section, const char *key, const char *value,
                     struct berr **err)
{
    if (streq(section, "agent") && streq(key, "hostname")) {
        if (!hostname_ok(value))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[agent] hostname: bad host name '%s' (up to 253 of A-Z, a-z, 0-9, "
                             "'.', '-', '_'; empty = the host's)",
                             value);
        free(cfg->hostname);
        cfg->hostname = xstrdup(value);
        return 0;
    }
    if (streq(section, "agent") && streq(key, "address")) {
        unsigned char buf[16];
        bool ok = !value[0] || (strlen(value) <= 45 && (inet_pton(AF_INET, value, buf) == 1 ||
                                                        inet_pton(AF_INET6, value, buf) == 1));
        if (!ok)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[agent] address: want an IPv4 or IPv6 address (empty = the "
                             "address the master sees the agent's connection come from)");
        free(cfg->address);
        cfg->address = xstrdup(value);
        return 0;
    }
    if (!streq(section, "attributes"))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown key '%s' in [%s]", key,
                         section);
    if (!attr_name_ok(key))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "[attributes] bad name '%s' (1-63 of A-Z, a-z, 0-9, '_', '.', '-')", key);
    if (!attr_value_ok(value))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "[attributes] %s: bad value (0-255 printable ASCII characters)",
                         key); /* not echoed: a flag's value may hold a newline */
    for (size_t i = 0; i < cfg->n_attrs; i++) {
        if (streq(cfg->attrs[i].name, key)) { /* later wins, as for every key */
            free(cfg->attrs[i].value);
            cfg->attrs[i].value = xstrdup(value);
            return 0;
        }
    }
    if (cfg->n_attrs >= CFG_MAX_ATTRS)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "[attributes] %s: too many attributes (at most %d)", key, CFG_MAX_ATTRS);
    cfg->attrs = xrealloc(cfg->attrs, (cfg->n_attrs + 1) * sizeof(*cfg->attrs));
    cfg->attrs[cfg->n_attrs].name = xstrdup(key);
    cfg->attrs[cfg->n_attrs++].value = xstrdup(value);
    return 0;
}
