/* SPDX-License-Identifier: Apache-2.0 */
/* config/daemon.c - how berth-master, berth-apps and berth-lb read their settings, one way
 * for the three: --config=FILE (or --config FILE; else the daemon's default file, which may
 * be absent), INI read with libinih with every key handed to the daemon's set function
 * (the first error wins, then "FILE:LINE" is put in front of it), then each --KEY=VALUE flag
 * (dashes in KEY become underscores; "SECTION." in front is dropped) unless the daemon
 * reads its flags itself (flag != NULL: berth-master's --role.NAME.KEY). The daemon checks
 * the keys that only make sense together afterwards. */
#include <errno.h>
#include <ini.h>
#include <string.h>

#include "config/config.h"

struct daemon_ctx {
    cfg_daemon_set_fn set;
    void *obj;
    struct berr **err;
};

static int handler(void *arg, const char *section, const char *name, const char *value)
{
    struct daemon_ctx *c = arg;
    if (!name) /* a section header alone */
        return 1;
    if (*c->err) /* keep the first error */
        return 0;
    return c->set(c->obj, section[0] ? section : "(none)", name, value, c->err) < 0 ? 0 : 1;
}

static int set_flag(const struct cfg_daemon *d, void *obj, const char *arg, struct berr **err)
{
    const char *eq = strchr(arg, '=');
    _cleanup_free_ char *key = xstrndup(arg + 2, (size_t) (eq - arg - 2));
    if (d->flag)
        return d->flag(obj, key, eq + 1, err);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    size_t n = strlen(d->section);
    const char *k = key;
    if (strncmp(k, d->section, n) == 0 && k[n] == '.')
        k += n + 1;
    return d->set(obj, d->section, k, eq + 1, err);
}

int cfg_daemon_load(const struct cfg_daemon *d, void *obj, int argc, char **argv, char **ret_file,
                    struct berr **err)
{
    const char *file = d->default_file;
    bool named = false;
    for (int i = 1; i < argc; i++) {
        if (str_has_prefix(argv[i], "--config=")) {
            file = argv[i] + 9;
            named = true;
        } else if (streq(argv[i], "--config") && i + 1 < argc) {
            file = argv[++i];
            named = true;
        }
    }
    *ret_file = xstrdup(file);
    FILE *f = fopen(file, "re");
    if (!f && (named || errno != ENOENT))
        return berr_setc(err, errno, BERR_INVALID_ARGUMENT, "%s: %s", file, strerror(errno));
    if (f) {
        struct daemon_ctx c = {.set = d->set, .obj = obj, .err = err};
        int line = ini_parse_file(f, handler, &c);
        fclose(f);
        if (line != 0) {
            if (*err)
                return berr_wrap(err, "%s:%d", file, line);
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "%s:%d: syntax error (expected [section] or key = value)", file, line);
        }
    }
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--config")) {
            i++;
            continue;
        }
        if (str_has_prefix(argv[i], "--config="))
            continue;
        if (!str_has_prefix(argv[i], "--") || !strchr(argv[i], '='))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "%s: expected --KEY=VALUE (see %s --help)", argv[i], d->prog);
        if (set_flag(d, obj, argv[i], err) < 0)
            return berr_wrap(err, "%s", argv[i]);
    }
    return 0;
}
