/* SPDX-License-Identifier: Apache-2.0 */
/* common/apicode.c - the one table of the API's error codes: each code's name as the JSON
 * error answers carry it ({"error": {"code": "CONFLICT", ...}}) and the HTTP status both
 * daemons answer it with. Code anywhere sets an enum berr_code (common.h); only the daemons'
 * reply paths read this table, and berthctl reads names back with berr_code_from_name.
 * `make check-deps` fails when a code's name is spelled out anywhere else. */
#include <string.h>

#include "common/common.h"

static const struct {
    const char *name;
    int status;
} codes[_BERR_CODE_MAX] = {
        [BERR_CODE_NONE] = {NULL, 500},
        [BERR_INVALID_ARGUMENT] = {"INVALID_ARGUMENT", 400},
        [BERR_UNAUTHORIZED] = {"UNAUTHORIZED", 401},
        [BERR_UNKNOWN_AGENT_KEY] = {"UNKNOWN_AGENT_KEY", 401},
        [BERR_FORBIDDEN] = {"FORBIDDEN", 403},
        [BERR_NOT_FOUND] = {"NOT_FOUND", 404},
        [BERR_UNKNOWN_AGENT] = {"UNKNOWN_AGENT", 404},
        [BERR_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405},
        [BERR_CONFLICT] = {"CONFLICT", 409},
        [BERR_STALE_STREAM] = {"STALE_STREAM", 409},
        [BERR_INSUFFICIENT_RESOURCES] = {"INSUFFICIENT_RESOURCES", 409},
        [BERR_BODY_TOO_LARGE] = {"BODY_TOO_LARGE", 413},
        [BERR_INTERNAL] = {"INTERNAL", 500},
        [BERR_UNAVAILABLE] = {"UNAVAILABLE", 503},
};

const char *berr_code_name(enum berr_code c)
{
    return c >= 0 && c < _BERR_CODE_MAX ? codes[c].name : NULL;
}

enum berr_code berr_code_from_name(const char *name)
{
    for (int i = 1; name && i < _BERR_CODE_MAX; i++)
        if (streq(codes[i].name, name))
            return (enum berr_code) i;
    return _BERR_CODE_INVALID;
}

int berr_code_http_status(enum berr_code c)
{
    return c >= 0 && c < _BERR_CODE_MAX ? codes[c].status : 500;
}
