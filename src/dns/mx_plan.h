/*
 * mx_plan.h - the pure half of mail routing by DNS (RFC 5321 section 5.1, RFC 7505): from parsed
 * DNS answers to the list of exchangers to try, each with its addresses, or to a verdict. No
 * resolver, no clock, no randomness of its own (the caller passes an RNG), no allocation: mx.c
 * drives the resolver and calls these; unit tests and the fuzzer call them on made-up answers.
 *
 * The rules:
 *   - The domain may be an address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"): no DNS at all,
 *     one exchanger with that address. Any other literal, or a domain that is not a host name
 *     (LDH labels, '_' tolerated, at most 253 characters, one trailing dot allowed), is
 *     BAD_DOMAIN. Non-ASCII (U-label) domains must be turned into A-labels by the caller.
 *   - MX NXDOMAIN -> NXDOMAIN (permanent 550 5.1.2 "domain not found").
 *   - MX SERVFAIL, timeout, bogus DNSSEC, resolver error, or only malformed records ->
 *     TEMPORARY (451 4.4.3): deferred, never bounced.
 *   - MX NODATA (the name exists, no MX) -> the implicit MX: the domain itself, preference 0.
 *   - A null MX - the only MX record, with target "." (RFC 7505 defines it with preference 0; any
 *     preference is taken as the same unambiguous "no mail here") -> NULL_MX (permanent
 *     556 5.1.10 "domain does not accept mail (null MX, RFC 7505)"). A "." among other MX records
 *     is not a null MX (RFC 7505 section 3 says it must not be published so; like Postfix we then
 *     ignore the "." and use the others).
 *   - MX targets that cannot be a host: "." (see above) and names whose last label is all digits
 *     (an address literal written as a name, e.g. "192.0.2.1": RFC 5321 5.1 and RFC 1035 say the
 *     target is a domain name, and no top-level domain is numeric, RFC 3696 section 2) are
 *     skipped, counted in nskipped. If no usable target is left -> TEMPORARY (a zone error that
 *     its owner may fix; RFC 5321 5.1 only says it must be reported as an error).
 *   - A target named twice keeps its lowest preference. Exchangers are sorted by preference
 *     ascending (then by name, so that the result does not depend on the order the resolver
 *     returned the records in - resolvers rotate RRsets - and a fixed RNG gives a fixed order),
 *     shuffled among equal preference (Fisher-Yates with the caller's RNG), then cut to
 *     PH_MX_HOSTS_MAX.
 *   - CNAMEs: libunbound follows them, both for the domain (RFC 5321 5.1: the canonical name is
 *     processed as if it were the initial name) and for a target that is an alias (forbidden by
 *     RFC 2181 10.3 but common; we follow it like other MTAs). A host keeps the name the MX
 *     record gave it.
 *   - Addresses: per host, AAAA and A; AAAA first, then A, at most PH_MX_ADDRS_MAX in all (each
 *     family keeps at least 8 places if it has that many). A host with no address is skipped.
 *     If no host has an address: NXDOMAIN when the implicit MX's own name turned out not to
 *     exist, TEMPORARY (4.4.3) when any address lookup failed temporarily, otherwise
 *     NO_ADDRESS (451 4.4.4: temporary too - a host's missing address records are usually a
 *     transient DNS mistake).
 * The caller (the relay) still has to drop itself and every exchanger of equal or higher
 * preference when it finds itself in the list (RFC 5321 5.1): preferences are kept for that.
 */
#ifndef POSTHORN_DNS_MX_PLAN_H
#define POSTHORN_DNS_MX_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/rdata.h"

#define PH_MX_HOSTS_MAX 32 /* exchangers kept per domain */
#define PH_MX_ADDRS_MAX 16 /* addresses kept per exchanger */
#define PH_MX_TEXT_MAX 320

