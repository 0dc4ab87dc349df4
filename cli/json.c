/* cli/json.c - yajl helpers for berthctl: typed lookups in a parsed answer (yajl_tree) and
 * re-generating a tree as pretty JSON for `inspect` and `-o json`. http.c parses the answers;
 * run-request.c builds request bodies; format.c formats the values for tables. */
#include <string.h>

#include "cli/cli.h"

yajl_val ctl_json_get(yajl_val v, const char *key)
{
    if (!v || !YAJL_IS_OBJECT(v))
        return NULL;
    for (size_t i = 0; i < v->u.object.len; i++)
        if (streq(v->u.object.keys[i], key))
            return YAJL_IS_NULL(v->u.object.values[i]) ? NULL : v->u.object.values[i];
    return NULL;
}

const char *ctl_json_str(yajl_val v, const char *key)
{
    yajl_val s = ctl_json_get(v, key);
    return s && YAJL_IS_STRING(s) ? s->u.string : NULL;
}

bool ctl_json_num(yajl_val v, const char *key, double *ret)
{
    yajl_val n = ctl_json_get(v, key);
    if (!n || !YAJL_IS_NUMBER(n))
        return false;
    if (YAJL_IS_INTEGER(n))
        *ret = (double) YAJL_GET_INTEGER(n);
    else if (YAJL_IS_DOUBLE(n))
        *ret = YAJL_GET_DOUBLE(n);
    else
        return false;
    return true;
}

yajl_gen_status ctl_json_gen(yajl_gen g, yajl_val v)
{
    yajl_gen_status s = yajl_gen_status_ok;
    if (!v)
        return yajl_gen_null(g);
    switch (v->type) {
    case yajl_t_string:
        return yajl_gen_string(g, (const unsigned char *) v->u.string, strlen(v->u.string));
    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    case yajl_t_true:
        return yajl_gen_bool(g, 1);
    case yajl_t_false:
        return yajl_gen_bool(g, 0);
    case yajl_t_null:
        return yajl_gen_null(g);
    case yajl_t_object:
        if ((s = yajl_gen_map_open(g)) != yajl_gen_status_ok)
            return s;
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            if ((s = yajl_gen_string(g, (const unsigned char *) k, strlen(k))) !=
                        yajl_gen_status_ok ||
                (s = ctl_json_gen(g, v->u.object.values[i])) != yajl_gen_status_ok)
                return s;
        }
        return yajl_gen_map_close(g);
    case yajl_t_array:
        if ((s = yajl_gen_array_open(g)) != yajl_gen_status_ok)
            return s;
        for (size_t i = 0; i < v->u.array.len; i++)
            if ((s = ctl_json_gen(g, v->u.array.values[i])) != yajl_gen_status_ok)
                return s;
        return yajl_gen_array_close(g);
    default:
        return yajl_gen_invalid_string;
    }
}

char *ctl_json_take(yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
        return xstrdup("");
    return xstrndup((const char *) buf, len);
}

int ctl_json_print(FILE *f, yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    yajl_gen_status s = ctl_json_gen(g, v);
    _cleanup_free_ char *text = s == yajl_gen_status_ok ? ctl_json_take(g) : NULL;
    yajl_gen_free(g);
    if (!text)
        return -EIO;
    size_t n = strlen(text);
    /* yajl's beautifier already ends a top-level container with a newline */
    if (fputs(text, f) < 0 || (n > 0 && text[n - 1] != '\n' && fputc('\n', f) < 0))
        return -EIO;
    return 0;
}

char *ctl_command_text(yajl_val command)
{
    const char *shell = ctl_json_str(command, "shell");
    if (shell)
        return xstrdup(shell);
    yajl_val argv = ctl_json_get(command, "argv");
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
