/*
 * idna.h - the DNS form of a domain name: ASCII names as they are, UTF-8 names (RFC 6531 mail
 * to an internationalized domain) as A-labels ("bücher.example" -> "xn--bcher-kva.example"),
 * IDNA 2008 with the UTS #46 non-transitional mapping, as browsers and Postfix do (libidn2).
 */
#ifndef POSTHORN_DNS_IDNA_H
#define POSTHORN_DNS_IDNA_H

#include <stddef.h>

/* Writes the DNS form of name into out[size]. 0, or -EINVAL (not a valid IDN, or too long for
 * out). */
int ph_dns_name_to_ascii(const char *name, char *out, size_t size);

#endif
