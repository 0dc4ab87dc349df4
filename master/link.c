/* SPDX-License-Identifier: Apache-2.0 */
/* master/link.c - the master's side of the agent protocol (docs/protocol.md) on
 * POST /api/v1/agent, once handshake.c has proven a SUBSCRIBE: the proven SUBSCRIBE
 * registers the agent (its resources, reservations and ports into the allocator), makes its
 * pending reply its event stream (agents.c) and reconciles its tasks; HEARTBEAT takes usage; UPDATE
 * applies a status (tasks.c) and sends ACKNOWLEDGE on the stream. A one-second tick PINGs the
 * streams, marks silent agents unreachable and, after the grace period, their tasks LOST, and lets
 * tasks.c forget old ended tasks. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "master/master.h"

static const double hb_bounds[7] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1};

static void read_amounts(yajl_val res, const char *key, uint64_t *cpus, uint64_t *mem)
{
    yajl_val v = json_get(res, key);
    double c;
    if (json_get_double(v, "cpus", &c) && c >= 0 && c < 1e6)
        *cpus = (uint64_t) (c * 1000 + 0.5);
    (void) json_get_u64(v, "mem", mem);
}

/* SUBSCRIBE's resources into ag: allocatable, reservations, ports; a change rebuilds the
 * allocator's view of the agent (its offers go, its tasks are charged again). */
static void resources_apply(struct master *m, struct m_agent *ag, yajl_val res)
{
    uint64_t cpus = 0, mem = 0;
    read_amounts(res, "allocatable", &cpus, &mem);
    yajl_val roles = json_get(res, "roles");
    size_t n = roles && YAJL_IS_OBJECT(roles) ? roles->u.object.len : 0, k = 0;
    struct m_resv *resv = n ? xcalloc(n, sizeof(*resv)) : NULL;
    for (size_t i = 0; i < n && i < 64; i++) {
        if (!ml_role_valid(roles->u.object.keys[i]) || streq(roles->u.object.keys[i], "*"))
            continue;
        resv[k].role = xstrdup(roles->u.object.keys[i]);
        read_amounts(roles, resv[k].role, &resv[k].cpus, &resv[k].mem);
        k++;
    }
    const char *ports = json_get_str(res, "ports");
    if (ports && ports[0] && !ml_ports_count(ports))
        ports = NULL; /* malformed: no ports offered */
    master_offers_rescind_agent(m, ag, "the agent subscribed again");
    master_tasks_recharge(m, ag, -1);
    if (master_agent_resources_set(m, ag, cpus, mem, resv, k, ports))
        log_info("agent '%s': allocatable %llu millicores, %llu bytes, %zu role reservation(s), "
                 "ports '%s'",
                 ag->id, (unsigned long long) cpus, (unsigned long long) mem, k,
                 ports ? ports : "");
    master_agent_drf_reset(m, ag);
    master_tasks_recharge(m, ag, +1);
}

static void kill_payload_send(struct m_agent *ag, const char *task_id)
{
    _cleanup_free_ char *p = xasprintf("{\"task_id\": \"%s\"}", task_id);
    master_agent_send(ag, ML_EVENT_KILL, p);
}

/* SUBSCRIBE's task list against the master's view (docs/protocol.md, Reconciliation). */
static void reconcile(struct master *m, struct m_agent *ag, yajl_val tasks)
{
    struct ml_table listed = {0};
    size_t n = tasks && YAJL_IS_ARRAY(tasks) ? tasks->u.array.len : 0;
    for (size_t i = 0; i < n; i++) {
        yajl_val e = tasks->u.array.values[i];
        const char *id = json_get_str(e, "task_id");
        enum ml_state st = ml_state_from_name(json_get_str(e, "state"));
        if (!ml_id_valid(id))
            continue;
        ml_table_put(&listed, id, e);
        struct m_task *t = master_task_find(m, id);
        bool alive_there = (int) st >= 0 && !ml_state_terminal(st);
        if (!alive_there)
            continue;
        if (!t || !streq(t->agent_id, ag->id) || ml_state_terminal(t->state)) {
            /* the agent runs what the master dropped (LOST while it was away, or unknown) */
            if (m->cfg.reconcile_kill) {
                log_info("agent '%s': task '%s' runs there but is %s here: killing it", ag->id, id,
                         t ? ml_state_name(t->state) : "unknown");
                kill_payload_send(ag, id);
                m->kills_reconciled_total++;
            }
        } else if (t->kill_requested) {
            kill_payload_send(ag, id);
        }
    }
    for (struct m_task *t = m->tasks; t; t = t->next) {
        if (ml_state_terminal(t->state) || !streq(t->agent_id, ag->id) ||
            ml_table_get(&listed, t->id))
            continue;
        if (t->state == ML_STAGING && t->kill_requested) {
            master_task_end(m, t, ML_KILLED, ML_REASON_KILLED_BY_REQUEST,
                            "killed before the agent received it");
        } else if (t->state == ML_STAGING) {
            /* LAUNCH may have been lost with the previous stream or master: send it again
             * (the agent ignores a task id it already has) */
            _cleanup_free_ char *p = master_task_launch_payload(t);
            if (master_agent_send(ag, ML_EVENT_LAUNCH, p))
                m->launches_sent_total++;
        } else {
            master_task_end(m, t, ML_LOST, ML_REASON_RECONCILED_LOST,
                            "the agent subscribed again without this task");
        }
    }
    ml_table_free(&listed);
}

