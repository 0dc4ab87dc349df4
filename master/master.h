/* SPDX-License-Identifier: Apache-2.0 */
/* master/master.h - private header of berth-master: the daemon's one context (struct master),
 * the registry's records (struct m_agent, m_task, m_framework, m_offer) and the functions
 * master/ files share. main.c builds the context and runs the loop; config.c reads
 * master.conf; api.c serves the client API (routing, the task, agent and token calls),
 * api-sched.c its framework, offer and role calls, metrics.c /metrics; reply.c reads bodies
 * and sends every answer and error; auth.c checks bearer tokens; tls.c wraps connections in
 * TLS; handshake.c proves a SUBSCRIBE's key; link.c speaks the rest of the agent protocol
 * (registration, HEARTBEAT, UPDATE, reconciliation, and the timers that mark agents
 * unreachable and their tasks LOST); sched.c speaks the scheduler API (docs/protocol.md) and
 * runs its timers (offer timeout, framework failover); builtin.c is the framework inside the
 * master that serves POST /v1/tasks; offers.c runs the allocation passes and keeps the
 * offers; tasks.c keeps the tasks (launch, kill, status updates); frameworks.c keeps the
 * frameworks and their event streams; roles.c the roles' weights and quota; agents.c keeps
 * the agents and their event streams; placement.c decides where a task goes among offers
 * (pure); allocator.c is the DRF core (pure, drf.h); invariant.c checks the books in test
 * mode; store.c keeps master.db's rows (SQLite). Calls go one way: main -> api -> link ->
 * handshake; api, sched -> builtin -> offers -> tasks -> frameworks -> roles -> agents ->
 * placement, allocator; tasks, frameworks, roles, agents, auth -> store; handlers -> reply.
 * Offers reach a framework through its deliver function (frameworks.c's stream, or
 * builtin.c's placement), and a finished task frees resources by scheduling a pass
 * (master_alloc_soon), never by calling up. */
#pragma once

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "master/drf.h"
#include "master/events.h"
#include "master/placement.h"
#include "masterlink/masterlink.h"

struct sqlite3;
struct evbuffer;
struct m_offer;
#define MASTER_DEFAULT_CONFIG "/etc/berth/master.conf"

struct master_cfg {
    char *listen;                    /* HOST:PORT, default 127.0.0.1:5050 */
    char *work_dir;                  /* master.db lives here; /var/lib/berth-master */
    char *token_file;                /* the admin bearer token; "" = none */
    char *join_token_file;           /* a join token for agents; "" = none */
    char *tls_cert, *tls_key;        /* PEM files; "" = no TLS */
    bool plain_http;                 /* serve without TLS (refused unless set) */
    uint64_t heartbeat_interval_ms;  /* told to agents in SUBSCRIBED; PING period (5 s) */
    uint64_t agent_timeout_ms;       /* silent this long: unreachable (15 s) */
    uint64_t lost_grace_ms;          /* unreachable this long: its tasks LOST (30 s) */
    char *placement;                 /* spread | binpack */
    bool reconcile_kill;             /* kill tasks an agent runs that the master dropped */
    uint64_t max_agents, max_tasks;  /* registry bounds (10000, 100000) */
    uint64_t task_gc_delay_ms;       /* an ended task is forgotten this long after (1 week) */
    uint64_t allocation_interval_ms; /* an allocation pass at least this often (1 s) */
    uint64_t offer_timeout_ms;       /* an offer unanswered this long is rescinded (30 s; 0 off) */
    uint64_t failover_timeout_ms;    /* a framework's failover_timeout when it names none (1 h) */
    bool check_invariants;           /* test mode: check the books after every event */
    struct m_role_cfg {              /* [role.NAME]: weight and quota */
        char *name;
        double weight;
        struct drf_res guarantee, limit;
    } * roles;
    size_t n_roles;
    uint64_t events_history, events_buffer, events_max_subscribers, events_keepalive_ms;
    char *log_level;
    char *config_file; /* the file read, for messages */
};

enum m_agent_state {
    M_AGENT_REACHABLE,
    M_AGENT_UNREACHABLE,
};

