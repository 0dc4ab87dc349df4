/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/link-internal.h - what the three files of the master link share: link.c speaks
 * the protocol (docs/protocol.md), link-db.c keeps its two tables in state.db, link-http.c
 * runs libcurl multi inside the agent's loop. Private to them; agent.h has the link's public
 * face (link_start, link_stop). Calls go link.c -> link-db.c and link.c -> link-http.c;
 * link-http.c hands results back through the two function pointers of struct link. */
#pragma once

#include <curl/curl.h>

#include "agentd/agent.h"
#include "evcurl/evcurl.h"

#define MAX_ANSWER 65536
#define CALL_TIMEOUT_MS 15000

struct link_task {
    char task_id[65];
    char container_id[17];  /* "" until the launch made one */
    int last_state;         /* enum ml_state of the last update recorded, -1 = none */
    enum ml_health healthy; /* of the last update recorded (not kept across restarts) */
    struct link_task *next;
};

struct link_update {
    int64_t seq;
    char task_id[65];
    char uuid[37];
    char *json; /* the status object */
    bool terminal;
    bool calling;     /* an UPDATE call is under way */
    uint64_t sent_ns; /* when it was last sent on the current stream; 0 = not yet */
    unsigned attempts;
    struct link_update *next; /* seq order */
};

enum call_kind {
    CALL_STREAM,
    CALL_HEARTBEAT,
    CALL_UPDATE,
    CALL_AUTHENTICATE,
};

struct link_call {
    struct link *l;
    enum call_kind kind;
    CURL *h;
    struct curl_slist *hdrs;
    char *body;
    char *answer; /* non-2xx answers, bounded */
    size_t answer_len;
    char uuid[37]; /* CALL_UPDATE: which update */
    bool abort;    /* CALL_STREAM: the write callback refused the stream */
    uint64_t started_ns;
    struct link_call *next;
};

struct link {
    struct agent *a;
    struct evcurl ec; /* the calls' multi handle in the agent's loop */
    struct event *ev_tick, *ev_kick, *ev_reconnect;
    char *url;
    struct link_call *calls;
    struct link_call *stream;
    struct ml_reader rd;
    bool subscribed;
    char stream_header[128];
    uint64_t hb_interval_ms, last_hb_ns, last_rx_ns;
    bool hb_calling;
    unsigned backoff_ms;
    struct link_task *tasks;
    struct ml_table by_task, by_container;
    struct link_update *updates;
    uint64_t connects;
    /* authentication (docs/protocol.md): our own key (work_dir/master.key), else the join
     * token of token_file; neither is ever sent, each handshake proves it */
    char *key_path;
    bool has_key, has_join, use_join;
    uint8_t key[ML_KEY_LEN], join_key[ML_KEY_LEN];
    char join_id[ML_TOKEN_ID_LEN + 1];
    struct ml_handshake hs;      /* of the current stream */
    uint8_t session[ML_KEY_LEN]; /* signs our calls on it */
    bool proven;                 /* the master proved it knows the key */
    char *auth_body;             /* the AUTHENTICATE call on_kick starts */
    /* link-http.c's results, handled by link.c: bytes of the stream (false: drop it), and a
     * call that ended (c is unlinked, and freed after) */
    bool (*on_stream_data)(struct link *l, struct link_call *c, const char *data, size_t len);
    void (*on_call_done)(struct link *l, struct link_call *c, CURLcode rc);
};

/* link-db.c: the link's tables in state.db (link_tasks: which container runs a task and
 * the last state the master was told of; link_updates: the updates not yet acknowledged,
 * in order). 0 or -EIO (logged). */
int link_db_init(struct link *l, struct berr **err);
int link_db_task_save(struct link *l, const struct link_task *t);
int link_db_task_delete(struct link *l, const char *task_id);
/* Record u (its task_id, uuid, terminal, json) and set u->seq. */
int link_db_update_add(struct link *l, struct link_update *u);
int link_db_update_delete(struct link *l, const char *uuid);
/* Every task row to task(), then every update, in order, to update() (which takes it). */
int link_db_load(struct link *l,
                 void (*task)(struct link *l, const char *task_id, const char *ctr_id, int last),
                 void (*update)(struct link *l, struct link_update *u), struct berr **err);

/* link-http.c: calls to the master as curl easy handles in one multi handle driven by the
 * loop (curl's hiperfifo pattern). link_call_start takes body; NULL when curl refuses.
 * link_call_drop ends a call from our side (unlinked and freed). */
int link_http_init(struct link *l, struct berr **err);
void link_http_free(struct link *l);
struct link_call *link_call_start(struct link *l, enum call_kind kind, char *body_take);
void link_call_drop(struct link *l, struct link_call *c);

/* link-updates.c: the tasks of the master here and their updates. */
static inline void link_kick(struct link *l)
{
    event_active(l->ev_kick, 0, 0); /* on_kick sends what is due, outside curl's callbacks */
}
struct link_task *link_task_new(struct link *l, const char *task_id, const char *ctr_id,
                                int last_state);
/* A task without a container ends (refused launch, unknown task, lost launch). */
void link_task_end(struct link *l, struct link_task *t, enum ml_state st, enum ml_reason reason,
                   const char *msg);
/* The watcher of transitions link_start registers (lifecycle.c's ctr_watch_add). */
void link_on_transition(struct agent *a, struct container *c);
void link_updates_ack(struct link *l, const char *uuid);
/* Send each task's oldest unacknowledged update when it is due. */
void link_updates_flush(struct link *l);
struct link_update *link_update_find(struct link *l, const char *uuid);
/* Load the tables and queue what happened while the agent was down. */
int link_updates_load(struct link *l, struct berr **err);
void link_updates_free(struct link *l);

/* link-auth.c: our key (work_dir/master.key) and the join token ([agent] token_file). */
int link_keys_load(struct link *l, struct berr **err);
int link_key_save(struct link *l, const uint8_t key[ML_KEY_LEN]);
