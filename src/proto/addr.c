/*
 * addr.c - RFC 5321 4.1.2 path and mailbox syntax with RFC 6531 UTF-8 (see addr.h).
 *
 * Recursive-descent scanners over a borrowed (pointer, length) span: nothing here reads past
 * len, needs a NUL terminator, allocates or keeps state. The only output is the caller's
 * smtp_path. Every failure - bad syntax, invalid UTF-8, a part over its RFC 5321 4.5.3.1
 * length limit - is reported as -1 / false; nothing is "repaired".
 *
 * Scanners are named scan_*: they return the number of bytes that form the element at the
 * start of the span, or 0 if there is none (no element here is ever empty except a
 * quoted-string's content, and that is delimited by its quotes).
 */
#include "proto/addr.h"
#include "proto/text.h"

#include <string.h>

#define SMTP_LABEL_MAX 63 /* RFC 1035 2.3.4: applies to ASCII labels (A-labels) */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Let-dig, widened by RFC 6531 3.3 to the bytes of U-labels (checked as UTF-8 separately). */
static bool is_letdig(unsigned char c, bool utf8)
{
    return is_alpha(c) || is_digit(c) || (utf8 && c >= 0x80);
}

/* RFC 5322 atext (as used by RFC 5321 Atom), plus UTF8-non-ascii (RFC 6531 3.3). */
static bool is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c >= 0x80 || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* --- UTF-8 -------------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s, 0 if it is malformed (RFC 3629 4 table). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates D800-DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* no overlongs */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    } else
        return 0; /* continuation byte, C0/C1 overlong lead, or F5-FF */
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

bool smtp_valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static bool has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* --- domains -------------------------------------------------------------------------------- */

/* sub-domain = Let-dig [Ldh-str]: letters/digits/hyphens, not starting or ending in '-'. */
static bool valid_label(const unsigned char *s, size_t n, bool utf8)
{
    if (n == 0 || !is_letdig(s[0], utf8) || !is_letdig(s[n - 1], utf8))
        return false;
    bool ascii = true;
    for (size_t i = 0; i < n; i++) {
        if (!is_letdig(s[i], utf8) && s[i] != '-')
            return false;
        ascii = ascii && s[i] < 0x80;
    }
    /* A U-label's octet length says little about its A-label's, so only ASCII labels are
     * held to the DNS 63-octet limit here; the domain's 255 limit still bounds them. */
    return !ascii || n <= SMTP_LABEL_MAX;
}

bool smtp_valid_domain(const char *s, size_t len, bool utf8)
{
    if (len == 0 || len > SMTP_DOMAIN_MAX)
        return false;
    if (utf8 && !smtp_valid_utf8(s, len))
        return false;
    const unsigned char *p = (const unsigned char *)s;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '.') {
            if (!valid_label(p + start, i - start, utf8))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* --- address literals ------------------------------------------------------------------------- */

/* IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0-255. */
static bool valid_ipv4(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        unsigned v = 0;
        size_t d = 0;
        while (i < len && d < 4 && is_digit((unsigned char)s[i])) {
            v = v * 10 + (unsigned)(s[i++] - '0');
            d++;
        }
        if (d == 0 || d > 3 || v > 255)
            return false;
    }
    return i == len;
}

/*
 * A run of ':'-separated groups, each IPv6-hex (1*4HEXDIG); if v4_ok the last group may be an
 * IPv4 address, which counts as two groups. Stores the group count in *units. An empty span
 * is zero groups (the side of a "::" with nothing on it).
 */
static bool ipv6_groups(const char *s, size_t len, bool v4_ok, unsigned *units)
{
    *units = 0;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != ':')
            end++;
        bool is_last = end == len;
        if (is_last && v4_ok && memchr(s + i, '.', end - i) != NULL) {
            if (!valid_ipv4(s + i, end - i))
                return false;
            *units += 2;
            return true;
        }
        if (end == i || end - i > 4)
            return false;
        for (size_t k = i; k < end; k++)
            if (!is_hex((unsigned char)s[k]))
                return false;
        *units += 1;
        if (is_last)
            return true;
        i = end + 1;
        if (i == len) /* trailing single ':' */
            return false;
    }
    return true;
}

/*
 * IPv6-addr: IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp (RFC 5321 4.1.3). Without "::"
 * there must be exactly 8 groups (6 + an IPv4 tail); with it at most 6 besides the "::",
 * which stands for at least two zero groups. The IPv4 tail is only allowed at the very end.
 */
static bool valid_ipv6(const char *s, size_t len)
{
    const char *dc = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] == ':' && s[i + 1] == ':') {
            dc = s + i;
            break;
        }
    }
    unsigned left, right;
    if (dc == NULL)
        return ipv6_groups(s, len, true, &left) && left == 8;
    size_t ll = (size_t)(dc - s);
    const char *r = dc + 2;
    size_t rl = len - ll - 2;
    if (rl > 0 && r[0] == ':')
        return false; /* ":::" */
    for (size_t i = 0; i + 1 < rl; i++)
        if (r[i] == ':' && r[i + 1] == ':')
            return false; /* a second "::" */
    if (!ipv6_groups(s, ll, false, &left) || !ipv6_groups(r, rl, true, &right))
        return false;
    return left + right <= 6;
}

/* Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig - the Standardized-tag of a general literal. */
static bool valid_ldh_str(const char *s, size_t len)
{
    if (len == 0 || !is_letdig((unsigned char)s[len - 1], false))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_letdig((unsigned char)s[i], false) && s[i] != '-')
            return false;
    return true;
}

/* General-address-literal = Standardized-tag ":" 1*dcontent; dcontent = %d33-90 / %d94-126. */
static bool valid_general_literal(const char *s, size_t len, size_t colon)
{
    if (!valid_ldh_str(s, colon) || colon + 1 >= len)
        return false;
    for (size_t i = colon + 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
            return false;
    }
    return true;
}

