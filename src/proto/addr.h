/*
 * addr.h - RFC 5321 4.1.2 path and mailbox syntax, with RFC 6531 (SMTPUTF8) UTF-8 support:
 * dot-string and quoted-string local parts, domains, address literals (IPv4, IPv6, general),
 * source routes (accepted and dropped) and the null path. Pure; never allocates.
 */
#ifndef POSTHORN_PROTO_ADDR_H
#define POSTHORN_PROTO_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256    /* RFC 5321 4.5.3.1.3, including the angle brackets */

typedef struct smtp_path {
    char mailbox[SMTP_PATH_MAX + 1]; /* "local@domain" as written (quotes kept), "" if null */
    size_t len;
    size_t at;        /* index of the '@' separating local part and domain; len if none */
    bool is_null;     /* "<>" */
    bool utf8;        /* contains bytes >= 0x80 (valid UTF-8) */
} smtp_path;

/* Flags for smtp_parse_path. */
#define SMTP_PATH_ALLOW_NULL       0x1 /* <> is valid (reverse-path) */
#define SMTP_PATH_ALLOW_POSTMASTER 0x2 /* <Postmaster> without a domain is valid */

/*
 * Parses a path starting at s[0] == '<'. On success returns 0, fills *out and sets *consumed to
 * the bytes used (through '>'). Returns -1 on any syntax error or over-long part.
 * Accepts "<@a.example,@b.example:user@c.example>" and drops the source route.
 */
int smtp_parse_path(const char *s, size_t len, unsigned flags, smtp_path *out, size_t *consumed);

/* RFC 5321 Domain (sub-domains of let-dig / ldh-str) or, if utf8, U-label bytes too. */
bool smtp_valid_domain(const char *s, size_t len, bool utf8);

/* RFC 5321 address-literal including the brackets: IPv4, "IPv6:" forms, General-address-literal */
bool smtp_valid_address_literal(const char *s, size_t len);

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool smtp_valid_utf8(const char *s, size_t len);

#endif
