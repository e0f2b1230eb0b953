/*
 * relay_memory.h - what the relay remembers about the hosts it talked to, per address and
 * port, for smtp_host_memory: the last connect latency (fast hosts are tried first among
 * equals), until when a failure counts (failed hosts are tried last), and until when STARTTLS
 * is skipped (a host whose TLS handshake failed gets clear text, RFC 7435).
 *
 * A fixed table (PH_RELAY_MEMORY_SLOTS): when it is full the entry seen longest ago makes
 * room. Entries older than the memory's lifetime count as unknown. Loop thread only; a plain
 * struct inside the relay, no allocation.
 */
#ifndef POSTHORN_DELIVER_RELAY_MEMORY_H
#define POSTHORN_DELIVER_RELAY_MEMORY_H

#include <stdbool.h>

#include "dns/rdata.h"

#define PH_RELAY_MEMORY_SLOTS 256
#define PH_RELAY_RANK_UNKNOWN 1000000LL /* rank of a host nothing is known about */
#define PH_RELAY_RANK_FAILED 2000000LL  /* rank of a host that failed recently */

typedef struct relay_memory_slot {
    ph_dns_addr addr;
    unsigned port;
    long long seen_ms;
    long long fail_until_ms;
    long long no_tls_until_ms;
    unsigned latency_ms;
    bool has_latency;
} relay_memory_slot;

typedef struct relay_memory {
    unsigned lifetime_ms; /* 0: nothing is remembered */
    relay_memory_slot slots[PH_RELAY_MEMORY_SLOTS];
} relay_memory;

/* The host reached its greeting after ms: its latency, and any failure is forgotten. */
void relay_memory_latency(relay_memory *m, const ph_dns_addr *a, unsigned port, unsigned ms);
/* The host failed (refused, timed out, bad greeting): it goes last for the lifetime. */
void relay_memory_failure(relay_memory *m, const ph_dns_addr *a, unsigned port);
/* STARTTLS with the host failed in the handshake: clear text for an hour. */
void relay_memory_no_tls(relay_memory *m, const ph_dns_addr *a, unsigned port);
bool relay_memory_skip_tls(relay_memory *m, const ph_dns_addr *a, unsigned port);
/* Sort key within a preference group: the latency in ms when known, else
 * PH_RELAY_RANK_UNKNOWN; PH_RELAY_RANK_FAILED while a failure counts. */
long long relay_memory_rank(relay_memory *m, const ph_dns_addr *a, unsigned port);

#endif