/* The proven SUBSCRIBE: register or update the agent, make the pending stream its stream,
 * SUBSCRIBED, then reconcile. */
static void subscribe_apply(struct master *m, struct m_pending *pd, struct ml_call *call)
{
    yajl_val p = call->payload;
    const char *host = json_get_str(p, "hostname");
    yajl_val res = json_get(p, "resources");
    bool is_new;
    struct m_agent *ag = master_agent_get(m, call->agent_id, &is_new);
    if (pd->join) {
        ml_auth_agent_key(pd->key, &pd->hs, ag->key);
        ag->has_key = true;
        log_info("agent '%s' (%s) registered with join token '%s'", ag->id, host, pd->join_id);
    }
    ml_auth_session_key(ag->key, &pd->hs, ag->session);
    free(ag->hostname);
    ag->hostname = xstrdup(host);
    /* checked by master_handshake_start; an agent restarted with other [attributes] brings
     * them here, and the next offers carry them */
    struct ml_attr *attrs = NULL;
    size_t n_attrs = 0;
    _cleanup_berr_ struct berr *aerr = NULL;
    if (ml_attrs_decode(json_get(p, "attributes"), &attrs, &n_attrs, &aerr) == 0) {
        if (!is_new && !ml_attrs_equal(ag->attrs, ag->n_attrs, attrs, n_attrs))
            log_info("agent '%s' (%s): its attributes changed", ag->id, host);
        ml_attrs_free(ag->attrs, ag->n_attrs);
        ag->attrs = attrs;
        ag->n_attrs = n_attrs;
    }
    /* [agent] address, or else the address its SUBSCRIBE came from (checked by
     * master_handshake_start): offers carry it, for the clients of its tasks' ports */
    const char *address = json_get_str(p, "address");
    char *peer = NULL;
    ev_uint16_t peer_port = 0;
    if (!address || !address[0]) {
        if (pd->conn)
            evhttp_connection_get_peer(pd->conn, &peer, &peer_port);
        address = peer && ml_address_valid(peer) ? peer : "";
    }
    if (!is_new && ag->address && !streq(ag->address, address))
        log_info("agent '%s' (%s): its address is now '%s'", ag->id, host, address);
    free(ag->address);
    ag->address = xstrdup(address);
    read_amounts(res, "total", &ag->total_cpus, &ag->total_mem);
    read_amounts(res, "reserved", &ag->reserved_cpus, &ag->reserved_mem);
    resources_apply(m, ag, res);
    bool was_unreachable = ag->state == M_AGENT_UNREACHABLE;
    ag->state = M_AGENT_REACHABLE;
    ag->lost_done = false;
    ag->last_seen_ns = now_monotonic_ns();
    ag->last_seen_at = now_realtime();
    (void) master_agent_save(m, ag);
    /* an older stream ends: the agent restarted, or its old connection is half dead */
    master_agent_stream_set(ag, pd->req, pd->conn);
    snprintf(ag->stream_id, sizeof(ag->stream_id), "%s", pd->hs.stream_id);
    m->subscribes_total++;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "agent_id", ag->id);
    json_kv_str(g, "stream_id", ag->stream_id);
    json_kv_double(g, "heartbeat_interval_seconds", (double) m->cfg.heartbeat_interval_ms / 1000);
    yajl_gen_map_close(g);
    _cleanup_free_ char *sub = json_gen_take(g);
    master_agent_send(ag, ML_EVENT_SUBSCRIBED, sub);
    master_events_agent(m, ag, is_new ? "agent_added" : "agent_changed");
    log_info("agent '%s' (%s) %s", ag->id, ag->hostname,
             is_new            ? "registered"
             : was_unreachable ? "is back"
                               : "subscribed again");
    reconcile(m, ag, json_get(p, "tasks"));
}

