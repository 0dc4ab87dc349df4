/* agentd/link.c - the agent's side of the master link (docs/protocol.md): it dials out with
 * libcurl multi inside the agent's libevent loop (curl's hiperfifo pattern: curl tells us
 * which sockets and timeouts to watch, libevent tells curl when they fire; no threads, no
 * blocking call). One long-lived SUBSCRIBE stream carries the master's events (LAUNCH, KILL,
 * ACKNOWLEDGE, PING) as RecordIO records; HEARTBEAT (usage) and UPDATE (one status) are
 * separate calls. Status updates are written to state.db before they are sent and sent
 * again until the master acknowledges them, one at a time per task, in order; each has a
 * uuid so the master recognises a retry. store.c calls link_note_transition after every
 * saved state change; lifecycle.c does the launching and killing. */
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>

#include "agentd/agent.h"
#include "masterlink/masterlink.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define ACK_TIMEOUT_MS 5000
#define CALL_TIMEOUT_MS 15000
#define MAX_ANSWER 65536

struct link_task {
    char task_id[65];
    char container_id[17]; /* "" until the launch made one */
    int last_state;        /* enum ml_state of the last update recorded, -1 = none */
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
    CURLM *multi;
    struct event *ev_curl_timer, *ev_tick, *ev_kick, *ev_reconnect;
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
    const char *launching; /* task id of the LAUNCH being handled */
    uint64_t connects;
    /* authentication (docs/protocol.md): our own key (work_dir/master.key), else the join
     * token of token_file; neither is ever sent, each handshake proves it */
    char *key_path;
    bool has_key, has_join, use_join;
    uint8_t key[ML_KEY_LEN], join_key[ML_KEY_LEN];
    char join_id[ML_TOKEN_ID_LEN + 1];
    struct ml_handshake hs;       /* of the current stream */
    uint8_t session[ML_KEY_LEN];  /* signs our calls on it */
    bool proven;                  /* the master proved it knows the key */
    char *auth_body;              /* the AUTHENTICATE call on_kick starts */
};

/* ---- state.db: the link's two tables ------------------------------------------------- */

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS link_tasks ("
        "  task_id TEXT PRIMARY KEY, container_id TEXT,"
        "  last_state INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS link_updates ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,"
        "  uuid TEXT NOT NULL, terminal INTEGER NOT NULL, json TEXT NOT NULL);";

static int db_exec(struct link *l, const char *sql, const char *t1, const char *t2, int64_t i1)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(l->a->db, sql, -1, &st, NULL);
    if (r == SQLITE_OK) {
        if (t1)
            sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
        if (t2)
            sqlite3_bind_text(st, 2, t2, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, i1);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "state.db (master link): %s", sqlite3_errmsg(l->a->db));
    return 0;
}

static int task_save(struct link *l, struct link_task *t)
{
    return db_exec(l,
                   "INSERT OR REPLACE INTO link_tasks(task_id, container_id, last_state) "
                   "VALUES (?1, ?2, ?3)",
                   t->task_id, t->container_id, t->last_state);
}

/* ---- tasks ----------------------------------------------------------------------------- */

static struct link_task *task_new(struct link *l, const char *task_id, const char *ctr_id,
                                  int last_state)
{
    struct link_task *t = xzalloc(sizeof(*t));
    snprintf(t->task_id, sizeof(t->task_id), "%s", task_id);
    snprintf(t->container_id, sizeof(t->container_id), "%s", ctr_id ? ctr_id : "");
    t->last_state = last_state;
    t->next = l->tasks;
    l->tasks = t;
    ml_table_put(&l->by_task, t->task_id, t);
    if (t->container_id[0])
        ml_table_put(&l->by_container, t->container_id, t);
    return t;
}

