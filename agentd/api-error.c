/* agentd/api-error.c - the only place that maps an error code to an HTTP status, and the
 * JSON error reply ({"error": {"code", "message"}}) every failing handler ends in. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "agentd/agent.h"

int api_status_for_code(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
            {"INVALID_ARGUMENT", 400},   {"UNAUTHORIZED", 401}, {"FORBIDDEN", 403},
            {"NOT_FOUND", 404},          {"METHOD_NOT_ALLOWED", 405},
            {"CONFLICT", 409},           {"INSUFFICIENT_RESOURCES", 409},
            {"BODY_TOO_LARGE", 413},     {"INTERNAL", 500},
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (streq(map[i].code, code))
            return map[i].status;
    return 500;
}

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
    const char *code = err && err->code[0] ? err->code : "INTERNAL";
    int status = api_status_for_code(code);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "error");
    yajl_gen_map_open(g);
    json_kv_str(g, "code", code);
    json_kv_str(g, "message", err ? err->msg : "unknown error");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    api_reply_json(req, status, g);
    yajl_gen_free(g);
}

void api_reply_connect(struct evhttp_request *req)
{
    /* libevent writes a body after CONNECT but frames it with neither a length nor chunks,
     * and keeps the connection (for a tunnel): the client never knew where the answer ends
     * (the review's hanging CONNECTs). Our own Content-Length frames it. */
    static const char body[] = "{\"error\":{\"code\":\"METHOD_NOT_ALLOWED\",\"message\":"
                               "\"CONNECT is not a method of this API\"}}\n";
    char len[16];
    snprintf(len, sizeof(len), "%zu", sizeof(body) - 1);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Content-Length", len);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, body, sizeof(body) - 1);
    evhttp_send_reply(req, 405, "Method Not Allowed", out);
    evbuffer_free(out);
}
