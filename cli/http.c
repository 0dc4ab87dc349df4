/* cli/http.c - berthctl's only transport: one libcurl easy request per call to the agent's
 * unix socket ("http://localhost/v1/..."), JSON answers parsed with yajl_tree and API errors
 * turned into a struct berr carrying the agent's message. Verbs (verbs-*.c) decide what to
 * ask; json.c and format.c turn the answers into text. */
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

#define CTL_MAX_ANSWER (64u << 20) /* exec output is capped at 2 MiB; lists stay far below */

struct sink {
    CURL *curl;
    int fd;          /* >= 0: copy 2xx bodies here as they arrive */
    int write_errno; /* set when copying to fd failed */
    char *buf;       /* buffered body (always for errors, for non-streamed calls) */
    size_t len, cap;
    bool too_big;
};

static size_t sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (s->fd >= 0 && status >= 200 && status < 300) {
        int r = write_all(s->fd, data, n);
        if (r < 0) {
            s->write_errno = -r;
            return 0; /* makes curl stop with CURLE_WRITE_ERROR */
        }
        return n;
    }
    if (s->len + n > CTL_MAX_ANSWER) {
        s->too_big = true;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = 0;
    return n;
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

/* Turn an error answer into err: the JSON error's message, else the status and first line. */
static int answer_error(long status, const char *body, struct berr **err)
{
    yajl_val root = body ? json_parse(body, strlen(body), NULL) : NULL;
    yajl_val e = json_get(root, "error");
    const char *name = json_get_str(e, "code");
    const char *msg = json_get_str(e, "message");
    enum berr_code code = berr_code_from_name(name);
    if (code < 0)
        code = BERR_CODE_NONE; /* a code this berthctl does not know: the message says it */
    int r;
    /* "insufficient resources: mem: asked ..." reads better than the bare resource line */
    if (msg && *msg && code == BERR_INSUFFICIENT_RESOURCES &&
        strncasecmp(msg, "insufficient resources", 22) != 0)
        r = berr_setc(err, ENOSPC, code, "insufficient resources: %s", msg);
    else if (msg && *msg)
        r = berr_setc(err, code_errno(code), code, "%s", msg);
    else if (name)
        r = berr_setc(err, code_errno(code), code, "%.40s (HTTP %ld)", name, status);
    else
        r = berr_setx(err, EIO, "the agent answered HTTP %ld: %.*s", status,
                      body ? (int) strcspn(body, "\n") : 0, body ? body : "");
    yajl_tree_free(root);
    return r;
}

/* One request. On transport success, *ret_status gets the HTTP status and *ret_body the
 * buffered body (NULL when empty or streamed). */
static int request(struct ctl *ctl, const char *method, const char *path, const char *body, int fd,
                   long *ret_status, char **ret_body, struct berr **err)
{
    /* one handle for the process: curl keeps the agent connection alive between calls
     * (run --wait: POST, then GET .../wait on the same socket) */
    if (!ctl->curl)
        ctl->curl = curl_easy_init();
    else
        curl_easy_reset(ctl->curl);
    CURL *curl = ctl->curl;
    if (!curl)
        return berr_setx(err, ENOMEM, "cannot initialise libcurl");
    struct sink s = {.curl = curl, .fd = fd};
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    _cleanup_free_ char *url = ctl->master ? xasprintf("%s%s", ctl->master, path)
                                           : xasprintf("http://localhost%s", path);
    _cleanup_free_ char *auth =
            ctl->token ? xasprintf("Authorization: Bearer %s", ctl->token) : NULL;

    if (!ctl->master)
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, ctl->socket);
    if (ctl->master && ctl->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ctl->cacert);
    if (auth)
        headers = curl_slist_append(headers, auth);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    if (ctl->timeout_ms > 0)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ctl->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, ctl->master ? "http,https" : "http");
    if (streq(method, "HEAD"))
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "User-Agent: berthctl/" BERTH_VERSION);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(curl);
    long status = 0, oserr = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
    curl_slist_free_all(headers);

    int r = 0;
    if (rc == CURLE_COULDNT_CONNECT || (rc == CURLE_OPERATION_TIMEDOUT && status == 0)) {
        const char *peer = ctl->master ? "master" : "agent";
        const char *where = ctl->master ? ctl->master : ctl->socket;
        if (oserr > 0)
            r = berr_set(err, (int) oserr, "cannot connect to the %s at '%s'", peer, where);
        else
            r = berr_setx(err, ECONNREFUSED, "cannot connect to the %s at '%s': %s", peer, where,
                          *errbuf ? errbuf : curl_easy_strerror(rc));
    } else if (rc == CURLE_WRITE_ERROR && s.write_errno) {
        r = berr_set(err, s.write_errno, "write output");
    } else if (rc == CURLE_WRITE_ERROR && s.too_big) {
        r = berr_setx(err, E2BIG, "the agent's answer to %s %s is larger than %u MiB", method, path,
                      CTL_MAX_ANSWER >> 20);
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
               rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        r = berr_setx(err, EACCES, "the master at '%s' is not who it should be: %s (--cacert)",
                      ctl->master, *errbuf ? errbuf : curl_easy_strerror(rc));
    } else if (rc != CURLE_OK) {
        r = berr_setx(err, EIO, "%s %s on '%s': %s", method, path,
                      ctl->master ? ctl->master : ctl->socket,
                      *errbuf ? errbuf : curl_easy_strerror(rc));
    }
    if (r < 0) {
        free(s.buf);
        return r;
    }
    *ret_status = status;
    *ret_body = s.buf;
    return 0;
}

int ctl_call(struct ctl *ctl, const char *method, const char *path, const char *body, yajl_val *ret,
             struct berr **err)
{
    long status = 0;
    _cleanup_free_ char *answer = NULL;
    int r = request(ctl, method, path, body, -1, &status, &answer, err);
    if (r < 0)
        return r;
    if (status < 200 || status >= 300)
        return answer_error(status, answer, err);
    yajl_val root = NULL;
    if (answer && answer[strspn(answer, " \t\r\n")]) {
        char ebuf[256] = "";
        root = yajl_tree_parse(answer, ebuf, sizeof(ebuf));
        if (!root)
            return berr_setx(err, EPROTO, "%s %s: the agent's answer is not JSON: %.*s", method,
                             path, (int) strcspn(ebuf, "\n"), ebuf);
    }
    *ret = root;
    return 0;
}

int ctl_stream(struct ctl *ctl, const char *path, int fd, struct berr **err)
{
    long status = 0;
    _cleanup_free_ char *answer = NULL;
    int r = request(ctl, "GET", path, NULL, fd, &status, &answer, err);
    if (r < 0)
        return r;
    if (status < 200 || status >= 300)
        return answer_error(status, answer, err);
    return 0;
}

void ctl_http_done(struct ctl *ctl)
{
    if (ctl->curl)
        curl_easy_cleanup(ctl->curl);
    ctl->curl = NULL;
    free(ctl->token);
    ctl->token = NULL;
}
