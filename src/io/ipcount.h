/*
 * ipcount.h - open connections per client address, for the per-IP connection limit.
 * A small chained hash table keyed by the address string; owns its entries.
 */
#ifndef POSTHORN_IO_IPCOUNT_H
#define POSTHORN_IO_IPCOUNT_H

#include <stddef.h>

typedef struct ph_ipcount_entry ph_ipcount_entry;

typedef struct ph_ipcount {
    ph_ipcount_entry **buckets;
    size_t nbuckets;
    size_t nentries;
} ph_ipcount;

void ph_ipcount_init(ph_ipcount *c);
void ph_ipcount_free(ph_ipcount *c);
/* Adds one connection for ip; returns the new count, or 0 on memory shortage. */
unsigned ph_ipcount_add(ph_ipcount *c, const char *ip);
/* Removes one connection for ip. */
void ph_ipcount_del(ph_ipcount *c, const char *ip);
unsigned ph_ipcount_get(const ph_ipcount *c, const char *ip);

#endif
