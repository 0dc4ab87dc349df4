/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/api.h - the local API's functions (api*.c, path.c), included by agent.h: the
 * request path's segments, the one reply path, the node and launch handlers. */
#pragma once

/* path.c: split a request path into at most max segments of < API_SEG_MAX bytes each;
 * their number, or -1 when there are more or one is longer (the caller answers 404). */
#define API_SEG_MAX 80
int api_split_path(const char *path, char seg[][API_SEG_MAX], int max);

/* api.c, api-node.c, api-error.c: the agent's one reply path. */
int api_start(struct agent *a, struct berr **err);
void api_stop(struct agent *a);
void api_reply_error(struct evhttp_request *req, struct berr *err);
void api_reply_json(struct evhttp_request *req, int status, yajl_gen g);
/* From a connection's close callback: the request we were answering (a wait, a log follower,
 * an exec) will not be answered; frees it when libevent left it to us. */
void api_request_gone(struct evhttp_request *req);
/* One error answer built here (code and message), like api_reply_error. */
void api_fail(struct evhttp_request *req, enum berr_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* The request body as a NUL-terminated copy (*ret_len bytes); NULL after answering 413
 * BODY_TOO_LARGE when it is over API_MAX_BODY. */
#define API_MAX_BODY (1u << 20)
char *api_read_body(struct evhttp_request *req, size_t *ret_len);
/* The answer to a CONNECT request: a JSON 405 with its own Content-Length (libevent's
 * framing of CONNECT answers has none). */
void api_reply_connect(struct evhttp_request *req);
void api_serve_node(struct agent *a, struct evhttp_request *req);
/* api-launch.c: POST /v1/containers, one launch a loop turn, the rest queued in order for
 * the next turns; api_launch_stop answers what is still queued (503). */
void api_launch(struct agent *a, struct evhttp_request *req);
void api_launch_stop(struct agent *a);
/* The answer (201, 202, 204) once the change is committed (store.c), in api.c. */
void api_reply_after_commit(struct agent *a, struct evhttp_request *req, int status,
                            const char *id);