/* What a bearer token may do (docs/security.md). admin > submit > read; join is apart: it
 * only lets an agent register through the agent protocol. */
enum m_rights {
    M_RIGHTS_READ,
    M_RIGHTS_SUBMIT,
    M_RIGHTS_ADMIN,
    M_RIGHTS_JOIN,
    _M_RIGHTS_MAX,
    _M_RIGHTS_INVALID = -EINVAL,
};

struct m_token {
    char id[ML_TOKEN_ID_LEN + 1]; /* public: the first hex digits of SHA-256(token) */
    uint8_t key[ML_KEY_LEN];      /* SHA-256(token): what is compared, and a join's HMAC key */
    char *name;
    enum m_rights rights;
    char **roles; /* submit: roles it may submit and kill in; NULL = every role */
    double created_at;
    bool is_static; /* from token_file / join_token_file: not in master.db, not removable */
    struct m_token *next;
};

/* A SUBSCRIBE whose sender has not proven its key yet (handshake.c): its stream is open and
 * carries the CHALLENGE, and nothing else happens until AUTHENTICATE proves it. */
struct m_pending {
    struct ml_handshake hs;
    uint8_t key[ML_KEY_LEN]; /* the agent's key, or the join token's */
    bool join;
    char join_id[ML_TOKEN_ID_LEN + 1];
    char *body; /* the SUBSCRIBE call, applied once proven */
    size_t len;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    uint64_t created_ns;
    struct m_pending *next;
};

/* A static reservation an agent reported ([role.NAME] in its agent.conf). */
struct m_resv {
    char *role;
    uint64_t cpus, mem;
};

struct m_agent {
    char id[65];
    struct master *m;
    /* its key (from its join handshake), and the session key of its current stream */
    bool has_key;
    uint8_t key[ML_KEY_LEN];
    uint8_t session[ML_KEY_LEN];
    char *hostname;
    struct ml_attr *attrs; /* its [attributes] from SUBSCRIBE (offers carry them) */
    char *address;         /* its [agent] address, or its SUBSCRIBE's peer address ("": none) */
    size_t n_attrs;
    /* resources from SUBSCRIBE: cpus in millicores, mem in bytes */
    uint64_t total_cpus, total_mem, reserved_cpus, reserved_mem, alloc_cpus, alloc_mem;
    struct m_resv *resv; /* its roles' reservations, parts of allocatable */
    size_t n_resv;
    char *ports;          /* its [resources] ports ranges, "" when none */
    uint16_t *ports_used; /* explicit host ports of its live tasks */
    size_t n_ports_used;
    bool ports_offered;               /* an outstanding offer holds its ports */
    struct drf_agent *drf;            /* its part of the allocator */
    uint64_t placed_cpus, placed_mem; /* sums over the master's live tasks placed here */
    unsigned placed_tasks;
    /* the last HEARTBEAT: node-wide and summed over the agent's tasks */
    bool has_usage;
    double node_cpus, used_cpus, usage_at;
    uint64_t node_mem, used_mem;
    enum m_agent_state state;
    bool lost_done;                        /* its tasks were declared LOST after the grace period */
    double registered_at, last_seen_at;    /* realtime, for the API */
    uint64_t last_seen_ns, unreachable_ns; /* monotonic, for the timers */
    uint64_t heartbeats;
    /* the event stream: the pending SUBSCRIBE request (chunked reply), or NULL */
    char stream_id[33];
    struct evhttp_request *stream;
    struct evhttp_connection *stream_conn;
    struct m_agent *next;
};

struct m_task {
    char id[65];
    char *name;
    char framework_id[65];
    char agent_id[65]; /* "" while a task of the built-in framework waits for an offer */
    char container_id[65];
    char *spec_json; /* ml_task_spec_encode of the spec without its name: what LAUNCH sends */
    char *role;
    uint64_t cpus_millis, mem_bytes;
    enum ml_state state;
    char reason[48];
    char *message;
    bool has_exit_code;
    int64_t exit_code, signal;
    uint16_t *host_ports; /* the explicit host ports it asked for */
    size_t n_host_ports;
    char uuid[37]; /* of its current status: what the framework ACKNOWLEDGEs */
    bool fw_acked; /* the framework acknowledged the current status */
    bool kill_requested;
    enum ml_health healthy; /* the agent's health check verdict, while RUNNING */
    double created_at, updated_at;
    bool has_usage;
    double usage_cpus;
    uint64_t usage_mem;
    struct m_task *next; /* newest first */
};

