/*
 * mx.h - where to deliver mail for a domain: the asynchronous MX lookup of RFC 5321 section 5.1
 * on the resolver (resolver.h), as a small state machine over the pure rules in mx_plan.h.
 *
 *   start -> MX query -> (NXDOMAIN | failure | null MX | no usable target) -> done
 *                     -> exchangers in order -> AAAA and A for every exchanger, all in
 *                        parallel -> addresses filled in, hosts without any dropped -> done
 *   an address literal or an invalid domain -> done (no DNS)
 *
 * The result is an ordered list of exchangers (preference ascending, shuffled among equal
 * preference), each with up to PH_MX_ADDRS_MAX addresses (AAAA first), or a verdict with its
 * reply code, enhanced status and text: NULL_MX / NXDOMAIN / BAD_DOMAIN are permanent (bounce),
 * TEMPORARY / NO_ADDRESS are temporary (defer). mx_plan.h states every rule.
 *
 * Bounded: one MX query, then at most 2 * PH_MX_HOSTS_MAX address queries, all in parallel, each
 * ending within the resolver's timeout - so a lookup ends within about two timeouts.
 *
 * Ownership: the lookup borrows the resolver (which must outlive it or cancel it first) and
 * copies domain. done(arg, result) is called exactly once unless the lookup is cancelled, always
 * from the event loop (never from inside ph_mx_lookup), with a result borrowed for the call (a
 * flat struct: copy it to keep it). The handle is freed when done returns; do not cancel it from
 * inside done or after. done may start new lookups or cancel others.
 *
 * Randomness: rng(rng_arg, bound) picks within equal preference; NULL uses arc4random_uniform.
 *
 * Errors: ph_mx_lookup returns 0 or a negative errno (-EINVAL for NULL arguments, -ENOMEM); on
 * error done is never called. DNS failures are not errors here: they are verdicts.
 */
#ifndef POSTHORN_DNS_MX_H
#define POSTHORN_DNS_MX_H

#include "dns/mx_plan.h"
#include "dns/resolver.h"

typedef struct ph_mx_query ph_mx_query;

typedef void (*ph_mx_done_fn)(void *arg, const ph_mx_result *result);

int ph_mx_lookup(ph_resolver *resolver, const char *domain, ph_mx_rng_fn rng, void *rng_arg,
                 ph_mx_done_fn done, void *arg, ph_mx_query **out);

/* The same for one named host without MX records (a smarthost): its AAAA and A records, as
 * for an implicit MX; an address literal ("[192.0.2.1]") or a bare IP address needs no DNS. */
int ph_mx_lookup_host(ph_resolver *resolver, const char *host, ph_mx_done_fn done, void *arg,
                      ph_mx_query **out);

/* Stops a lookup: its open DNS queries are cancelled and done is not called. NULL is allowed. */
void ph_mx_lookup_cancel(ph_mx_query *q);

#endif