static void task_drop(struct link *l, struct link_task *t)
{
    (void) db_exec(l, "DELETE FROM link_tasks WHERE task_id = ?1", t->task_id, NULL, 0);
    ml_table_del(&l->by_task, t->task_id);
    if (t->container_id[0])
        ml_table_del(&l->by_container, t->container_id);
    for (struct link_task **p = &l->tasks; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    free(t);
}

static void kick(struct link *l)
{
    event_active(l->ev_kick, 0, 0);
}

/* Record one status: state.db first, then the queue; the kick sends it. */
static void enqueue(struct link *l, struct link_task *t, struct ml_status *s)
{
    if (ml_uuid_new(s->uuid) < 0) {
        log_error("task '%s': no randomness for an update uuid", t->task_id);
        return;
    }
    snprintf(s->task_id, sizeof(s->task_id), "%s", t->task_id);
    struct link_update *u = xzalloc(sizeof(*u));
    u->json = ml_status_encode(s);
    u->terminal = ml_state_terminal(s->state);
    snprintf(u->task_id, sizeof(u->task_id), "%s", t->task_id);
    snprintf(u->uuid, sizeof(u->uuid), "%s", s->uuid);
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(l->a->db,
                               "INSERT INTO link_updates(task_id, uuid, terminal, json) "
                               "VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, u->task_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, u->terminal);
        sqlite3_bind_text(st, 4, u->json, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        /* not recorded, not sent: the next start's catch-up derives it again */
        log_error("task '%s': cannot record update %s in state.db: %s", t->task_id,
                  ml_state_name(s->state), sqlite3_errmsg(l->a->db));
        free(u->json);
        free(u);
        return;
    }
    u->seq = (int64_t) sqlite3_last_insert_rowid(l->a->db);
    t->last_state = (int) s->state;
    (void) task_save(l, t);
    struct link_update **p = &l->updates;
    while (*p)
        p = &(*p)->next;
    *p = u;
    log_debug("task '%s': update %s queued (%s)", t->task_id, ml_state_name(s->state), u->uuid);
    kick(l);
}

static void enqueue_state(struct link *l, struct link_task *t, struct container *c,
                          enum ml_state st)
{
    struct ml_status s = {.state = st, .timestamp = now_realtime()};
    snprintf(s.container_id, sizeof(s.container_id), "%s", c->id);
    if (st == ML_STARTING && c->created_at > 0)
        s.timestamp = c->created_at;
    if (st == ML_RUNNING && c->started_at > 0)
        s.timestamp = c->started_at;
    if (ml_state_terminal(st)) {
        if (c->finished_at > 0)
            s.timestamp = c->finished_at;
        if (c->reason != ML_REASON_NONE)
            snprintf(s.reason, sizeof(s.reason), "%s", ml_reason_name(c->reason));
        s.message = c->message && c->message[0] ? c->message : NULL;
        s.has_exit_code = c->reason == ML_REASON_EXITED && c->exit_code >= 0;
        s.exit_code = c->exit_code;
        s.signal = c->signal;
    }
    enqueue(l, t, &s);
}

/* Bring the task's recorded states up to the container's: every state it passed through
 * that the master has not been told of, in order (a restart may have skipped some). */
static void catch_up(struct link *l, struct link_task *t, struct container *c)
{
    /* enum ml_state and enum ml_state list the states in the same order */
    int now = (int) c->state;
    if (t->last_state >= 0 && ml_state_terminal((enum ml_state) t->last_state))
        return;
    if (now <= t->last_state)
        return;
    if (now >= ML_STARTING && t->last_state < ML_STARTING && (now == ML_STARTING || c->pid > 0))
        enqueue_state(l, t, c, ML_STARTING);
    if (now >= ML_RUNNING && t->last_state < ML_RUNNING && (now == ML_RUNNING || c->started_at > 0))
        enqueue_state(l, t, c, ML_RUNNING);
    if (ml_state_terminal((enum ml_state) now))
        enqueue_state(l, t, c, (enum ml_state) now);
}

void link_note_transition(struct agent *a, struct container *c)
{
    struct link *l = a->link;
    if (!l)
        return;
    struct link_task *t = ml_table_get(&l->by_container, c->id);
    if (!t && l->launching && c->name && streq(c->name, l->launching)) {
        t = ml_table_get(&l->by_task, l->launching);
        if (t && !t->container_id[0]) {
            snprintf(t->container_id, sizeof(t->container_id), "%s", c->id);
            ml_table_put(&l->by_container, t->container_id, t);
            (void) task_save(l, t);
        }
    }
    if (t)
        catch_up(l, t, c);
}

/* A task without a container ends (refused launch, unknown task, lost launch). */
static void end_without_container(struct link *l, struct link_task *t, enum ml_state st,
                                  const char *reason, const char *msg)
{
    struct ml_status s = {.state = st, .timestamp = now_realtime()};
    snprintf(s.reason, sizeof(s.reason), "%s", reason);
    s.message = (char *) msg;
    enqueue(l, t, &s);
}

/* ---- curl multi in the libevent loop (curl's docs/examples/hiperfifo.c) --------------- */

static void check_done(struct link *l);

static void on_socket_event(evutil_socket_t fd, short kind, void *arg)
{
    struct link *l = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(l->multi, fd, action, &running);
    check_done(l);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *cbp, void *sockp)
{
    (void) e;
    struct link *l = cbp;
    struct event *ev = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(l->multi, s, NULL);
        return 0;
    }
    short kind = (short) ((what & CURL_POLL_IN ? EV_READ : 0) |
                          (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, l->a->base, s, kind, on_socket_event, l);
    } else {
        ev = event_new(l->a->base, s, kind, on_socket_event, l);
        curl_multi_assign(l->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void) multi;
    struct link *l = arg;
    if (timeout_ms < 0) {
        evtimer_del(l->ev_curl_timer);
    } else {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        evtimer_add(l->ev_curl_timer, &tv);
    }
    return 0;
}

static void on_curl_timer(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct link *l = arg;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(l);
}

static size_t answer_write(char *data, size_t size, size_t n, void *arg)
{
    struct link_call *c = arg;
    size_t len = size * n, room = MAX_ANSWER - c->answer_len;
    size_t take = len < room ? len : room;
    c->answer = xrealloc(c->answer, c->answer_len + take + 1);
    memcpy(c->answer + c->answer_len, data, take);
    c->answer_len += take;
    c->answer[c->answer_len] = 0;
    return len;
}

static void handle_event(struct link *l, const char *rec, size_t len);

static size_t stream_write(char *data, size_t size, size_t n, void *arg)
{
    struct link_call *c = arg;
    struct link *l = c->l;
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return answer_write(data, size, n, arg);
    l->last_rx_ns = now_monotonic_ns();
    ml_reader_feed(&l->rd, data, size * n);
    for (;;) {
        const char *rec;
        size_t rlen;
        _cleanup_berr_ struct berr *err = NULL;
        int r = ml_reader_next(&l->rd, &rec, &rlen, &err);
        if (r == 0)
            break;
        if (r < 0) {
            log_warning("master link: bad event stream: %s", berr_msg(err));
            c->abort = true;
            return 0; /* curl ends the transfer (CURLE_WRITE_ERROR) */
        }
        handle_event(l, rec, rlen);
        if (c->abort)
            return 0;
    }
    return size * n;
}

static void call_free(struct link_call *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdrs);
    free(c->body);
    free(c->answer);
    free(c);
}

static struct link_call *call_start(struct link *l, enum call_kind kind, char *body_take)
{
    struct link_call *c = xzalloc(sizeof(*c));
    c->l = l;
    c->kind = kind;
    c->body = body_take;
    c->started_ns = now_monotonic_ns();
    c->h = curl_easy_init();
    if (!c->h) {
        call_free(c);
        return NULL;
    }
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, kind == CALL_STREAM ? "Accept: application/recordio"
                                                             : "Accept: application/json");
    if (kind != CALL_STREAM)
        c->hdrs = curl_slist_append(c->hdrs, l->stream_header);
    if (kind == CALL_HEARTBEAT || kind == CALL_UPDATE) {
        char sig[ML_HEX_LEN + 1], hdr[sizeof(ML_SIGNATURE_HEADER) + ML_HEX_LEN + 4];
        ml_auth_sign(l->session, c->body, strlen(c->body), sig);
        snprintf(hdr, sizeof(hdr), "%s: %s", ML_SIGNATURE_HEADER, sig);
        c->hdrs = curl_slist_append(c->hdrs, hdr);
    }
    c->hdrs = curl_slist_append(c->hdrs, "User-Agent: berth-agent/" BERTH_VERSION);
    curl_easy_setopt(c->h, CURLOPT_URL, l->url);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long) strlen(c->body));
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* the master must prove who it is before we say anything (docs/security.md): its
     * certificate chains to master_ca (or the system's CAs) for its host name, and/or its
     * public key is the pinned one; curl verifies peer and host by default */
    if (l->a->cfg.master_ca[0])
        curl_easy_setopt(c->h, CURLOPT_CAINFO, l->a->cfg.master_ca);
    if (l->a->cfg.master_pin[0])
        curl_easy_setopt(c->h, CURLOPT_PINNEDPUBLICKEY, l->a->cfg.master_pin);
    curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (kind == CALL_STREAM) {
        curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, stream_write);
    } else {
        curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, answer_write);
        curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long) CALL_TIMEOUT_MS);
    }
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    if (curl_multi_add_handle(l->multi, c->h) != CURLM_OK) {
        call_free(c);
        return NULL;
    }
    c->next = l->calls;
    l->calls = c;
    return c;
}

