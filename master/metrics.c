/* SPDX-License-Identifier: Apache-2.0 */
/* master/metrics.c - berth-master's GET /metrics (Prometheus text, docs/metrics.md): agents,
 * streams and tasks by state, the counters of the agent link, offers (made, accepted,
 * declined, rescinded, outstanding), frameworks by state, the allocation pass duration and
 * each role's and framework's dominant share. Everything is read from the registry as it is;
 * nothing here changes it. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "master/master.h"

/* A label value: the names printed are ids and role names ([A-Za-z0-9_-*]) and framework
 * names, whose quotes and backslashes are dropped. */
static void label(char *buf, size_t len, const char *s)
{
    size_t k = 0;
    for (; s && *s && k + 1 < len; s++)
        if (*s != '"' && *s != '\\' && *s != '\n')
            buf[k++] = *s;
    buf[k] = 0;
}

static void sched_metrics(struct master *m, struct evbuffer *b)
{
    unsigned fw_states[3] = {0};
    for (struct m_framework *fw = m->frameworks; fw; fw = fw->next)
        fw_states[fw->state]++;
    evbuffer_add_printf(b,
                        "# HELP berth_master_offers_outstanding Offers not answered yet.\n"
                        "# TYPE berth_master_offers_outstanding gauge\n"
                        "berth_master_offers_outstanding %zu\n"
                        "# HELP berth_master_frameworks Frameworks by state.\n"
                        "# TYPE berth_master_frameworks gauge\n"
                        "berth_master_frameworks{state=\"CONNECTED\"} %u\n"
                        "berth_master_frameworks{state=\"DISCONNECTED\"} %u\n"
                        "berth_master_frameworks{state=\"REMOVED\"} %u\n"
                        "# HELP berth_master_allocation_duration_seconds Time of one allocation "
                        "pass.\n"
                        "# TYPE berth_master_allocation_duration_seconds histogram\n",
                        m->n_offers, fw_states[M_FW_CONNECTED], fw_states[M_FW_DISCONNECTED],
                        fw_states[M_FW_REMOVED]);
    uint64_t cum = 0;
    for (size_t i = 0; i < ARRAY_SIZE(master_pass_bounds); i++) {
        cum += m->alloc_buckets[i];
        evbuffer_add_printf(b, "berth_master_allocation_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            master_pass_bounds[i], (unsigned long long) cum);
    }
    evbuffer_add_printf(b,
                        "berth_master_allocation_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "berth_master_allocation_duration_seconds_sum %.6f\n"
                        "berth_master_allocation_duration_seconds_count %llu\n"
                        "# HELP berth_master_role_dominant_share A role's dominant share of the "
                        "connected agents' allocatable (offers and tasks), and divided by its "
                        "weight.\n"
                        "# TYPE berth_master_role_dominant_share gauge\n",
                        (unsigned long long) m->alloc_passes_total, m->alloc_sum,
                        (unsigned long long) m->alloc_passes_total);
    char l1[160], l2[160];
    for (size_t i = 0; i < m->drf.n_roles; i++) {
        const struct drf_role *r = m->drf.roles[i];
        double s = drf_share(&m->drf, r->alloc);
        label(l1, sizeof(l1), r->name);
        evbuffer_add_printf(b,
                            "berth_master_role_dominant_share{role=\"%s\",weighted=\"false\"} "
                            "%.6f\n"
                            "berth_master_role_dominant_share{role=\"%s\",weighted=\"true\"} "
                            "%.6f\n",
                            l1, s, l1, s / r->weight);
    }
    evbuffer_add_printf(b, "# HELP berth_master_framework_dominant_share A framework's dominant "
                           "share in one of its roles.\n"
                           "# TYPE berth_master_framework_dominant_share gauge\n");
    for (struct m_framework *fw = m->frameworks; fw; fw = fw->next) {
        for (size_t i = 0; fw->drf && i < fw->drf->n_clients; i++) {
            const struct drf_client *c = fw->drf->clients[i];
            label(l1, sizeof(l1), fw->name);
            label(l2, sizeof(l2), c->role->name);
            evbuffer_add_printf(
                    b,
                    "berth_master_framework_dominant_share{framework=\"%s\",name=\"%s\","
                    "role=\"%s\"} %.6f\n",
                    fw->id, l1, l2, drf_share(&m->drf, c->alloc));
        }
    }
}

void master_serve_metrics(struct master *m, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    unsigned st[2] = {0}, streams = 0, tasks[_ML_STATE_MAX] = {0};
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        st[ag->state == M_AGENT_UNREACHABLE]++;
        streams += ag->stream != NULL;
    }
    for (struct m_task *t = m->tasks; t; t = t->next)
        tasks[t->state]++;
    evbuffer_add_printf(b,
                        "# HELP berth_master_agents Registered agents by state.\n"
                        "# TYPE berth_master_agents gauge\n"
                        "berth_master_agents{state=\"REACHABLE\"} %u\n"
                        "berth_master_agents{state=\"UNREACHABLE\"} %u\n"
                        "# HELP berth_master_streams Open agent event streams.\n"
                        "# TYPE berth_master_streams gauge\n"
                        "berth_master_streams %u\n"
                        "# HELP berth_master_tasks Tasks by state.\n"
                        "# TYPE berth_master_tasks gauge\n",
                        st[0], st[1], streams);
    for (int i = 0; i < _ML_STATE_MAX; i++)
        evbuffer_add_printf(b, "berth_master_tasks{state=\"%s\"} %u\n", ml_state_name(i), tasks[i]);
    const struct {
        const char *name, *help;
        uint64_t v;
    } counters[] = {
            {"berth_master_subscribes_total", "SUBSCRIBE calls accepted.", m->subscribes_total},
            {"berth_master_heartbeats_total", "HEARTBEAT calls accepted.", m->heartbeats_total},
            {"berth_master_updates_total", "UPDATE calls received.", m->updates_total},
            {"berth_master_updates_duplicate_total",
             "Updates acknowledged without a change (retried or stale).",
             m->updates_duplicate_total},
            {"berth_master_refused_total", "Calls refused with an error.", m->refused_total},
            {"berth_master_auth_failures_total",
             "Agent handshakes and signed calls refused for a wrong key, proof or signature.",
             m->auth_failures_total},
            {"berth_master_launches_sent_total", "LAUNCH events sent.", m->launches_sent_total},
            {"berth_master_tasks_lost_total", "Tasks the master declared LOST.",
             m->tasks_lost_total},
            {"berth_master_reconcile_kills_total",
             "KILLs sent for tasks an agent ran that the master had dropped.",
             m->kills_reconciled_total},
            {"berth_master_offers_made_total", "Offers made to frameworks.", m->offers_made_total},
            {"berth_master_offers_accepted_total", "Offers answered with ACCEPT.",
             m->offers_accepted_total},
            {"berth_master_offers_declined_total",
             "Offers answered with DECLINE (or refused ACCEPTs).", m->offers_declined_total},
            {"berth_master_offers_rescinded_total",
             "Offers taken back (offer_timeout, agent or framework gone).",
             m->offers_rescinded_total},
            {"berth_master_invariant_violations_total",
             "Allocator books found not to match tasks and offers (check_invariants).",
             m->invariant_violations_total},
    };
    for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i].name,
                            counters[i].help, counters[i].name, counters[i].name,
                            (unsigned long long) counters[i].v);
    evbuffer_add_printf(b, "# HELP berth_master_heartbeat_duration_seconds Time to handle a "
                           "HEARTBEAT in the master.\n"
                           "# TYPE berth_master_heartbeat_duration_seconds histogram\n");
    master_hb_histogram(m, b);
    sched_metrics(m, b);
    master_events_metrics(m, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}
