/*
 * envelope_text.c - how one value of an envelope file is written and read back (the rules are
 * in envelope.h): the output buffer, %XX escaping with its UTF-8 check, canonical unescaping,
 * paths, decimal and hex numbers, and the parser's "line N: reason: "excerpt"" error report.
 *
 * Separate from envelope.c, which knows the fields and their order, because these rules are the
 * same for every field and are where byte-level mistakes would hide: one place for them keeps
 * serialize and parse exactly inverse. The two share envelope_internal.h. Pure: no I/O, clock
 * or globals; decoded strings are malloc'd and belong to the caller.
 */
#include "queue/envelope_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define EXCERPT_MAX 60 /* input bytes of the offending line quoted in an error */
#define HEX_UPPER "0123456789ABCDEF"

/* --- output buffer --------------------------------------------------------------------------- */

bool ph_env_ob_grow(obuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (n <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (np == NULL) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

/* --- escaping -------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or > U+10FFFF), or
 * 0 when s does not start one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo, hi, len, min2, max2; } lead[] = {
        {0xC2, 0xDF, 2, 0x80, 0xBF}, {0xE0, 0xE0, 3, 0xA0, 0xBF}, {0xE1, 0xEC, 3, 0x80, 0xBF},
        {0xED, 0xED, 3, 0x80, 0x9F}, {0xEE, 0xEF, 3, 0x80, 0xBF}, {0xF0, 0xF0, 4, 0x90, 0xBF},
        {0xF1, 0xF3, 4, 0x80, 0xBF}, {0xF4, 0xF4, 4, 0x80, 0x8F},
    };
    for (size_t i = 0; i < sizeof(lead) / sizeof(lead[0]); i++) {
        if (s[0] < lead[i].lo || s[0] > lead[i].hi)
            continue;
        size_t k = lead[i].len;
        if (n < k || s[1] < lead[i].min2 || s[1] > lead[i].max2)
            return 0;
        for (size_t j = 2; j < k; j++)
            if (s[j] < 0x80 || s[j] > 0xBF)
                return 0;
        return k;
    }
    return 0;
}

/* Appends s[0..n) escaped (see envelope.h); `token` escapes spaces too. */
void ph_env_ob_escape(obuf *b, const char *s, size_t n, bool token)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = u[i] >= 0x80 ? utf8_len(u + i, n - i) : 1;
        bool c1 = k == 2 && u[i] == 0xC2 && u[i + 1] < 0xA0;
        bool esc = k == 0 || c1 || u[i] < 0x20 || u[i] == 0x7F || u[i] == '%' ||
                   (token && u[i] == ' ');
        if (!esc) {
            ob_put(b, u + i, k);
            i += k;
            continue;
        }
        char e[3] = {'%', HEX_UPPER[u[i] >> 4], HEX_UPPER[u[i] & 0xF]};
        ob_put(b, e, 3);
        i++;
    }
}

void ph_env_put_path(obuf *b, const char *addr)
{
    ob_putc(b, '<');
    ph_env_ob_escape(b, addr, strlen(addr), true);
    ob_putc(b, '>');
}

/* --- the parser's error report --------------------------------------------------------------- */

/* Formats "line N: reason: "excerpt"" into p->err; returns -EINVAL. */
int ph_env_fail(parser *p, const char *fmt, ...)
{
    if (p->err == NULL || p->errlen == 0)
        return -EINVAL;
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    obuf ex = {0};
    size_t n = p->linelen < EXCERPT_MAX ? p->linelen : EXCERPT_MAX;
    ph_env_ob_escape(&ex, p->line, n, false);
    if (n < p->linelen)
        ob_puts(&ex, "...");
    snprintf(p->err, p->errlen, "line %zu: %s: \"%.*s\"", p->lineno, reason,
             ex.oom ? 0 : (int)ex.len, ex.p ? ex.p : "");
    free(ex.p);
    return -EINVAL;
}

/* --- unescaping ------------------------------------------------------------------------------ */

/* The value of hex digit c among `digits` (upper- or lowercase set), or -1. */
static int hex_digit(char c, const char *digits)
{
    const char *d = memchr(digits, c, 16);
    return d ? (int)(d - digits) : -1;
}

/* Undoes the escaping of s[0..n) into d (room for n + 1 bytes); its length goes to *dn. */
static int unescape(parser *p, const char *s, size_t n, bool token, char *d, size_t *dn)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = n - i >= 3 ? hex_digit(s[i + 1], HEX_UPPER) : -1;
            int lo = n - i >= 3 ? hex_digit(s[i + 2], HEX_UPPER) : -1;
            if (hi < 0 || lo < 0)
                return ph_env_fail(p, "bad escape (want %%XX, uppercase hex)");
            if (hi == 0 && lo == 0)
                return ph_env_fail(p, "escaped NUL byte");
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (token && c == ' ') {
            return ph_env_fail(p, "unescaped space");
        } else if (c < 0x20 || c == 0x7F) {
            return ph_env_fail(p, "unescaped control byte 0x%02X", c);
        }
        d[k++] = (char)c;
    }
    d[k] = '\0';
    *dn = k;
    return 0;
}

/* Decodes the escaped value s[0..n) into a new string (*out), insisting on the canonical
 * encoding: re-escaping must give s back. 0, -EINVAL (reported) or -ENOMEM. */
int ph_env_decode(parser *p, const char *s, size_t n, bool token, char **out)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return -ENOMEM;
    size_t dn = 0;
    int rc = unescape(p, s, n, token, d, &dn);
    if (rc == 0) {
        p->scratch.len = 0;
        ph_env_ob_escape(&p->scratch, d, dn, token);
        if (p->scratch.oom)
            rc = -ENOMEM;
        else if (p->scratch.len != n || memcmp(p->scratch.p, s, n) != 0)
            rc = ph_env_fail(p, "not canonically escaped (raw invalid UTF-8 or C1 control, or a "
                             "needless escape)");
    }
    if (rc != 0) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* Decodes the path token "<...>" into *out. */
int ph_env_decode_path(parser *p, const char *s, size_t n, char **out)
{
    if (n < 2 || s[0] != '<' || s[n - 1] != '>')
        return ph_env_fail(p, "malformed path (want <address>)");
    return ph_env_decode(p, s + 1, n - 2, true, out);
}

/* --- numbers --------------------------------------------------------------------------------- */

void ph_env_ob_putu(obuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    ob_put(b, tmp, (size_t)n);
}

/* Canonical decimal s[0..n) (no sign, no leading zero) not above max. */
bool ph_env_num_parse(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    if (n == 0 || (s[0] == '0' && n > 1))
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (max - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

bool ph_env_parse_hex64(const char *s, size_t n, uint64_t *v)
{
    if (n != 16)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_digit(s[i], "0123456789abcdef");
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return true;
}
