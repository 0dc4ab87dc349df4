/* SPDX-License-Identifier: Apache-2.0 */
/* master/drf.h - private header of berth-master's allocator core (allocator.c): Dominant
 * Resource Fairness (Ghodsi et al., NSDI 2011) over cpus and mem, across weighted roles with
 * quota (guarantee, limit), frameworks within each role, and agents with static role
 * reservations. Pure: no registry, sockets or SQLite, so tests/unit/allocator_test.c and
 * tests/bench/alloc_bench.c drive it alone. master.h includes it; offers.c runs its passes
 * and turns each allocation into an offer; tasks.c and offers.c charge and release what
 * tasks and offers hold. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An amount: cpus in millicores, mem in bytes. */
struct drf_res {
    uint64_t cpus, mem;
};
#define DRF_UNLIMITED UINT64_MAX

struct drf_role;
struct drf_fw;

/* One framework in one of its roles: what the framework sorter of that role orders. */
struct drf_client {
    struct drf_fw *fw;
    struct drf_role *role;
    struct drf_res alloc; /* offered to it and held by its tasks, in this role */
    double share;         /* dominant share of alloc */
    bool suppressed;      /* SUPPRESS: no offers in this role until REVIVE */
    size_t pos;           /* its index in role->clients */
};

struct drf_fw {
    char *id;
    void *owner;
    bool active; /* connected: only active frameworks get offers */
    struct drf_client **clients;
    size_t n_clients;
    size_t n_filters; /* DECLINE filters of it on the agents (0: REVIVE has nothing to do) */
};

struct drf_role {
    char *name;
    double weight;                   /* > 0; the role's share is its dominant share / weight */
    struct drf_res guarantee, limit; /* quota; limit DRF_UNLIMITED per resource: none */
    struct drf_res alloc;            /* everything its clients and its tasks hold */
    double share;
    struct drf_client **clients; /* sorted by share during a pass */
    size_t n_clients, cap_clients;
    size_t pos; /* its index in drf.roles */
};

/* A static reservation of an agent ([role.NAME] on the agent): offered only to that role,
 * which uses it before the agent's unreserved pool (the agent admits the same way). */
struct drf_resv {
    struct drf_role *role;
    struct drf_res res, used;
};

/* Resources of one agent that a framework declined: not offered to it again before until_ns
 * unless more than upto is free (Mesos's refuse filter). role NULL: every role. */
struct drf_filter {
    struct drf_fw *fw;
    struct drf_role *role;
    struct drf_res upto;
    uint64_t until_ns;
};

struct drf_agent {
    char *id;
    void *owner;
    bool active;          /* reachable and connected: its free resources may be offered */
    struct drf_res total; /* allocatable */
    struct drf_res pool;  /* total minus the reservations */
    /* the pool's use: roles without a reservation here, and reserved roles beyond theirs */
    struct drf_res pool_used;
    struct drf_resv *resv;
    size_t n_resv;
    struct drf_filter *filters;
    size_t n_filters, cap_filters;
    size_t idx; /* its index in drf.agents */
};

struct drf {
    struct drf_role **roles; /* sorted by (below guarantee first, weighted share) in a pass */
    size_t n_roles, cap_roles;
    struct drf_fw **fws;
    size_t n_fws, cap_fws;
    struct drf_agent **agents;
    size_t n_agents, cap_agents;
    struct drf_res total;     /* summed over the active agents */
    struct drf_res min_offer; /* smaller free amounts are not offered (10 millicores, 32 MiB) */
    size_t start;             /* the agent the next pass starts with (rotates) */
    /* each allocation of a pass, in order: q of a's free resources to c (already charged) */
    void (*offer)(void *arg, struct drf_agent *a, struct drf_client *c, struct drf_res q,
                  struct drf_res from_reservation);
    void *arg;
};

void drf_init(struct drf *d);
void drf_free(struct drf *d);

