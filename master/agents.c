/* SPDX-License-Identifier: Apache-2.0 */
/* master/agents.c - the master's registry of agents: the records (found by id, made at
 * the first proven SUBSCRIBE, saved to and loaded from master.db, removed by an admin), their
 * resources (allocatable, role reservations, port ranges) and the allocator's view of them
 * (active while reachable with a stream), what the master has placed on each, their API view,
 * and each agent's event stream (a chunked reply of RecordIO records that stays open; link.c
 * and handshake.c open it, tasks.c and link.c send on it). An agent is freed while the loop
 * runs only by master_agent_remove, and only when it has no stream: the one callback that
 * carries its pointer is its stream's close callback. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "master/master.h"

void master_stream_send(struct evhttp_request *req, enum ml_event_type t, const char *payload)
{
    _cleanup_free_ char *ev = ml_event_encode(t, payload);
    size_t len;
    _cleanup_free_ char *frame = ml_frame(ev, strlen(ev), &len);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, frame, len);
    evhttp_send_reply_chunk(req, buf);
    evbuffer_free(buf);
}

bool master_agent_send(struct m_agent *ag, enum ml_event_type t, const char *payload)
{
    if (!ag->stream)
        return false;
    master_stream_send(ag->stream, t, payload);
    return true;
}

static void stream_closed(struct evhttp_connection *conn, void *arg)
{
    struct m_agent *ag = arg;
    if (ag->stream_conn != conn)
        return; /* an older stream of an agent that has subscribed again */
    log_info("agent '%s' (%s): event stream closed", ag->id, ag->hostname);
    /* libevent detaches a request whose reply we had not finished when the peer goes
     * (EOF, timeout) and leaves it to us: ending it frees it. One still attached is freed
     * with the connection. */
    if (!evhttp_request_get_connection(ag->stream))
        evhttp_send_reply_end(ag->stream);
    ag->stream = NULL;
    ag->stream_conn = NULL;
    master_agent_activity(ag);
    master_events_agent(ag->m, ag, "agent_changed"); /* not connected */
}

void master_agent_activity(struct m_agent *ag)
{
    bool on = ag->state == M_AGENT_REACHABLE && ag->stream != NULL;
    if (ag->drf->active == on)
        return;
    drf_agent_activate(&ag->m->drf, ag->drf, on);
    /* an agent that came: offer it; one that went: its offers are rescinded by the pass */
    master_alloc_soon(ag->m);
}

void master_agent_stream_end(struct m_agent *ag)
{
    if (!ag->stream)
        return;
    evhttp_connection_set_closecb(ag->stream_conn, NULL, NULL);
    evhttp_send_reply_end(ag->stream);
    ag->stream = NULL;
    ag->stream_conn = NULL;
    master_agent_activity(ag);
}

void master_agents_streams_free(struct master *m)
{
    /* at shutdown the loop no longer runs to flush a reply's end: free the connections
     * (and their pending stream requests) outright; the agents see the streams drop */
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        if (!ag->stream)
            continue;
        evhttp_connection_set_closecb(ag->stream_conn, NULL, NULL);
        evhttp_connection_free(ag->stream_conn);
        ag->stream = NULL;
        ag->stream_conn = NULL;
    }
}

void master_agent_stream_set(struct m_agent *ag, struct evhttp_request *req,
                             struct evhttp_connection *conn)
{
    master_agent_stream_end(ag);
    ag->stream = req;
    ag->stream_conn = conn;
    evhttp_connection_set_closecb(conn, stream_closed, ag);
    master_agent_activity(ag);
}

static void resv_free(struct m_agent *ag)
{
    for (size_t i = 0; i < ag->n_resv; i++)
        free(ag->resv[i].role);
    free(ag->resv);
    ag->resv = NULL;
    ag->n_resv = 0;
}

