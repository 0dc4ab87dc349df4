/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/codec.c - the JSON shapes of the agent link (docs/protocol.md): names of call,
 * event and state types, ids and uuids, the envelope {"type": T, <t>: {...}} of calls and
 * events, and the status update. Decoding checks everything a peer could get wrong and
 * says what in err; json.c holds the helpers, recordio.c the framing. */
#include <ctype.h>
#include <string.h>

#include "masterlink/masterlink.h"

static const char *const call_names[_ML_CALL_MAX] = {
        [ML_CALL_SUBSCRIBE] = "SUBSCRIBE",
        [ML_CALL_HEARTBEAT] = "HEARTBEAT",
        [ML_CALL_UPDATE] = "UPDATE",
        [ML_CALL_AUTHENTICATE] = "AUTHENTICATE",
};
static const char *const event_names[_ML_EVENT_MAX] = {
        [ML_EVENT_SUBSCRIBED] = "SUBSCRIBED",
        [ML_EVENT_LAUNCH] = "LAUNCH",
        [ML_EVENT_KILL] = "KILL",
        [ML_EVENT_ACKNOWLEDGE] = "ACKNOWLEDGE",
        [ML_EVENT_PING] = "PING",
        [ML_EVENT_CHALLENGE] = "CHALLENGE",
};
static const char *const state_names[_ML_STATE_MAX] = {
        [ML_STAGING] = "STAGING",   [ML_STARTING] = "STARTING", [ML_RUNNING] = "RUNNING",
        [ML_FINISHED] = "FINISHED", [ML_FAILED] = "FAILED",     [ML_KILLED] = "KILLED",
        [ML_LOST] = "LOST",
};

static const char *const reason_names[_ML_REASON_MAX] = {
        [ML_REASON_NONE] = NULL,
        [ML_REASON_EXITED] = "EXITED",
        [ML_REASON_SIGNALED] = "SIGNALED",
        [ML_REASON_MEMORY_LIMIT] = "MEMORY_LIMIT",
        [ML_REASON_LAUNCH_FAILED] = "LAUNCH_FAILED",
        [ML_REASON_KILLED_BY_REQUEST] = "KILLED_BY_REQUEST",
        [ML_REASON_AGENT_RESTARTED_LOST] = "AGENT_RESTARTED_LOST",
        [ML_REASON_INSUFFICIENT_RESOURCES] = "INSUFFICIENT_RESOURCES",
        [ML_REASON_POLICY_DENIED] = "POLICY_DENIED",
        [ML_REASON_UNKNOWN_TO_AGENT] = "UNKNOWN_TO_AGENT",
        [ML_REASON_AGENT_UNREACHABLE] = "AGENT_UNREACHABLE",
        [ML_REASON_RECONCILED_LOST] = "RECONCILED_LOST",
        [ML_REASON_AGENT_REMOVED] = "AGENT_REMOVED",
        [ML_REASON_UNKNOWN_TASK] = "UNKNOWN_TASK",
        [ML_REASON_PORTS_LIMITATION] = "PORTS_LIMITATION",
        [ML_REASON_HEALTH_CHECK_FAILED] = "HEALTH_CHECK_FAILED",
};

int ml_name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (names[i] && streq(names[i], s))
            return i;
    return -EINVAL;
}

const char *ml_call_name(enum ml_call_type t)
{
    return t >= 0 && t < _ML_CALL_MAX ? call_names[t] : "INVALID";
}

enum ml_call_type ml_call_from_name(const char *s)
{
    return (enum ml_call_type) ml_name_index(call_names, _ML_CALL_MAX, s);
}

const char *ml_event_name(enum ml_event_type t)
{
    return t >= 0 && t < _ML_EVENT_MAX ? event_names[t] : "INVALID";
}

enum ml_event_type ml_event_from_name(const char *s)
{
    return (enum ml_event_type) ml_name_index(event_names, _ML_EVENT_MAX, s);
}

const char *ml_state_name(enum ml_state s)
{
    return s >= 0 && s < _ML_STATE_MAX ? state_names[s] : "INVALID";
}

enum ml_state ml_state_from_name(const char *s)
{
    return (enum ml_state) ml_name_index(state_names, _ML_STATE_MAX, s);
}

const char *ml_reason_name(enum ml_reason r)
{
    return r >= 0 && r < _ML_REASON_MAX ? reason_names[r] : NULL;
}

enum ml_reason ml_reason_from_name(const char *s)
{
    return s ? (enum ml_reason) ml_name_index(reason_names, _ML_REASON_MAX, s) : ML_REASON_NONE;
}

bool ml_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

int ml_uuid_new(char buf[37])
{
    char hex[33];
    int r = random_hex(hex, 32);
    if (r < 0)
        return r;
    hex[12] = '4';                         /* version 4 */
    hex[16] = "89ab"[(hex[16] - '0') & 3]; /* variant 10xx */
    snprintf(buf, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return 0;
}

bool ml_uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
            return false;
    }
    return true;
}

/* "UPDATE" -> "update" */
static void lower(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (char) tolower((unsigned char) s[i]);
    buf[i] = 0;
}

static char *envelope(const char *type, const char *id_key, const char *id,
                      const char *payload_json)
{
    char key[32];
    lower(type, key, sizeof(key));
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "type", type);
    if (id_key)
        json_kv_str(g, id_key, id);
    json_kv_raw(g, key, payload_json && payload_json[0] ? payload_json : "{}");
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