static void call_unlink(struct link *l, struct link_call *c)
{
    for (struct link_call **p = &l->calls; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (l->stream == c)
        l->stream = NULL;
    curl_multi_remove_handle(l->multi, c->h);
}

/* ---- the stream -------------------------------------------------------------------------- */

static void json_amounts(yajl_gen g, const char *k, const struct res_amounts *r)
{
    json_str(g, k);
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", r->v[RES_CPUS]);
    json_kv_u64(g, "mem", r->v[RES_MEM]);
    json_kv_u64(g, "disk", r->v[RES_DISK]);
    yajl_gen_map_close(g);
}

static char *subscribe_body(struct link *l)
{
    struct agent *a = l->a;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "hostname", a->hostname);
    json_kv_str(g, "version", BERTH_VERSION);
    json_str(g, "auth");
    yajl_gen_map_open(g);
    json_kv_str(g, "method", l->use_join ? "join" : "agent-key");
    if (l->use_join)
        json_kv_str(g, "key_id", l->join_id);
    json_kv_str(g, "nonce", l->hs.nonce_agent);
    yajl_gen_map_close(g);
    json_str(g, "resources");
    yajl_gen_map_open(g);
    json_amounts(g, "total", &a->total);
    json_amounts(g, "reserved", &a->reserved);
    json_amounts(g, "allocatable", &a->allocatable);
    yajl_gen_map_close(g);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (struct link_task *t = l->tasks; t; t = t->next) {
        struct container *c = t->container_id[0] ? agent_find_id(a, t->container_id) : NULL;
        int st = c ? (int) c->state : t->last_state >= 0 ? t->last_state : ML_STAGING;
        yajl_gen_map_open(g);
        json_kv_str(g, "task_id", t->task_id);
        json_kv_str(g, "container_id", t->container_id[0] ? t->container_id : NULL);
        json_kv_str(g, "state", ml_state_name((enum ml_state) st));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *payload = json_gen_take(g);
    return ml_call_encode(ML_CALL_SUBSCRIBE, a->node_id, payload);
}

static void schedule_reconnect(struct link *l);

static void subscribe(struct link *l)
{
    if (l->stream)
        return;
    ml_reader_free(&l->rd);
    l->subscribed = false;
    l->proven = false;
    l->stream_header[0] = 0;
    memset(&l->hs, 0, sizeof(l->hs));
    snprintf(l->hs.agent_id, sizeof(l->hs.agent_id), "%s", l->a->node_id);
    if (random_hex(l->hs.nonce_agent, ML_HEX_LEN) < 0) {
        log_error("master link: no randomness for a nonce");
        schedule_reconnect(l);
        return;
    }
    l->connects++;
    l->stream = call_start(l, CALL_STREAM, subscribe_body(l));
    if (!l->stream)
        log_error("master link: cannot start a SUBSCRIBE call");
}

static void on_reconnect(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    subscribe(arg);
}

/* Capped exponential backoff with jitter: wait a random time in [d/2, d], then double d. */
static void schedule_reconnect(struct link *l)
{
    unsigned d = l->backoff_ms ? l->backoff_ms : BACKOFF_MIN_MS;
    unsigned r = 0;
    char hex[9];
    if (random_hex(hex, 8) == 0)
        r = (unsigned) strtoul(hex, NULL, 16);
    unsigned wait = d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
    l->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    evtimer_add(l->ev_reconnect, &tv);
}

static void stream_lost(struct link *l, const char *why)
{
    l->proven = false;
    explicit_bzero(l->session, sizeof(l->session));
    if (l->subscribed)
        log_warning("master link: stream to '%s' ended: %s; reconnecting", l->url, why);
    else
        log_info("master link: cannot subscribe at '%s': %s; retrying", l->url, why);
    l->subscribed = false;
    l->stream_header[0] = 0;
    for (struct link_update *u = l->updates; u; u = u->next)
        u->sent_ns = 0; /* everything unacknowledged goes again on the next stream */
    schedule_reconnect(l);
}

/* Drop the stream from our side (watchdog, a refused call) and subscribe again. */
static void stream_abort(struct link *l, const char *why)
{
    struct link_call *c = l->stream;
    if (!c)
        return;
    call_unlink(l, c);
    call_free(c);
    stream_lost(l, why);
}

/* ---- events ------------------------------------------------------------------------------- */

static void send_heartbeat(struct link *l);

static void on_launch(struct link *l, yajl_val p)
{
    struct agent *a = l->a;
    const char *id = json_get_str(p, "task_id");
    yajl_val spec = json_get(p, "container");
    if (!ml_id_valid(id) || !spec || !YAJL_IS_OBJECT(spec)) {
        log_warning("master link: LAUNCH without a valid task_id and container: ignored");
        return;
    }
    if (ml_table_get(&l->by_task, id)) {
        log_debug("master link: LAUNCH of task '%s' again: it is already here", id);
        return;
    }
    struct link_task *t = task_new(l, id, NULL, -1);
    if (task_save(l, t) < 0) {
        end_without_container(l, t, ML_FAILED, "LAUNCH_FAILED", "cannot record the task");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    json_gen_value(g, spec);
    _cleanup_free_ char *body = json_gen_take(g);
    struct container *c = NULL;
    _cleanup_berr_ struct berr *err = NULL;
    l->launching = t->task_id;
    int r = agent_launch(a, CTR_ORIGIN_MASTER, body, strlen(body), &c, &err);
    l->launching = NULL;
    if (r < 0) {
        log_info("task '%s' from the master: launch refused: %s", id, berr_msg(err));
        end_without_container(l, t, ML_FAILED,
                              ml_reason_name(err->code == BERR_INSUFFICIENT_RESOURCES
                                                     ? ML_REASON_INSUFFICIENT_RESOURCES
                                             : err->code == BERR_FORBIDDEN ? ML_REASON_POLICY_DENIED
                                                                           : ML_REASON_LAUNCH_FAILED),
                              berr_msg(err));
        return;
    }
    log_info("task '%s' from the master: container '%s'", id, c->id);
    if (!t->container_id[0]) /* the hook normally binds it during the launch */
        link_note_transition(a, c);
}

static void on_kill(struct link *l, yajl_val p)
{
    struct agent *a = l->a;
    const char *id = json_get_str(p, "task_id");
    if (!ml_id_valid(id))
        return;
    struct link_task *t = ml_table_get(&l->by_task, id);
    if (!t) {
        /* the master thinks it runs here; it does not: say so */
        t = task_new(l, id, NULL, -1);
        end_without_container(l, t, ML_LOST, "UNKNOWN_TO_AGENT",
                              "the agent has no such task (KILL)");
        return;
    }
    struct container *c = t->container_id[0] ? agent_find_id(a, t->container_id) : NULL;
    if (!c || ml_state_terminal(c->state))
        return; /* its end is queued already */
    double grace_s;
    uint64_t grace_ms = a->cfg.kill_grace_ms;
    if (json_get_double(p, "grace_seconds", &grace_s) && grace_s >= 0 && grace_s < 86400)
        grace_ms = (uint64_t) (grace_s * 1000);
    _cleanup_berr_ struct berr *err = NULL;
    if (agent_kill(a, c, SIGTERM, grace_ms, &err) < 0)
        log_warning("task '%s': kill from the master: %s", id, berr_msg(err));
    else
        log_info("task '%s' (container '%s'): killed by the master", id, c->id);
}

static void on_ack(struct link *l, yajl_val p)
{
    const char *uuid = json_get_str(p, "uuid");
    if (!uuid)
        return;
    for (struct link_update **pp = &l->updates; *pp; pp = &(*pp)->next) {
        struct link_update *u = *pp;
        if (!streq(u->uuid, uuid))
            continue;
        if (db_exec(l, "DELETE FROM link_updates WHERE uuid = ?1", u->uuid, NULL, 0) < 0)
            return; /* kept: it goes again and the master acks it again */
        *pp = u->next;
        if (u->terminal) {
            struct link_task *t = ml_table_get(&l->by_task, u->task_id);
            if (t)
                task_drop(l, t);
        }
        free(u->json);
        free(u);
        kick(l); /* the task's next update may go now */
        return;
    }
}

/* Keep the agent key a join handshake yielded (work_dir/master.key, 0600, durable): the
 * master stores it when it accepts our proof, and a join token cannot take an id back. */
static int key_save(struct link *l, const uint8_t key[ML_KEY_LEN])
{
    char hex[ML_HEX_LEN + 2];
    ml_hex(key, ML_KEY_LEN, hex);
    strcat(hex, "\n");
    _cleanup_close_ int dfd = open(l->a->cfg.work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? -errno : write_file_atomic(dfd, "master.key", hex, strlen(hex), 0600);
    explicit_bzero(hex, sizeof(hex));
    return r;
}

/* The master's CHALLENGE: its proof that it knows our key (or the join token). Only then
 * do we prove ours, on an AUTHENTICATE call: a peer that is not the master learns a nonce
 * and nothing it can use. */
static void on_challenge(struct link *l, yajl_val p)
{
    const char *sid = json_get_str(p, "stream_id"), *nonce = json_get_str(p, "nonce");
    const char *proof = json_get_str(p, "proof");
    if (l->proven || !ml_id_valid(sid) || strlen(sid) >= sizeof(l->hs.stream_id) ||
        !ml_nonce_valid(nonce)) {
        log_warning("master link: a bad CHALLENGE: dropping the stream");
        l->stream->abort = true;
        return;
    }
    snprintf(l->hs.stream_id, sizeof(l->hs.stream_id), "%s", sid);
    snprintf(l->hs.nonce_master, sizeof(l->hs.nonce_master), "%s", nonce);
    const uint8_t *k = l->use_join ? l->join_key : l->key;
    char want[ML_HEX_LEN + 1];
    ml_auth_proof(k, &l->hs, true, want);
    if (!ml_hex_equal(proof, want)) {
        log_error("master link: the peer at '%s' did not prove it knows %s: it is not our "
                  "master (or not the one that registered us); nothing sent, retrying",
                  l->url, l->use_join ? "the join token" : "this agent's key");
        l->stream->abort = true;
        return;
    }
    l->proven = true;
    if (l->use_join) {
        uint8_t agent_key[ML_KEY_LEN];
        ml_auth_agent_key(l->join_key, &l->hs, agent_key);
        int r = key_save(l, agent_key);
        if (r < 0) {
            log_msg(LOG_ERR, -r, "master link: cannot keep the agent key in '%s'", l->key_path);
            explicit_bzero(agent_key, sizeof(agent_key));
            l->stream->abort = true;
            return;
        }
        memcpy(l->key, agent_key, ML_KEY_LEN);
        explicit_bzero(agent_key, sizeof(agent_key));
        l->has_key = true;
        l->use_join = false;
        log_info("master link: registering with join token '%s'; our key is in '%s'",
                 l->join_id, l->key_path);
    }
    ml_auth_session_key(l->key, &l->hs, l->session);
    snprintf(l->stream_header, sizeof(l->stream_header), "%s: %s", ML_STREAM_HEADER, sid);
    /* we prove with the key the master proved: a join handshake with the join token (the
     * master derives our key once it has checked it) */
    char mine[ML_HEX_LEN + 1];
    ml_auth_proof(k, &l->hs, false, mine);
    _cleanup_free_ char *payload = xasprintf("{\"proof\": \"%s\"}", mine);
    /* curl refuses new transfers from inside its write callback: the kick sends it */
    free(l->auth_body);
    l->auth_body = ml_call_encode(ML_CALL_AUTHENTICATE, l->a->node_id, payload);
    kick(l);
}

static void handle_event(struct link *l, const char *rec, size_t len)
{
    struct ml_event ev;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_event_decode(rec, len, &ev, &err) < 0) {
        log_warning("master link: bad event: %s", berr_msg(err));
        return;
    }
    if (ev.type != ML_EVENT_CHALLENGE && ev.type != ML_EVENT_PING &&
        (!l->proven || (ev.type != ML_EVENT_SUBSCRIBED && !l->subscribed))) {
        /* nothing from a peer that has not proven it knows our key, and nothing but
         * SUBSCRIBED before it */
        log_warning("master link: %s before the handshake ended: dropping the stream",
                    ml_event_name(ev.type));
        l->stream->abort = true;
        ml_event_done(&ev);
        return;
    }
    switch (ev.type) {
    case ML_EVENT_CHALLENGE:
        on_challenge(l, ev.payload);
        break;
    case ML_EVENT_SUBSCRIBED: {
        const char *sid = json_get_str(ev.payload, "stream_id");
        double hb = 5;
        (void) json_get_double(ev.payload, "heartbeat_interval_seconds", &hb);
        hb = hb >= 0.1 && hb <= 3600 ? hb : 5; /* and so logged (review L8) */
        if (!sid || !streq(sid, l->hs.stream_id)) {
            log_warning("master link: SUBSCRIBED for another stream than the challenge's");
            l->stream->abort = true;
            break;
        }
        l->hb_interval_ms = (uint64_t) (hb * 1000);
        l->subscribed = true;
        l->backoff_ms = 0;
        log_info("master link: subscribed to '%s' as '%s' (heartbeat every %.1fs)", l->url,
                 l->a->node_id, hb);
        l->last_hb_ns = 0; /* the kick sends the first heartbeat now */
        kick(l);
        break;
    }
    case ML_EVENT_LAUNCH:
        on_launch(l, ev.payload);
        break;
    case ML_EVENT_KILL:
        on_kill(l, ev.payload);
        break;
    case ML_EVENT_ACKNOWLEDGE:
        on_ack(l, ev.payload);
        break;
    case ML_EVENT_PING:
    default:
        break;
    }
    ml_event_done(&ev);
}

/* ---- calls ---------------------------------------------------------------------------------- */

static char *heartbeat_body(struct link *l)
{
    struct agent *a = l->a;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "usage");
    yajl_gen_map_open(g);
    json_str(g, "node");
    yajl_gen_map_open(g);
    json_kv_double(g, "cpus", a->node_cpu_cores);
    json_kv_u64(g, "mem", a->node_mem_used);
    yajl_gen_map_close(g);
    double used_cpus = 0;
    uint64_t used_mem = 0;
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (struct container *c = a->containers; c; c = c->next) {
        if (ml_state_terminal(c->state) || !c->has_usage)
            continue;
        const struct iso_stats *st = &c->usage, *pv = &c->usage_prev;
        double dt = (double) (c->usage_at_ns - c->usage_prev_at_ns) / 1e9;
        double cores = dt > 0 && st->cpu_usage_ns >= pv->cpu_usage_ns
                               ? (double) (st->cpu_usage_ns - pv->cpu_usage_ns) / 1e9 / dt
                               : 0;
        used_cpus += cores;
        used_mem += st->mem_usage;
        struct link_task *t = ml_table_get(&l->by_container, c->id);
        if (!t)
            continue;
        yajl_gen_map_open(g);
        json_kv_str(g, "task_id", t->task_id);
        json_kv_double(g, "cpus", cores);
        json_kv_u64(g, "mem", st->mem_usage);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    json_str(g, "used");
    yajl_gen_map_open(g);
    json_kv_double(g, "cpus", used_cpus);
    json_kv_u64(g, "mem", used_mem);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *payload = json_gen_take(g);
    return ml_call_encode(ML_CALL_HEARTBEAT, a->node_id, payload);
}

static void send_heartbeat(struct link *l)
{
    if (!l->subscribed || l->hb_calling)
        return;
    if (call_start(l, CALL_HEARTBEAT, heartbeat_body(l)))
        l->hb_calling = true;
    l->last_hb_ns = now_monotonic_ns();
}

static void send_update(struct link *l, struct link_update *u)
{
    _cleanup_free_ char *payload = xasprintf("{\"status\": %s}", u->json);
    struct link_call *c =
            call_start(l, CALL_UPDATE, ml_call_encode(ML_CALL_UPDATE, l->a->node_id, payload));
    if (!c)
        return;
    snprintf(c->uuid, sizeof(c->uuid), "%s", u->uuid);
    u->calling = true;
    u->sent_ns = now_monotonic_ns();
    u->attempts++;
}

static uint64_t ack_timeout_ns(const struct link_update *u)
{
    uint64_t ms = (uint64_t) ACK_TIMEOUT_MS << (u->attempts > 3 ? 3 : u->attempts);
    return (ms > 30000 ? 30000 : ms) * 1000000ULL;
}

/* Send each task's oldest unacknowledged update, unless it is on its way or still within
 * its ACK timeout: one at a time per task keeps them in order. */
static void flush_updates(struct link *l)
{
    if (!l->subscribed)
        return;
    struct ml_table seen = {0};
    uint64_t now = now_monotonic_ns();
    for (struct link_update *u = l->updates; u; u = u->next) {
        if (ml_table_get(&seen, u->task_id))
            continue;
        ml_table_put(&seen, u->task_id, u);
        if (u->calling || (u->sent_ns && now - u->sent_ns < ack_timeout_ns(u)))
            continue;
        send_update(l, u);
    }
    ml_table_free(&seen);
}

/* Calls that cannot start inside curl's callbacks: AUTHENTICATE, the first heartbeat of a
 * stream, and the updates queued meanwhile. */
static void on_kick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct link *l = arg;
    if (l->auth_body) {
        char *body = TAKE_PTR(l->auth_body);
        if (l->stream && l->proven && !l->subscribed) {
            if (!call_start(l, CALL_AUTHENTICATE, body))
                stream_abort(l, "cannot start AUTHENTICATE");
        } else {
            free(body);
        }
    }
    if (l->subscribed && l->last_hb_ns == 0)
        send_heartbeat(l);
    flush_updates(l);
}

static struct link_update *update_find(struct link *l, const char *uuid)
{
    for (struct link_update *u = l->updates; u; u = u->next)
        if (streq(u->uuid, uuid))
            return u;
    return NULL;
}

/* The code of an answer of the master's error JSON, or BERR_CODE_NONE. */
static enum berr_code answer_code(struct link_call *c)
{
    yajl_val v = c->answer ? json_parse(c->answer, c->answer_len, NULL) : NULL;
    enum berr_code code = berr_code_from_name(json_get_str(json_get(v, "error"), "code"));
    yajl_tree_free(v);
    return code < 0 ? BERR_CODE_NONE : code;
}

/* An answer of the master's error JSON: its message, else the body's start. */
static void answer_message(struct link_call *c, char *buf, size_t len)
{
    yajl_val v = c->answer ? yajl_tree_parse(c->answer, NULL, 0) : NULL;
    const char *msg = json_get_str(json_get(v, "error"), "message");
    snprintf(buf, len, "%s", msg ? msg : c->answer ? c->answer : "");
    yajl_tree_free(v);
}

static void call_done(struct link *l, struct link_call *c, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    char why[512];
    if (rc != CURLE_OK && !(c->kind == CALL_STREAM && c->abort))
        snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
    else if (status >= 300 || status < 200)
        answer_message(c, why, sizeof(why));
    else
        why[0] = 0;
    if (c->kind == CALL_STREAM) {
        if (status == 401 && l->has_join && !l->use_join && c->answer &&
            answer_code(c) == BERR_UNKNOWN_AGENT_KEY) {
            /* the master does not know our key (its state was lost, or our key was kept
             * but its registration did not go through): register again with the join token */
            log_warning("master link: the master does not know this agent's key: registering "
                        "with the join token '%s'",
                        l->join_id);
            l->use_join = true;
        }
        char full[640];
        if (status && status != 200)
            snprintf(full, sizeof(full), "HTTP %ld: %s", status, why);
        else
            snprintf(full, sizeof(full), "%s", why[0] ? why : "the master ended it");
        stream_lost(l, c->abort ? "bad data on the stream" : full);
        return;
    }
    if (c->kind == CALL_AUTHENTICATE) {
        if (rc != CURLE_OK || status != 202) {
            log_warning("master link: AUTHENTICATE %s (HTTP %ld: %s)",
                        rc != CURLE_OK ? "failed" : "refused", status, why);
            stream_abort(l, "the master did not accept our proof");
        }
        return;
    }
    if (c->kind == CALL_HEARTBEAT)
        l->hb_calling = false;
    struct link_update *u = c->kind == CALL_UPDATE ? update_find(l, c->uuid) : NULL;
    if (u) {
        u->calling = false;
        if (rc != CURLE_OK || status >= 500 || status == 0)
            u->sent_ns = 0; /* not delivered: the next tick sends it again */
    }
    if (rc == CURLE_OK && (status == 404 || status == 409 || status == 401)) {
        /* UNKNOWN_AGENT / STALE_STREAM: the master lost us or we hold an old stream */
        log_warning("master link: %s refused (HTTP %ld: %s): subscribing again",
                    c->kind == CALL_UPDATE ? "UPDATE" : "HEARTBEAT", status, why);
        if (u)
            u->sent_ns = 0;
        stream_abort(l, "a call was refused");
    } else if (rc == CURLE_OK && status == 400 && u) {
        /* the master cannot read it: retrying cannot help; drop it loudly */
        log_error("task '%s': the master refused update %s: %s", u->task_id, u->uuid, why);
        _cleanup_free_ char *ack = xasprintf("{\"uuid\": \"%s\"}", u->uuid);
        yajl_val v = yajl_tree_parse(ack, NULL, 0);
        on_ack(l, v);
        yajl_tree_free(v);
    }
}

static void check_done(struct link *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct link_call *c = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
        call_unlink(l, c);
        call_done(l, c, rc);
        call_free(c);
    }
}

