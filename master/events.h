/* SPDX-License-Identifier: Apache-2.0 */
/* master/events.h - private header of berth-master's event stream (events.c): what the
 * files that change the registry call to publish a change on GET /v1/events, and what
 * main.c, api.c and metrics.c call to run and serve it. Included by master.h. */
#pragma once

struct master;
struct m_agent;
struct m_framework;
struct m_task;
struct evhttp_request;
struct evbuffer;
struct sse_hub;

/* events.c: GET /v1/events, the registry's changes as Server-Sent Events (docs/api.md) on
 * sse/'s hub. Tasks, frameworks, agents and link call the emitters where they change those
 * records; each is a no-op before master_events_start (while master.db is loaded). */
void master_events_start(struct master *m);
/* Close every stream; before master_api_stop (evhttp_free). */
void master_events_stop(struct master *m);
/* GET /v1/events of an authorised caller. */
void master_events_serve(struct master *m, struct evhttp_request *req);
/* agent_added, agent_changed; agent_removed by id (the record is gone). */
void master_events_agent(struct master *m, const struct m_agent *ag, const char *name);
void master_events_agent_removed(struct master *m, const char *id);
/* framework_added, framework_changed (connected, disconnected, roles, removed). */
void master_events_fw(struct master *m, const struct m_framework *fw, const char *name);
/* task_added, task_updated (state, agent, health), task_removed. */
void master_events_task(struct master *m, const struct m_task *t, const char *name);
/* The hub's counters for /metrics (all 0 before the start). */
void master_events_metrics(struct master *m, struct evbuffer *out);
