/* SPDX-License-Identifier: Apache-2.0 */
/* master/events.c - GET /v1/events: the master's agents, frameworks and tasks as
 * Server-Sent Events for operators' tools (docs/api.md, "Events"), on sse/'s hub: a snapshot
 * of the registry on connect, then one event per change. tasks.c, frameworks.c, agents.c and
 * link.c call the emitters where they change a record; this file reads the records and
 * changes nothing. Views are short on purpose (an event goes to every subscriber): the full
 * records stay behind /v1/agents, /v1/frameworks and /v1/tasks. */
#include <event2/buffer.h>
#include <event2/http.h>

#include "master/master.h"
#include "sse/sse.h"

static void agent_view(const struct m_agent *ag, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", ag->id);
    json_kv_str(g, "hostname", ag->hostname ? ag->hostname : "");
    json_kv_str(g, "address", ag->address && ag->address[0] ? ag->address : NULL);
    json_kv_str(g, "state", ag->state == M_AGENT_REACHABLE ? "REACHABLE" : "UNREACHABLE");
    json_kv_bool(g, "connected", ag->stream != NULL);
    json_str(g, "resources");
    master_agent_resources_gen(g, ag, false);
    json_str(g, "attributes");
    ml_attrs_gen(g, ag->attrs, ag->n_attrs);
    yajl_gen_map_close(g);
}

static void fw_view(const struct m_framework *fw, yajl_gen g)
{
    static const char *const states[] = {
            [M_FW_CONNECTED] = "CONNECTED",
            [M_FW_DISCONNECTED] = "DISCONNECTED",
            [M_FW_REMOVED] = "REMOVED",
    };
    yajl_gen_map_open(g);
    json_kv_str(g, "id", fw->id);
    json_kv_str(g, "name", fw->name ? fw->name : "");
    json_kv_strv(g, "roles", fw->roles);
    json_kv_str(g, "state", states[fw->state]);
    json_kv_bool(g, "connected", fw->state == M_FW_CONNECTED);
    json_kv_bool(g, "builtin", fw->builtin);
    yajl_gen_map_close(g);
}

static void task_view(const struct m_task *t, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", t->id);
    json_kv_str(g, "name", t->name);
    json_kv_str(g, "framework_id", t->framework_id);
    json_kv_str(g, "agent_id", t->agent_id[0] ? t->agent_id : NULL);
    json_kv_str(g, "state", ml_state_name(t->state));
    json_kv_str(g, "reason", t->reason[0] ? t->reason : NULL);
    /* null while unknown or not RUNNING, as the task view leaves it out */
    if (t->healthy != ML_HEALTH_UNKNOWN && t->state == ML_RUNNING)
        json_kv_bool(g, "healthy", t->healthy == ML_HEALTHY);
    else
        json_kv_null(g, "healthy");
    json_kv_double(g, "updated_at", t->updated_at);
    yajl_gen_map_close(g);
}

/* The hub's snapshot callback: every agent, framework and task as they are now. */
static void snapshot(void *arg, yajl_gen g)
{
    struct master *m = arg;
    yajl_gen_map_open(g);
    json_kv_double(g, "time", now_realtime());
    json_str(g, "agents");
    yajl_gen_array_open(g);
    for (const struct m_agent *ag = m->agents; ag; ag = ag->next)
        agent_view(ag, g);
    yajl_gen_array_close(g);
    json_str(g, "frameworks");
    yajl_gen_array_open(g);
    for (const struct m_framework *fw = m->frameworks; fw; fw = fw->next)
        fw_view(fw, g);
    yajl_gen_array_close(g);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (const struct m_task *t = m->tasks; t; t = t->next)
        task_view(t, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

void master_events_start(struct master *m)
{
    struct sse_hub_cfg cfg = {
            .history = m->cfg.events_history,
            .max_buffer = m->cfg.events_buffer,
            .max_subscribers = m->cfg.events_max_subscribers,
            .keepalive_ms = m->cfg.events_keepalive_ms,
            /* api.c's idle timeout, as for every other connection */
            .write_timeout_ms = (m->cfg.heartbeat_interval_ms / 1000 * 6 + 30) * 1000,
            .name = "GET /v1/events",
    };
    m->events = sse_hub_new(m->base, &cfg, snapshot, m);
}

void master_events_stop(struct master *m)
{
    sse_hub_free(m->events);
    m->events = NULL;
}

void master_events_serve(struct master *m, struct evhttp_request *req)
{
    _cleanup_berr_ struct berr *err = NULL;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "GET /v1/events");
    else if (!m->events)
        master_refuse(m, req, BERR_UNAVAILABLE, "the event stream is not running");
    else if (sse_hub_subscribe(m->events, req, &err) < 0)
        master_reply_error(m, req, err);
}

/* An event's data is {"time": now, KEY: view}: begin it (the view follows) ... */
static yajl_gen event_begin(const char *key)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_double(g, "time", now_realtime());
    json_str(g, key);
    return g;
}