static void on_tick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct link *l = arg;
    uint64_t now = now_monotonic_ns();
    uint64_t hb_ns = (l->hb_interval_ms ? l->hb_interval_ms : 5000) * 1000000ULL;
    if (l->stream && l->subscribed && now - l->last_rx_ns > 3 * hb_ns + 2000000000ULL) {
        stream_abort(l, "no PING from the master for 3 heartbeat intervals");
        return;
    }
    if (l->stream && !l->subscribed && now - l->stream->started_ns > 15000000000ULL) {
        stream_abort(l, "no SUBSCRIBED within 15s");
        return;
    }
    if (l->subscribed && now - l->last_hb_ns >= hb_ns)
        send_heartbeat(l);
    flush_updates(l);
}

/* ---- start and stop -------------------------------------------------------------------------- */

static int load(struct link *l, struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->a->db, "SELECT task_id, container_id, last_state FROM link_tasks", -1,
                           &st, NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "state.db: %s", sqlite3_errmsg(l->a->db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text(st, 0);
        const char *ctr = (const char *) sqlite3_column_text(st, 1);
        if (ml_id_valid(id) && !ml_table_get(&l->by_task, id))
            task_new(l, id, ctr, sqlite3_column_int(st, 2));
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(l->a->db,
                           "SELECT seq, task_id, uuid, terminal, json FROM link_updates ORDER BY "
                           "seq",
                           -1, &st, NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "state.db: %s", sqlite3_errmsg(l->a->db));
    struct link_update **tail = &l->updates;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct link_update *u = xzalloc(sizeof(*u));
        u->seq = sqlite3_column_int64(st, 0);
        snprintf(u->task_id, sizeof(u->task_id), "%s", sqlite3_column_text(st, 1));
        snprintf(u->uuid, sizeof(u->uuid), "%s", sqlite3_column_text(st, 2));
        u->terminal = sqlite3_column_int(st, 3) != 0;
        u->json = xstrdup((const char *) sqlite3_column_text(st, 4));
        *tail = u;
        tail = &u->next;
    }
    sqlite3_finalize(st);
    /* what happened while the agent was down (recover.c already finished or lost the
     * containers): bring every task's updates up to date */
    for (struct link_task *t = l->tasks, *next; t; t = next) {
        next = t->next;
        struct container *c = t->container_id[0] ? agent_find_id(l->a, t->container_id) : NULL;
        if (c)
            catch_up(l, t, c);
        else if (t->last_state < 0 || !ml_state_terminal((enum ml_state) t->last_state))
            end_without_container(l, t, ML_LOST, "AGENT_RESTARTED_LOST",
                                  "the agent restarted and has no container for the task");
    }
    return 0;
}