enum m_fw_state {
    M_FW_CONNECTED,
    M_FW_DISCONNECTED, /* its tasks run; it has failover_timeout to come back */
    M_FW_REMOVED,      /* TEARDOWN or failover_timeout: its tasks were killed */
};

/* A framework: a scheduler that subscribed (or the master's own, builtin.c). */
struct m_framework {
    struct master *m;
    char id[40];
    char *name;
    char **roles;                        /* NULL-terminated, at least one */
    char principal[ML_TOKEN_ID_LEN + 1]; /* the token it subscribed with */
    uint64_t failover_timeout_ms;
    bool builtin;
    enum m_fw_state state;
    double registered_at, changed_at;
    uint64_t disconnected_ns;
    char stream_id[33];
    struct evhttp_request *stream;
    struct evhttp_connection *stream_conn;
    struct drf_fw *drf;
    unsigned live_tasks;
    uint64_t offers_made, offers_accepted, offers_declined, offers_rescinded;
    /* offers of one pass, all at once: onto its stream (frameworks.c) or into builtin.c */
    void (*deliver)(struct master *m, struct m_framework *fw, struct m_offer **offers, size_t n);
    struct m_framework *next;
};

/* Resources of one agent offered to one framework in one role, until it answers, the offer
 * times out, or the framework or the agent goes. What is left of it (remaining) is charged
 * in the allocator to that framework and role. */
struct m_offer {
    char id[ML_OFFER_ID_LEN + 1];
    struct m_framework *fw;
    struct m_agent *ag;
    struct drf_client *client;
    struct drf_res res, remaining, reserved;
    char *ports; /* the agent's free port ranges, or NULL */
    uint64_t created_ns;
    double created_at;
    struct m_offer *next;
};

struct master {
    struct master_cfg cfg;
    struct event_base *base;
    struct evhttp *http;
    struct event *ev_sigterm, *ev_sigint, *ev_tick;
    struct event *ev_alloc, *ev_alloc_timer, *ev_sched_tick;
    struct drf drf;
    struct ml_table fws_by_id, offers_by_id;
    struct m_framework *frameworks, *builtin;
    struct m_offer *offers;
    size_t n_frameworks, n_offers, n_waiting;
    bool in_pass;
    uint64_t last_pass_ns, last_fw_hb_ns;
    struct m_token *tokens;
    struct m_pending *pending;
    size_t n_pending;
    struct ssl_ctx_st *tls; /* SSL_CTX, or NULL for plain HTTP */
    struct sse_hub *events; /* GET /v1/events; NULL until the loop runs (loading is silent) */
    struct sqlite3 *db;
    struct ml_table agents_by_id, tasks_by_id;
    struct m_agent *agents;
    struct m_task *tasks;
    size_t n_agents, n_tasks;
    uint64_t last_ping_ns, last_gc_ns;
    /* counters for /metrics */
    uint64_t heartbeats_total, updates_total, updates_duplicate_total, subscribes_total;
    uint64_t auth_failures_total;
    uint64_t refused_total, launches_sent_total, tasks_lost_total, kills_reconciled_total;
    uint64_t hb_buckets[8], hb_count;
    double hb_sum;
    uint64_t offers_made_total, offers_accepted_total, offers_declined_total;
    uint64_t offers_rescinded_total, alloc_passes_total, invariant_violations_total;
    uint64_t alloc_buckets[8];
    double alloc_sum, alloc_last;
};

/* config.c: defaults, then the file (--config=FILE or MASTER_DEFAULT_CONFIG; a missing
 * default file is fine), then --key=value flags. err names file:line or the flag. */
int master_cfg_load(struct master_cfg *cfg, int argc, char **argv, struct berr **err);
void master_cfg_done(struct master_cfg *cfg);
extern const char master_default_config[];

