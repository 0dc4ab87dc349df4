/* SPDX-License-Identifier: Apache-2.0 */
/* apps/api.h - what api.c (routing, views, answers) and change.c (the requests that change
 * apps: versions and deployments) share. */
#pragma once

#include <event2/http.h>

#include "apps/appsd.h"
#include "common/tls.h"

enum apps_change_kind {
    APPS_CREATE,
    APPS_PUT,
    APPS_PATCH,
    APPS_RESTART,
    APPS_DELETE
};

void apps_reply(struct evhttp_request *req, int status, yajl_gen g);
void apps_refuse(struct evhttp_request *req, enum berr_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void apps_reply_error(struct evhttp_request *req, const struct berr *err);
/* POST /v1/apps, PUT, PATCH, DELETE /v1/apps/ID, POST /v1/apps/ID/restart (app NULL for
 * POST /v1/apps). */
void apps_change(struct apps *a, struct evhttp_request *req, struct app *app,
                 enum apps_change_kind kind, const char *body, size_t len);
/* DELETE /v1/deployments/ID: the app's instances stay as they are. */
void apps_stop_deployment(struct apps *a, struct dep *d);
int apps_tls_init(struct apps *a, struct berr **err);
