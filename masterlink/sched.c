/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/sched.c - the JSON shapes of the scheduler API (docs/protocol.md, "The
 * scheduler API"): names of its calls and events, their envelopes {"type": T, <t>: {...}}
 * (calls carry "framework_id"), the offer object, and port ranges as offers carry them.
 * berth-master (master/sched.c) and the scheduler library (sched/) both use it; codec.c
 * holds the agent link's shapes, recordio.c the framing both APIs share. */
#include <ctype.h>
#include <string.h>

#include "masterlink/masterlink.h"

static const char *const call_names[_ML_SCHED_CALL_MAX] = {
        [ML_SCHED_SUBSCRIBE] = "SUBSCRIBE",     [ML_SCHED_ACCEPT] = "ACCEPT",
        [ML_SCHED_DECLINE] = "DECLINE",         [ML_SCHED_REVIVE] = "REVIVE",
        [ML_SCHED_SUPPRESS] = "SUPPRESS",       [ML_SCHED_KILL] = "KILL",
        [ML_SCHED_ACKNOWLEDGE] = "ACKNOWLEDGE", [ML_SCHED_RECONCILE] = "RECONCILE",
        [ML_SCHED_TEARDOWN] = "TEARDOWN",
};
static const char *const event_names[_ML_SCHED_EVENT_MAX] = {
        [ML_SCHED_SUBSCRIBED] = "SUBSCRIBED", [ML_SCHED_OFFERS] = "OFFERS",
        [ML_SCHED_RESCIND] = "RESCIND",       [ML_SCHED_UPDATE] = "UPDATE",
        [ML_SCHED_HEARTBEAT] = "HEARTBEAT",   [ML_SCHED_ERROR] = "ERROR",
};

const char *ml_sched_call_name(enum ml_sched_call_type t)
{
    return t >= 0 && t < _ML_SCHED_CALL_MAX ? call_names[t] : "INVALID";
}

enum ml_sched_call_type ml_sched_call_from_name(const char *s)
{
    return (enum ml_sched_call_type) ml_name_index(call_names, _ML_SCHED_CALL_MAX, s);
}

const char *ml_sched_event_name(enum ml_sched_event_type t)
{
    return t >= 0 && t < _ML_SCHED_EVENT_MAX ? event_names[t] : "INVALID";
}

enum ml_sched_event_type ml_sched_event_from_name(const char *s)
{
    return (enum ml_sched_event_type) ml_name_index(event_names, _ML_SCHED_EVENT_MAX, s);
}

/* "ACCEPT" -> "accept": the key of a message's payload */
static void lower(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (char) tolower((unsigned char) s[i]);
    buf[i] = 0;
}

static char *envelope(const char *type, const char *framework_id, const char *payload_json)
{
    char key[32];
    lower(type, key, sizeof(key));
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "type", type);
    if (framework_id)
        json_kv_str(g, "framework_id", framework_id);
    json_kv_raw(g, key, payload_json && payload_json[0] ? payload_json : "{}");
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

char *ml_sched_call_encode(enum ml_sched_call_type t, const char *framework_id,
                           const char *payload_json)
{
    return envelope(ml_sched_call_name(t), framework_id, payload_json);
}

char *ml_sched_event_encode(enum ml_sched_event_type t, const char *payload_json)
{
    return envelope(ml_sched_event_name(t), NULL, payload_json);
}

int ml_sched_call_decode(const char *body, size_t len, struct ml_sched_call *ret, struct berr **err)
{
    yajl_val root = json_parse(body, len, err);
    if (!root)
        return -EINVAL;
    const char *type = json_get_str(root, "type");
    yajl_val fid = json_get(root, "framework_id");
    int r;
    if (!YAJL_IS_OBJECT(root)) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "a call must be a JSON object");
    } else if (!type) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "the call has no \"type\"");
    } else if (ml_sched_call_from_name(type) < 0) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                      "unknown call type '%.64s' (SUBSCRIBE, ACCEPT, DECLINE, REVIVE, SUPPRESS, "
                      "KILL, ACKNOWLEDGE, RECONCILE or TEARDOWN)",
                      type);
    } else if (fid && !YAJL_IS_NULL(fid) && !ml_id_valid(json_get_str(root, "framework_id"))) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                      "\"framework_id\" must be 1-64 characters of [A-Za-z0-9_-]");
    } else if (!json_get_str(root, "framework_id") &&
               ml_sched_call_from_name(type) != ML_SCHED_SUBSCRIBE) {
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                      "%s needs \"framework_id\" (SUBSCRIBED tells it)", type);
    } else {
        char key[32];
        lower(type, key, sizeof(key));
        yajl_val p = json_get(root, key);
        if (p && !YAJL_IS_OBJECT(p)) {
            r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "\"%s\" must be an object", key);
        } else {
            *ret = (struct ml_sched_call){.type = ml_sched_call_from_name(type),
                                          .framework_id = json_get_str(root, "framework_id"),
                                          .payload = p,
                                          .root = root};
            return 0;
        }
    }
    yajl_tree_free(root);
    return r;
}

void ml_sched_call_done(struct ml_sched_call *c)
{
    yajl_tree_free(c->root);
    *c = (struct ml_sched_call){0};
}

