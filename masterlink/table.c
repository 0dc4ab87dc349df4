/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/table.c - a small string-keyed hash table (chained, power-of-two buckets) for
 * the ids both daemons look up on every message: the master finds one of 10,000 agents per
 * heartbeat, the agent one of its tasks per event. Keys are borrowed from the values. */
#include <string.h>

#include "masterlink/masterlink.h"

struct ml_entry {
    const char *key;
    void *value;
    struct ml_entry *next;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
    return h;
}

static void grow(struct ml_table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
    struct ml_entry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        while (t->buckets[i]) {
            struct ml_entry *e = t->buckets[i];
            t->buckets[i] = e->next;
            size_t j = hash(e->key) & (n - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void *ml_table_get(const struct ml_table *t, const char *key)
{
    if (!t->nbuckets)
        return NULL;
    for (struct ml_entry *e = t->buckets[hash(key) & (t->nbuckets - 1)]; e; e = e->next)
        if (streq(e->key, key))
            return e->value;
    return NULL;
}

void ml_table_put(struct ml_table *t, const char *key, void *value)
{
    if (t->count + 1 > t->nbuckets)
        grow(t);
    size_t i = hash(key) & (t->nbuckets - 1);
    for (struct ml_entry *e = t->buckets[i]; e; e = e->next) {
        if (streq(e->key, key)) {
            e->key = key;
            e->value = value;
            return;
        }
    }
    struct ml_entry *e = xmalloc(sizeof(*e));
    *e = (struct ml_entry){.key = key, .value = value, .next = t->buckets[i]};
    t->buckets[i] = e;
    t->count++;
}

void *ml_table_del(struct ml_table *t, const char *key)
{
    if (!t->nbuckets)
        return NULL;
    for (struct ml_entry **p = &t->buckets[hash(key) & (t->nbuckets - 1)]; *p; p = &(*p)->next) {
        if (streq((*p)->key, key)) {
            struct ml_entry *e = *p;
            void *v = e->value;
            *p = e->next;
            free(e);
            t->count--;
            return v;
        }
    }
    return NULL;
}

void ml_table_free(struct ml_table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        while (t->buckets[i]) {
            struct ml_entry *e = t->buckets[i];
            t->buckets[i] = e->next;
            free(e);
        }
    }
    free(t->buckets);
    *t = (struct ml_table){0};
}
