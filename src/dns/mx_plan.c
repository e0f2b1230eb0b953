/*
 * mx_plan.c - RFC 5321 5.1 / RFC 7505 routing decisions on parsed DNS answers (see mx_plan.h).
 * Pure: no I/O, no allocation; the RNG comes from the caller.
 */
#include "dns/mx_plan.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MX_RECORDS_MAX 256 /* MX records considered per domain; more are counted as skipped */
#define LABEL_MAX 63
#define LITERAL_MAX 64     /* "[IPv6:" + the longest IPv6 text + "]" fits easily */

typedef struct verdict_info {
    int smtp_code;
    const char *status;
    bool permanent;
    const char *name;
} verdict_info;

static const verdict_info VERDICTS[] = {
    [PH_MX_OK] = {250, "2.0.0", false, "OK"},
    [PH_MX_NULL_MX] = {556, "5.1.10", true, "NULL_MX"},
    [PH_MX_NXDOMAIN] = {550, "5.1.2", true, "NXDOMAIN"},
    [PH_MX_BAD_DOMAIN] = {550, "5.1.2", true, "BAD_DOMAIN"},
    [PH_MX_TEMPORARY] = {451, "4.4.3", false, "TEMPORARY"},
    [PH_MX_NO_ADDRESS] = {451, "4.4.4", false, "NO_ADDRESS"},
};

const char *ph_mx_verdict_name(ph_mx_verdict verdict)
{
    if ((size_t)verdict >= sizeof(VERDICTS) / sizeof(VERDICTS[0]))
        return "UNKNOWN";
    return VERDICTS[verdict].name;
}

/* Sets the verdict, its code and text; any verdict but OK leaves no hosts. */
__attribute__((format(printf, 3, 4))) static void set_verdict(ph_mx_result *res,
                                                              ph_mx_verdict v,
                                                              const char *fmt, ...)
{
    res->verdict = v;
    res->smtp_code = VERDICTS[v].smtp_code;
    res->status = VERDICTS[v].status;
    res->permanent = VERDICTS[v].permanent;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof(res->text), fmt, ap);
    va_end(ap);
    if (v != PH_MX_OK)
        res->nhosts = 0;
}

/* ---- step 0: the domain ------------------------------------------------------------------- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* A host name of LDH(+_) labels, 1..63 characters each, n characters in all (no trailing dot). */
static bool valid_host_name(const char *s, size_t n)
{
    if (n == 0 || n > PH_DNS_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (!host_char(s[i]) || ++label > LABEL_MAX) {
            return false;
        }
    }
    return label > 0;
}

/* Parses "[a.b.c.d]" or "[IPv6:...]" into *addr; false for anything else. */
static bool parse_literal(const char *domain, size_t n, ph_dns_addr *addr)
{
    char inner[LITERAL_MAX];
    if (n < 3 || n - 2 >= sizeof(inner) || domain[n - 1] != ']')
        return false;
    memcpy(inner, domain + 1, n - 2);
    inner[n - 2] = '\0';
    memset(addr, 0, sizeof(*addr));
    if (strncasecmp(inner, "IPv6:", 5) == 0) {
        addr->family = AF_INET6;
        return inet_pton(AF_INET6, inner + 5, addr->bytes) == 1;
    }
    addr->family = AF_INET;
    return inet_pton(AF_INET, inner, addr->bytes) == 1;
}

int ph_mx_plan_domain(const char *domain, ph_mx_result *res, char *name, size_t namesize)
{
    memset(res, 0, sizeof(*res));
    size_t n = domain ? strlen(domain) : 0;
    if (n > 0 && domain[0] == '[') {
        ph_dns_addr addr;
        if (n > PH_DNS_NAME_MAX || !parse_literal(domain, n, &addr)) {
            set_verdict(res, PH_MX_BAD_DOMAIN, "not a usable address literal: %.*s",
                        (int)(n < 80 ? n : 80), domain);
            return 1;
        }
        res->literal = true;
        res->nhosts = 1;
        memcpy(res->hosts[0].name, domain, n + 1);
        res->hosts[0].naddrs = 1;
        res->hosts[0].addrs[0] = addr;
        set_verdict(res, PH_MX_OK, "address literal %s: no DNS lookup", domain);
        return 1;
    }
    if (n > 0 && domain[n - 1] == '.')
        n--; /* one trailing dot: the absolute form of the same name */
    if (!valid_host_name(domain, n) || !name || namesize <= n) {
        set_verdict(res, PH_MX_BAD_DOMAIN, "not a valid domain: %.*s", (int)(n < 80 ? n : 80),
                    domain ? domain : "");
        return -1;
    }
    memcpy(name, domain, n);
    name[n] = '\0';
    return 0;
}