/* Our key from work_dir/master.key, and the join token from token_file; one is needed. */
static int load_keys(struct link *l, struct berr **err)
{
    struct agent *a = l->a;
    l->key_path = xasprintf("%s/master.key", a->cfg.work_dir);
    char hex[ML_HEX_LEN + 2];
    ssize_t n = read_file_at(AT_FDCWD, l->key_path, hex, sizeof(hex));
    if (n >= 0) {
        if (ml_unhex(hex, l->key, ML_KEY_LEN) < 0)
            return berr_setx(err, EINVAL, "'%s' is not an agent key (64 hex digits)",
                             l->key_path);
        l->has_key = true;
    } else if (n != -ENOENT) {
        return berr_set(err, (int) -n, "read '%s'", l->key_path);
    }
    explicit_bzero(hex, sizeof(hex));
    if (a->cfg.token_file[0]) {
        _cleanup_free_ char *text = NULL;
        int r = read_file_alloc(a->cfg.token_file, 4096, &text, NULL);
        if (r < 0)
            return berr_set(err, -r, "[agent] token_file '%s'", a->cfg.token_file);
        text[strcspn(text, "\r\n")] = 0;
        if (strlen(text) < 16)
            return berr_setx(err, EINVAL,
                             "[agent] token_file '%s': a join token has at least 16 characters",
                             a->cfg.token_file);
        ml_token_key(text, l->join_key, l->join_id);
        explicit_bzero(text, strlen(text));
        l->has_join = true;
    }
    if (!l->has_key && !l->has_join)
        return berr_setx(err, EINVAL,
                         "no agent key ('%s') and no join token ([agent] token_file): the agent "
                         "cannot register at the master (docs/security.md)",
                         l->key_path);
    l->use_join = !l->has_key;
    return 0;
}

