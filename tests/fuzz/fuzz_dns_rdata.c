/*
 * fuzz_dns_rdata.c - libFuzzer driver for the DNS rdata parsers (src/dns/rdata.c) and the pure
 * MX rules fed by them (src/dns/mx_plan.c).
 *
 * Each input is used three ways:
 *   1. as one rdata of each type (A, AAAA, MX, TXT): never a crash; an accepted MX name must
 *      encode back to exactly the bytes it came from (text and wire agree), with only host-name
 *      characters, at most 253 characters, no empty label;
 *   2. as a list of MX records (each a length byte then that many rdata bytes, in a heap copy of
 *      its own so ASan sees any over-read), planned with an RNG fed from the input, then given
 *      made-up A/AAAA answers: the result must obey the rules (order by preference, no duplicate
 *      or unusable target, caps, AAAA before A, a verdict with a code and status);
 *   3. as a domain string for ph_mx_plan_domain.
 * Any broken invariant calls abort(), which libFuzzer reports as a crash with the input saved.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dns/mx_plan.h"
#include "dns/rdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define RECORDS_MAX 300

/* Encodes a text name back to wire format; returns its length (0 for an invalid name). */
static size_t encode(const char *text, uint8_t *out)
{
    if (strcmp(text, ".") == 0) {
        out[0] = 0;
        return 1;
    }
    size_t off = 0;
    const char *p = text;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        CHECK(n >= 1 && n <= 63);
        out[off++] = (uint8_t)n;
        memcpy(out + off, p, n);
        off += n;
        p += n;
        if (*p == '.')
            p++;
        CHECK(dot == NULL || *p != '\0'); /* no trailing dot, no empty label */
    }
    out[off++] = 0;
    return off;
}

