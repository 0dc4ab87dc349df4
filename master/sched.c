/* SPDX-License-Identifier: Apache-2.0 */
/* master/sched.c - the scheduler API (docs/protocol.md, "The scheduler API") on
 * POST /api/v1/scheduler: every call carries a bearer token with submit rights in the
 * framework's roles; SUBSCRIBE registers a framework (or takes it over again with its id after
 * a disconnect or a master restart) and makes its reply the framework's event stream
 * (frameworks.c); the other calls carry that stream's id and are ACCEPT and DECLINE
 * (accept.c), REVIVE, SUPPRESS, KILL, ACKNOWLEDGE, RECONCILE and TEARDOWN. A one-second tick
 * rescinds offers past offer_timeout, removes frameworks past their failover_timeout (their
 * tasks are killed), sends HEARTBEAT on the streams and repeats unacknowledged updates. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "master/master.h"

#define MAX_ROLES 16

void master_sched_remove(struct master *m, struct m_framework *fw, const char *why)
{
    _cleanup_berr_ struct berr *err = NULL;
    unsigned n = 0;
    log_warning("framework '%s' (%s) removed: %s; its live tasks are killed", fw->id, fw->name,
                why);
    for (struct m_task *t = m->tasks; t; t = t->next) {
        if (!streq(t->framework_id, fw->id) || ml_state_terminal(t->state))
            continue;
        if (master_task_kill(m, t, -1, &err) == 0)
            n++;
        berr_free(&err);
    }
    master_offers_rescind_fw(m, fw, "the framework was removed");
    _cleanup_free_ char *msg = xasprintf("framework '%s' was removed: %s", fw->id, why);
    master_fw_stream_end(fw, BERR_NOT_FOUND, msg);
    master_fw_removed(m, fw);
    log_info("framework '%s': %u task(s) killed", fw->id, n);
}

/* The roles of a SUBSCRIBE ("roles": [...] or "role": "..."; default "*"), checked. */
static int roles_of(yajl_val p, char ***ret, struct berr **err)
{
    char **roles = NULL;
    const char *one = json_get_str(p, "role");
    if (json_get(p, "roles")) {
        if (json_get_strv(p, "roles", &roles) < 0 || !roles || !roles[0])
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "\"roles\" must be a non-empty array of role names");
    } else {
        roles = xcalloc(2, sizeof(char *));
        roles[0] = xstrdup(one ? one : "*");
    }
    size_t n = 0;
    int r = 0;
    for (; roles[n]; n++) {
        for (size_t k = 0; r == 0 && k < n; k++)
            if (streq(roles[k], roles[n]))
                r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "role '%s' is given twice",
                              roles[n]);
        if (r == 0 && !ml_role_valid(roles[n]))
            r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                          "'%.64s' is not a role name (\"*\" or 1-64 of a-z, 0-9, _ and -)",
                          roles[n]);
    }
    if (r == 0 && n > MAX_ROLES)
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "at most %d roles", MAX_ROLES);
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            free(roles[i]);
        free(roles);
        return r;
    }
    *ret = roles;
    return 0;
}

static bool may_roles(const struct m_token *caller, char *const *roles, const char **ret_bad)
{
    for (char *const *r = roles; r && *r; r++) {
        if (!master_token_may(caller, M_RIGHTS_SUBMIT, *r)) {
            *ret_bad = *r;
            return false;
        }
    }
    return true;
}

