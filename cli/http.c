/* SPDX-License-Identifier: Apache-2.0 */
/* cli/http.c - berthctl's calls: one request per ctl_call/ctl_stream, sent over the agent's
 * unix socket by http-local.c (libevent's HTTP client, linked in) or to --master URL by
 * http-curl.c (libcurl, loaded only then); JSON answers parsed with yajl_tree and API errors
 * turned into a struct berr carrying the peer's message. The sink here is what both
 * transports fill: the 64 MiB answer cap, and 2xx bodies copied to an fd as they arrive.
 * Verbs (verbs-*.c, master.c) decide what to ask; json.c and format.c turn answers into
 * text. */
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

int ctl_sink_put(struct ctl_sink *s, const void *data, size_t n)
{
    if (s->fd >= 0 && s->status >= 200 && s->status < 300) {
        int r = write_all(s->fd, data, n);
        if (r < 0) {
            s->write_errno = -r;
            return -1;
        }
        return 0;
    }
    if (n > CTL_MAX_ANSWER - s->len) {
        s->too_big = true;
        return -1;
    }
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = 0;
    return 0;
}

int ctl_sink_error(const struct ctl_sink *s, const char *peer, const char *method, const char *path,
                   struct berr **err)
{
    if (s->write_errno)
        return berr_set(err, s->write_errno, "write output");
    return berr_setx(err, E2BIG, "%s's answer to %s %s is larger than %u MiB", peer, method, path,
                     CTL_MAX_ANSWER >> 20);
}

/* errno that best matches an API error code, so callers can test berr_errno(). */
static int code_errno(enum berr_code code)
{
    switch (code) {
    case BERR_INVALID_ARGUMENT:
        return EINVAL;
    case BERR_NOT_FOUND:
        return ENOENT;
    case BERR_CONFLICT:
        return EBUSY;
    case BERR_INSUFFICIENT_RESOURCES:
        return ENOSPC;
    case BERR_BODY_TOO_LARGE:
        return E2BIG;
    case BERR_METHOD_NOT_ALLOWED:
        return EPERM;
    default:
        return EIO;
    }
}

/* Turn an error answer into err: the JSON error's message (after its code with
 * ctl->error_codes), else the status and first line. The code's name is kept in
 * ctl->err_code, also when this berthctl does not know it. */
static int answer_error(struct ctl *ctl, long status, const char *body, struct berr **err)
{
    yajl_val root = body ? json_parse(body, strlen(body), NULL) : NULL;
    yajl_val e = json_get(root, "error");
    const char *name = json_get_str(e, "code");
    /* the error is one line: a peer's message may carry a parser's newlines (yajl's) */
    _cleanup_free_ char *msg =
            json_get_str(e, "message") ? xstrdup(json_get_str(e, "message")) : NULL;
    for (char *p = msg; p && *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    for (size_t n = msg ? strlen(msg) : 0; n > 0 && msg[n - 1] == ' '; n--)
        msg[n - 1] = 0;
    enum berr_code code = berr_code_from_name(name);
    if (code < 0)
        code = BERR_CODE_NONE; /* a code this berthctl does not know: the message says it */
    snprintf(ctl->err_code, sizeof(ctl->err_code), "%s", name ? name : "");
    int r;
    if (msg && *msg && name && ctl->error_codes)
        r = berr_setc(err, code_errno(code), code, "%.40s: %s", name, msg);
    /* "insufficient resources: mem: asked ..." reads better than the bare resource line */
    else if (msg && *msg && code == BERR_INSUFFICIENT_RESOURCES &&
             strncasecmp(msg, "insufficient resources", 22) != 0)
        r = berr_setc(err, ENOSPC, code, "insufficient resources: %s", msg);
    else if (msg && *msg)
        r = berr_setc(err, code_errno(code), code, "%s", msg);
    else if (name)
        r = berr_setc(err, code_errno(code), code, "%.40s (HTTP %ld)", name, status);
    else
        r = berr_setx(err, EIO, "%s answered HTTP %ld: %.*s", ctl->peer, status,
                      body ? (int) strcspn(body, "\n") : 0, body ? body : "");
    yajl_tree_free(root);
    return r;
}

/* One request on the transport ctl calls for; the answer in *sink (free sink->buf). */
static int request(struct ctl *ctl, const char *method, const char *path, const char *body,
                   struct ctl_sink *sink, struct berr **err)
{
    if (!ctl->peer)
        ctl->peer = "the agent";
    ctl->err_code[0] = 0;
    int r = ctl->url ? ctl_curl_request(ctl, method, path, body, sink, err)
                     : ctl_local_request(ctl, method, path, body, sink, err);
    if (r < 0)
        return r;
    if (sink->status < 200 || sink->status >= 300)
        return answer_error(ctl, sink->status, sink->buf, err);
    return 0;
}

int ctl_call(struct ctl *ctl, const char *method, const char *path, const char *body, yajl_val *ret,
             struct berr **err)
{
    struct ctl_sink sink = {.fd = -1};
    int r = request(ctl, method, path, body, &sink, err);
    _cleanup_free_ char *answer = sink.buf;
    if (r < 0)
        return r;
    yajl_val root = NULL;
    if (answer && answer[strspn(answer, " \t\r\n")]) {
        char ebuf[256] = "";
        root = yajl_tree_parse(answer, ebuf, sizeof(ebuf));
        if (!root)
            return berr_setx(err, EPROTO, "%s %s: %s's answer is not JSON: %.*s", method, path,
                             ctl->peer, (int) strcspn(ebuf, "\n"), ebuf);
    }
    *ret = root;
    return 0;
}

int ctl_stream(struct ctl *ctl, const char *path, int fd, struct berr **err)
{
    struct ctl_sink sink = {.fd = fd};
    int r = request(ctl, "GET", path, NULL, &sink, err);
    free(sink.buf);
    return r;
}

void ctl_http_done(struct ctl *ctl)
{
    ctl_local_free(ctl->local);
    ctl->local = NULL;
    ctl_curl_free(ctl->curl);
    ctl->curl = NULL;
    free(ctl->token);
    ctl->token = NULL;
}