/* ---- step 1: the exchangers --------------------------------------------------------------- */

typedef struct candidate {
    uint16_t preference;
    uint16_t record; /* index into the answer's records */
} candidate;

bool ph_mx_plan_numeric_name(const char *name)
{
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    if (!*last)
        return false;
    for (; *last; last++)
        if (*last < '0' || *last > '9')
            return false;
    return true;
}

static bool root_name(const char *name)
{
    return strcmp(name, ".") == 0;
}

/* Collects the usable targets, a name named twice keeping its lowest preference. */
static size_t collect(const ph_dns_answer *mx, candidate *c, ph_mx_result *res)
{
    size_t n = 0;
    for (size_t i = 0; i < mx->nrecords; i++) {
        const ph_dns_record *r = &mx->records[i];
        if (i >= MX_RECORDS_MAX || r->type != PH_DNS_TYPE_MX || root_name(r->u.mx.exchange) ||
            ph_mx_plan_numeric_name(r->u.mx.exchange)) {
            res->nskipped++;
            continue;
        }
        size_t j = 0;
        while (j < n && strcasecmp(mx->records[c[j].record].u.mx.exchange, r->u.mx.exchange))
            j++;
        if (j < n) {
            if (r->u.mx.preference < c[j].preference)
                c[j].preference = r->u.mx.preference;
            continue;
        }
        c[n++] = (candidate){r->u.mx.preference, (uint16_t)i};
    }
    return n;
}

/* Preference first, then the name: the order before the shuffle must not depend on the order
 * the records came in (resolvers rotate RRsets), so that a fixed RNG gives a fixed result. */
static bool before(const ph_dns_answer *mx, candidate x, candidate y)
{
    if (x.preference != y.preference)
        return x.preference < y.preference;
    return strcasecmp(mx->records[x.record].u.mx.exchange, mx->records[y.record].u.mx.exchange) <
           0;
}

/* Insertion sort (n <= MX_RECORDS_MAX), then Fisher-Yates within each run of equal
 * preference. */
static void order(const ph_dns_answer *mx, candidate *c, size_t n, ph_mx_rng_fn rng,
                  void *rng_arg)
{
    for (size_t i = 1; i < n; i++) {
        candidate x = c[i];
        size_t j = i;
        for (; j > 0 && before(mx, x, c[j - 1]); j--)
            c[j] = c[j - 1];
        c[j] = x;
    }
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && c[end].preference == c[start].preference)
            end++;
        for (size_t k = end - start; k > 1; k--) {
            size_t pick = rng(rng_arg, k);
            if (pick >= k)
                pick = k - 1; /* a broken RNG must not index out of the run */
            candidate t = c[start + k - 1];
            c[start + k - 1] = c[start + pick];
            c[start + pick] = t;
        }
        start = end;
    }
}

static void add_host(ph_mx_result *res, const char *name, uint16_t preference)
{
    ph_mx_host *h = &res->hosts[res->nhosts++];
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->preference = preference;
}

static bool is_null_mx(const ph_dns_answer *mx)
{
    return mx->nrecords == 1 && mx->nmalformed == 0 &&
           mx->records[0].type == PH_DNS_TYPE_MX && root_name(mx->records[0].u.mx.exchange);
}

bool ph_mx_plan_exchangers(const char *domain, const ph_dns_answer *mx, ph_mx_rng_fn rng,
                           void *rng_arg, ph_mx_result *res)
{
    memset(res, 0, sizeof(*res));
    res->mx_secure = mx->secure;
    if (mx->status == PH_DNS_NXDOMAIN) {
        set_verdict(res, PH_MX_NXDOMAIN, "domain not found");
        return true;
    }
    if (mx->status == PH_DNS_NODATA) {
        res->implicit_mx = true;
        add_host(res, domain, 0);
        set_verdict(res, PH_MX_OK, "no MX records: implicit MX %s", domain);
        return false;
    }
    if (mx->status != PH_DNS_OK) {
        set_verdict(res, PH_MX_TEMPORARY, "DNS lookup of MX for %s failed: %s", domain,
                    ph_dns_status_name(mx->status));
        return true;
    }
    if (is_null_mx(mx)) {
        set_verdict(res, PH_MX_NULL_MX, "domain does not accept mail (null MX, RFC 7505)");
        return true;
    }
    candidate c[MX_RECORDS_MAX];
    size_t n = collect(mx, c, res);
    if (n == 0) {
        set_verdict(res, PH_MX_TEMPORARY, "no usable MX host for %s", domain);
        return true;
    }
    order(mx, c, n, rng, rng_arg);
    for (size_t i = 0; i < n && res->nhosts < PH_MX_HOSTS_MAX; i++)
        add_host(res, mx->records[c[i].record].u.mx.exchange, c[i].preference);
    res->nskipped += n - res->nhosts;
    set_verdict(res, PH_MX_OK, "%zu MX host(s) for %s", res->nhosts, domain);
    return false;
}

