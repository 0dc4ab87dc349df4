/* SPDX-License-Identifier: Apache-2.0 */
/* master/api-sched.c - the client API's view of scheduling (docs/api.md): GET /v1/frameworks
 * (name, roles, weight, dominant share, offered, allocated, tasks, suppressed, filters),
 * GET /v1/frameworks/ID, DELETE /v1/frameworks/ID (admin: TEARDOWN on the framework's
 * behalf), GET /v1/offers (outstanding offers with their age), GET /v1/roles and
 * PUT /v1/roles/NAME (admin: weight and quota). api.c routes here after the token check;
 * frameworks.c, offers.c and roles.c draw the objects. */
#include <event2/http.h>
#include <string.h>

#include "master/master.h"

static void frameworks(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                       const char *rest, enum evhttp_cmd_type cmd)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    struct m_framework *fw = rest[0] ? master_fw_find(m, rest) : NULL;
    if (rest[0] && !fw) {
        master_refuse(m, req, BERR_NOT_FOUND, "no framework '%.64s'", rest);
    } else if (cmd == EVHTTP_REQ_DELETE && fw) {
        if (caller->rights != M_RIGHTS_ADMIN)
            master_refuse(m, req, BERR_FORBIDDEN, "frameworks are torn down with the admin token");
        else if (fw->builtin || fw->state == M_FW_REMOVED)
            master_refuse(m, req, BERR_CONFLICT, "framework '%s' is %s", fw->id,
                          fw->builtin ? "the master's own" : "removed already");
        else {
            master_sched_remove(m, fw, "torn down through DELETE /v1/frameworks");
            evhttp_send_reply(req, 204, "No Content", NULL);
        }
    } else if (cmd != EVHTTP_REQ_GET) {
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED,
                      "GET /v1/frameworks[/ID], DELETE /v1/frameworks/ID");
    } else if (fw) {
        master_fw_json(m, fw, g);
        master_reply_json(req, 200, g);
    } else {
        yajl_gen_map_open(g);
        json_str(g, "frameworks");
        yajl_gen_array_open(g);
        for (fw = m->frameworks; fw; fw = fw->next)
            master_fw_json(m, fw, g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
    }
    yajl_gen_free(g);
}

static void offers(struct master *m, struct evhttp_request *req, enum evhttp_cmd_type cmd)
{
    if (cmd != EVHTTP_REQ_GET) {
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "GET /v1/offers");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "offers");
    yajl_gen_array_open(g);
    for (const struct m_offer *o = m->offers; o; o = o->next)
        master_offer_json(o, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    master_reply_json(req, 200, g);
    yajl_gen_free(g);
}

static void roles(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                  const char *rest, enum evhttp_cmd_type cmd, const char *body, size_t len)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!rest[0] && cmd == EVHTTP_REQ_GET) {
        yajl_gen_map_open(g);
        json_str(g, "roles");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < m->drf.n_roles; i++)
            master_role_json(m, m->drf.roles[i], g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
    } else if (rest[0] && cmd == EVHTTP_REQ_GET) {
        struct drf_role *r = drf_role_find(&m->drf, rest);
        if (!r) {
            master_refuse(m, req, BERR_NOT_FOUND, "no role '%.64s'", rest);
        } else {
            master_role_json(m, r, g);
            master_reply_json(req, 200, g);
        }
    } else if (rest[0] && cmd == EVHTTP_REQ_PUT) {
        yajl_val v = json_parse(body, len, &err);
        if (caller->rights != M_RIGHTS_ADMIN) {
            master_refuse(m, req, BERR_FORBIDDEN, "roles are set with the admin token");
        } else if (!v || master_role_update(m, rest, v, &err) < 0) {
            master_reply_error(m, req, err);
        } else {
            master_role_json(m, drf_role_find(&m->drf, rest), g);
            master_reply_json(req, 200, g);
        }
        yajl_tree_free(v);
    } else {
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "GET /v1/roles[/NAME], PUT /v1/roles/NAME");
    }
    yajl_gen_free(g);
}

bool master_api_sched(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                      const char *path, enum evhttp_cmd_type cmd, const char *body, size_t len)
{
    if (streq(path, "/v1/frameworks") || str_has_prefix(path, "/v1/frameworks/"))
        frameworks(m, req, caller, path[14] ? path + 15 : "", cmd);
    else if (streq(path, "/v1/offers"))
        offers(m, req, cmd);
    else if (streq(path, "/v1/roles") || str_has_prefix(path, "/v1/roles/"))
        roles(m, req, caller, path[9] ? path + 10 : "", cmd, body, len);
    else
        return false;
    return true;
}
