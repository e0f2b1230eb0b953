/*
 * ipcount.c - per-address connection counts (see ipcount.h). Entries are freed when their
 * count drops to zero; the table doubles when it gets crowded. Memory shortage: add returns 0.
 */
#include "io/ipcount.h"

#include <stdlib.h>
#include <string.h>

struct ph_ipcount_entry {
    ph_ipcount_entry *next;
    unsigned count;
    char ip[];
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

void ph_ipcount_init(ph_ipcount *c)
{
    memset(c, 0, sizeof(*c));
}

void ph_ipcount_free(ph_ipcount *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        ph_ipcount_entry *e = c->buckets[i];
        while (e) {
            ph_ipcount_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(c->buckets);
    memset(c, 0, sizeof(*c));
}

static ph_ipcount_entry **find(const ph_ipcount *c, const char *ip)
{
    if (!c->nbuckets)
        return NULL;
    ph_ipcount_entry **p = &c->buckets[hash_str(ip) & (c->nbuckets - 1)];
    while (*p && strcmp((*p)->ip, ip) != 0)
        p = &(*p)->next;
    return p;
}

static int grow(ph_ipcount *c)
{
    size_t n = c->nbuckets ? c->nbuckets * 2 : 64;
    ph_ipcount_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < c->nbuckets; i++) {
        ph_ipcount_entry *e = c->buckets[i];
        while (e) {
            ph_ipcount_entry *next = e->next;
            size_t h = hash_str(e->ip) & (n - 1);
            e->next = b[h];
            b[h] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
    return 0;
}

unsigned ph_ipcount_add(ph_ipcount *c, const char *ip)
{
    if (c->nentries >= c->nbuckets && grow(c) < 0)
        return 0;
    ph_ipcount_entry **p = find(c, ip);
    if (*p)
        return ++(*p)->count;
    size_t len = strlen(ip);
    ph_ipcount_entry *e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return 0;
    memcpy(e->ip, ip, len + 1);
    e->count = 1;
    e->next = NULL;
    *p = e;
    c->nentries++;
    return 1;
}

void ph_ipcount_del(ph_ipcount *c, const char *ip)
{
    ph_ipcount_entry **p = find(c, ip);
    if (!p || !*p)
        return;
    if (--(*p)->count == 0) {
        ph_ipcount_entry *e = *p;
        *p = e->next;
        free(e);
        c->nentries--;
    }
}

unsigned ph_ipcount_get(const ph_ipcount *c, const char *ip)
{
    ph_ipcount_entry **p = find(c, ip);
    return p && *p ? (*p)->count : 0;
}