char *ml_call_encode(enum ml_call_type t, const char *agent_id, const char *payload_json)
{
    return envelope(ml_call_name(t), "agent_id", agent_id, payload_json);
}

char *ml_event_encode(enum ml_event_type t, const char *payload_json)
{
    return envelope(ml_event_name(t), NULL, NULL, payload_json);
}

int ml_call_decode(const char *body, size_t len, struct ml_call *ret, struct berr **err)
{
    yajl_val root = json_parse(body, len, err);
    if (!root)
        return -EINVAL;
    const char *type = json_get_str(root, "type");
    const char *id = json_get_str(root, "agent_id");
    int r;
    if (!YAJL_IS_OBJECT(root)) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "a call must be a JSON object");
    } else if (!type) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "the call has no \"type\"");
    } else if (ml_call_from_name(type) < 0) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                      "unknown call type '%.64s' (SUBSCRIBE, HEARTBEAT or UPDATE)", type);
    } else if (!ml_id_valid(id)) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                      "\"agent_id\" must be 1-64 characters of [A-Za-z0-9_-]");
    } else {
        char key[32];
        lower(type, key, sizeof(key));
        yajl_val p = json_get(root, key);
        if (p && !YAJL_IS_OBJECT(p)) {
            r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "\"%s\" must be an object", key);
        } else {
            *ret = (struct ml_call){
                    .type = ml_call_from_name(type), .agent_id = id, .payload = p, .root = root};
            return 0;
        }
    }
    yajl_tree_free(root);
    return r;
}

void ml_call_done(struct ml_call *c)
{
    yajl_tree_free(c->root);
    *c = (struct ml_call){0};
}

int ml_event_decode(const char *body, size_t len, struct ml_event *ret, struct berr **err)
{
    yajl_val root = json_parse(body, len, err);
    if (!root)
        return -EINVAL;
    const char *type = json_get_str(root, "type");
    enum ml_event_type t = ml_event_from_name(type);
    if (t < 0) {
        berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown event type '%.64s'",
                  type ? type : "(none)");
        yajl_tree_free(root);
        return -EINVAL;
    }
    char key[32];
    lower(type, key, sizeof(key));
    yajl_val p = json_get(root, key);
    *ret = (struct ml_event){.type = t, .payload = p && YAJL_IS_OBJECT(p) ? p : NULL, .root = root};
    return 0;
}

void ml_event_done(struct ml_event *e)
{
    yajl_tree_free(e->root);
    *e = (struct ml_event){0};
}

void ml_status_gen(yajl_gen g, const struct ml_status *s)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "task_id", s->task_id);
    json_kv_str(g, "uuid", s->uuid);
    json_kv_str(g, "container_id", s->container_id[0] ? s->container_id : NULL);
    json_kv_str(g, "state", ml_state_name(s->state));
    json_kv_str(g, "reason", s->reason[0] ? s->reason : NULL);
    json_kv_str(g, "message", s->message);
    if (s->has_exit_code)
        json_kv_i64(g, "exit_code", s->exit_code);
    else
        json_kv_null(g, "exit_code");
    if (s->signal)
        json_kv_i64(g, "signal", s->signal);
    else
        json_kv_null(g, "signal");
    json_kv_double(g, "timestamp", s->timestamp);
    if (s->healthy != ML_HEALTH_UNKNOWN)
        ml_health_gen(g, "healthy", s->healthy);
    yajl_gen_map_close(g);
}

char *ml_status_encode(const struct ml_status *s)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    ml_status_gen(g, s);
    return json_gen_take(g);
}

int ml_status_decode(yajl_val v, struct ml_status *ret, struct berr **err)
{
    struct ml_status s = {0};
    const char *task = json_get_str(v, "task_id"), *uuid = json_get_str(v, "uuid");
    const char *state = json_get_str(v, "state"), *reason = json_get_str(v, "reason");
    const char *ctr = json_get_str(v, "container_id"), *msg = json_get_str(v, "message");
    if (!v || !YAJL_IS_OBJECT(v))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "the status must be an object");
    if (!ml_id_valid(task))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "status: bad \"task_id\"");
    if (!ml_uuid_valid(uuid))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "status: bad \"uuid\" (want 8-4-4-4-12 hex)");
    if (ml_state_from_name(state) < 0)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "status: bad \"state\" '%.32s'",
                         state ? state : "(none)");
    if (ctr && ctr[0] && !ml_id_valid(ctr))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "status: bad \"container_id\"");
    if (reason && strlen(reason) >= sizeof(s.reason))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "status: \"reason\" too long");
    snprintf(s.task_id, sizeof(s.task_id), "%s", task);
    snprintf(s.uuid, sizeof(s.uuid), "%s", uuid);
    snprintf(s.container_id, sizeof(s.container_id), "%s", ctr ? ctr : "");
    snprintf(s.reason, sizeof(s.reason), "%s", reason ? reason : "");
    s.state = ml_state_from_name(state);
    s.has_exit_code = json_get_i64(v, "exit_code", &s.exit_code);
    (void) json_get_i64(v, "signal", &s.signal);
    (void) json_get_double(v, "timestamp", &s.timestamp);
    s.message = msg ? xstrndup(msg, 4096) : NULL;
    s.healthy = ml_health_get(v, "healthy");
    *ret = s;
    return 0;
}

void ml_status_done(struct ml_status *s)
{
    free(s->message);
    s->message = NULL;
}