static void agent_free(struct master *m, struct m_agent *ag)
{
    drf_agent_remove(&m->drf, ag->drf);
    resv_free(ag);
    free(ag->ports);
    free(ag->ports_used);
    free(ag->hostname);
    free(ag->address);
    ml_attrs_free(ag->attrs, ag->n_attrs);
    free(ag);
}

void master_agents_free(struct master *m)
{
    while (m->agents) {
        struct m_agent *ag = m->agents;
        m->agents = ag->next;
        agent_free(m, ag);
    }
    ml_table_free(&m->agents_by_id);
}

void master_agent_drf_reset(struct master *m, struct m_agent *ag)
{
    const char *roles[ag->n_resv + 1];
    struct drf_res res[ag->n_resv + 1];
    for (size_t i = 0; ag->resv && i < ag->n_resv; i++) {
        roles[i] = ag->resv[i].role;
        res[i] = (struct drf_res){ag->resv[i].cpus, ag->resv[i].mem};
    }
    drf_agent_set(&m->drf, ag->drf, (struct drf_res){ag->alloc_cpus, ag->alloc_mem}, roles, res,
                  ag->n_resv);
}

bool master_agent_resources_set(struct master *m, struct m_agent *ag, uint64_t cpus, uint64_t mem,
                                struct m_resv *resv_take, size_t n_resv, const char *ports)
{
    (void) m;
    bool changed = cpus != ag->alloc_cpus || mem != ag->alloc_mem || n_resv != ag->n_resv ||
                   !streq(ports ? ports : "", ag->ports ? ag->ports : "");
    for (size_t i = 0; !changed && i < n_resv; i++)
        changed = !streq(resv_take[i].role, ag->resv[i].role) ||
                  resv_take[i].cpus != ag->resv[i].cpus || resv_take[i].mem != ag->resv[i].mem;
    ag->alloc_cpus = cpus;
    ag->alloc_mem = mem;
    resv_free(ag);
    ag->resv = resv_take;
    ag->n_resv = n_resv;
    free(ag->ports);
    ag->ports = xstrdup(ports ? ports : "");
    return changed;
}

/* The ranges of text "[a-b,c,...]" in order, into out (at most max); how many. */
static size_t ranges_parse(const char *text, unsigned (*out)[2], size_t max)
{
    size_t n = 0;
    const char *p = text && text[0] == '[' ? text + 1 : "";
    while (*p && *p != ']' && n < max) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (end == p)
            break;
        p = end;
        if (*p == '-')
            b = strtoul(p + 1, (char **) &p, 10);
        if (a >= 1 && b >= a && b <= 65535) {
            out[n][0] = (unsigned) a;
            out[n++][1] = (unsigned) b;
        }
        while (*p == ',' || *p == ' ')
            p++;
    }
    return n;
}

static int cmp_u16(const void *a, const void *b)
{
    return (int) *(const uint16_t *) a - (int) *(const uint16_t *) b;
}

/* Append the range [a, b] to the text being built in *out. */
static void range_append(char **out, unsigned a, unsigned b)
{
    char *next = a == b ? xasprintf("%s%s%u", *out, (*out)[1] ? "," : "", a)
                        : xasprintf("%s%s%u-%u", *out, (*out)[1] ? "," : "", a, b);
    free(*out);
    *out = next;
}

char *master_agent_free_ports(const struct m_agent *ag)
{
    unsigned ranges[64][2];
    size_t n = ranges_parse(ag->ports, ranges, ARRAY_SIZE(ranges));
    if (!n)
        return NULL;
    uint16_t used[ag->n_ports_used + 1];
    if (ag->n_ports_used) { /* ports_used may be NULL then: memcpy(NULL) is undefined */
        memcpy(used, ag->ports_used, ag->n_ports_used * sizeof(uint16_t));
        qsort(used, ag->n_ports_used, sizeof(uint16_t), cmp_u16);
    }
    char *out = xstrdup("[");
    for (size_t i = 0; i < n; i++) {
        unsigned a = ranges[i][0], b = ranges[i][1];
        /* the runs between the used ports inside [a, b] */
        for (size_t k = 0; k < ag->n_ports_used && a <= b; k++) {
            unsigned p = used[k];
            if (p < a || p > b)
                continue;
            if (p > a)
                range_append(&out, a, p - 1);
            a = p + 1;
        }
        if (a <= b)
            range_append(&out, a, b);
    }
    if (!out[1]) {
        free(out);
        return NULL;
    }
    char *r = xasprintf("%s]", out);
    free(out);
    return r;
}