static void check_mx_roundtrip(const uint8_t *data, size_t size, const ph_dns_record *r)
{
    const char *name = r->u.mx.exchange;
    CHECK(strlen(name) <= PH_DNS_NAME_MAX && name[0] != '\0');
    for (const char *c = name; *c; c++)
        CHECK((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.');
    uint8_t wire[PH_DNS_NAME_WIRE_MAX + 1];
    size_t n = encode(name, wire);
    CHECK(n <= PH_DNS_NAME_WIRE_MAX && n == size - 2);
    CHECK(memcmp(wire, data + 2, n) == 0);
    CHECK(r->u.mx.preference == (uint16_t)(data[0] << 8 | data[1]));
}

static void single_records(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    memcpy(copy, data, size);
    ph_dns_record r;
    static const uint16_t types[] = {PH_DNS_TYPE_A, PH_DNS_TYPE_AAAA, PH_DNS_TYPE_MX,
                                     PH_DNS_TYPE_TXT};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int rc = ph_dns_parse_record(types[i], copy, size, &r);
        CHECK(rc == 0 || rc == -EBADMSG);
        CHECK(r.type == types[i] && r.rdata == copy && r.rdlen == size);
        if (types[i] == PH_DNS_TYPE_A)
            CHECK((rc == 0) == (size == 4));
        if (types[i] == PH_DNS_TYPE_AAAA)
            CHECK((rc == 0) == (size == 16));
        if (types[i] == PH_DNS_TYPE_MX && rc == 0)
            check_mx_roundtrip(copy, size, &r);
    }
    free(copy);
}

typedef struct byte_rng {
    const uint8_t *p;
    size_t n, i;
} byte_rng;

static size_t rng_from_input(void *arg, size_t bound)
{
    byte_rng *r = arg;
    size_t v = r->n ? r->p[r->i++ % r->n] : 0;
    return v % bound;
}

static void check_exchangers(const ph_mx_result *res, bool final)
{
    CHECK(res->nhosts <= PH_MX_HOSTS_MAX && res->status && res->smtp_code >= 250);
    CHECK(final == (res->verdict != PH_MX_OK));
    for (size_t i = 0; i < res->nhosts; i++) {
        const ph_mx_host *h = &res->hosts[i];
        CHECK(strcmp(h->name, ".") != 0 && !ph_mx_plan_numeric_name(h->name));
        if (i > 0)
            CHECK(res->hosts[i - 1].preference <= h->preference);
        for (size_t j = 0; j < i; j++)
            CHECK(strcasecmp(res->hosts[j].name, h->name) != 0);
    }
}

/* Made-up address answers from the input: host i gets (byte % 3) AAAA and (byte / 3 % 3) A. */
static void check_addresses(ph_mx_result *res, const uint8_t *data, size_t size)
{
    static ph_mx_addr_answer aaaa[PH_MX_HOSTS_MAX], a[PH_MX_HOSTS_MAX];
    for (size_t i = 0; i < res->nhosts; i++) {
        uint8_t b = size ? data[i % size] : 0;
        memset(&aaaa[i], 0, sizeof(aaaa[i]));
        memset(&a[i], 0, sizeof(a[i]));
        aaaa[i].status = (ph_dns_status)(b % 8);
        a[i].status = (ph_dns_status)((b >> 3) % 8);
        aaaa[i].naddrs = aaaa[i].status == PH_DNS_OK ? b % 3 + 1 : 0;
        a[i].naddrs = a[i].status == PH_DNS_OK ? b / 3 % 3 + 1 : 0;
        for (size_t k = 0; k < aaaa[i].naddrs; k++)
            aaaa[i].addrs[k].family = AF_INET6;
        for (size_t k = 0; k < a[i].naddrs; k++)
            a[i].addrs[k].family = AF_INET;
    }
    size_t before = res->nhosts;
    ph_mx_plan_addresses("fuzz.example", res, aaaa, a);
    CHECK(res->nhosts <= before);
    CHECK((res->verdict == PH_MX_OK) == (res->nhosts > 0));
    for (size_t i = 0; i < res->nhosts; i++) {
        const ph_mx_host *h = &res->hosts[i];
        CHECK(h->naddrs >= 1 && h->naddrs <= PH_MX_ADDRS_MAX);
        for (size_t k = 1; k < h->naddrs; k++)
            CHECK(!(h->addrs[k - 1].family == AF_INET && h->addrs[k].family == AF_INET6));
    }
}

static void record_list(const uint8_t *data, size_t size)
{
    static ph_dns_record recs[RECORDS_MAX];
    uint8_t *copies[RECORDS_MAX];
    size_t n = 0, off = 0, malformed = 0, ncopies = 0;
    while (off < size && ncopies < RECORDS_MAX) {
        size_t len = data[off++];
        if (len > size - off)
            len = size - off;
        uint8_t *copy = malloc(len ? len : 1);
        CHECK(copy);
        memcpy(copy, data + off, len);
        copies[ncopies++] = copy;
        if (ph_dns_parse_record(PH_DNS_TYPE_MX, copy, len, &recs[n]) == 0)
            n++;
        else
            malformed++;
        off += len;
    }
    ph_dns_answer ans = {.status = n ? PH_DNS_OK : PH_DNS_MALFORMED, .qtype = PH_DNS_TYPE_MX,
                         .records = recs, .nrecords = n, .nmalformed = malformed};
    byte_rng rng = {data, size, 0};
    ph_mx_result res;
    bool final = ph_mx_plan_exchangers("fuzz.example", &ans, rng_from_input, &rng, &res);
    check_exchangers(&res, final);
    if (res.verdict == PH_MX_NULL_MX)
        CHECK(n == 1 && malformed == 0 && strcmp(recs[0].u.mx.exchange, ".") == 0);
    if (!final)
        check_addresses(&res, data, size);
    for (size_t i = 0; i < ncopies; i++)
        free(copies[i]);
}

static void domain_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    ph_mx_result res;
    char name[PH_DNS_NAME_MAX + 1];
    int rc = ph_mx_plan_domain(s, &res, name, sizeof(name));
    CHECK(rc >= -1 && rc <= 1);
    if (rc == 0)
        CHECK(strlen(name) >= 1 && strlen(name) <= PH_DNS_NAME_MAX);
    if (rc == 1 && res.verdict == PH_MX_OK)
        CHECK(res.literal && res.nhosts == 1 && res.hosts[0].naddrs == 1);
    if (rc != 0 && res.verdict != PH_MX_OK)
        CHECK(res.verdict == PH_MX_BAD_DOMAIN && res.permanent);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    single_records(data, size);
    record_list(data, size);
    domain_string(data, size);
    return 0;
}
