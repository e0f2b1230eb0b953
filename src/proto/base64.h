/*
 * base64.h - RFC 4648 section 4 base64 (the standard alphabet, with padding), as SMTP AUTH
 * (RFC 4954) carries it. Pure: no allocation, no state; the caller owns both buffers.
 *
 * Decoding is strict, because a SASL response that two implementations read differently is a
 * security problem, not a convenience: no whitespace or line breaks, the length must be a
 * multiple of 4, '=' only as one or two final pad characters, and the unused bits before the
 * padding must be zero (RFC 4648 3.5: "xx==" with non-zero low bits is rejected), so every
 * accepted text is the one canonical encoding of its data.
 */
#ifndef POSTHORN_PROTO_BASE64_H
#define POSTHORN_PROTO_BASE64_H

#include <stddef.h>

/* Characters needed to encode n octets (without the terminating NUL). */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/* Most octets a text of n characters can decode to. */
#define BASE64_DECODED_MAX(n) (((n) / 4) * 3)

enum {
    BASE64_ERR_SYNTAX = -1, /* not strict, canonical base64 */
    BASE64_ERR_SPACE = -2,  /* the output buffer is too small */
};

/*
 * Encodes src[0..len) into out and NUL-terminates it. cap counts the NUL, so it must be at
 * least BASE64_ENCODED_LEN(len) + 1. Returns the encoded length (excluding the NUL), or
 * BASE64_ERR_SPACE with out untouched. src may be NULL when len is 0.
 */
long base64_encode(const void *src, size_t len, char *out, size_t cap);

/*
 * Decodes src[0..len) (no NUL needed) into out[0..cap). Returns the decoded length, or
 * BASE64_ERR_SYNTAX / BASE64_ERR_SPACE. After the multiple-of-4 test, space is checked from
 * the length alone before anything is written, so a text too long for cap is BASE64_ERR_SPACE
 * even if its characters are also malformed.
 * On BASE64_ERR_SYNTAX, out may hold partial (secret) output: callers decoding secrets wipe it.
 * The empty text decodes to 0 octets.
 */
long base64_decode(const char *src, size_t len, void *out, size_t cap);

#endif
