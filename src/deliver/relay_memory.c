/*
 * relay_memory.c - per-host latency and failure memory of the relay (see relay_memory.h).
 * A linear scan over 256 slots per lookup: a few hundred nanoseconds, next to a TCP connect.
 */
#include "deliver/relay_memory.h"

#include <string.h>
#include <sys/socket.h>

#include "deliver/relay_internal.h"

#define NO_TLS_MS (3600LL * 1000)

static bool same(const relay_memory_slot *s, const ph_dns_addr *a, unsigned port)
{
    return s->port == port && s->addr.family == a->family &&
           memcmp(s->addr.bytes, a->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static relay_memory_slot *find(relay_memory *m, const ph_dns_addr *a, unsigned port, bool add)
{
    if (m->lifetime_ms == 0)
        return NULL;
    long long now = relay_now_ms();
    relay_memory_slot *oldest = &m->slots[0];
    for (size_t i = 0; i < PH_RELAY_MEMORY_SLOTS; i++) {
        relay_memory_slot *s = &m->slots[i];
        bool live = s->seen_ms && now - s->seen_ms < (long long)m->lifetime_ms;
        if (live && same(s, a, port))
            return s;
        if (s->seen_ms < oldest->seen_ms)
            oldest = s;
    }
    if (!add)
        return NULL;
    *oldest = (relay_memory_slot){.addr = *a, .port = port, .seen_ms = now};
    return oldest;
}

void relay_memory_latency(relay_memory *m, const ph_dns_addr *a, unsigned port, unsigned ms)
{
    relay_memory_slot *s = find(m, a, port, true);
    if (s) {
        s->seen_ms = relay_now_ms();
        s->latency_ms = ms;
        s->has_latency = true;
        s->fail_until_ms = 0;
    }
}

void relay_memory_failure(relay_memory *m, const ph_dns_addr *a, unsigned port)
{
    relay_memory_slot *s = find(m, a, port, true);
    if (s) {
        s->seen_ms = relay_now_ms();
        s->fail_until_ms = s->seen_ms + m->lifetime_ms;
    }
}

void relay_memory_no_tls(relay_memory *m, const ph_dns_addr *a, unsigned port)
{
    relay_memory_slot *s = find(m, a, port, true);
    if (s)
        s->no_tls_until_ms = relay_now_ms() + NO_TLS_MS;
}

bool relay_memory_skip_tls(relay_memory *m, const ph_dns_addr *a, unsigned port)
{
    relay_memory_slot *s = find(m, a, port, false);
    return s && s->no_tls_until_ms > relay_now_ms();
}

long long relay_memory_rank(relay_memory *m, const ph_dns_addr *a, unsigned port)
{
    relay_memory_slot *s = find(m, a, port, false);
    if (!s)
        return PH_RELAY_RANK_UNKNOWN;
    if (s->fail_until_ms > relay_now_ms())
        return PH_RELAY_RANK_FAILED;
    return s->has_latency ? s->latency_ms : PH_RELAY_RANK_UNKNOWN;
}