/* store.c: work_dir/master.db's rows. Callers encode their records and decode them in the
 * load callbacks (a callback's negative return stops the load with err). Every write returns
 * 0 or -EIO (logged). */
int master_store_open(struct master *m, struct berr **err);
void master_store_close(struct master *m);
int master_store_begin(struct master *m);
/* COMMIT, or ROLLBACK when that fails. */
int master_store_commit(struct master *m);
/* ROLLBACK the open transaction, if one is. */
void master_store_rollback(struct master *m);
int master_store_agent_put(struct master *m, const char *id, const char *hostname, const char *json,
                           double registered_at);
int master_store_agent_delete(struct master *m, const char *id);
int master_store_agents_load(struct master *m,
                             int (*fn)(struct master *m, const char *id, const char *hostname,
                                       const char *json, double registered_at),
                             struct berr **err);
int master_store_task_put(struct master *m, const char *id, double created_at, const char *json);
/* The task's row and its history, in one transaction. */
int master_store_task_delete(struct master *m, const char *id);
/* Rows oldest first. */
int master_store_tasks_load(struct master *m, int (*fn)(struct master *m, const char *json),
                            struct berr **err);
/* Record one status (json, encoded by the caller) in a task's history. 1 when recorded, 0
 * when its uuid was already there (a retried update), -EIO. */
int master_store_update(struct master *m, const char *task_id, const char *uuid, const char *state,
                        const char *source, double received_at, const char *json);
/* The history of one task, oldest first, one fn call per status. 0 or -EIO. */
int master_store_history(struct master *m, const char *task_id,
                         void (*fn)(void *arg, const char *json, const char *source,
                                    double received_at),
                         void *arg);
/* Bearer tokens made through the API (their SHA-256, hex), and their removal. */
int master_store_token_put(struct master *m, const char *id, const char *key_hex, const char *name,
                           const char *rights, const char *roles, double created_at);
int master_store_token_delete(struct master *m, const char *id);
int master_store_tokens_load(struct master *m,
                             int (*fn)(struct master *m, const char *id, const char *key_hex,
                                       const char *name, const char *rights, const char *roles,
                                       double created_at),
                             struct berr **err);
/* Frameworks (their record as JSON) and roles changed through the API (weight and quota as
 * JSON): one row each, loaded in the order they were made. */
int master_store_framework_put(struct master *m, const char *id, double registered_at,
                               const char *json);
int master_store_frameworks_load(struct master *m, int (*fn)(struct master *m, const char *json),
                                 struct berr **err);
int master_store_role_put(struct master *m, const char *name, const char *json);
int master_store_roles_load(struct master *m,
                            int (*fn)(struct master *m, const char *name, const char *json),
                            struct berr **err);

/* auth.c */
const char *master_rights_name(enum m_rights r);
enum m_rights master_rights_from_name(const char *s);
/* The static tokens of the configuration, then master.db's. err when a file is unreadable. */
int master_auth_load(struct master *m, struct berr **err);
void master_tokens_free(struct master *m);
/* The token with this text, or NULL (compared by its SHA-256, in constant time). */
struct m_token *master_token_find(struct master *m, const char *text);
struct m_token *master_join_token_by_id(struct master *m, const char *id);
/* The caller of a client call, from "Authorization: Bearer"; NULL after replying 401/403. */
struct m_token *master_auth_client(struct master *m, struct evhttp_request *req);
/* May t do need (in role, for submit; NULL role: any)? */
bool master_token_may(const struct m_token *t, enum m_rights need, const char *role);
/* A new random token: *ret_text (malloc'd, shown once) and its record *ret. */
int master_token_create(struct master *m, const char *name, enum m_rights rights, const char *roles,
                        char **ret_text, struct m_token **ret, struct berr **err);
int master_token_remove(struct master *m, const char *id, struct berr **err);
void master_token_json(const struct m_token *t, yajl_gen g);

/* tls.c: TLS when tls_cert is set (common/tls.c); master_tls_bev is evhttp's bevcb. */
int master_tls_init(struct master *m, struct berr **err);
void master_tls_free(struct master *m);
struct bufferevent *master_tls_bev(struct event_base *base, void *arg);

