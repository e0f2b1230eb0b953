/*
 * rdata.c - parsers for the rdata of A, AAAA and MX records and for uncompressed wire-format
 * names (see rdata.h for the rules). Every read is bounds-checked against len first; malformed
 * input is -EBADMSG.
 */
#include "dns/rdata.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define LABEL_MAX 63
#define LABEL_TYPE_MASK 0xC0 /* 00 = normal label; 11 = compression pointer; 01/10 = extended */

static bool host_label_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Appends one label (already checked) and its separating dot to out at *pos. */
static int append_label(const uint8_t *label, size_t n, char *out, size_t outsize, size_t *pos)
{
    size_t need = (*pos > 0 ? 1 : 0) + n;
    if (*pos + need + 1 > outsize) /* + NUL */
        return -EINVAL;
    if (*pos > 0)
        out[(*pos)++] = '.';
    memcpy(out + *pos, label, n);
    *pos += n;
    out[*pos] = '\0';
    return 0;
}

int ph_dns_name_from_wire(const uint8_t *wire, size_t len, size_t *consumed, char *out,
                          size_t outsize)
{
    if (!wire || !consumed || !out || outsize < 2)
        return -EINVAL;
    size_t off = 0, pos = 0;
    out[0] = '\0';
    for (;;) {
        if (off >= len)
            return -EBADMSG; /* the name runs past the rdata: no root label */
        uint8_t n = wire[off];
        if ((n & LABEL_TYPE_MASK) != 0)
            return -EBADMSG; /* compression pointer or extended label type */
        /* this label, plus the root label still to come, must fit in 255 octets */
        if (off + 1 + n + (n ? 1 : 0) > PH_DNS_NAME_WIRE_MAX)
            return -EBADMSG;
        if (n == 0)
            break;
        if (off + 1 + n > len)
            return -EBADMSG;
        for (size_t i = 0; i < n; i++)
            if (!host_label_byte(wire[off + 1 + i]))
                return -EBADMSG;
        int rc = append_label(wire + off + 1, n, out, outsize, &pos);
        if (rc < 0)
            return rc;
        off += 1 + (size_t)n;
    }
    if (pos == 0)
        snprintf(out, outsize, ".");
    *consumed = off + 1;
    return 0;
}

static int parse_addr(int family, size_t want, const uint8_t *rdata, size_t rdlen,
                      ph_dns_record *out)
{
    if (rdlen != want)
        return -EBADMSG;
    memset(&out->u.addr, 0, sizeof(out->u.addr));
    out->u.addr.family = family;
    memcpy(out->u.addr.bytes, rdata, want);
    return 0;
}

static int parse_mx(const uint8_t *rdata, size_t rdlen, ph_dns_record *out)
{
    if (rdlen < 3) /* preference + at least the root label */
        return -EBADMSG;
    ph_dns_mx *mx = &out->u.mx;
    mx->preference = (uint16_t)(rdata[0] << 8 | rdata[1]);
    size_t used = 0;
    int rc = ph_dns_name_from_wire(rdata + 2, rdlen - 2, &used, mx->exchange,
                                   sizeof(mx->exchange));
    if (rc == 0 && used != rdlen - 2)
        rc = -EBADMSG; /* trailing bytes: not an MX rdata we understand */
    if (rc < 0) {
        memset(mx, 0, sizeof(*mx));
        return rc == -EINVAL ? -EBADMSG : rc;
    }
    return 0;
}

int ph_dns_parse_record(uint16_t type, const uint8_t *rdata, size_t rdlen, ph_dns_record *out)
{
    if (!out || (!rdata && rdlen > 0))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->type = type;
    out->rdata = rdata;
    out->rdlen = rdlen;
    switch (type) {
    case PH_DNS_TYPE_A:
        return parse_addr(AF_INET, 4, rdata, rdlen, out);
    case PH_DNS_TYPE_AAAA:
        return parse_addr(AF_INET6, 16, rdata, rdlen, out);
    case PH_DNS_TYPE_MX:
        return parse_mx(rdata, rdlen, out);
    default:
        return 0;
    }
}

const char *ph_dns_status_name(ph_dns_status status)
{
    static const char *const names[] = {
        [PH_DNS_OK] = "NOERROR",       [PH_DNS_NODATA] = "NODATA",
        [PH_DNS_NXDOMAIN] = "NXDOMAIN", [PH_DNS_SERVFAIL] = "SERVFAIL",
        [PH_DNS_BOGUS] = "DNSSEC validation failure", [PH_DNS_TIMEOUT] = "timeout",
        [PH_DNS_MALFORMED] = "malformed reply", [PH_DNS_ERROR] = "resolver error",
    };
    if ((size_t)status >= sizeof(names) / sizeof(names[0]) || !names[status])
        return "unknown";
    return names[status];
}

bool ph_dns_status_is_temporary(ph_dns_status status)
{
    return status != PH_DNS_OK && status != PH_DNS_NODATA && status != PH_DNS_NXDOMAIN;
}
