/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/masterlink.h - the one public header of masterlink/: the agent<->master protocol
 * (docs/protocol.md) without any I/O. recordio.c frames and unframes the event stream,
 * codec.c encodes and decodes the JSON envelopes of calls and events and the status update
 * (on common/json.c's helpers); sched.c holds the scheduler API's message names, envelopes
 * and offers (docs/protocol.md, "The scheduler API"). berth-agent (agentd/link.c),
 * berth-master (master/) and the scheduler library (sched/) link it, so no two sides can
 * drift apart. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"

/* The one endpoint of the agent link: every call is a POST of one JSON object. */
#define ML_AGENT_PATH "/api/v1/agent"
/* Header carrying the stream id of the SUBSCRIBED event on HEARTBEAT and UPDATE calls. */
#define ML_STREAM_HEADER "Berth-Stream-Id"
/* Largest call body and largest record on the stream, in bytes. */
#define ML_MAX_MESSAGE (1024 * 1024)
/* Offer ids: "o-" and 16 hex digits. */
#define ML_OFFER_ID_LEN 18

/* ---- message types ---------------------------------------------------------------------- */

enum ml_call_type {
    ML_CALL_SUBSCRIBE,
    ML_CALL_HEARTBEAT,
    ML_CALL_UPDATE,
    ML_CALL_AUTHENTICATE,
    _ML_CALL_MAX,
    _ML_CALL_INVALID = -EINVAL,
};

enum ml_event_type {
    ML_EVENT_SUBSCRIBED,
    ML_EVENT_LAUNCH,
    ML_EVENT_KILL,
    ML_EVENT_ACKNOWLEDGE,
    ML_EVENT_PING,
    ML_EVENT_CHALLENGE,
    _ML_EVENT_MAX,
    _ML_EVENT_INVALID = -EINVAL,
};

/* Task states as the master sees them (SPEC §5), in the order they may happen. */
enum ml_state {
    ML_STAGING,
    ML_STARTING,
    ML_RUNNING,
    ML_FINISHED,
    ML_FAILED,
    ML_KILLED,
    ML_LOST,
    _ML_STATE_MAX,
    _ML_STATE_INVALID = -EINVAL,
};

/* Why a task ended (SPEC §5), as the agent and the master report it; one list for both. */
enum ml_reason {
    ML_REASON_NONE,
    ML_REASON_EXITED,
    ML_REASON_SIGNALED,
    ML_REASON_MEMORY_LIMIT,
    ML_REASON_LAUNCH_FAILED,
    ML_REASON_KILLED_BY_REQUEST,
    ML_REASON_AGENT_RESTARTED_LOST,
    ML_REASON_INSUFFICIENT_RESOURCES,
    ML_REASON_POLICY_DENIED,
    ML_REASON_UNKNOWN_TO_AGENT,
    ML_REASON_AGENT_UNREACHABLE,
    ML_REASON_RECONCILED_LOST,
    ML_REASON_AGENT_REMOVED,
    ML_REASON_UNKNOWN_TASK,        /* RECONCILE: the master knows no such task of the framework */
    ML_REASON_PORTS_LIMITATION,    /* enforce_ports: it listened on a port it was not given */
    ML_REASON_HEALTH_CHECK_FAILED, /* the agent killed it after its allowed failed checks */
    _ML_REASON_MAX,
    _ML_REASON_INVALID = -EINVAL,
};

const char *ml_call_name(enum ml_call_type t);
enum ml_call_type ml_call_from_name(const char *s);
const char *ml_event_name(enum ml_event_type t);
enum ml_event_type ml_event_from_name(const char *s);
const char *ml_state_name(enum ml_state s);
enum ml_state ml_state_from_name(const char *s);
/* NULL for ML_REASON_NONE; ml_reason_from_name(NULL) is ML_REASON_NONE. */
const char *ml_reason_name(enum ml_reason r);
enum ml_reason ml_reason_from_name(const char *s);
static inline bool ml_state_terminal(enum ml_state s)
{
    return s >= ML_FINISHED;
}
/* Ids (agent, task, stream): 1 to 64 characters of [A-Za-z0-9_-]. */
bool ml_id_valid(const char *s);
/* A random version-4 uuid, "8-4-4-4-12" lowercase hex, into buf (37 bytes). 0 or -errno. */
int ml_uuid_new(char buf[37]);
bool ml_uuid_valid(const char *s);

/* ---- RecordIO framing (recordio.c) ------------------------------------------------------ */

/* One record: "<decimal length>\n<length bytes>". Returns a malloc'd frame of *ret_len bytes. */
char *ml_frame(const char *data, size_t len, size_t *ret_len);

/* Incremental reader of a stream of records; holds at most max bytes of one record. */
struct ml_reader {
    char *buf;
    size_t len, cap, off; /* bytes held, allocated, consumed */
    size_t max;
};
void ml_reader_init(struct ml_reader *r, size_t max);
void ml_reader_free(struct ml_reader *r);
/* Append bytes as they arrive. */
void ml_reader_feed(struct ml_reader *r, const char *data, size_t len);
/* Take the next complete record: 1 with *ret (NUL-terminated, valid until the next feed or
 * next call) and *ret_len; 0 when more bytes are needed; -EBADMSG (bad length line) or
 * -EMSGSIZE (record over max) with err set - the stream cannot be resynchronised. */
int ml_reader_next(struct ml_reader *r, const char **ret, size_t *ret_len, struct berr **err);

/* ---- the task spec (spec.c): what to run ----------------------------------------------- */

#define ML_PIDS_MAX 4194304u /* the kernel's PID_MAX_LIMIT */

/* A command: shell (run as /bin/sh -c) or argv; argv is always set (from shell too). */
struct ml_command {
    char *shell; /* NULL unless given as {"shell": ...} */
    char **argv; /* NULL-terminated */
};
/* {"shell": "..."} or {"argv": [...]}: 0, or -EINVAL with err (INVALID_ARGUMENT). */
int ml_command_parse(yajl_val v, struct ml_command *ret, struct berr **err);
void ml_command_gen(yajl_gen g, const struct ml_command *c);
void ml_command_done(struct ml_command *c);

struct ml_volume {
    char *host;      /* absolute */
    char *container; /* relative to the task's root, or absolute */
    bool readonly;
};

enum ml_cpus_limit {
    ML_CPUS_LIMIT_DEFAULT, /* the agent's [agent] cpu_limit decides */
    ML_CPUS_LIMIT_NONE,    /* "none": may burst */
    ML_CPUS_LIMIT_SET,     /* cpus_limit_millis */
};

/* A port a task asks for (issue #15): its name (optional), the host port (0: any from the
 * agent's [resources] ports ranges, or the offer's), and the port inside the task's network
 * namespace in bridge mode (0: the same as the host port). */
struct ml_port {
    char *name;
    uint16_t host_port;
    uint16_t container_port;
};
#define ML_MAX_PORTS 64

/* A health check (issue #16, docs/api.md "Health checks"), run by the agent while the task is
 * RUNNING. Times in milliseconds; parse fills every default, so the encoded spec shows what
 * runs. */
enum ml_health_type {
    ML_HEALTH_COMMAND, /* command exits 0: run inside the task's namespaces and cgroups */
    ML_HEALTH_HTTP,    /* GET path answers 200-399 */
    ML_HEALTH_TCP,     /* a connection is accepted */
    _ML_HEALTH_TYPE_MAX,
    _ML_HEALTH_TYPE_INVALID = -EINVAL,
};
struct ml_health_check {
    enum ml_health_type type;
    struct ml_command command; /* COMMAND */
    char *path;                /* HTTP: starts with '/'; default "/" */
    uint16_t port;             /* HTTP, TCP: a port number, or 0 when port_index names one */
    int port_index;            /* HTTP, TCP: index into the task's ports, or -1 */
    uint64_t delay_ms;         /* after RUNNING, before the first check (default 0) */
    uint64_t interval_ms;      /* from one check's start to the next's (default 10 s) */
    uint64_t timeout_ms;       /* a check not done by then failed (default 5 s) */
    uint64_t grace_ms; /* failures before the first success within this long after RUNNING do
                        * not count (default 60 s); the first success ends it */
    uint64_t consecutive_failures; /* counted failures in a row that kill the task (default 3) */
};
/* What the agent knows of a task's health: zero (unknown: no check, or none counted yet) is
 * what a zeroed struct says. */
enum ml_health {
    ML_HEALTH_UNKNOWN,
    ML_HEALTHY,
    ML_UNHEALTHY,
};
const char *ml_health_type_name(enum ml_health_type t); /* "command", "http", "tcp" */
/* "healthy": true, false, or null (unknown) under key k. */
void ml_health_gen(yajl_gen g, const char *k, enum ml_health h);
/* The "healthy" member of v (true, false, absent/null). */
enum ml_health ml_health_get(yajl_val v, const char *k);
/* spec-health.c: the task spec's "health_check" object; n_ports is how many ports the task
 * asks for (port_index must name one). 0 with *ret (free with ml_health_check_free), or
 * -EINVAL with err (INVALID_ARGUMENT) naming the bad field. */
int ml_health_check_parse(yajl_val v, size_t n_ports, struct ml_health_check **ret,
                          struct berr **err);
void ml_health_check_gen(yajl_gen g, const struct ml_health_check *hc);
void ml_health_check_free(struct ml_health_check *hc); /* NULL, or half-parsed, is fine */

/* A task as asked for; absent fields stay NULL / 0 (the agent fills its defaults). */
struct ml_task_spec {
    char *name;
    struct ml_command command;
    uint64_t cpus_millis;
    enum ml_cpus_limit cpus_limit;
    uint64_t cpus_limit_millis;
    uint64_t mem_bytes;
    uint64_t pids; /* 0: the agent's default */
    char *user;    /* NULL: the agent's task_user */
    char **env;    /* "K=V", NULL-terminated; never NULL once parsed */
    struct ml_volume *volumes;
    size_t n_volumes;
    char *role;    /* NULL: "*" */
    char *network; /* "host", "bridge" or "none"; NULL: the agent's [agent] network */
    struct ml_port *ports;
    size_t n_ports;
    struct ml_health_check *health_check; /* NULL: none */
};
/* ML_SPEC_RECORD: the spec part of a stored record, among the record's other fields
 * (unknown fields allowed, the name not checked again). */
#define ML_SPEC_RECORD 1u
/* Parse and check every field of v: 0 with *ret (free with ml_task_spec_done), or -EINVAL
 * with err (INVALID_ARGUMENT) naming the first bad field. */
int ml_task_spec_parse(yajl_val v, unsigned flags, struct ml_task_spec *ret, struct berr **err);
/* Its fields as key/value pairs into an open map (the API view and the record embed them). */
void ml_task_spec_gen_fields(yajl_gen g, const struct ml_task_spec *s);
/* As one JSON object (malloc'd). */
char *ml_task_spec_encode(const struct ml_task_spec *s);
/* Its "resources" object alone: {"cpus", "cpus_limit", "mem", "pids"} as set. */
void ml_resources_gen(yajl_gen g, const struct ml_task_spec *s);
void ml_task_spec_done(struct ml_task_spec *s);
bool ml_name_valid(const char *s); /* 1-63 of [A-Za-z0-9_.-], not starting with '.' or '-' */
bool ml_role_valid(const char *s); /* "*" or 1-64 of [a-z0-9_-] */

/* ---- envelopes and status updates (codec.c) ---------------------------------------------- */

/* A call from the agent: {"type": "UPDATE", "agent_id": "...", "update": {...}}. The payload
 * sits under the lower-case type name. */
struct ml_call {
    enum ml_call_type type;
    const char *agent_id; /* points into root */
    yajl_val payload;     /* object under the type's name, or NULL */
    yajl_val root;        /* owned */
};
/* Decode and check a call body: valid type, agent_id, payload object. 0, or -EINVAL with
 * err (code INVALID_ARGUMENT) saying what is wrong. Free with ml_call_done. */
int ml_call_decode(const char *body, size_t len, struct ml_call *ret, struct berr **err);
void ml_call_done(struct ml_call *c);
/* Encode a call around payload_json (an object, or NULL for {}). malloc'd. */
char *ml_call_encode(enum ml_call_type t, const char *agent_id, const char *payload_json);

/* An event from the master: {"type": "LAUNCH", "launch": {...}}. */
struct ml_event {
    enum ml_event_type type;
    yajl_val payload; /* object under the type's name, or NULL */
    yajl_val root;    /* owned */
};
int ml_event_decode(const char *body, size_t len, struct ml_event *ret, struct berr **err);
void ml_event_done(struct ml_event *e);
char *ml_event_encode(enum ml_event_type t, const char *payload_json);

/* A status update (UPDATE's payload): one transition of one task, named by a uuid so a
 * retried update is recognised. */
struct ml_status {
    char task_id[65];
    char uuid[37];
    char container_id[65]; /* "" when the launch never made a container */
    enum ml_state state;
    char reason[48]; /* "" or SPEC §5's reasons, AGENT_UNREACHABLE, ... */
    char *message;   /* owned, may be NULL */
    bool has_exit_code;
    int64_t exit_code;
    int64_t signal;   /* 0 = none */
    double timestamp; /* when it happened, on the agent (seconds since the epoch) */
    /* RUNNING with a health check: what the checks say. A RUNNING update may follow another
     * when only this changed. */
    enum ml_health healthy;
};
/* Encode as a JSON object (malloc'd). */
char *ml_status_encode(const struct ml_status *s);
void ml_status_gen(yajl_gen g, const struct ml_status *s);
/* Decode and check: task_id, uuid and state must be valid. 0 or -EINVAL with err. Free
 * ret->message with ml_status_done. */
int ml_status_decode(yajl_val v, struct ml_status *ret, struct berr **err);
void ml_status_done(struct ml_status *s);

/* ---- authentication (auth.c, docs/protocol.md "Authentication") ------------------------ */

/* Header of every call after SUBSCRIBE: HMAC-SHA256 of the body under the session key. */
#define ML_SIGNATURE_HEADER "Berth-Signature"
#define ML_KEY_LEN 32      /* bytes of agent keys, join keys, session keys */
#define ML_HEX_LEN 64      /* a key, nonce or MAC as lowercase hex */
#define ML_TOKEN_ID_LEN 16 /* a token's public id: the first hex digits of its SHA-256 */

/* The public inputs of one handshake, bound into every proof and key it yields. */
struct ml_handshake {
    char agent_id[65];
    char nonce_agent[ML_HEX_LEN + 1];  /* the agent's, in SUBSCRIBE */
    char nonce_master[ML_HEX_LEN + 1]; /* the master's, in CHALLENGE */
    char stream_id[33];                /* the stream the handshake opens */
};

void ml_hex(const uint8_t *bytes, size_t n, char *out); /* out: 2n+1 chars */
/* Exactly 2n hex digits into n bytes; 0 or -EINVAL. */
int ml_unhex(const char *hex, uint8_t *out, size_t n);
/* Equal non-empty strings, compared in time independent of where they differ. */
bool ml_hex_equal(const char *a, const char *b);
bool ml_nonce_valid(const char *s); /* 64 hex digits */
void ml_sha256(const void *data, size_t len, uint8_t out[ML_KEY_LEN]);
/* A bearer or join token's key (SHA-256 of its text; what the master stores) and public id. */
void ml_token_key(const char *token, uint8_t key[ML_KEY_LEN], char id[ML_TOKEN_ID_LEN + 1]);
/* The proof that one side knows key: by_master for the CHALLENGE, else for AUTHENTICATE.
 * The labels differ, so neither side's proof can be replayed as the other's. */
void ml_auth_proof(const uint8_t key[ML_KEY_LEN], const struct ml_handshake *h, bool by_master,
                   char out[ML_HEX_LEN + 1]);
/* The key that signs the calls of this stream (ML_SIGNATURE_HEADER). */
void ml_auth_session_key(const uint8_t key[ML_KEY_LEN], const struct ml_handshake *h,
                         uint8_t out[ML_KEY_LEN]);
/* The agent key a join handshake yields: both sides compute it; it never travels. */
void ml_auth_agent_key(const uint8_t join_key[ML_KEY_LEN], const struct ml_handshake *h,
                       uint8_t out[ML_KEY_LEN]);
void ml_auth_sign(const uint8_t session[ML_KEY_LEN], const char *body, size_t len,
                  char out[ML_HEX_LEN + 1]);

/* ---- the scheduler API (sched.c, docs/protocol.md "The scheduler API") ------------------ */

/* The one endpoint of the scheduler API: every call is a POST of one JSON object, with a
 * bearer token; calls after SUBSCRIBE carry ML_STREAM_HEADER. */
#define ML_SCHED_PATH "/api/v1/scheduler"
/* A DECLINE's (or ACCEPT's) filter when the call names none, in seconds. */
#define ML_SCHED_REFUSE_DEFAULT 5.0

enum ml_sched_call_type {
    ML_SCHED_SUBSCRIBE,
    ML_SCHED_ACCEPT,
    ML_SCHED_DECLINE,
    ML_SCHED_REVIVE,
    ML_SCHED_SUPPRESS,
    ML_SCHED_KILL,
    ML_SCHED_ACKNOWLEDGE,
    ML_SCHED_RECONCILE,
    ML_SCHED_TEARDOWN,
    _ML_SCHED_CALL_MAX,
    _ML_SCHED_CALL_INVALID = -EINVAL,
};

enum ml_sched_event_type {
    ML_SCHED_SUBSCRIBED,
    ML_SCHED_OFFERS,
    ML_SCHED_RESCIND,
    ML_SCHED_UPDATE,
    ML_SCHED_HEARTBEAT,
    ML_SCHED_ERROR,
    _ML_SCHED_EVENT_MAX,
    _ML_SCHED_EVENT_INVALID = -EINVAL,
};

const char *ml_sched_call_name(enum ml_sched_call_type t);
enum ml_sched_call_type ml_sched_call_from_name(const char *s);
const char *ml_sched_event_name(enum ml_sched_event_type t);
enum ml_sched_event_type ml_sched_event_from_name(const char *s);

/* A framework's call: {"type": "ACCEPT", "framework_id": "...", "accept": {...}}.
 * framework_id may be absent only in a first SUBSCRIBE. */
struct ml_sched_call {
    enum ml_sched_call_type type;
    const char *framework_id; /* points into root; NULL when absent */
    yajl_val payload;         /* object under the type's name, or NULL */
    yajl_val root;            /* owned */
};
/* Decode and check a call body. 0, or -EINVAL with err (INVALID_ARGUMENT). Free with
 * ml_sched_call_done. */
int ml_sched_call_decode(const char *body, size_t len, struct ml_sched_call *ret,
                         struct berr **err);
void ml_sched_call_done(struct ml_sched_call *c);
/* A call around payload_json (an object, or NULL for {}); framework_id may be NULL. */
char *ml_sched_call_encode(enum ml_sched_call_type t, const char *framework_id,
                           const char *payload_json);

/* An event on a framework's stream: {"type": "OFFERS", "offers": {...}}. */
struct ml_sched_event {
    enum ml_sched_event_type type;
    yajl_val payload; /* object under the type's name, or NULL */
    yajl_val root;    /* owned */
};
int ml_sched_event_decode(const char *body, size_t len, struct ml_sched_event *ret,
                          struct berr **err);
void ml_sched_event_done(struct ml_sched_event *e);
char *ml_sched_event_encode(enum ml_sched_event_type t, const char *payload_json);

/* One offer: some of one agent's free resources, allocated to one framework in one role.
 * ports: the agent's free port ranges ("[31000-31999]"), or NULL when the offer has none. */
/* An agent attribute ([attributes] in agent.conf, e.g. rack = r1): sent with SUBSCRIBE,
 * carried by every offer of the agent (issue #16, constraints). */
struct ml_attr {
    char *name;  /* 1-63 of [A-Za-z0-9_.-] */
    char *value; /* 0-255 printable characters */
};
#define ML_MAX_ATTRS 64
#define ML_ATTR_NAME_MAX 63
#define ML_ATTR_VALUE_MAX 255
/* attrs.c: the rules above (values: printable ASCII, 0x20-0x7e). */
bool ml_attr_name_valid(const char *s);
bool ml_attr_value_valid(const char *s);
/* An "attributes" object ({"rack": "r1", ...}; NULL or absent: none) into a new array, in
 * the object's order: 0 with *ret (NULL when none) and *ret_n, or -EINVAL with err naming the
 * bad name or value, a duplicate name or more than ML_MAX_ATTRS. */
int ml_attrs_decode(yajl_val obj, struct ml_attr **ret, size_t *ret_n, struct berr **err);
/* Emit the object {"name": "value", ...} (no key before it). */
void ml_attrs_gen(yajl_gen g, const struct ml_attr *a, size_t n);
struct ml_attr *ml_attrs_dup(const struct ml_attr *a, size_t n); /* NULL when n is 0 */
bool ml_attrs_equal(const struct ml_attr *a, size_t na, const struct ml_attr *b, size_t nb);
void ml_attrs_free(struct ml_attr *a, size_t n); /* NULL is fine */
/* An agent's address (its [agent] address, issue #17): an IPv4 or IPv6 address, as
 * inet_pton reads it (at most ML_ADDRESS_MAX characters). */
#define ML_ADDRESS_MAX 45
bool ml_address_valid(const char *s);

struct ml_offer {
    char id[ML_OFFER_ID_LEN + 1];
    char agent_id[65];
    char *hostname;
    char *role;
    uint64_t cpus_millis, mem_bytes;
    uint64_t reserved_cpus_millis, reserved_mem_bytes; /* the part from role's reservation */
    char *ports;
    struct ml_attr *attrs; /* the agent's attributes, n_attrs of them (encoded as
                            * "attributes": {"name": "value", ...}) */
    size_t n_attrs;
    char *address; /* the IP address to reach the agent's ports on ("address"; NULL: none) */
};
void ml_offer_gen(yajl_gen g, const struct ml_offer *o);
/* 0 or -EINVAL with err; free with ml_offer_done. */
int ml_offer_decode(yajl_val v, struct ml_offer *ret, struct berr **err);
void ml_offer_done(struct ml_offer *o);

/* Port ranges "[A-B,C-D,...]" (the agent's [resources] ports, an offer's): how many ports
 * they hold, and whether port p is among them. A malformed text holds none. */
uint64_t ml_ports_count(const char *ranges);
bool ml_ports_contain(const char *ranges, unsigned p);

/* The index of s in names[0..n) (NULL entries skipped), or -EINVAL: the name tables of the
 * link's and the scheduler API's message types, states and reasons (codec.c). */
int ml_name_index(const char *const *names, int n, const char *s);

/* ---- a string-keyed hash table (table.c) ------------------------------------------------ */

struct ml_entry;
struct ml_table {
    struct ml_entry **buckets;
    size_t nbuckets, count;
};
/* key is borrowed: it must live as long as the entry (usually a field of value). */
void ml_table_put(struct ml_table *t, const char *key, void *value);
void *ml_table_get(const struct ml_table *t, const char *key);
void *ml_table_del(struct ml_table *t, const char *key); /* the value, or NULL */
void ml_table_free(struct ml_table *t);                  /* entries only, not the values */