/* An agent's row: what a restarted master needs before the agent subscribes again. */
static char *agent_row_json(const struct m_agent *ag)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_u64(g, "total_cpus", ag->total_cpus);
    json_kv_u64(g, "total_mem", ag->total_mem);
    json_kv_u64(g, "reserved_cpus", ag->reserved_cpus);
    json_kv_u64(g, "reserved_mem", ag->reserved_mem);
    json_kv_u64(g, "alloc_cpus", ag->alloc_cpus);
    json_kv_u64(g, "alloc_mem", ag->alloc_mem);
    json_kv_str(g, "state", ag->state == M_AGENT_REACHABLE ? "REACHABLE" : "UNREACHABLE");
    json_kv_bool(g, "lost_done", ag->lost_done);
    json_kv_double(g, "last_seen_at", ag->last_seen_at);
    json_kv_str(g, "ports", ag->ports ? ag->ports : "");
    json_str(g, "attributes");
    ml_attrs_gen(g, ag->attrs, ag->n_attrs);
    json_kv_str(g, "address", ag->address ? ag->address : "");
    json_str(g, "reservations");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < ag->n_resv; i++) {
        json_str(g, ag->resv[i].role);
        yajl_gen_map_open(g);
        json_kv_u64(g, "cpus", ag->resv[i].cpus);
        json_kv_u64(g, "mem", ag->resv[i].mem);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    if (ag->has_key) {
        char hex[ML_HEX_LEN + 1];
        ml_hex(ag->key, ML_KEY_LEN, hex);
        json_kv_str(g, "key", hex);
    }
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

int master_agent_save(struct master *m, const struct m_agent *ag)
{
    _cleanup_free_ char *json = agent_row_json(ag);
    return master_store_agent_put(m, ag->id, ag->hostname, json, ag->registered_at);
}

/* master_store_agents_load's callback: one row back into the registry (a bad row is
 * skipped). */
static int load_row(struct master *m, const char *id, const char *host, const char *json,
                    double registered_at)
{
    if (!ml_id_valid(id) || master_agent_find(m, id))
        return 0;
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    bool is_new;
    struct m_agent *ag = master_agent_get(m, id, &is_new);
    ag->hostname = xstrdup(host ? host : "");
    (void) json_get_u64(v, "total_cpus", &ag->total_cpus);
    (void) json_get_u64(v, "total_mem", &ag->total_mem);
    (void) json_get_u64(v, "reserved_cpus", &ag->reserved_cpus);
    (void) json_get_u64(v, "reserved_mem", &ag->reserved_mem);
    (void) json_get_u64(v, "alloc_cpus", &ag->alloc_cpus);
    (void) json_get_u64(v, "alloc_mem", &ag->alloc_mem);
    (void) json_get_double(v, "last_seen_at", &ag->last_seen_at);
    const char *state = json_get_str(v, "state");
    ag->state = state && streq(state, "UNREACHABLE") ? M_AGENT_UNREACHABLE : M_AGENT_REACHABLE;
    yajl_val ld = json_get(v, "lost_done");
    ag->lost_done = ld && YAJL_IS_TRUE(ld);
    ag->has_key = ml_unhex(json_get_str(v, "key"), ag->key, ML_KEY_LEN) == 0;
    ag->registered_at = registered_at;
    const char *ports = json_get_str(v, "ports");
    ag->ports = xstrdup(ports ? ports : "");
    /* rows of a master before attributes (issue #16) have none: the agent's next SUBSCRIBE
     * brings them; a bad object (never written) counts as none */
    _cleanup_berr_ struct berr *aerr = NULL;
    if (ml_attrs_decode(json_get(v, "attributes"), &ag->attrs, &ag->n_attrs, &aerr) < 0)
        log_warning("agent '%s': stored attributes ignored: %s", id, berr_msg(aerr));
    /* rows before issue #17 have no address: the next SUBSCRIBE brings it */
    const char *address = json_get_str(v, "address");
    ag->address = xstrdup(address && ml_address_valid(address) ? address : "");
    yajl_val rs = json_get(v, "reservations");
    size_t n = rs && YAJL_IS_OBJECT(rs) ? rs->u.object.len : 0;
    ag->resv = n ? xcalloc(n, sizeof(*ag->resv)) : NULL;
    for (size_t i = 0; i < n; i++) {
        struct m_resv *x = &ag->resv[ag->n_resv];
        if (!ml_role_valid(rs->u.object.keys[i]))
            continue;
        x->role = xstrdup(rs->u.object.keys[i]);
        (void) json_get_u64(rs->u.object.values[i], "cpus", &x->cpus);
        (void) json_get_u64(rs->u.object.values[i], "mem", &x->mem);
        ag->n_resv++;
    }
    master_agent_drf_reset(m, ag);
    /* the timers count from the master's start: agents get agent_timeout to come back */
    ag->last_seen_ns = now_monotonic_ns();
    ag->unreachable_ns = ag->last_seen_ns;
    yajl_tree_free(v);
    return 0;
}

int master_agents_load(struct master *m, struct berr **err)
{
    return master_store_agents_load(m, load_row, err);
}

struct m_agent *master_agent_find(struct master *m, const char *id)
{
    return id ? ml_table_get(&m->agents_by_id, id) : NULL;
}

struct m_agent *master_agent_get(struct master *m, const char *id, bool *ret_new)
{
    struct m_agent *ag = master_agent_find(m, id);
    *ret_new = !ag;
    if (ag)
        return ag;
    ag = xzalloc(sizeof(*ag));
    snprintf(ag->id, sizeof(ag->id), "%s", id);
    ag->m = m;
    ag->drf = drf_agent_add(&m->drf, ag->id, ag);
    ag->registered_at = now_realtime();
    ag->next = m->agents;
    m->agents = ag;
    m->n_agents++;
    ml_table_put(&m->agents_by_id, ag->id, ag);
    return ag;
}

void master_agent_account(struct m_agent *ag, uint64_t cpus, uint64_t mem, const uint16_t *ports,
                          size_t n_ports, int sign)
{
    if (sign > 0) {
        ag->placed_cpus += cpus;
        ag->placed_mem += mem;
        ag->placed_tasks++;
    } else {
        ag->placed_cpus -= cpus <= ag->placed_cpus ? cpus : ag->placed_cpus;
        ag->placed_mem -= mem <= ag->placed_mem ? mem : ag->placed_mem;
        ag->placed_tasks -= ag->placed_tasks > 0;
    }
    for (size_t i = 0; i < n_ports; i++) {
        uint16_t p = ports[i];
        if (!p)
            continue;
        if (sign > 0) {
            ag->ports_used = xrealloc(ag->ports_used, (ag->n_ports_used + 1) * sizeof(uint16_t));
            ag->ports_used[ag->n_ports_used++] = p;
            continue;
        }
        for (size_t k = 0; k < ag->n_ports_used; k++) {
            if (ag->ports_used[k] == p) {
                ag->ports_used[k] = ag->ports_used[--ag->n_ports_used];
                break;
            }
        }
    }
}

bool master_agents_could_hold(struct master *m, const char *role, uint64_t cpus, uint64_t mem,
                              unsigned *ret_up)
{
    unsigned up = 0;
    bool could = false;
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        if (!ag->drf->active)
            continue;
        up++;
        uint64_t c = ag->drf->pool.cpus, mm = ag->drf->pool.mem;
        for (size_t i = 0; i < ag->n_resv; i++) {
            if (streq(ag->resv[i].role, role)) {
                c += ag->resv[i].cpus;
                mm += ag->resv[i].mem;
            }
        }
        could = could || (cpus <= c && mem <= mm);
    }
    *ret_up = up;
    return could;
}
/* An agent's "resources" object: total, reserved, allocatable and allocated (all), or
 * total and allocatable alone (the event stream's AGENT), then reservations and ports. */
