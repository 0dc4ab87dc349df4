/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/status.c - the codec of what berth-executor reports about its task, both sides of
 * it in one place: the line on the status pipe while the agent waits for the launch
 * ("RUNNING", "ERROR <errno> <message>") and runtime_dir/status.json for the end, which
 * survives an agent restart ({"exit_code": N} | {"signal": N} | {"launch_error": "...",
 * "errno": N}). executor/status.c writes them, agentd/lifecycle.c reads them. */
#include <string.h>

#include "isolator/isolator.h"

void iso_status_done(struct iso_status *s)
{
    free(s->message);
    *s = (struct iso_status){0};
}

char *iso_status_to_json(const struct iso_status *s)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    yajl_gen_map_open(g);
    static const char *const keys[] = {
            [ISO_STATUS_EXITED] = "exit_code",
            [ISO_STATUS_SIGNALED] = "signal",
            [ISO_STATUS_LAUNCH_ERROR] = "errno",
    };
    if (s->kind == ISO_STATUS_LAUNCH_ERROR)
        json_kv_str(g, "launch_error", s->message ? s->message : "launch failed");
    if (s->kind >= ISO_STATUS_EXITED && s->kind <= ISO_STATUS_LAUNCH_ERROR)
        json_kv_i64(g, keys[s->kind], s->code);
    yajl_gen_map_close(g);
    _cleanup_free_ char *text = json_gen_take(g);
    return xasprintf("%s\n", text);
}

static bool int_member(yajl_val root, const char *key, int *ret)
{
    int64_t v;
    if (!json_get_i64(root, key, &v) || v < 0 || v > 65535)
        return false;
    *ret = (int) v;
    return true;
}

int iso_status_from_json(const char *json, struct iso_status *ret, struct berr **err)
{
    *ret = (struct iso_status){0};
    yajl_val v = json_parse(json, strlen(json), NULL);
    if (!v || !YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "status.json is not a JSON object");
    }
    const char *le = json_get_str(v, "launch_error");
    int n;
    if (le) {
        ret->kind = ISO_STATUS_LAUNCH_ERROR;
        ret->message = xstrdup(le);
        ret->code = int_member(v, "errno", &n) && n > 0 ? n : EIO;
    } else if (int_member(v, "exit_code", &n) && n <= 255) {
        ret->kind = ISO_STATUS_EXITED;
        ret->code = n;
    } else if (int_member(v, "signal", &n) && n > 0 && n < 65) {
        ret->kind = ISO_STATUS_SIGNALED;
        ret->code = n;
    }
    yajl_tree_free(v);
    if (ret->kind == ISO_STATUS_NONE)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "status.json holds no exit_code, signal or launch_error");
    return 0;
}

char *iso_status_line(const struct iso_status *s)
{
    if (s->kind == ISO_STATUS_RUNNING)
        return xstrdup("RUNNING\n");
    /* one line: a newline in the message would split the protocol */
    char *line = xasprintf("ERROR %d %s\n", s->code > 0 ? s->code : EIO,
                           s->message ? s->message : "launch failed");
    for (char *p = line; p[0] && p[1]; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return line;
}

int iso_status_from_line(const char *buf, struct iso_status *ret)
{
    *ret = (struct iso_status){0};
    if (str_has_prefix(buf, "RUNNING\n")) {
        ret->kind = ISO_STATUS_RUNNING;
        return 0;
    }
    if (!str_has_prefix(buf, "ERROR ") || !strchr(buf, '\n'))
        return -EAGAIN; /* nothing complete yet */
    const char *p = buf + 6;
    uint64_t n = 0;
    size_t digits = strspn(p, "0123456789");
    _cleanup_free_ char *num = xstrndup(p, digits);
    ret->kind = ISO_STATUS_LAUNCH_ERROR;
    ret->code = digits && digits < 6 && parse_u64(num, &n) == 0 && n > 0 ? (int) n : EIO;
    p += digits;
    if (*p == ' ')
        p++;
    ret->message = xstrndup(p, strcspn(p, "\n"));
    return 0;
}