static void subscribe(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                      const struct ml_sched_call *call)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_val p = call->payload;
    const char *name = json_get_str(p, "name"), *bad = NULL;
    double fo = (double) m->cfg.failover_timeout_ms / 1000;
    char **roles = NULL;
    struct m_framework *fw = call->framework_id ? master_fw_find(m, call->framework_id) : NULL;
    if (!name || !name[0] || strlen(name) > 128 || strcspn(name, "\n\r\t") != strlen(name)) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT,
                      "SUBSCRIBE needs \"name\" (1-128 characters, one line)");
        return;
    }
    if (json_get(p, "failover_timeout") &&
        (!json_get_double(p, "failover_timeout", &fo) || fo < 0 || fo > 31536000)) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT,
                      "\"failover_timeout\" must be seconds from 0 to 31536000");
        return;
    }
    if (roles_of(p, &roles, &err) < 0) {
        master_reply_error(m, req, err);
        return;
    }
    if (!may_roles(caller, roles, &bad)) {
        master_refuse(m, req, BERR_FORBIDDEN, "token '%s' (%s) may not subscribe in role '%s'",
                      caller->id, caller->name, bad);
    } else if (call->framework_id && (!fw || fw->builtin)) {
        master_refuse(m, req, BERR_NOT_FOUND,
                      "no framework '%s' (SUBSCRIBE without \"framework_id\" registers a new "
                      "one)",
                      call->framework_id);
    } else if (fw && fw->state == M_FW_REMOVED) {
        master_refuse(m, req, BERR_CONFLICT,
                      "framework '%s' was removed (TEARDOWN or failover_timeout) and its tasks "
                      "killed: SUBSCRIBE without \"framework_id\"",
                      fw->id);
    } else {
        uint64_t fo_ms = (uint64_t) (fo * 1000);
        if (fw) {
            master_fw_set_roles(m, fw, roles);
            fw->failover_timeout_ms = fo_ms;
            snprintf(fw->principal, sizeof(fw->principal), "%s", caller->id);
            (void) master_fw_save(m, fw);
        } else if (!(fw = master_fw_create(m, NULL, name, roles, caller->id, fo_ms, false))) {
            master_refuse(m, req, BERR_INTERNAL, "cannot record the framework in master.db");
            return;
        }
        roles = NULL;
        char sid[33];
        if (random_hex(sid, 32) < 0) {
            master_refuse(m, req, BERR_INTERNAL, "no randomness for a stream id");
            return;
        }
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", "application/recordio");
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_add_header(h, ML_STREAM_HEADER, sid);
        evhttp_send_reply_start(req, 200, "OK");
        bool again = fw->stream != NULL || call->framework_id;
        master_fw_stream_set(m, fw, req, sid);
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_kv_str(g, "framework_id", fw->id);
        json_kv_str(g, "stream_id", sid);
        json_kv_double(g, "heartbeat_interval_seconds",
                       (double) m->cfg.heartbeat_interval_ms / 1000);
        json_kv_double(g, "failover_timeout", (double) fw->failover_timeout_ms / 1000);
        json_kv_double(g, "offer_timeout_seconds", (double) m->cfg.offer_timeout_ms / 1000);
        yajl_gen_map_close(g);
        _cleanup_free_ char *sub = json_gen_take(g);
        master_fw_send(fw, ML_SCHED_SUBSCRIBED, sub);
        /* what it was not told, or did not acknowledge, while it was away */
        for (struct m_task *t = m->tasks; t; t = t->next)
            if (!t->fw_acked && streq(t->framework_id, fw->id))
                master_fw_update(m, t, false);
        log_info("framework '%s' (%s) %s with token '%s'", fw->id, fw->name,
                 again ? "subscribed again" : "registered", caller->id);
        return;
    }
    for (char **r = roles; r && *r; r++)
        free(*r);
    free(roles);
}

/* The roles a REVIVE or SUPPRESS names ("roles": [...]; absent: all of fw's). */
static void suppress(struct master *m, struct m_framework *fw, yajl_val p, bool on)
{
    yajl_val roles = json_get(p, "roles");
    if (!roles || !YAJL_IS_ARRAY(roles) || !roles->u.array.len) {
        drf_suppress(fw->drf, NULL, on);
    } else {
        for (size_t i = 0; i < roles->u.array.len; i++) {
            yajl_val x = roles->u.array.values[i];
            struct drf_role *r = YAJL_IS_STRING(x) ? drf_role_find(&m->drf, x->u.string) : NULL;
            if (r)
                drf_suppress(fw->drf, r, on);
        }
    }
    if (!on) {
        drf_filters_clear(&m->drf, fw->drf);
        master_alloc_soon(m);
    } else {
        /* what it holds in offers now stays offered until it answers or they time out */
        log_info("framework '%s': suppressed", fw->id);
    }
}

/* A task of fw by "task_id" in p; NULL after refusing. */
static struct m_task *task_of(struct master *m, struct evhttp_request *req,
                              const struct m_framework *fw, yajl_val p, const char *call)
{
    const char *id = json_get_str(p, "task_id");
    struct m_task *t = master_task_find(m, id);
    if (!t || !streq(t->framework_id, fw->id)) {
        master_refuse(m, req, BERR_NOT_FOUND, "%s: framework '%s' has no task '%.64s'", call,
                      fw->id, id ? id : "");
        return NULL;
    }
    return t;
}

static void reconcile(struct master *m, struct m_framework *fw, yajl_val p)
{
    yajl_val tasks = json_get(p, "tasks");
    size_t n = tasks && YAJL_IS_ARRAY(tasks) ? tasks->u.array.len : 0;
    if (!n) { /* implicit: every task it has that is live or whose end it has not acknowledged */
        for (struct m_task *t = m->tasks; t; t = t->next)
            if (streq(t->framework_id, fw->id) && (!ml_state_terminal(t->state) || !t->fw_acked))
                master_fw_update(m, t, true);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *id = json_get_str(tasks->u.array.values[i], "task_id");
        struct m_task *t = master_task_find(m, id);
        if (t && streq(t->framework_id, fw->id))
            master_fw_update(m, t, true);
        else if (ml_id_valid(id))
            master_fw_unknown_task(fw, id);
    }
}

