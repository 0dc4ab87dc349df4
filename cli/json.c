/* SPDX-License-Identifier: Apache-2.0 */
/* cli/json.c - berthctl's own JSON output on common/json.c's helpers: a tree as pretty JSON
 * for `inspect` and `-o json`, and a command as one line of text. http.c parses the answers;
 * run-request.c builds request bodies; format.c formats the values for tables. */
#include <string.h>

#include "cli/cli.h"

int ctl_json_print(FILE *f, yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    json_gen_value(g, v);
    _cleanup_free_ char *text = json_gen_take(g);
    size_t n = strlen(text);
    /* yajl's beautifier already ends a top-level container with a newline */
    if (fputs(text, f) < 0 || (n > 0 && text[n - 1] != '\n' && fputc('\n', f) < 0))
        return -EIO;
    return 0;
}

char *ctl_command_text(yajl_val command)
{
    const char *shell = json_get_str(command, "shell");
    if (shell)
        return xstrdup(shell);
    yajl_val argv = json_get(command, "argv");
    if (!argv || !YAJL_IS_ARRAY(argv))
        return xstrdup("");
    size_t len = 1;
    for (size_t i = 0; i < argv->u.array.len; i++)
        if (YAJL_IS_STRING(argv->u.array.values[i]))
            len += strlen(argv->u.array.values[i]->u.string) + 1;
    char *out = xzalloc(len);
    size_t off = 0;
    for (size_t i = 0; i < argv->u.array.len; i++) {
        if (!YAJL_IS_STRING(argv->u.array.values[i]))
            continue;
        const char *a = argv->u.array.values[i]->u.string;
        size_t n = strlen(a);
        if (off > 0)
            out[off++] = ' ';
        memcpy(out + off, a, n);
        off += n;
    }
    out[off] = 0;
    return out;
}

char *ctl_ports_text(yajl_val ctr)
{
    yajl_val ports = json_get(ctr, "ports");
    const char *addr = json_get_str(json_get(ctr, "net"), "address");
    size_t cap = 64, len = 0;
    char *out = xzalloc(cap);
    if (addr)
        len += (size_t) snprintf(out, cap, "%s", addr);
    for (size_t i = 0; ports && YAJL_IS_ARRAY(ports) && i < ports->u.array.len; i++) {
        uint64_t h = 0, p = 0;
        yajl_val v = ports->u.array.values[i];
        (void) json_get_u64(v, "host_port", &h);
        (void) json_get_u64(v, "container_port", &p);
        char one[32];
        int n = p && p != h ? snprintf(one, sizeof(one), "%s%llu->%llu",
                                       i      ? ","
                                       : addr ? " "
                                              : "",
                                       (unsigned long long) h, (unsigned long long) p)
                            : snprintf(one, sizeof(one), "%s%llu",
                                       i      ? ","
                                       : addr ? " "
                                              : "",
                                       (unsigned long long) h);
        if (len + (size_t) n + 1 > cap)
            out = xrealloc(out, cap = (len + (size_t) n + 1) * 2);
        memcpy(out + len, one, (size_t) n + 1);
        len += (size_t) n;
    }
    if (!len) {
        const char *net = json_get_str(ctr, "network");
        snprintf(out, cap, "%s", net && streq(net, "none") ? "none" : "-");
    }
    return out;
}
