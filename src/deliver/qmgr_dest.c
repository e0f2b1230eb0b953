/*
 * qmgr_dest.c - per-destination in-flight counts and parked messages (see qmgr_dest.h). A
 * hash table of destinations (chained, grows), each with a FIFO of parked nodes.
 */
#include "deliver/qmgr_dest.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct qdest {
    qdest *next;            /* hash chain */
    size_t refs;
    unsigned inflight;
    size_t nparked;
    qdest_node *park_head, **park_tail;
    char name[];
};

struct qdest_table {
    unsigned cap;
    size_t nbuckets, count;
    qdest **buckets;
};

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 1099511628211ull;
    return (size_t)h;
}

qdest_table *qdest_table_new(unsigned cap)
{
    qdest_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cap = cap;
    t->nbuckets = 64;
    if (!(t->buckets = calloc(t->nbuckets, sizeof(*t->buckets)))) {
        free(t);
        return NULL;
    }
    return t;
}

void qdest_table_free(qdest_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (qdest *d = t->buckets[i], *next; d; d = next) {
            next = d->next;
            free(d);
        }
    free(t->buckets);
    free(t);
}

static void grow(qdest_table *t)
{
    size_t n = t->nbuckets * 2;
    qdest **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < t->nbuckets; i++)
        for (qdest *d = t->buckets[i], *next; d; d = next) {
            next = d->next;
            size_t k = hash_name(d->name) & (n - 1);
            d->next = b[k];
            b[k] = d;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

qdest *qdest_ref(qdest_table *t, const char *name)
{
    size_t k = hash_name(name) & (t->nbuckets - 1);
    for (qdest *d = t->buckets[k]; d; d = d->next)
        if (strcasecmp(d->name, name) == 0) {
            d->refs++;
            return d;
        }
    size_t len = strlen(name);
    qdest *d = calloc(1, sizeof(*d) + len + 1);
    if (!d)
        return NULL;
    memcpy(d->name, name, len + 1);
    d->refs = 1;
    d->park_tail = &d->park_head;
    if (t->count >= t->nbuckets)
        grow(t);
    k = hash_name(name) & (t->nbuckets - 1);
    d->next = t->buckets[k];
    t->buckets[k] = d;
    t->count++;
    return d;
}

void qdest_unref(qdest_table *t, qdest *d)
{
    if (!d || --d->refs > 0)
        return;
    qdest **pp = &t->buckets[hash_name(d->name) & (t->nbuckets - 1)];
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    t->count--;
    free(d);
}

bool qdest_full(const qdest_table *t, const qdest *d)
{
    return t->cap && d->inflight >= t->cap;
}

void qdest_enter(qdest *d)
{
    d->inflight++;
}

void qdest_leave(qdest *d)
{
    if (d->inflight)
        d->inflight--;
}

void qdest_park(qdest *d, qdest_node *n)
{
    n->next = NULL;
    n->parked_at = d;
    *d->park_tail = n;
    d->park_tail = &n->next;
    d->nparked++;
}

void qdest_unpark(qdest_node *n)
{
    qdest *d = n->parked_at;
    if (!d)
        return;
    qdest_node **pp = &d->park_head;
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    if (d->park_tail == &n->next)
        d->park_tail = pp;
    n->parked_at = NULL;
    n->next = NULL;
    d->nparked--;
}

qdest_node *qdest_release(const qdest_table *t, qdest *d)
{
    qdest_node *n = d->park_head;
    if (!n || qdest_full(t, d))
        return NULL;
    qdest_unpark(n);
    return n;
}

size_t qdest_parked(const qdest *d)
{
    return d->nparked;
}
