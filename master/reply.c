/* SPDX-License-Identifier: Apache-2.0 */
/* master/reply.c - the one way berth-master reads a request's body and answers: JSON
 * replies, and errors as {"error": {"code", "message"}} with the HTTP status of the code's
 * row in common/apicode.c, each counted in berth_master_refused_total. api.c (the client
 * API), link.c and handshake.c (the agent protocol) and auth.c answer through here; none of
 * them names a code as a string or a status for an error. Also the peer's address for
 * their log lines. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>

#include "master/master.h"

static void send_json(struct evhttp_request *req, int status, const char *buf, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf, len);
    evbuffer_add(b, "\n", 1);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT) {
        /* libevent frames an answer to CONNECT with neither a length nor chunks and keeps
         * the connection for a tunnel: our own Content-Length ends it */
        char n[24];
        snprintf(n, sizeof(n), "%zu", len + 1);
        evhttp_add_header(h, "Content-Length", n);
    }
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", b);
    evbuffer_free(b);
}

void master_reply_json(struct evhttp_request *req, int status, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    send_json(req, status, (const char *) buf, len);
}

void master_reply_accepted(struct evhttp_request *req)
{
    send_json(req, 202, "{}", 2);
}

static void reply_error(struct master *m, struct evhttp_request *req, enum berr_code code,
                        const char *msg)
{
    if (code == BERR_CODE_NONE || !berr_code_name(code))
        code = BERR_INTERNAL;
    m->refused_total++;
    log_debug("refused %s: %s", berr_code_name(code), msg);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "error");
    yajl_gen_map_open(g);
    json_kv_str(g, "code", berr_code_name(code));
    json_kv_str(g, "message", msg);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    master_reply_json(req, berr_code_http_status(code), g);
    yajl_gen_free(g);
}

void master_reply_error(struct master *m, struct evhttp_request *req, const struct berr *err)
{
    reply_error(m, req, err ? err->code : BERR_INTERNAL, err ? berr_msg(err) : "unknown error");
}

void master_refuse(struct master *m, struct evhttp_request *req, enum berr_code code,
                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(m, req, code, msg);
}

int master_read_body(struct master *m, struct evhttp_request *req, const char **ret,
                     size_t *ret_len)
{
    /* evhttp holds the whole body by now: api.c caps it at twice this limit, and up to
     * there the caller gets our JSON 413 instead of a dropped connection */
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > ML_MAX_MESSAGE) {
        master_refuse(m, req, BERR_BODY_TOO_LARGE, "the body has %zu bytes, the limit is %d", len,
                      ML_MAX_MESSAGE);
        return -EMSGSIZE;
    }
    *ret = len ? (const char *) evbuffer_pullup(in, -1) : "";
    *ret_len = len;
    return 0;
}

const char *master_peer(struct evhttp_request *req, char *buf, size_t len)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (c)
        evhttp_connection_get_peer(c, &addr, &port);
    snprintf(buf, len, "%s:%u", addr ? addr : "?", (unsigned) port);
    return buf;
}