/* The role of this name (made with weight 1 and no quota when new). */
struct drf_role *drf_role(struct drf *d, const char *name);
struct drf_role *drf_role_find(const struct drf *d, const char *name);
/* Weight (> 0) and quota; a guarantee above the limit is the caller's to refuse. */
void drf_role_set(struct drf_role *r, double weight, struct drf_res guarantee,
                  struct drf_res limit);

/* A new agent (inactive, no resources); its id is copied. */
struct drf_agent *drf_agent_add(struct drf *d, const char *id, void *owner);
/* Forget a; what it held must have been released. */
void drf_agent_remove(struct drf *d, struct drf_agent *a);
/* Set a's allocatable and reservations (n of them; the roles made as needed). Only while
 * nothing is charged on a: the caller releases its tasks first and charges them again. */
void drf_agent_set(struct drf *d, struct drf_agent *a, struct drf_res total,
                   const char *const *resv_roles, const struct drf_res *resv, size_t n);
void drf_agent_activate(struct drf *d, struct drf_agent *a, bool on);
/* What a has free for role r: its part of r's reservation, and of the pool. */
struct drf_res drf_free_for(const struct drf_agent *a, const struct drf_role *r,
                            struct drf_res *ret_from_resv);

struct drf_fw *drf_fw_add(struct drf *d, const char *id, void *owner);
/* Forget fw and its clients; what they held stays charged to their roles (tasks that are
 * still ending), released later with a NULL client. Its filters go. */
void drf_fw_remove(struct drf *d, struct drf_fw *fw);
/* fw in role r: found, or made (unsuppressed) when new. */
struct drf_client *drf_client(struct drf *d, struct drf_fw *fw, struct drf_role *r);
struct drf_client *drf_client_find(const struct drf_fw *fw, const struct drf_role *r);
/* SUPPRESS (on) or REVIVE (off) fw in role r, or in all its roles when r is NULL. */
void drf_suppress(struct drf_fw *fw, const struct drf_role *r, bool on);

/* Charge (sign > 0) or release q on agent a for role r and client c (NULL: a task whose
 * framework is gone or has no client). a may be NULL (a task not placed yet). */
void drf_charge(struct drf *d, struct drf_agent *a, struct drf_role *r, struct drf_client *c,
                struct drf_res q, int sign);

/* A DECLINE: fw (in role r, or any when NULL) is not offered a's resources up to upto before
 * until_ns. */
void drf_filter_add(struct drf *d, struct drf_agent *a, struct drf_fw *fw, struct drf_role *r,
                    struct drf_res upto, uint64_t until_ns);
/* REVIVE: every filter of fw goes. O(agents) when fw has any. */
void drf_filters_clear(struct drf *d, struct drf_fw *fw);

/* The dominant share of q in the cluster: the larger of its cpus and mem fractions of the
 * active agents' total (0 when there is none). */
double drf_share(const struct drf *d, struct drf_res q);

/* One allocation pass at now_ns: every active agent with free resources, starting where the
 * last pass stopped, is offered, role by role in order of (below its guarantee first, then
 * weighted dominant share), to the framework of that role with the lowest dominant share that
 * is active, not suppressed and not filtered there; capped by the role's limit and by the
 * headroom the other roles' unmet guarantees need. Shares are updated after each allocation.
 * Calls d->offer for each; returns how many. O(agents + allocations x (roles + frameworks)). */
size_t drf_allocate(struct drf *d, uint64_t now_ns);

/* Why role r cannot get need now, for "why does my task wait": the active agents, those whose
 * allocatable for r could ever hold need, those where it fits what is free now, the most
 * cpus and the most mem free for r on any one agent, and whether r's limit keeps it out. */
struct drf_why {
    size_t agents, could_hold, fit_now;
    struct drf_res most_free;
    bool over_limit;
};
void drf_why(const struct drf *d, const struct drf_role *r, struct drf_res need,
             struct drf_why *ret);
