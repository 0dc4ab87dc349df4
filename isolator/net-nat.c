/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/net-nat.c - the agent's nftables table through libnftables, nftables' own library
 * (the kernel's netlink protocol for nf_tables, with nft's parser and cache): runs the text
 * net-rules.c renders, each call one kernel transaction, and reads the map back (as nft's
 * JSON) for the orphan sweep. No shelling out to nft. net-link.c does links and routes. */
#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <string.h>

#include "isolator/isolator.h"

struct iso_nat {
    struct nft_ctx *ctx;
};

int iso_nat_open(struct iso_nat **ret, struct berr **err)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx)
        return berr_setx(err, ENOMEM, "nftables: cannot make a context");
    /* errors and listings into buffers we read, never onto our stderr */
    if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
        nft_ctx_free(ctx);
        return berr_setx(err, ENOMEM, "nftables: cannot buffer its output");
    }
    struct iso_nat *n = xzalloc(sizeof(*n));
    n->ctx = ctx;
    *ret = n;
    return 0;
}

struct iso_nat *iso_nat_free(struct iso_nat *n)
{
    if (!n)
        return NULL;
    nft_ctx_free(n->ctx);
    free(n);
    return NULL;
}

/* nft's error text is several lines (the command, a caret line); the first says it. */
static void first_line(const char *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s && *s ? s : "failed");
    buf[strcspn(buf, "\n")] = 0;
}

int iso_nat_run(struct iso_nat *n, const char *text, struct berr **err)
{
    nft_ctx_output_set_flags(n->ctx, 0);
    int r = nft_run_cmd_from_buffer(n->ctx, text);
    const char *e = nft_ctx_get_error_buffer(n->ctx); /* and empties it */
    (void) nft_ctx_get_output_buffer(n->ctx);
    if (r != 0) {
        char msg[256];
        first_line(e, msg, sizeof(msg));
        /* the kernel's errno is not handed out; EPERM and missing modules read the same */
        return berr_setx(err, EIO, "nftables: %s", msg);
    }
    return 0;
}

/* One element of nft's JSON: [{"concat": ["tcp", 31000]}, {"concat": ["172.31.0.2", 80]}]
 * ("tcp" may be 6). */
static bool parse_elem(yajl_val e, struct iso_nat_map *ret, bool *ret_tcp)
{
    if (!YAJL_IS_ARRAY(e) || e->u.array.len != 2)
        return false;
    yajl_val k = json_get(e->u.array.values[0], "concat"),
             v = json_get(e->u.array.values[1], "concat");
    if (!k || !v || !YAJL_IS_ARRAY(k) || !YAJL_IS_ARRAY(v) || k->u.array.len != 2 ||
        v->u.array.len != 2)
        return false;
    yajl_val proto = k->u.array.values[0], hport = k->u.array.values[1];
    yajl_val addr = v->u.array.values[0], port = v->u.array.values[1];
    struct in_addr in;
    if (!(YAJL_IS_STRING(proto) || YAJL_IS_INTEGER(proto)) || !YAJL_IS_INTEGER(hport) ||
        !YAJL_IS_STRING(addr) || !YAJL_IS_INTEGER(port) ||
        inet_pton(AF_INET, addr->u.string, &in) != 1)
        return false;
    /* nft names the protocol from /etc/protocols; a host without that file (a minimal
     * image, the VM suite's guest) gets its number */
    *ret_tcp = YAJL_IS_INTEGER(proto)
                       ? YAJL_GET_INTEGER(proto) == IPPROTO_TCP
                       : streq(proto->u.string, "tcp") || streq(proto->u.string, "6");
    *ret = (struct iso_nat_map){.host_port = (uint16_t) YAJL_GET_INTEGER(hport),
                                .addr = ntohl(in.s_addr),
                                .port = (uint16_t) YAJL_GET_INTEGER(port)};
    return true;
}

int iso_nat_list(struct iso_nat *n, struct iso_nat_map **ret, size_t *ret_n, struct berr **err)
{
    *ret = NULL;
    *ret_n = 0;
    nft_ctx_output_set_flags(n->ctx, NFT_CTX_OUTPUT_JSON);
    int r = nft_run_cmd_from_buffer(n->ctx, "list tables inet");
    const char *out = nft_ctx_get_output_buffer(n->ctx);
    (void) nft_ctx_get_error_buffer(n->ctx);
    if (r != 0 || !out || !strstr(out, "\"name\": \"" ISO_NAT_TABLE "\"")) {
        nft_ctx_output_set_flags(n->ctx, 0);
        return r != 0 ? berr_setx(err, EIO, "nftables: cannot list the tables") : -ENOENT;
    }
    r = nft_run_cmd_from_buffer(n->ctx, "list map inet " ISO_NAT_TABLE " " ISO_NAT_MAP);
    out = nft_ctx_get_output_buffer(n->ctx);
    const char *e = nft_ctx_get_error_buffer(n->ctx);
    nft_ctx_output_set_flags(n->ctx, 0);
    if (r != 0) {
        char msg[256];
        first_line(e, msg, sizeof(msg));
        return berr_setx(err, EIO, "nftables: list map %s: %s", ISO_NAT_MAP, msg);
    }
    _cleanup_berr_ struct berr *perr = NULL;
    yajl_val root = json_parse(out, strlen(out), &perr);
    yajl_val items = json_get(root, "nftables");
    size_t cnt = 0;
    struct iso_nat_map *m = NULL;
    for (size_t i = 0; items && YAJL_IS_ARRAY(items) && i < items->u.array.len; i++) {
        yajl_val elems = json_get(json_get(items->u.array.values[i], "map"), "elem");
        for (size_t j = 0; elems && YAJL_IS_ARRAY(elems) && j < elems->u.array.len; j++) {
            struct iso_nat_map one;
            bool tcp;
            /* TCP and UDP come in pairs: one mapping each */
            if (!parse_elem(elems->u.array.values[j], &one, &tcp) || !tcp)
                continue;
            m = xrealloc(m, (cnt + 1) * sizeof(*m));
            m[cnt++] = one;
        }
    }
    yajl_tree_free(root);
    *ret = m;
    *ret_n = cnt;
    return 0;
}
