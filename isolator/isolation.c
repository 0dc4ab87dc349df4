/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/isolation.c - the [agent] isolation list: "cgroups/cpu,namespaces/pid,..." to and
 * from ISO_* bits. Pure string work; spec.c carries the bits to the executor, cgroup*.c,
 * mount.c and task.c act on them. */
#include <string.h>

#include "isolator/isolator.h"

static const struct {
    const char *name;
    unsigned flag;
} iso_names[] = {
        {"cgroups/cpu", ISO_CG_CPU},      {"cgroups/mem", ISO_CG_MEM},
        {"cgroups/pids", ISO_CG_PIDS},    {"cgroups/devices", ISO_CG_DEVICES},
        {"namespaces/pid", ISO_NS_PID},   {"namespaces/mount", ISO_NS_MOUNT},
        {"namespaces/ipc", ISO_NS_IPC},   {"namespaces/uts", ISO_NS_UTS},
        {"namespaces/net", ISO_NS_NET},   {"filesystem/readonly-host", ISO_FS_RO_HOST},
        {"linux/capabilities", ISO_CAPS}, {"linux/seccomp", ISO_SECCOMP},
};

/* Parse the comma-separated list; blanks around names and empty entries are ignored so
 * "a, b," reads like "a,b". Returns 0, or -EINVAL with err naming the first unknown entry
 * (code INVALID_ARGUMENT); *ret_flags is written only on success. */
int iso_parse_isolation(const char *s, unsigned *ret_flags, struct berr **err)
{
    if (!s)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "isolation: missing list");
    unsigned flags = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            size_t n = (size_t) (e - b);
            bool found = false;
            for (size_t i = 0; i < ARRAY_SIZE(iso_names); i++) {
                if (strlen(iso_names[i].name) == n && strncmp(iso_names[i].name, b, n) == 0) {
                    flags |= iso_names[i].flag;
                    found = true;
                    break;
                }
            }
            if (!found)
                return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "isolation: unknown '%.*s'",
                                 (int) n, b);
        }
        p += len;
        if (*p == ',')
            p++;
    }
    *ret_flags = flags;
    return 0;
}

/* Canonical order (the table's), comma-separated, truncated to fit len. */
void iso_format_isolation(unsigned flags, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = 0;
    size_t off = 0;
    for (size_t i = 0; i < ARRAY_SIZE(iso_names); i++) {
        if (!(flags & iso_names[i].flag))
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? "," : "", iso_names[i].name);
        if (n < 0 || (size_t) n >= len - off) {
            buf[off] = 0; /* never leave half a name */
            return;
        }
        off += (size_t) n;
    }
}