int ml_sched_event_decode(const char *body, size_t len, struct ml_sched_event *ret,
                          struct berr **err)
{
    yajl_val root = json_parse(body, len, err);
    if (!root)
        return -EINVAL;
    const char *type = json_get_str(root, "type");
    enum ml_sched_event_type t = ml_sched_event_from_name(type);
    if (t < 0) {
        berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown event type '%.64s'",
                  type ? type : "(none)");
        yajl_tree_free(root);
        return -EINVAL;
    }
    char key[32];
    lower(type, key, sizeof(key));
    yajl_val p = json_get(root, key);
    *ret = (struct ml_sched_event){
            .type = t, .payload = p && YAJL_IS_OBJECT(p) ? p : NULL, .root = root};
    return 0;
}

void ml_sched_event_done(struct ml_sched_event *e)
{
    yajl_tree_free(e->root);
    *e = (struct ml_sched_event){0};
}

void ml_offer_gen(yajl_gen g, const struct ml_offer *o)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", o->id);
    json_kv_str(g, "agent_id", o->agent_id);
    json_kv_str(g, "hostname", o->hostname);
    json_kv_str(g, "role", o->role);
    json_str(g, "resources");
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", o->cpus_millis);
    json_kv_u64(g, "mem", o->mem_bytes);
    json_kv_str(g, "ports", o->ports);
    yajl_gen_map_close(g);
    json_str(g, "reserved");
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", o->reserved_cpus_millis);
    json_kv_u64(g, "mem", o->reserved_mem_bytes);
    yajl_gen_map_close(g);
    json_str(g, "attributes");
    ml_attrs_gen(g, o->attrs, o->n_attrs);
    if (o->address && o->address[0])
        json_kv_str(g, "address", o->address);
    yajl_gen_map_close(g);
}

int ml_offer_decode(yajl_val v, struct ml_offer *ret, struct berr **err)
{
    struct ml_offer o = {0};
    const char *id = json_get_str(v, "id"), *agent = json_get_str(v, "agent_id");
    const char *role = json_get_str(v, "role"), *host = json_get_str(v, "hostname");
    yajl_val res = json_get(v, "resources"), rsv = json_get(v, "reserved");
    if (!ml_id_valid(id) || strlen(id) > ML_OFFER_ID_LEN)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "offer: bad \"id\"");
    if (!ml_id_valid(agent))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "offer: bad \"agent_id\"");
    if (!ml_role_valid(role))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "offer: bad \"role\"");
    if (!json_get_cpus(res, "cpus", &o.cpus_millis) || !json_get_u64(res, "mem", &o.mem_bytes))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "offer: \"resources\" needs \"cpus\" and \"mem\"");
    (void) json_get_cpus(rsv, "cpus", &o.reserved_cpus_millis);
    (void) json_get_u64(rsv, "mem", &o.reserved_mem_bytes);
    /* an older master sends none: an offer without attributes */
    if (ml_attrs_decode(json_get(v, "attributes"), &o.attrs, &o.n_attrs, err) < 0)
        return berr_wrap(err, "offer");
    /* an older master sends no "address"; a bad one counts as none */
    const char *address = json_get_str(v, "address");
    o.address = address && ml_address_valid(address) ? xstrdup(address) : NULL;
    snprintf(o.id, sizeof(o.id), "%s", id);
    snprintf(o.agent_id, sizeof(o.agent_id), "%s", agent);
    o.hostname = xstrdup(host ? host : "");
    o.role = xstrdup(role);
    const char *ports = json_get_str(res, "ports");
    o.ports = ports ? xstrndup(ports, 4096) : NULL;
    *ret = o;
    return 0;
}

void ml_offer_done(struct ml_offer *o)
{
    free(o->hostname);
    free(o->role);
    free(o->ports);
    free(o->address);
    o->hostname = o->role = o->ports = o->address = NULL;
    ml_attrs_free(o->attrs, o->n_attrs);
    o->attrs = NULL;
    o->n_attrs = 0;
}

/* Walk "[A-B,C,...]": fn(a, b, arg) per range; false when the text is malformed. */
static bool ranges_walk(const char *s, bool (*fn)(unsigned a, unsigned b, void *arg), void *arg)
{
    if (!s || s[0] != '[')
        return false;
    const char *p = s + 1;
    if (*p == ']')
        return p[1] == 0;
    for (;;) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (end == p || a < 1 || a > 65535)
            return false;
        p = end;
        if (*p == '-') {
            b = strtoul(++p, &end, 10);
            if (end == p || b < a || b > 65535)
                return false;
            p = end;
        }
        if (fn((unsigned) a, (unsigned) b, arg))
            return true;
        if (*p == ']')
            return p[1] == 0;
        if (*p++ != ',')
            return false;
        while (*p == ' ')
            p++;
    }
}

static bool count_range(unsigned a, unsigned b, void *arg)
{
    *(uint64_t *) arg += b - a + 1;
    return false;
}

uint64_t ml_ports_count(const char *ranges)
{
    uint64_t n = 0;
    return ranges_walk(ranges, count_range, &n) ? n : 0;
}

static bool has_port(unsigned a, unsigned b, void *arg)
{
    unsigned *p = arg;
    if (*p >= a && *p <= b) {
        *p = 0; /* found */
        return true;
    }
    return false;
}

bool ml_ports_contain(const char *ranges, unsigned p)
{
    unsigned want = p;
    /* the whole text must be well-formed, not just up to the range that holds p */
    return p > 0 && ml_ports_count(ranges) > 0 && ranges_walk(ranges, has_port, &want) && want == 0;
}
