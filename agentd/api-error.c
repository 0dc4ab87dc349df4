/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/api-error.c - the agent's one reply path: JSON answers, and the JSON error reply
 * ({"error": {"code", "message"}}, its status from common/apicode.c's table) every failing
 * handler ends in. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "agentd/agent.h"

void api_reply_json(struct evhttp_request *req, int status, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, buf, len);
    evbuffer_add(out, "\n", 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, out);
    evbuffer_free(out);
}

void api_reply_error(struct evhttp_request *req, struct berr *err)
{
    enum berr_code code = err && err->code != BERR_CODE_NONE ? err->code : BERR_INTERNAL;
    int status = berr_code_http_status(code);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "error");
    yajl_gen_map_open(g);
    json_kv_str(g, "code", berr_code_name(code));
    json_kv_str(g, "message", err ? err->msg : "unknown error");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    api_reply_json(req, status, g);
    yajl_gen_free(g);
}

void api_request_gone(struct evhttp_request *req)
{
    /* libevent detaches a request whose answer is unfinished when its connection fails
     * (evhttp_connection_incoming_fail: req->evcon = NULL) and leaves it to us; one still
     * attached (the connection freed at stop) is freed by libevent after the close callback */
    if (req && !evhttp_request_get_connection(req))
        evhttp_request_free(req);
}

void api_fail(struct evhttp_request *req, enum berr_code code, const char *fmt, ...)
{
    struct berr e = {.errnum = EINVAL, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    api_reply_error(req, &e);
}

char *api_read_body(struct evhttp_request *req, size_t *ret_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > API_MAX_BODY) {
        api_fail(req, BERR_BODY_TOO_LARGE, "request body of %zu bytes is over the %u byte limit",
                 len, API_MAX_BODY);
        return NULL;
    }
    char *body = xmalloc(len + 1);
    evbuffer_copyout(in, body, len);
    body[len] = 0;
    *ret_len = len;
    return body;
}

void api_reply_connect(struct evhttp_request *req)
{
    /* libevent writes a body after CONNECT but frames it with neither a length nor chunks,
     * and keeps the connection (for a tunnel): the client never knew where the answer ends
     * (the review's hanging CONNECTs). Our own Content-Length frames it. */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "error");
    yajl_gen_map_open(g);
    json_kv_str(g, "code", berr_code_name(BERR_METHOD_NOT_ALLOWED));
    json_kv_str(g, "message", "CONNECT is not a method of this API");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *text = json_gen_take(g);
    size_t n = strlen(text);
    char len[24];
    snprintf(len, sizeof(len), "%zu", n + 1);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Content-Length", len);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, text, n);
    evbuffer_add(out, "\n", 1);
    evhttp_send_reply(req, 405, "Method Not Allowed", out);
    evbuffer_free(out);
}