/* ... and publish it as name. */
static void event_end(struct master *m, const char *name, yajl_gen g)
{
    yajl_gen_map_close(g);
    sse_hub_publish_gen(m->events, name, g);
    yajl_gen_free(g);
}

void master_events_agent(struct master *m, const struct m_agent *ag, const char *name)
{
    if (!m->events)
        return;
    yajl_gen g = event_begin("agent");
    agent_view(ag, g);
    event_end(m, name, g);
}

void master_events_agent_removed(struct master *m, const char *id)
{
    if (!m->events)
        return;
    yajl_gen g = event_begin("agent");
    yajl_gen_map_open(g);
    json_kv_str(g, "id", id);
    yajl_gen_map_close(g);
    event_end(m, "agent_removed", g);
}

void master_events_fw(struct master *m, const struct m_framework *fw, const char *name)
{
    if (!m->events)
        return;
    yajl_gen g = event_begin("framework");
    fw_view(fw, g);
    event_end(m, name, g);
}

void master_events_task(struct master *m, const struct m_task *t, const char *name)
{
    if (!m->events)
        return;
    yajl_gen g = event_begin("task");
    task_view(t, g);
    event_end(m, name, g);
}

void master_events_metrics(struct master *m, struct evbuffer *out)
{
    struct sse_stats st = {0};
    if (m->events)
        sse_hub_stats(m->events, &st);
    evbuffer_add_printf(
            out,
            "# HELP berth_master_events_subscribers Streams of GET /v1/events open.\n"
            "# TYPE berth_master_events_subscribers gauge\n"
            "berth_master_events_subscribers %llu\n"
            "# HELP berth_master_events_published_total Events published on GET /v1/events.\n"
            "# TYPE berth_master_events_published_total counter\n"
            "berth_master_events_published_total %llu\n"
            "# HELP berth_master_events_cut_off_total Subscribers cut off past events_buffer.\n"
            "# TYPE berth_master_events_cut_off_total counter\n"
            "berth_master_events_cut_off_total %llu\n"
            "# HELP berth_master_events_refused_total Subscribers refused at "
            "events_max_subscribers.\n"
            "# TYPE berth_master_events_refused_total counter\n"
            "berth_master_events_refused_total %llu\n"
            "# HELP berth_master_events_streams_total Streams opened, by how they started.\n"
            "# TYPE berth_master_events_streams_total counter\n"
            "berth_master_events_streams_total{start=\"snapshot\"} %llu\n"
            "berth_master_events_streams_total{start=\"resume\"} %llu\n"
            "# HELP berth_master_events_history_bytes What the events kept for resume hold.\n"
            "# TYPE berth_master_events_history_bytes gauge\n"
            "berth_master_events_history_bytes %llu\n",
            (unsigned long long) st.subscribers, (unsigned long long) st.published,
            (unsigned long long) st.cut_off, (unsigned long long) st.refused,
            (unsigned long long) st.snapshots, (unsigned long long) st.resumed,
            (unsigned long long) st.history_bytes);
}