int link_start(struct agent *a, struct berr **err)
{
    if (!a->cfg.master || !a->cfg.master[0])
        return 0;
    char *msg = NULL;
    if (sqlite3_exec(a->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        int r = berr_setx(err, EIO, "state.db: create the master link's tables: %s",
                          msg ? msg : "?");
        sqlite3_free(msg);
        return r;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return berr_setx(err, ENOMEM, "cannot initialise libcurl");
    struct link *l = xzalloc(sizeof(*l));
    l->a = a;
    a->link = l;
    size_t n = strlen(a->cfg.master);
    while (n > 0 && a->cfg.master[n - 1] == '/')
        n--;
    l->url = xasprintf("%.*s%s", (int) n, a->cfg.master, ML_AGENT_PATH);
    if (load_keys(l, err) < 0)
        return -EINVAL;
    ml_reader_init(&l->rd, ML_MAX_MESSAGE);
    l->multi = curl_multi_init();
    l->ev_curl_timer = evtimer_new(a->base, on_curl_timer, l);
    l->ev_tick = event_new(a->base, -1, EV_PERSIST, on_tick, l);
    l->ev_kick = event_new(a->base, -1, 0, on_kick, l);
    l->ev_reconnect = evtimer_new(a->base, on_reconnect, l);
    if (!l->multi || !l->ev_curl_timer || !l->ev_tick || !l->ev_kick || !l->ev_reconnect)
        return berr_setx(err, ENOMEM, "master link: out of memory");
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    if (load(l, err) < 0)
        return -EIO;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 250000};
    event_add(l->ev_tick, &tv);
    if (str_has_prefix(l->url, "http://"))
        log_warning("master link: '%s' is plain HTTP (master_plain_http): the handshake keeps "
                    "our key secret, but what the link carries can be read and changed on the "
                    "way (docs/security.md)",
                    l->url);
    subscribe(l);
    return 0;
}

void link_stop(struct agent *a)
{
    struct link *l = a->link;
    if (!l)
        return;
    while (l->calls) {
        struct link_call *c = l->calls;
        call_unlink(l, c);
        call_free(c);
    }
    if (l->multi)
        curl_multi_cleanup(l->multi);
    struct event *evs[] = {l->ev_curl_timer, l->ev_tick, l->ev_kick, l->ev_reconnect};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    while (l->updates) {
        struct link_update *u = l->updates;
        l->updates = u->next;
        free(u->json);
        free(u);
    }
    while (l->tasks) {
        struct link_task *t = l->tasks;
        l->tasks = t->next;
        free(t);
    }
    ml_table_free(&l->by_task);
    ml_table_free(&l->by_container);
    ml_reader_free(&l->rd);
    free(l->url);
    free(l->key_path);
    free(l->auth_body);
    explicit_bzero(l->key, sizeof(l->key));
    explicit_bzero(l->join_key, sizeof(l->join_key));
    explicit_bzero(l->session, sizeof(l->session));
    free(l);
    a->link = NULL;
    curl_global_cleanup();
}
