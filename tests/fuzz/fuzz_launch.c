/* tests/fuzz/fuzz_launch.c - libFuzzer target: what the agent's local API does with a
 * request before anything is created: the path split of its router (agentd/path.c) and the
 * launch body's parse and checks (agentd/json.c's depth-limited parse, agentd/request.c).
 * The input's first line is the path, the rest the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void container_done(struct container *c)
{
    free(c->name);
    free(c->shell);
    for (char **p = c->argv; p && *p; p++)
        free(*p);
    free(c->argv);
    for (char **p = c->env; p && *p; p++)
        free(*p);
    free(c->env);
    for (size_t i = 0; i < c->n_volumes; i++) {
        free(c->volumes[i].host);
        free(c->volumes[i].container);
    }
    free(c->volumes);
    free(c->user);
    free(c->role);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct agent a;
    static bool init;
    if (!init) {
        cfg_defaults(&a.cfg);
        init = true;
    }
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
        struct container c = {0};
        if (request_parse_launch(&a, v, &c, &err) == 0 && (!c.argv || !c.argv[0] || !c.user))
            abort(); /* a launch that parsed has a command and a user */
        container_done(&c);
        yajl_tree_free(v);
    }
    berr_free(&err);
    return 0;
}
