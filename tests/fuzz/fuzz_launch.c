/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_launch.c - libFuzzer target: what the agent's local API and the master's
 * task API do with a request before anything is created: the path split of the agent's
 * router (agentd/path.c) and the task spec's parse and checks (common/json.c's depth-limited
 * parse, masterlink/spec.c), which both daemons share. The input's first line is the path,
 * the rest the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t) (nl - data) : size;
    char *path = strndup((const char *) data, plen);
    char seg[4][API_SEG_MAX];
    int n = api_split_path(path, seg, 4);
    if (n > 4)
        abort();
    for (int i = 0; i < n; i++)
        if (!seg[i][0] || strlen(seg[i]) >= API_SEG_MAX || strchr(seg[i], '/'))
            abort();
    free(path);
    if (!nl)
        return 0;
    struct berr *err = NULL;
    yajl_val v = json_parse((const char *) nl + 1, size - plen - 1, &err);
    if (v) {
        struct ml_task_spec s;
        if (ml_task_spec_parse(v, 0, &s, &err) == 0) {
            /* a spec that parsed has a command, positive resources and an env vector, and
             * reads back the same after a round trip */
            if (!s.command.argv || !s.command.argv[0] || !s.cpus_millis || !s.mem_bytes || !s.env)
                abort();
            char *text = ml_task_spec_encode(&s);
            yajl_val again = json_parse(text, strlen(text), NULL);
            struct ml_task_spec t;
            if (!again || ml_task_spec_parse(again, 0, &t, NULL) < 0)
                abort();
            char *text2 = ml_task_spec_encode(&t);
            if (strcmp(text, text2) != 0)
                abort();
            free(text2);
            ml_task_spec_done(&t);
            yajl_tree_free(again);
            free(text);
            ml_task_spec_done(&s);
        } else if (!err || err->code != BERR_INVALID_ARGUMENT) {
            abort(); /* every refusal is a 400 the client can act on */
        }
        yajl_tree_free(v);
    }
    berr_free(&err);
    return 0;
}
