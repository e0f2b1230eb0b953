/*
 * rdata.h - DNS records and answers as the rest of Posthorn sees them, and the pure parsers
 * that build records from the rdata libunbound hands out. No sockets, no libunbound, no
 * allocation: safe to fuzz and to unit-test on bytes.
 *
 * Where the bytes come from: libunbound's ub_result->data[i] is the rdata of one record in
 * wire format without its RDLENGTH prefix (unbound.h: "network order DNS rdata items"). It is
 * copied out of unbound's packed RRset, in which domain names are stored uncompressed (unbound
 * decompresses names when it parses a reply; a compression pointer would be meaningless once
 * the record is cut out of its packet). We rely on neither claim: the parsers check every
 * length against the bytes actually present, and a compression pointer, an extended label
 * type, a label over 63 octets, a name over 255 octets, a byte after the end of the rdata or a
 * byte missing from it makes the record malformed (-EBADMSG). Never a crash, never a read past
 * len.
 *
 * Names are turned into text only when every label is a host-name label: letters, digits, '-'
 * and '_' (underscore for service labels such as _mta-sts). Anything else - dots, spaces,
 * control or 8-bit bytes inside a label - would need escapes that no caller wants in an MX
 * target, so such a name is malformed too. Text names have no trailing dot, except the root,
 * which is ".". Case is kept as published; compare with strcasecmp.
 *
 * Errors: 0 or -EBADMSG (malformed) or -EINVAL (a NULL argument, an output buffer too small).
 */
#ifndef POSTHORN_DNS_RDATA_H
#define POSTHORN_DNS_RDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PH_DNS_NAME_WIRE_MAX 255 /* octets of a name in wire format, root label included */
#define PH_DNS_NAME_MAX 253      /* characters of a name in text, without a trailing dot */

/* The record types Posthorn parses; any other type is kept as raw rdata. */
enum {
    PH_DNS_TYPE_A = 1,
    PH_DNS_TYPE_CNAME = 5,
    PH_DNS_TYPE_MX = 15,
    PH_DNS_TYPE_TXT = 16,
    PH_DNS_TYPE_AAAA = 28,
};

/* What became of one query. */
typedef enum ph_dns_status {
    PH_DNS_OK,        /* NOERROR with at least one well-formed record of the asked type */
    PH_DNS_NODATA,    /* NOERROR: the name exists but has no record of that type */
    PH_DNS_NXDOMAIN,  /* the name does not exist */
    PH_DNS_SERVFAIL,  /* SERVFAIL, REFUSED or another error rcode from upstream */
    PH_DNS_BOGUS,     /* DNSSEC validation failed (libunbound answers SERVFAIL + bogus) */
    PH_DNS_TIMEOUT,   /* no answer within the resolver's per-query timeout */
    PH_DNS_MALFORMED, /* records came back, but not one of them parsed */
    PH_DNS_ERROR,     /* a local failure: libunbound error, out of memory */
} ph_dns_status;

/* An address from an A (family AF_INET, 4 bytes used) or AAAA (AF_INET6, 16 bytes) record. */
typedef struct ph_dns_addr {
    int family;
    uint8_t bytes[16];
} ph_dns_addr;

/* An MX record: exchange is "." for the root (the null MX of RFC 7505). */
typedef struct ph_dns_mx {
    uint16_t preference;
    char exchange[PH_DNS_NAME_MAX + 1];
} ph_dns_mx;

/* One record. rdata/rdlen always point at the raw bytes (borrowed from the answer); the union
 * member matching type is filled for A/AAAA (addr) and MX (mx). */
typedef struct ph_dns_record {
    uint16_t type;
    const uint8_t *rdata;
    size_t rdlen;
    union {
        ph_dns_addr addr;
        ph_dns_mx mx;
    } u;
} ph_dns_record;

/* One answer, as the resolver's callback sees it. Everything is borrowed and valid only during
 * the callback; copy what you keep. */
typedef struct ph_dns_answer {
    ph_dns_status status;
    uint16_t qtype;
    int rcode;              /* the DNS RCODE, or -1 when no answer was had (timeout, error) */
    bool secure;            /* DNSSEC-validated (data or its proven absence) */
    bool bogus;             /* DNSSEC validation failed */
    const char *why_bogus;  /* libunbound's reason when bogus, else NULL */
    const char *canonname;  /* the final name after CNAMEs when one was followed, else NULL */
    uint32_t ttl;
    size_t nrecords;        /* well-formed records only */
    const ph_dns_record *records;
    size_t nmalformed;      /* records dropped because their rdata did not parse */
} ph_dns_answer;

/*
 * Converts the uncompressed wire-format name at wire[0..len) to text in out (outsize >= 2;
 * PH_DNS_NAME_MAX + 1 always suffices). *consumed gets the octets the name used (the rest of
 * wire is left to the caller). 0, -EBADMSG or -EINVAL (outsize too small for this name).
 */
int ph_dns_name_from_wire(const uint8_t *wire, size_t len, size_t *consumed, char *out,
                          size_t outsize);

/*
 * Parses one record of the given type from its rdata into *out (type, rdata, rdlen always set;
 * u.addr for A/AAAA, u.mx for MX). A must be exactly 4 octets, AAAA exactly 16, MX a 16-bit
 * preference followed by a name that ends exactly at rdlen. Other types are accepted as raw.
 * 0 or -EBADMSG (out then holds only type/rdata/rdlen) or -EINVAL (NULL out, or rdata NULL with
 * rdlen > 0).
 */
int ph_dns_parse_record(uint16_t type, const uint8_t *rdata, size_t rdlen, ph_dns_record *out);

/* The name of a status for logs and replies ("SERVFAIL", "timeout", ...); never NULL. */
const char *ph_dns_status_name(ph_dns_status status);

/* True for a status that may change if asked again later (SERVFAIL, BOGUS, TIMEOUT, MALFORMED,
 * ERROR); false for OK, NODATA and NXDOMAIN, which are answers. */
bool ph_dns_status_is_temporary(ph_dns_status status);

#endif
