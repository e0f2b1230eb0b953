/*
 * resolver.h - asynchronous DNS on Posthorn's libevent loop, a thin wrapper over libunbound.
 *
 * How it runs: one ub_ctx per resolver, in libunbound's threaded async mode
 * (ub_ctx_async(ctx, 1)). libunbound resolves on one background thread of its own and writes
 * each finished answer to a pipe; the pipe's read end (ub_fd) is a persistent read event on our
 * event_base, and its callback runs ub_process(), which calls our result callbacks - on the loop
 * thread, never on libunbound's. Why not libunbound's event API (ub_ctx_create_event, present in
 * Debian 12's 1.17): it hands back only the raw answer packet, so we would need a complete DNS
 * message parser (sections, compression, CNAME chains, RRSIGs) in front of every answer; the
 * threaded mode gives ub_result with the answer RRset already extracted, the CNAME chain
 * followed and names decompressed, so the only parsing left is per-record rdata (rdata.h, fuzzed).
 * It also keeps libunbound's own event loop on its own thread and base, instead of having it
 * drive ours through its event glue. The cost is one thread per resolver (one per process in
 * practice) and a pipe hop per answer. The default async mode (ub_ctx_async(ctx, 0)) would fork a process instead: never
 * wanted in a daemon that drops privileges and pre-forks workers.
 *
 * Modes:
 *   - forwarders: every query goes to the given servers ("IP" or "IP@PORT", IPv4 or IPv6), with
 *     recursion desired. For tests (a fake DNS on 127.0.0.1) and sites with a local resolver.
 *     do-not-query-localhost is turned off (a loopback forwarder is the point), and the
 *     forwarders are kept being probed after a timeout (infra-keep-probing) so one lost packet
 *     does not mark the only forwarder dead for 15 minutes. Names under "test." (RFC 6761) go
 *     to the forwarders too (libunbound would answer NXDOMAIN itself). No DNSSEC validation
 *     unless a trust anchor file is given (libunbound then validates itself; it never trusts an
 *     upstream AD bit).
 *   - recursion (no forwarders): full recursion from the root hints compiled into libunbound,
 *     validating DNSSEC with the trust anchor file (default PH_RESOLVER_ROOT_KEY, from Debian's
 *     dns-root-data). A missing or unreadable trust anchor is an error at creation, not a silent
 *     downgrade to no validation.
 * /etc/hosts and /etc/resolv.conf are never read unless hosts_file names a hosts file.
 *
 * CNAMEs: libunbound follows CNAME (and DNAME) chains itself; the answer holds the records of the
 * final name and canonname says what that name was.
 *
 * Timeouts: libunbound has no per-query deadline (it retries with growing back-off for up to
 * minutes), so each query has our own timer: when it fires the query is cancelled in
 * libunbound and the callback gets PH_DNS_TIMEOUT. Every query therefore ends within
 * timeout_ms (plus the loop's latency), answered or not.
 *
 * Ownership and lifetime: the resolver borrows the event_base (which must outlive it). A query
 * handle belongs to the resolver; it is valid from ph_resolver_resolve until its callback starts
 * or until ph_dns_query_cancel. The callback is called exactly once per query that was not
 * cancelled, always from the event loop (never from inside ph_resolver_resolve). The answer and
 * everything it points to are borrowed for the callback's duration only. Callbacks may start new
 * queries and cancel other queries, but must not free the resolver. ph_resolver_free cancels
 * every query still open (their callbacks are not called).
 *
 * Threads and processes: every function runs on the event loop's thread. libunbound's thread
 * does not survive fork(): create the resolver in the process that uses it, after forking.
 *
 * Errors: 0 or a negative errno: -EINVAL (bad option or argument, with a reason in err where
 * there is an err), -ENOMEM, -EIO (libunbound refused, reason in err).
 */
#ifndef POSTHORN_DNS_RESOLVER_H
#define POSTHORN_DNS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "dns/rdata.h"

#define PH_RESOLVER_ROOT_KEY "/usr/share/dns/root.key" /* Debian's dns-root-data */
#define PH_RESOLVER_TIMEOUT_MS 10000                    /* default per-query timeout */
#define PH_RESOLVER_FORWARDERS_MAX 16

struct event_base;
typedef struct ph_resolver ph_resolver;
typedef struct ph_dns_query ph_dns_query;

typedef struct ph_resolver_opts {
    const char *const *forwarders; /* "IP" or "IP@PORT"; none: recursion from the root */
    size_t nforwarders;            /* at most PH_RESOLVER_FORWARDERS_MAX */
    const char *trust_anchor_file; /* NULL: PH_RESOLVER_ROOT_KEY when recursing, none when
                                      forwarding */
    const char *hosts_file;        /* NULL: no hosts file at all (not even /etc/hosts) */
    unsigned timeout_ms;           /* per query; 0: PH_RESOLVER_TIMEOUT_MS */
} ph_resolver_opts;

/* answer is borrowed for the call; see rdata.h for its fields. */
typedef void (*ph_dns_done_fn)(void *arg, const ph_dns_answer *answer);

/* Creates a resolver on base. opts NULL means all defaults (recursion with validation). On
 * failure *out is NULL and err (if errlen > 0) says why. */
int ph_resolver_new(struct event_base *base, const ph_resolver_opts *opts, ph_resolver **out,
                    char *err, size_t errlen);

/* Cancels every open query (no callbacks), stops libunbound's thread, frees. NULL is allowed.
 * Not from inside a callback of this resolver. */
void ph_resolver_free(ph_resolver *r);

/* The event_base the resolver runs on (borrowed). */
struct event_base *ph_resolver_base(const ph_resolver *r);

/*
 * Starts an IN-class query for name (text, trailing dot optional) and rrtype. On success *out
 * (if out is not NULL) is the handle for ph_dns_query_cancel, and done(arg, answer) will be
 * called once from the loop. On failure nothing was started and done will not be called.
 */
int ph_resolver_resolve(ph_resolver *r, const char *name, uint16_t rrtype, ph_dns_done_fn done,
                        void *arg, ph_dns_query **out);

/* Cancels an open query: its callback will not be called; q is freed. Not for a query whose
 * callback has started (the handle is gone then). NULL is allowed. */
void ph_dns_query_cancel(ph_dns_query *q);

/* Number of open queries (for tests and statistics). */
size_t ph_resolver_pending(const ph_resolver *r);

#endif