typedef enum ph_mx_verdict {
    PH_MX_OK,         /* hosts[0..nhosts) in try order, each with at least one address */
    PH_MX_NULL_MX,    /* permanent: 556 5.1.10 */
    PH_MX_NXDOMAIN,   /* permanent: 550 5.1.2 */
    PH_MX_BAD_DOMAIN, /* permanent: 550 5.1.2 (not a host name or a usable address literal) */
    PH_MX_TEMPORARY,  /* temporary: 451 4.4.3 (SERVFAIL, timeout, bogus, malformed, no usable
                         MX target) */
    PH_MX_NO_ADDRESS, /* temporary: 451 4.4.4 (no exchanger has an A or AAAA record) */
} ph_mx_verdict;

/* Returns a number in [0, bound) (bound >= 2). */
typedef size_t (*ph_mx_rng_fn)(void *rng_arg, size_t bound);

typedef struct ph_mx_host {
    char name[PH_DNS_NAME_MAX + 1]; /* the MX target, the domain (implicit MX) or the literal */
    uint16_t preference;
    bool secure;                    /* its address answers were DNSSEC-secure */
    size_t naddrs;
    ph_dns_addr addrs[PH_MX_ADDRS_MAX]; /* AAAA first, then A */
} ph_mx_host;

/* A flat struct (no pointers): copy it with = or memcpy to keep it. */
typedef struct ph_mx_result {
    ph_mx_verdict verdict;
    bool permanent;              /* bounce now (NULL_MX, NXDOMAIN, BAD_DOMAIN) */
    int smtp_code;               /* 250 for OK, else the reply code to report */
    const char *status;          /* enhanced status code ("2.0.0", "5.1.10", ...): static */
    char text[PH_MX_TEXT_MAX];   /* what happened, for the DSN and the log */
    bool implicit_mx;            /* no MX records: the domain itself is the exchanger */
    bool literal;                /* the domain was an address literal: no DNS was used */
    bool mx_secure;              /* the MX answer was DNSSEC-secure */
    size_t nskipped;             /* exchangers dropped: unusable target, no address, over cap */
    size_t nhosts;
    ph_mx_host hosts[PH_MX_HOSTS_MAX];
} ph_mx_result;

/* The addresses one lookup (AAAA or A) gave one host: a copy, kept until all are in. */
typedef struct ph_mx_addr_answer {
    ph_dns_status status;
    bool secure;
    size_t naddrs;
    ph_dns_addr addrs[PH_MX_ADDRS_MAX];
} ph_mx_addr_answer;

/*
 * Step 0. Checks the domain. Returns 1 when it is an address literal (res is then final: OK with
 * one host, or BAD_DOMAIN), 0 when it is a host name to look up (res is zeroed; *name gets the
 * domain without a trailing dot, namesize >= PH_DNS_NAME_MAX + 1), -1 when it is neither (res
 * is BAD_DOMAIN, final).
 */
int ph_mx_plan_domain(const char *domain, ph_mx_result *res, char *name, size_t namesize);

/* Whether an MX target's last label is all digits ("192.0.2.1" written as a name): no real host
 * name has one, so such targets are skipped (RFC 5321 5.1: MX targets are names, not literals). */
bool ph_mx_plan_numeric_name(const char *name);

/*
 * Step 1. From the answer to the MX query for domain (no trailing dot), fills res with the
 * exchangers in try order (verdict OK, addresses not yet known, naddrs 0) or with a final
 * verdict. rng must not be NULL. Returns true when res is final (no address lookups needed).
 */
bool ph_mx_plan_exchangers(const char *domain, const ph_dns_answer *mx, ph_mx_rng_fn rng,
                           void *rng_arg, ph_mx_result *res);

/* Copies the addresses of an A or AAAA answer (at most PH_MX_ADDRS_MAX) into *out. */
void ph_mx_addr_answer_set(ph_mx_addr_answer *out, const ph_dns_answer *answer);

/*
 * Step 2. aaaa[i] and a[i] are the answers for res->hosts[i] (i < res->nhosts). Fills in the
 * addresses, drops hosts without any (keeping the order of the others) and sets the final
 * verdict. domain is for the texts.
 */
void ph_mx_plan_addresses(const char *domain, ph_mx_result *res, const ph_mx_addr_answer *aaaa,
                          const ph_mx_addr_answer *a);

/* The verdict's name ("OK", "NULL_MX", ...); never NULL. */
const char *ph_mx_verdict_name(ph_mx_verdict verdict);

#endif