/* ---- step 2: the addresses ---------------------------------------------------------------- */

void ph_mx_addr_answer_set(ph_mx_addr_answer *out, const ph_dns_answer *answer)
{
    memset(out, 0, sizeof(*out));
    out->status = answer->status;
    out->secure = answer->secure;
    for (size_t i = 0; i < answer->nrecords && out->naddrs < PH_MX_ADDRS_MAX; i++) {
        const ph_dns_record *r = &answer->records[i];
        if (r->type == PH_DNS_TYPE_A || r->type == PH_DNS_TYPE_AAAA)
            out->addrs[out->naddrs++] = r->u.addr;
    }
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Fills h's addresses: AAAA first, each family keeping at least half the places it can use. */
static void fill_addresses(ph_mx_host *h, const ph_mx_addr_answer *aaaa,
                           const ph_mx_addr_answer *a)
{
    size_t c6 = aaaa->status == PH_DNS_OK ? min_size(aaaa->naddrs, PH_MX_ADDRS_MAX) : 0;
    size_t c4 = a->status == PH_DNS_OK ? min_size(a->naddrs, PH_MX_ADDRS_MAX) : 0;
    size_t take4 = min_size(c4, PH_MX_ADDRS_MAX / 2);
    size_t take6 = min_size(c6, PH_MX_ADDRS_MAX - take4);
    take4 = min_size(c4, PH_MX_ADDRS_MAX - take6);
    h->naddrs = 0;
    for (size_t i = 0; i < take6; i++)
        h->addrs[h->naddrs++] = aaaa->addrs[i];
    for (size_t i = 0; i < take4; i++)
        h->addrs[h->naddrs++] = a->addrs[i];
    h->secure = aaaa->secure && a->secure;
}

/* The verdict when no host has an address. */
static void no_host_left(const char *domain, ph_mx_result *res, bool temporary,
                         ph_dns_status why, bool implicit_nx)
{
    if (implicit_nx)
        set_verdict(res, PH_MX_NXDOMAIN, "domain not found");
    else if (temporary)
        set_verdict(res, PH_MX_TEMPORARY, "DNS lookup of the mail exchanger address for %s "
                    "failed: %s", domain, ph_dns_status_name(why));
    else if (res->implicit_mx)
        set_verdict(res, PH_MX_NO_ADDRESS, "%s has no MX and no address records", domain);
    else
        set_verdict(res, PH_MX_NO_ADDRESS, "no mail exchanger of %s has an address", domain);
}

void ph_mx_plan_addresses(const char *domain, ph_mx_result *res, const ph_mx_addr_answer *aaaa,
                          const ph_mx_addr_answer *a)
{
    size_t kept = 0;
    bool temporary = false;
    ph_dns_status why = PH_DNS_OK;
    for (size_t i = 0; i < res->nhosts; i++) {
        fill_addresses(&res->hosts[i], &aaaa[i], &a[i]);
        if (res->hosts[i].naddrs > 0) {
            if (kept != i)
                res->hosts[kept] = res->hosts[i];
            kept++;
            continue;
        }
        res->nskipped++;
        ph_dns_status s = ph_dns_status_is_temporary(aaaa[i].status) ? aaaa[i].status
                                                                      : a[i].status;
        if (ph_dns_status_is_temporary(s) && !temporary) {
            temporary = true;
            why = s;
        }
    }
    bool implicit_nx = res->implicit_mx && res->nhosts == 1 &&
                       aaaa[0].status == PH_DNS_NXDOMAIN && a[0].status == PH_DNS_NXDOMAIN;
    res->nhosts = kept;
    if (kept == 0) {
        no_host_left(domain, res, temporary, why, implicit_nx);
        return;
    }
    set_verdict(res, PH_MX_OK, "%zu mail exchanger(s) with addresses for %s", kept, domain);
}
