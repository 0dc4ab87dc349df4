/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/link-auth.c - the keys the master link proves itself with (docs/security.md): this
 * agent's own key in work_dir/master.key (kept after its first, join-token handshake) and the
 * join token of [agent] token_file. Neither is ever sent; link.c's handshake proves them. */
#include <fcntl.h>
#include <string.h>

#include "agentd/link-internal.h"

/* Keep the agent key a join handshake yielded (work_dir/master.key, 0600, durable): the
 * master stores it when it accepts our proof, and a join token cannot take an id back. */
int link_key_save(struct link *l, const uint8_t key[ML_KEY_LEN])
{
    char hex[ML_HEX_LEN + 2];
    ml_hex(key, ML_KEY_LEN, hex);
    strcat(hex, "\n");
    _cleanup_close_ int dfd = open(l->a->cfg.work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? -errno : write_file_atomic(dfd, "master.key", hex, strlen(hex), 0600);
    explicit_bzero(hex, sizeof(hex));
    return r;
}

/* Our key from work_dir/master.key, and the join token from token_file; one is needed. */
int link_keys_load(struct link *l, struct berr **err)
{
    struct agent *a = l->a;
    l->key_path = xasprintf("%s/master.key", a->cfg.work_dir);
    char hex[ML_HEX_LEN + 2];
    ssize_t n = read_file_at(AT_FDCWD, l->key_path, hex, sizeof(hex));
    if (n >= 0) {
        if (ml_unhex(hex, l->key, ML_KEY_LEN) < 0)
            return berr_setx(err, EINVAL, "'%s' is not an agent key (64 hex digits)", l->key_path);
        l->has_key = true;
    } else if (n != -ENOENT) {
        return berr_set(err, (int) -n, "read '%s'", l->key_path);
    }
    explicit_bzero(hex, sizeof(hex));
    if (a->cfg.token_file[0]) {
        _cleanup_free_ char *text = NULL;
        int r = read_file_alloc(a->cfg.token_file, 4096, &text, NULL);
        if (r < 0)
            return berr_set(err, -r, "[agent] token_file '%s'", a->cfg.token_file);
        text[strcspn(text, "\r\n")] = 0;
        if (strlen(text) < 16)
            return berr_setx(err, EINVAL,
                             "[agent] token_file '%s': a join token has at least 16 characters",
                             a->cfg.token_file);
        ml_token_key(text, l->join_key, l->join_id);
        explicit_bzero(text, strlen(text));
        l->has_join = true;
    }
    if (!l->has_key && !l->has_join)
        return berr_setx(err, EINVAL,
                         "no agent key ('%s') and no join token ([agent] token_file): the agent "
                         "cannot register at the master (docs/security.md)",
                         l->key_path);
    l->use_join = !l->has_key;
    return 0;
}