/* agents.c: the registry of agents and their event streams. */
struct m_agent *master_agent_find(struct master *m, const char *id);
/* The agent with this id, made (registered now, counted) when it is new; *ret_new says
 * which. */
struct m_agent *master_agent_get(struct master *m, const char *id, bool *ret_new);
/* Write ag's row (its resources, state and key). 0 or -EIO (logged). */
int master_agent_save(struct master *m, const struct m_agent *ag);
int master_agents_load(struct master *m, struct berr **err);
/* Forget an agent that is not connected (CONFLICT while it is): its record, its row and its
 * key (a join token can register it again). Its tasks are the caller's to end. */
int master_agent_remove(struct master *m, struct m_agent *ag, struct berr **err);
void master_agents_free(struct master *m);
void master_agent_json(const struct m_agent *ag, yajl_gen g);
/* Its "resources" object: all four figures, or (all false) total and allocatable alone. */
void master_agent_resources_gen(yajl_gen g, const struct m_agent *ag, bool all);
/* Could an agent ever hold (cpus, mem) in role (its allocatable for that role: the
 * unreserved part and the role's reservation), and how many agents are up at all. */
bool master_agents_could_hold(struct master *m, const char *role, uint64_t cpus, uint64_t mem,
                              unsigned *ret_up);
/* Add (sign > 0) or release one task's cpus, mem and explicit host ports on the agent's placed
 * sums (not the allocator's: tasks.c charges that). */
void master_agent_account(struct m_agent *ag, uint64_t cpus, uint64_t mem, const uint16_t *ports,
                          size_t n_ports, int sign);
/* Set what SUBSCRIBE reported: allocatable (millicores, bytes), the roles' reservations
 * (taken) and the port ranges (copied). true when any of it changed; the allocator's view of
 * the agent is then the caller's to rebuild (master_tasks_recharge around it). */
bool master_agent_resources_set(struct master *m, struct m_agent *ag, uint64_t cpus, uint64_t mem,
                                struct m_resv *resv_take, size_t n_resv, const char *ports);
/* The allocator's agent from ag's resources (nothing may be charged on it). */
void master_agent_drf_reset(struct master *m, struct m_agent *ag);
/* Its free port ranges: the agent's ranges minus the explicit host ports of its tasks
 * (malloc'd "[a-b,...]"), NULL when it has none. */
char *master_agent_free_ports(const struct m_agent *ag);
/* Make the open chunked reply req (of conn) ag's event stream, ending an older one. */
void master_agent_stream_set(struct m_agent *ag, struct evhttp_request *req,
                             struct evhttp_connection *conn);
/* End ag's stream (unreachable, a newer SUBSCRIBE): the agent sees the reply end. */
void master_agent_stream_end(struct m_agent *ag);
/* After its state or stream changed: offered only while REACHABLE with a stream open. */
void master_agent_activity(struct m_agent *ag);
/* At shutdown, when the loop no longer runs to flush a reply's end: free the streams'
 * connections outright; the agents see them drop. */
void master_agents_streams_free(struct master *m);
/* One event as a RecordIO record on the open chunked reply req. */
void master_stream_send(struct evhttp_request *req, enum ml_event_type t, const char *payload);
/* Send one event on ag's stream; false when it has none. */
bool master_agent_send(struct m_agent *ag, enum ml_event_type t, const char *payload);

/* tasks.c: the registry of tasks. */
struct m_task *master_task_find(struct master *m, const char *id);
/* A task by id, unique id prefix or unique name; NULL with err (NOT_FOUND, CONFLICT). */
struct m_task *master_task_lookup(struct master *m, const char *ref, struct berr **err);
/* A new task of fw from a parsed and checked spec (borrowed), recorded STAGING: placed on ag
 * in role (its resources carved out of an offer by the caller) with LAUNCH sent, or, with ag
 * NULL, waiting for an offer (the built-in framework's queue). id: the framework's own, or
 * NULL for a new one. 0 with *ret, or -errno with err (UNAVAILABLE at max_tasks, CONFLICT for
 * an id in use, INTERNAL). */