static void dispatch(struct master *m, struct evhttp_request *req, struct m_framework *fw,
                     const struct ml_sched_call *call)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_val p = call->payload;
    struct m_task *t;
    double grace = -1;
    switch (call->type) {
    case ML_SCHED_ACCEPT: {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        if (master_offers_accept(m, fw, p, g, &err) < 0) {
            master_reply_error(m, req, err);
        } else {
            yajl_gen_map_close(g);
            master_reply_json(req, 202, g);
        }
        yajl_gen_free(g);
        return;
    }
    case ML_SCHED_DECLINE:
        if (master_offers_decline(m, fw, p, &err) < 0) {
            master_reply_error(m, req, err);
            return;
        }
        break;
    case ML_SCHED_REVIVE:
    case ML_SCHED_SUPPRESS:
        suppress(m, fw, p, call->type == ML_SCHED_SUPPRESS);
        break;
    case ML_SCHED_KILL:
        if (!(t = task_of(m, req, fw, p, "KILL")))
            return;
        (void) json_get_double(p, "grace_seconds", &grace);
        if (master_task_kill(m, t, grace, &err) < 0) {
            master_reply_error(m, req, err);
            return;
        }
        break;
    case ML_SCHED_ACKNOWLEDGE:
        /* an ACKNOWLEDGE of a task that is gone, or of an older status, changes nothing */
        t = master_task_find(m, json_get_str(p, "task_id"));
        if (t && streq(t->framework_id, fw->id) &&
            master_task_ack(m, t, json_get_str(p, "uuid")) < 0) {
            master_refuse(m, req, BERR_INTERNAL, "cannot record the acknowledgement");
            return;
        }
        break;
    case ML_SCHED_RECONCILE:
        reconcile(m, fw, p);
        break;
    case ML_SCHED_TEARDOWN:
        master_reply_accepted(req);
        master_sched_remove(m, fw, "TEARDOWN");
        return;
    default:
        master_refuse(m, req, BERR_INVALID_ARGUMENT, "%s comes first, on its own stream",
                      ml_sched_call_name(call->type));
        return;
    }
    master_reply_accepted(req);
}

void master_sched_serve(struct master *m, struct evhttp_request *req, const char *body, size_t len)
{
    struct m_token *caller = master_auth_client(m, req);
    if (!caller)
        return;
    struct ml_sched_call call;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_sched_call_decode(body, len, &call, &err) < 0) {
        master_reply_error(m, req, err);
        return;
    }
    if (call.type == ML_SCHED_SUBSCRIBE) {
        subscribe(m, req, caller, &call);
        ml_sched_call_done(&call);
        return;
    }
    struct m_framework *fw = master_fw_find(m, call.framework_id);
    const char *sid = evhttp_find_header(evhttp_request_get_input_headers(req), ML_STREAM_HEADER);
    const char *bad = NULL;
    if (!fw || fw->builtin) {
        master_refuse(m, req, BERR_NOT_FOUND, "no framework '%s'", call.framework_id);
    } else if (fw->state == M_FW_REMOVED) {
        master_refuse(m, req, BERR_NOT_FOUND, "framework '%s' was removed", fw->id);
    } else if (!may_roles(caller, fw->roles, &bad)) {
        master_refuse(m, req, BERR_FORBIDDEN, "token '%s' may not act in role '%s'", caller->id,
                      bad);
    } else if (!sid || !fw->stream_id[0] || !streq(sid, fw->stream_id)) {
        master_refuse(m, req, BERR_STALE_STREAM,
                      "%s of framework '%s' does not carry its current %s: SUBSCRIBE again",
                      ml_sched_call_name(call.type), fw->id, ML_STREAM_HEADER);
    } else {
        dispatch(m, req, fw, &call);
    }
    ml_sched_call_done(&call);
}

void master_sched_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct master *m = arg;
    uint64_t now = now_monotonic_ns();
    master_offers_expire(m, now);
    for (struct m_framework *fw = m->frameworks; fw; fw = fw->next) {
        if (fw->builtin || fw->state != M_FW_DISCONNECTED ||
            now - fw->disconnected_ns < fw->failover_timeout_ms * 1000000ULL)
            continue;
        _cleanup_free_ char *why = xasprintf("no SUBSCRIBE within its failover_timeout (%.0f s)",
                                             (double) fw->failover_timeout_ms / 1000);
        master_sched_remove(m, fw, why);
    }
    /* HEARTBEAT, and what a framework has not acknowledged for a heartbeat, again */
    if (now - m->last_fw_hb_ns >= m->cfg.heartbeat_interval_ms * 1000000ULL) {
        m->last_fw_hb_ns = now;
        double old = now_realtime() - (double) m->cfg.heartbeat_interval_ms / 1000;
        for (struct m_framework *fw = m->frameworks; fw; fw = fw->next)
            if (fw->stream && !fw->builtin)
                master_fw_send(fw, ML_SCHED_HEARTBEAT, NULL);
        for (struct m_task *t = m->tasks; t; t = t->next)
            if (!t->fw_acked && t->updated_at < old)
                master_fw_update(m, t, false);
    }
    master_check(m, "scheduler tick");
}