void master_agent_resources_gen(yajl_gen g, const struct m_agent *ag, bool all)
{
    yajl_gen_map_open(g);
    const char *names[] = {"total", "reserved", "allocatable", "allocated"};
    uint64_t cpus[] = {ag->total_cpus, ag->reserved_cpus, ag->alloc_cpus, ag->placed_cpus};
    uint64_t mem[] = {ag->total_mem, ag->reserved_mem, ag->alloc_mem, ag->placed_mem};
    for (int i = 0; i < 4; i++) {
        if (!all && i % 2)
            continue;
        json_str(g, names[i]);
        yajl_gen_map_open(g);
        json_kv_cpus(g, "cpus", cpus[i]);
        json_kv_u64(g, "mem", mem[i]);
        yajl_gen_map_close(g);
    }
    json_str(g, "reservations");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < ag->n_resv; i++) {
        json_str(g, ag->resv[i].role);
        yajl_gen_map_open(g);
        json_kv_cpus(g, "cpus", ag->resv[i].cpus);
        json_kv_u64(g, "mem", ag->resv[i].mem);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    json_kv_str(g, "ports", ag->ports && ag->ports[0] ? ag->ports : NULL);
    yajl_gen_map_close(g);
}

void master_agent_json(const struct m_agent *ag, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", ag->id);
    json_kv_str(g, "hostname", ag->hostname);
    json_kv_str(g, "address", ag->address && ag->address[0] ? ag->address : NULL);
    json_str(g, "attributes");
    ml_attrs_gen(g, ag->attrs, ag->n_attrs);
    json_kv_str(g, "state", ag->state == M_AGENT_REACHABLE ? "REACHABLE" : "UNREACHABLE");
    json_kv_bool(g, "connected", ag->stream != NULL);
    json_kv_double(g, "registered_at", ag->registered_at);
    json_kv_double(g, "last_seen_at", ag->last_seen_at);
    json_kv_u64(g, "heartbeats", ag->heartbeats);
    json_kv_u64(g, "tasks", ag->placed_tasks);
    json_str(g, "resources");
    master_agent_resources_gen(g, ag, true);
    json_str(g, "usage");
    if (ag->has_usage) {
        yajl_gen_map_open(g);
        json_kv_double(g, "sampled_at", ag->usage_at);
        json_kv_double(g, "cpus", ag->used_cpus);
        json_kv_u64(g, "mem", ag->used_mem);
        json_kv_double(g, "node_cpus", ag->node_cpus);
        json_kv_u64(g, "node_mem", ag->node_mem);
        yajl_gen_map_close(g);
    } else {
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
}

int master_agent_remove(struct master *m, struct m_agent *ag, struct berr **err)
{
    if (ag->stream)
        return berr_setc(err, EBUSY, BERR_CONFLICT,
                         "agent '%s' is connected: stop it first (it would register again)",
                         ag->id);
    if (master_store_agent_delete(m, ag->id) < 0)
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot remove agent '%s' from master.db",
                         ag->id);
    for (struct m_agent **p = &m->agents; *p; p = &(*p)->next) {
        if (*p == ag) {
            *p = ag->next;
            break;
        }
    }
    ml_table_del(&m->agents_by_id, ag->id);
    m->n_agents--;
    log_info("agent '%s' (%s) removed from the registry", ag->id, ag->hostname);
    master_events_agent_removed(m, ag->id);
    explicit_bzero(ag->key, sizeof(ag->key));
    agent_free(m, ag);
    return 0;
}