int master_task_create(struct master *m, struct m_framework *fw, const struct ml_task_spec *spec,
                       const char *id, struct m_agent *ag, const char *role, struct m_task **ret,
                       struct berr **err);
/* A waiting task goes to ag (its resources carved out of an offer): recorded, LAUNCH sent.
 * 0 or -EIO (it keeps waiting). */
int master_task_place(struct master *m, struct m_task *t, struct m_agent *ag);
/* KILL (grace_s < 0: the agent's default); a waiting task ends KILLED at once. */
int master_task_kill(struct master *m, struct m_task *t, double grace_s, struct berr **err);
/* Forget an ended task (record and history); CONFLICT while it is not ended. */
int master_task_remove(struct master *m, struct m_task *t, struct berr **err);
/* Forget ended tasks older than task_gc_delay (the tick). */
void master_tasks_gc(struct master *m);
/* Apply a status (from an agent, or the master's own): forward-only - a state not after the
 * current one, or any after a terminal one, is ignored (0); 1 when applied; -EIO (logged)
 * when master.db refused it, and t is as it was. Records it in the history in the same
 * transaction, then tells t's framework (UPDATE). */
int master_task_apply(struct master *m, struct m_task *t, const struct ml_status *s,
                      const char *source);
/* The master itself ends a task (state KILLED or LOST, with reason), recorded like an
 * update; a LOST one counts in tasks_lost_total. */
void master_task_end(struct master *m, struct m_task *t, enum ml_state state, enum ml_reason reason,
                     const char *msg);
/* End every live task placed on agent_id LOST with reason; how many. */
unsigned master_tasks_lose_on(struct master *m, const char *agent_id, enum ml_reason reason,
                              const char *msg);
/* Release (sign < 0) or charge again (> 0) what the live tasks on ag hold in the allocator,
 * around a change of ag's resources. */
void master_tasks_recharge(struct master *m, struct m_agent *ag, int sign);
/* The framework's ACKNOWLEDGE of t's status uuid: 1 when it was the current one (recorded),
 * 0 for an older or unknown one, -EIO. */
int master_task_ack(struct master *m, struct m_task *t, const char *uuid);
/* Why a waiting task waits (which resource in which role is short, ...), into buf. */
void master_task_why(struct master *m, const struct m_task *t, char *buf, size_t len);
/* A HEARTBEAT's per-task usage ([{task_id, cpus, mem}]) for the live tasks on agent_id. */
void master_tasks_usage(struct master *m, const char *agent_id, yajl_val tasks);
/* The LAUNCH payload of t (malloc'd JSON). */
char *master_task_launch_payload(const struct m_task *t);
/* After master_agents_load and master_fws_load: a live task counts on its agent. */
int master_tasks_load(struct master *m, struct berr **err);
void master_tasks_free(struct master *m);
/* tasks-view.c: a task's API view (also its row in master.db) and the row read back. */
void master_task_json(struct master *m, const struct m_task *t, yajl_gen g, bool with_history);
/* state, reason, message, exit_code, signal, agent_id: the task view's and UPDATE's own */
void master_task_outcome_json(yajl_gen g, const struct m_task *t);
/* A task record from its row (NULL when the row is unusable); linking it is the caller's. */
struct m_task *master_task_from_row(struct master *m, const char *json);
void master_task_free(struct m_task *t);

/* frameworks.c: the registry of frameworks and their event streams (docs/protocol.md). */
struct m_framework *master_fw_find(struct master *m, const char *id);
/* A new framework (id NULL: a fresh "f-" id), its roles taken; saved unless builtin. NULL
 * when master.db refused it. */
struct m_framework *master_fw_create(struct master *m, const char *id, const char *name,
                                     char **roles_take, const char *principal, uint64_t failover_ms,
                                     bool builtin);
/* Its roles (taken): clients in the new ones; the old ones stay for what they hold. */
void master_fw_set_roles(struct master *m, struct m_framework *fw, char **roles_take);
int master_fw_save(struct master *m, const struct m_framework *fw);
int master_fws_load(struct master *m, struct berr **err);
void master_fws_free(struct master *m);
/* The open chunked reply req becomes fw's stream (an older one ends with ERROR): CONNECTED. */
void master_fw_stream_set(struct master *m, struct m_framework *fw, struct evhttp_request *req,
                          const char *stream_id);