bool smtp_valid_address_literal(const char *s, size_t len)
{
    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return false;
    const char *in = s + 1;
    size_t n = len - 2;
    const char *colon = memchr(in, ':', n);
    if (colon == NULL)
        return valid_ipv4(in, n);
    size_t tag = (size_t)(colon - in);
    /* "IPv6" is a registered tag: its content must really be an IPv6 address. */
    if (tag == 4 && text_ascii_ieq(in, "IPv6", 4))
        return valid_ipv6(colon + 1, n - 5);
    return valid_general_literal(in, n, tag);
}

/* --- local parts ----------------------------------------------------------------------------- */

/* Dot-string = Atom *("." Atom): returns its length, 0 if the span does not start with one. */
static size_t scan_dot_string(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t atom = i;
        while (i < len && is_atext((unsigned char)s[i]))
            i++;
        if (i == atom)
            return 0; /* empty atom: leading, trailing or doubled dot */
        if (i == len || s[i] != '.')
            return i;
        i++; /* the dot; an atom must follow */
    }
    return 0;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE, with qtextSMTP widened to UTF-8 (RFC 6531). */
static size_t scan_quoted_string(const char *s, size_t len)
{
    if (len == 0 || s[0] != '"')
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            /* quoted-pairSMTP = %d92 %d32-126 */
            if (i + 1 >= len || (unsigned char)s[i + 1] < 32 || (unsigned char)s[i + 1] > 126)
                return 0;
            i++;
        } else if (c < 32 || c == 127) {
            return 0; /* qtextSMTP is %d32-33 / %d35-91 / %d93-126 (+ UTF-8) */
        }
    }
    return 0; /* unterminated */
}

static size_t scan_local_part(const char *s, size_t len)
{
    if (len > 0 && s[0] == '"')
        return scan_quoted_string(s, len);
    return scan_dot_string(s, len);
}

/* --- paths ---------------------------------------------------------------------------------- */

/* The Domain / address-literal after '@', up to (not including) the closing '>'. */
static size_t scan_mailbox_domain(const char *s, size_t len)
{
    size_t n = 0;
    if (len > 0 && s[0] == '[') {
        /* dcontent may contain '>', but never ']': the literal ends at the first ']'. */
        const char *end = memchr(s, ']', len);
        if (end == NULL)
            return 0;
        n = (size_t)(end - s) + 1;
        return smtp_valid_address_literal(s, n) ? n : 0;
    }
    while (n < len && s[n] != '>')
        n++;
    return smtp_valid_domain(s, n, true) ? n : 0;
}

/* A-d-l ":" = At-domain *( "," At-domain ) ":", source route to drop; s[0] == '@'. */
static size_t scan_source_route(const char *s, size_t len)
{
    size_t i = 0;
    for (;;) {
        if (i >= len || s[i] != '@')
            return 0;
        size_t d = ++i;
        while (i < len && s[i] != ',' && s[i] != ':')
            i++;
        if (i >= len || !smtp_valid_domain(s + d, i - d, true))
            return 0;
        if (s[i++] == ':')
            return i;
    }
}

/* Mailbox = Local-part "@" ( Domain / address-literal ); fills out->mailbox on success. */
static size_t scan_mailbox(const char *s, size_t len, smtp_path *out)
{
    size_t local = scan_local_part(s, len);
    if (local == 0 || local > SMTP_LOCAL_MAX || local >= len || s[local] != '@')
        return 0;
    size_t dom = scan_mailbox_domain(s + local + 1, len - local - 1);
    if (dom == 0)
        return 0;
    size_t n = local + 1 + dom;
    if (n > SMTP_PATH_MAX - 2)
        return 0;
    memcpy(out->mailbox, s, n);
    out->mailbox[n] = '\0';
    out->len = n;
    out->at = local;
    return n;
}

static bool is_postmaster(const char *s, size_t len)
{
    return len >= 11 && text_ascii_ieq(s, "Postmaster>", 11);
}

static void path_reset(smtp_path *out)
{
    out->mailbox[0] = '\0';
    out->len = 0;
    out->at = 0;
    out->is_null = false;
    out->utf8 = false;
}

int smtp_parse_path(const char *s, size_t len, unsigned flags, smtp_path *out, size_t *consumed)
{
    path_reset(out);
    if (len < 2 || s[0] != '<')
        return -1;
    if (s[1] == '>') {
        if (!(flags & SMTP_PATH_ALLOW_NULL))
            return -1;
        out->is_null = true;
        *consumed = 2;
        return 0;
    }
    if ((flags & SMTP_PATH_ALLOW_POSTMASTER) && is_postmaster(s + 1, len - 1)) {
        memcpy(out->mailbox, s + 1, 10);
        out->mailbox[10] = '\0';
        out->len = out->at = 10;
        *consumed = 12;
        return 0;
    }
    /* Nothing past the path limit can be part of a valid path: bound all scanning by it. */
    size_t span = len < SMTP_PATH_MAX ? len : SMTP_PATH_MAX;
    size_t i = 1;
    if (s[i] == '@') {
        size_t route = scan_source_route(s + i, span - i);
        if (route == 0)
            return -1;
        i += route;
    }
    size_t mb = scan_mailbox(s + i, span - i, out);
    if (mb == 0 || i + mb >= span || s[i + mb] != '>' || !smtp_valid_utf8(s, i + mb)) {
        path_reset(out);
        return -1;
    }
    /* The source route is dropped, but it was on the wire: it counts for SMTPUTF8 too. */
    out->utf8 = has_8bit(s, i + mb);
    *consumed = i + mb + 1;
    return 0;
}