/* AUTHENTICATE: the agent's proof for the challenge of its pending stream. */
static void authenticate(struct master *m, struct evhttp_request *req, struct ml_call *call)
{
    struct ml_call sub;
    struct m_pending *pd = master_handshake_prove(m, req, call, &sub);
    if (!pd)
        return;
    subscribe_apply(m, pd, &sub);
    ml_call_done(&sub);
    master_pending_free(pd);
    master_reply_accepted(req);
}

static void heartbeat(struct master *m, struct m_agent *ag, struct ml_call *call)
{
    yajl_val usage = json_get(call->payload, "usage");
    yajl_val node = json_get(usage, "node"), used = json_get(usage, "used");
    ag->has_usage = true;
    ag->usage_at = now_realtime();
    (void) json_get_double(node, "cpus", &ag->node_cpus);
    (void) json_get_u64(node, "mem", &ag->node_mem);
    (void) json_get_double(used, "cpus", &ag->used_cpus);
    (void) json_get_u64(used, "mem", &ag->used_mem);
    master_tasks_usage(m, ag->id, json_get(usage, "tasks"));
    ag->heartbeats++;
    m->heartbeats_total++;
}

/* 1 when acknowledged (applied, a duplicate, or news of a task that is not ours to keep). */
static int update(struct master *m, struct evhttp_request *req, struct m_agent *ag,
                  struct ml_call *call)
{
    struct ml_status s;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_status_decode(json_get(call->payload, "status"), &s, &err) < 0) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT, "UPDATE: %s", berr_msg(err));
        return 0;
    }
    struct m_task *t = master_task_find(m, s.task_id);
    m->updates_total++;
    if (!t || !streq(t->agent_id, ag->id)) {
        log_info("agent '%s': update %s of task '%s', which is not placed there: acknowledged "
                 "and dropped",
                 ag->id, ml_state_name(s.state), s.task_id);
    } else {
        int r = master_task_apply(m, t, &s, "agent");
        if (r < 0) {
            ml_status_done(&s);
            master_refuse(m, req, BERR_INTERNAL, "cannot record the update in master.db");
            return 0;
        }
        if (r == 0)
            m->updates_duplicate_total++;
    }
    _cleanup_free_ char *ack =
            xasprintf("{\"task_id\": \"%s\", \"uuid\": \"%s\"}", s.task_id, s.uuid);
    master_agent_send(ag, ML_EVENT_ACKNOWLEDGE, ack);
    ml_status_done(&s);
    return 1;
}