/* End fw's stream from our side, after an ERROR event carrying code and why (when set). */
void master_fw_stream_end(struct m_framework *fw, enum berr_code code, const char *why);
void master_fws_streams_free(struct master *m);
bool master_fw_send(struct m_framework *fw, enum ml_sched_event_type t, const char *payload);
/* UPDATE t's current status to its framework: with its uuid (to be acknowledged), or as a
 * reconciliation answer (no uuid, nothing to acknowledge). Nothing for the built-in one. */
void master_fw_update(struct master *m, const struct m_task *t, bool reconcile);
/* RECONCILE of a task id fw has no task of: UPDATE LOST/UNKNOWN_TASK. */
void master_fw_unknown_task(struct m_framework *fw, const char *task_id);
/* The allocator's client of framework fw_id in role (NULL: none, or fw gone). */
struct drf_client *master_fw_client(struct master *m, const char *fw_id, const char *role);
/* REMOVED: out of the allocator, saved; its tasks and offers are the caller's. */
void master_fw_removed(struct master *m, struct m_framework *fw);
void master_fw_json(struct master *m, const struct m_framework *fw, yajl_gen g);

/* roles.c: weights and quota of roles: [role.NAME] of master.conf, then what the API set
 * (master.db, which wins). */
int master_roles_load(struct master *m, struct berr **err);
/* PUT /v1/roles/NAME {"weight", "guarantee": {cpus, mem}, "limit": {cpus, mem}}: checked,
 * applied, saved. 0 or -errno with err (INVALID_ARGUMENT, INTERNAL). */
int master_role_update(struct master *m, const char *name, yajl_val body, struct berr **err);
void master_role_json(struct master *m, const struct drf_role *r, yajl_gen g);

/* offers.c: the allocation passes and the offers. */
static inline void master_alloc_soon(struct master *m)
{
    /* resources were freed or a framework wants more: a pass right after this callback */
    if (m->ev_alloc)
        event_active(m->ev_alloc, 0, 0);
}
/* ev_alloc's and ev_alloc_timer's callback: rescind the offers of frameworks and agents that
 * went, run one allocation pass, make and deliver its offers. */
void master_alloc_pass(evutil_socket_t fd, short what, void *arg);
/* The upper bounds (s) of the pass duration histogram's buckets (alloc_buckets). */
extern const double master_pass_bounds[7];
struct m_offer *master_offer_find(struct master *m, const char *id);
/* Take q out of o for a task about to be charged with it. */
void master_offer_carve(struct master *m, struct m_offer *o, struct drf_res q);
/* The framework is done with o (ACCEPT, DECLINE): what is left goes back, kept from it for
 * refuse_s seconds (0: offered again at once). */
void master_offer_close(struct master *m, struct m_offer *o, double refuse_s, bool accepted);
/* Take o back (RESCIND to its framework, with why). */
void master_offer_rescind(struct master *m, struct m_offer *o, const char *why);
void master_offers_rescind_agent(struct master *m, struct m_agent *ag, const char *why);
void master_offers_rescind_fw(struct master *m, struct m_framework *fw, const char *why);
/* accept.c: a framework's answers to its offers. ACCEPT: every offer is fw's, on one agent, in one
 * role, and the launches fit in them, or the call is refused whole (the offers go back) with err
 * (NOT_FOUND, INVALID_ARGUMENT, INSUFFICIENT_RESOURCES, ...). Adds {"tasks": [{"task_id", "name"}]}
 * to reply. */
int master_offers_accept(struct master *m, struct m_framework *fw, yajl_val payload, yajl_gen reply,
                         struct berr **err);
int master_offers_decline(struct master *m, struct m_framework *fw, yajl_val payload,
                          struct berr **err);
/* Offers older than offer_timeout: rescinded (the tick). */
void master_offers_expire(struct master *m, uint64_t now_ns);
void master_offer_json(const struct m_offer *o, yajl_gen g);
void master_offers_free(struct master *m);

