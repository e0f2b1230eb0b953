/*
 * base64.c - RFC 4648 base64 encode and strict decode (see base64.h). Owns nothing; fails
 * only by return value (BASE64_ERR_SYNTAX, BASE64_ERR_SPACE).
 *
 * The decoder maps characters with arithmetic instead of a lookup table: the data decoded here
 * are passwords, and a table indexed by secret bytes leaks them through the cache. Only
 * validity (which the reply reveals anyway) and padding positions steer branches.
 */
#include "proto/base64.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* All ones if lo <= c <= hi, else zero; c, lo and hi are octets, so the differences fit. */
static int32_t in_range(int32_t c, int32_t lo, int32_t hi)
{
    /* (lo - 1 - c) is negative exactly when c >= lo, (c - hi - 1) when c <= hi; the sign bit
     * of their AND is set only if both are, and the arithmetic shift (what gcc and clang do
     * for signed operands) spreads it over the word. */
    return ((lo - 1 - c) & (c - hi - 1)) >> 31;
}

/* The 6-bit value of an alphabet character, or -1 (also for '='). */
static int32_t char_value(unsigned char ch)
{
    int32_t c = ch, v = -1;
    v += in_range(c, 'A', 'Z') & (c - 'A' + 1);
    v += in_range(c, 'a', 'z') & (c - 'a' + 26 + 1);
    v += in_range(c, '0', '9') & (c - '0' + 52 + 1);
    v += in_range(c, '+', '+') & (62 + 1);
    v += in_range(c, '/', '/') & (63 + 1);
    return v;
}

long base64_encode(const void *src, size_t len, char *out, size_t cap)
{
    /* The first test keeps both BASE64_ENCODED_LEN and the long result from overflowing. */
    if (len > (size_t)LONG_MAX / 4 * 3 - 3 || cap < BASE64_ENCODED_LEN(len) + 1)
        return BASE64_ERR_SPACE;
    const unsigned char *s = src;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t rest = len - i;
        uint32_t w = (uint32_t)s[i] << 16;
        if (rest > 1)
            w |= (uint32_t)s[i + 1] << 8;
        if (rest > 2)
            w |= s[i + 2];
        out[o++] = alphabet[w >> 18];
        out[o++] = alphabet[(w >> 12) & 63];
        out[o++] = rest > 1 ? alphabet[(w >> 6) & 63] : '=';
        out[o++] = rest > 2 ? alphabet[w & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}

/* Number of pad characters a text of len (a non-zero multiple of 4) ends with: 0, 1 or 2.
 * A third '=' is caught later as an invalid data character. */
static size_t pad_count(const char *src, size_t len)
{
    if (src[len - 1] != '=')
        return 0;
    return src[len - 2] == '=' ? 2 : 1;
}

long base64_decode(const char *src, size_t len, void *out, size_t cap)
{
    if (len % 4 != 0)
        return BASE64_ERR_SYNTAX;
    if (len == 0)
        return 0;
    size_t pads = pad_count(src, len);
    size_t n = len / 4 * 3 - pads;
    if (n > cap || len > (size_t)LONG_MAX)
        return BASE64_ERR_SPACE;
    unsigned char *d = out;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        size_t data = last ? 4 - pads : 4; /* 2, 3 or 4 data characters */
        int32_t acc = 0, bad = 0;
        for (size_t k = 0; k < 4; k++) {
            int32_t v = k < data ? char_value((unsigned char)src[i + k]) : 0;
            bad |= v; /* any -1 sets the sign bit */
            acc = (acc << 6) | (v & 63);
        }
        /* Unused bits before the padding must be zero: the one canonical encoding (4648 3.5). */
        if (bad < 0 || (data == 2 && (acc & 0xffff)) || (data == 3 && (acc & 0xff)))
            return BASE64_ERR_SYNTAX;
        d[o++] = (unsigned char)(acc >> 16);
        if (data > 2)
            d[o++] = (unsigned char)(acc >> 8);
        if (data > 3)
            d[o++] = (unsigned char)acc;
    }
    return (long)o;
}