void master_link_serve(struct master *m, struct evhttp_request *req, const char *body, size_t len)
{
    uint64_t t0 = now_monotonic_ns();
    struct ml_call call;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_call_decode(body, len, &call, &err) < 0) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT, "%s", berr_msg(err));
        return;
    }
    if (call.type == ML_CALL_SUBSCRIBE) {
        master_handshake_start(m, req, &call, body, len);
        ml_call_done(&call);
        return;
    }
    if (call.type == ML_CALL_AUTHENTICATE) {
        authenticate(m, req, &call);
        ml_call_done(&call);
        return;
    }
    struct m_agent *ag = master_agent_find(m, call.agent_id);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *sid = evhttp_find_header(in, ML_STREAM_HEADER);
    const char *sig = evhttp_find_header(in, ML_SIGNATURE_HEADER);
    char want[ML_HEX_LEN + 1];
    if (!ag) {
        master_refuse(m, req, BERR_UNKNOWN_AGENT, "agent '%s' is not registered: SUBSCRIBE first",
                      call.agent_id);
    } else if (!sid || !ag->stream_id[0] || !streq(sid, ag->stream_id)) {
        /* an old stream's call (replayed, or from before a newer SUBSCRIBE) */
        master_refuse(m, req, BERR_STALE_STREAM,
                      "%s of agent '%s' does not carry its current %s: SUBSCRIBE again",
                      ml_call_name(call.type), call.agent_id, ML_STREAM_HEADER);
    } else if (ml_auth_sign(ag->session, body, len, want), !ml_hex_equal(sig, want)) {
        m->auth_failures_total++;
        char peer[96];
        log_warning("agent '%s': %s from %s with a wrong or missing %s: refused", ag->id,
                    ml_call_name(call.type), master_peer(req, peer, sizeof(peer)),
                    ML_SIGNATURE_HEADER);
        master_refuse(m, req, BERR_UNAUTHORIZED, "%s of agent '%s': bad %s",
                      ml_call_name(call.type), call.agent_id, ML_SIGNATURE_HEADER);
    } else {
        ag->last_seen_ns = now_monotonic_ns();
        ag->last_seen_at = now_realtime();
        if (call.type == ML_CALL_HEARTBEAT) {
            heartbeat(m, ag, &call);
            master_reply_accepted(req);
            double d = (double) (now_monotonic_ns() - t0) / 1e9;
            size_t i = 0;
            while (i < ARRAY_SIZE(hb_bounds) && d > hb_bounds[i])
                i++;
            m->hb_buckets[i]++;
            m->hb_count++;
            m->hb_sum += d;
        } else if (update(m, req, ag, &call) > 0) {
            master_reply_accepted(req);
        }
    }
    ml_call_done(&call);
}

void master_link_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct master *m = arg;
    uint64_t now = now_monotonic_ns();
    uint64_t hb_ns = m->cfg.heartbeat_interval_ms * 1000000ULL;
    bool ping = now - m->last_ping_ns >= hb_ns;
    if (ping)
        m->last_ping_ns = now;
    /* ended tasks: once a minute, or twice per task_gc_delay when that is shorter */
    uint64_t gc_every = m->cfg.task_gc_delay_ms / 2 * 1000000ULL;
    if (gc_every > 60000000000ULL)
        gc_every = 60000000000ULL;
    if (now - m->last_gc_ns >= gc_every) {
        m->last_gc_ns = now;
        master_tasks_gc(m);
    }
    master_handshake_expire(m, now);
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        if (ag->state == M_AGENT_REACHABLE &&
            now - ag->last_seen_ns > m->cfg.agent_timeout_ms * 1000000ULL) {
            ag->state = M_AGENT_UNREACHABLE;
            ag->unreachable_ns = now;
            log_warning("agent '%s' (%s): no heartbeat for %llu ms: unreachable", ag->id,
                        ag->hostname, (unsigned long long) m->cfg.agent_timeout_ms);
            /* its calls are refused from now on (STALE_STREAM), so it subscribes again and
             * the two reconcile */
            master_agent_stream_end(ag);
            ag->stream_id[0] = 0;
            (void) master_agent_save(m, ag);
            master_events_agent(m, ag, "agent_changed");
        }
        if (ag->state == M_AGENT_UNREACHABLE && !ag->lost_done &&
            now - ag->unreachable_ns >= m->cfg.lost_grace_ms * 1000000ULL) {
            ag->lost_done = true;
            unsigned n = master_tasks_lose_on(m, ag->id, ML_REASON_AGENT_UNREACHABLE,
                                              "the agent was unreachable for longer than "
                                              "lost_grace");
            (void) master_agent_save(m, ag);
            log_warning("agent '%s' (%s): unreachable past lost_grace: %u task(s) LOST", ag->id,
                        ag->hostname, n);
        }
        if (ping && ag->stream)
            master_agent_send(ag, ML_EVENT_PING, NULL);
    }
}

void master_hb_histogram(struct master *m, struct evbuffer *out)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < ARRAY_SIZE(hb_bounds); i++) {
        cum += m->hb_buckets[i];
        evbuffer_add_printf(out, "berth_master_heartbeat_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            hb_bounds[i], (unsigned long long) cum);
    }
    evbuffer_add_printf(out,
                        "berth_master_heartbeat_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "berth_master_heartbeat_duration_seconds_sum %.6f\n"
                        "berth_master_heartbeat_duration_seconds_count %llu\n",
                        (unsigned long long) m->hb_count, m->hb_sum,
                        (unsigned long long) m->hb_count);
}