/* builtin.c: the framework inside the master behind POST /v1/tasks. */
int master_builtin_init(struct master *m);
/* After the tasks were loaded: its queue decides its roles and whether it is suppressed. */
void master_builtin_start(struct master *m);
/* POST /v1/tasks: queued (STAGING, waiting for an offer) when some agent could ever hold it,
 * INSUFFICIENT_RESOURCES when none could. 0 with *ret or -errno with err. */
int master_builtin_submit(struct master *m, const struct ml_task_spec *spec, struct m_task **ret,
                          struct berr **err);

/* sched.c: the scheduler API on POST ML_SCHED_PATH and its timers. */
void master_sched_serve(struct master *m, struct evhttp_request *req, const char *body, size_t len);
void master_sched_tick(evutil_socket_t fd, short what, void *arg);
/* TEARDOWN, failover timeout, DELETE /v1/frameworks/ID: kill fw's tasks, rescind its offers,
 * end its stream; REMOVED. */
void master_sched_remove(struct master *m, struct m_framework *fw, const char *why);

/* api-sched.c: GET /v1/frameworks[/ID], DELETE /v1/frameworks/ID, GET /v1/offers,
 * GET /v1/roles, PUT /v1/roles/NAME. false when path is none of these. */
bool master_api_sched(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                      const char *path, enum evhttp_cmd_type cmd, const char *body, size_t len);
/* metrics.c: GET /metrics. */
void master_serve_metrics(struct master *m, struct evhttp_request *req);
/* invariant.c: with check_invariants, that the allocator's books match the tasks and offers
 * (logged and counted when not); when names the event. */
void master_check(struct master *m, const char *when);

/* handshake.c: a SUBSCRIBE's proof of its key (docs/protocol.md, Authentication). */
/* SUBSCRIBE: check it, open its stream and send the CHALLENGE, or refuse. */
void master_handshake_start(struct master *m, struct evhttp_request *req, struct ml_call *call,
                            const char *body, size_t len);
/* AUTHENTICATE: the pending SUBSCRIBE it proves, unlinked (free it with master_pending_free),
 * with that SUBSCRIBE decoded into *ret_sub (free with ml_call_done); NULL after refusing. */
struct m_pending *master_handshake_prove(struct master *m, struct evhttp_request *req,
                                         struct ml_call *call, struct ml_call *ret_sub);
void master_pending_free(struct m_pending *p);
/* Close the pending streams whose AUTHENTICATE is overdue (the tick). */
void master_handshake_expire(struct master *m, uint64_t now_ns);
void master_pending_free_all(struct master *m);

/* link.c: the agent protocol on POST ML_AGENT_PATH, and the timers. */
void master_link_serve(struct master *m, struct evhttp_request *req, const char *body, size_t len);
void master_link_tick(evutil_socket_t fd, short what, void *arg);
void master_hb_histogram(struct master *m, struct evbuffer *out); /* api.c: /metrics */

/* api.c */
int master_api_start(struct master *m, struct berr **err);
void master_api_stop(struct master *m);

/* reply.c: every answer of both APIs; each error reply counts in refused_total. */
void master_reply_json(struct evhttp_request *req, int status, yajl_gen g);
/* 202 {} (an agent's call taken). */
void master_reply_accepted(struct evhttp_request *req);
/* The error err carries (its code, or INTERNAL). */
void master_reply_error(struct master *m, struct evhttp_request *req, const struct berr *err);
/* Refuse with code and a message. */
void master_refuse(struct master *m, struct evhttp_request *req, enum berr_code code,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The request's body (not NUL-terminated; "" when empty): 0, or -EMSGSIZE after answering
 * 413 BODY_TOO_LARGE when it exceeds ML_MAX_MESSAGE. */
int master_read_body(struct master *m, struct evhttp_request *req, const char **ret,
                     size_t *ret_len);
/* "ADDRESS:PORT" of the peer of req into buf, for log lines about refused callers. */
const char *master_peer(struct evhttp_request *req, char *buf, size_t len);
