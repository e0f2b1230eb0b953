/*
 * bounce.c - builds a delivery status notification (RFC 3464 in an RFC 6522 multipart/report);
 * see bounce.h for the message's shape and the guarantees on its output.
 *
 * The three parts are built into their own buffers first (the boundary must be checked against
 * their content), then the boundary is chosen and everything assembled into one buffer handed to
 * the caller. Every text that comes from outside (addresses, replies of remote servers, remote
 * host names, the original headers) goes through one of the cleaners below before it is written,
 * so it can neither end a line nor start a header field or a MIME part. Builders keep the first
 * error and ignore further appends, so the assembly code reads straight through and checks once.
 *
 * Owns: the part buffers and the cleaned copies of strings, all freed before returning; the
 * result buffer passes to the caller.
 */
#include "deliver/bounce.h"
#include "proto/base64.h"
#include "proto/date.h"
#include "proto/strbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_LIMIT 998         /* RFC 5322 2.1.1: bytes per line, CRLF excluded */
#define FOLD_AT 78             /* RFC 5322 2.1.1: the recommended line length */
#define TEXT_WIDTH 76          /* the human-readable part */
#define B64_LINE 76            /* RFC 2045 6.8 */
#define SEED_MAX 40            /* bytes of the seed in the boundary: stays under RFC 2046's 70 */
#define BOUNDARY_TRIES 64
#define HOST_MAX 255
#define TOKEN_MAX 64           /* queue id, diagnostic type */
#define DATE_MAX_SECONDS 253402300799LL /* 9999-12-31 23:59:59 UTC: 4-digit years only */
#define REPLACEMENT 0xFFFD     /* U+FFFD, for bytes that are no character */

/* --- a buffer that keeps its first error ------------------------------------------------- */

typedef struct builder {
    strbuf sb;
    int err; /* 0, or the first error (-ENOMEM); appends after it do nothing */
} builder;

static void b_init(builder *b)
{
    strbuf_init(&b->sb, 0);
    b->err = 0;
}

static void b_free(builder *b)
{
    strbuf_free(&b->sb);
}

static void b_put(builder *b, const void *p, size_t n)
{
    if (b->err == 0 && strbuf_append(&b->sb, p, n) < 0)
        b->err = -ENOMEM;
}

static void b_str(builder *b, const char *s)
{
    b_put(b, s, strlen(s));
}

static const char *b_data(const builder *b)
{
    return b->sb.data ? b->sb.data : "";
}

/* --- checks of the caller's own values --------------------------------------------------- */

/* An ASCII letter or digit, or one of extra (locale-independent, unlike isalnum). */
static bool alnum_or(unsigned char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr(extra, c) != NULL);
}

/* s is 1..max bytes, each alnum_or(extra). */
static bool all_in(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum_or((unsigned char)s[i], extra))
            return false;
    return true;
}

/* RFC 3463: class "." subject "." detail, 1-3 digits each; a failed recipient is 4 or 5. */
static bool valid_status(const char *s)
{
    if (s == NULL || (s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = strspn(s, "0123456789");
        if (digits < 1 || digits > 3)
            return false;
        s += digits;
        if (part == 0 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

/*
 * Decodes one UTF-8 character at p[0..n): its length, or 0 for invalid UTF-8 (overlong forms,
 * surrogates, past U+10FFFF, truncated). *cp gets the code point.
 */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned *cp)
{
    static const unsigned min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || p[0] >= 0xF8 || len > n)
        return 0;
    unsigned v = p[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min_cp[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* The sender must be addressable as it is: no control bytes, valid UTF-8, one line. */
static bool valid_sender(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PH_BOUNCE_ADDR_MAX || strcmp(s, "<>") == 0)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        if (p[i] < 0x20 || p[i] == 0x7F)
            return false;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_decode(p + i, n - i, &cp);
        if (k == 0 || cp < 0xA0) /* C1 controls are controls too */
            return false;
        i += k;
    }
    return true;
}

static int validate(const ph_bounce_info *in)
{
    if (!valid_sender(in->sender) || !all_in(in->reporting_mta, HOST_MAX, ".-_"))
        return -EINVAL;
    if (in->queue_id && !all_in(in->queue_id, TOKEN_MAX, "-_"))
        return -EINVAL;
    if (in->nrcpts == 0 || in->rcpts == NULL)
        return -EINVAL;
    for (size_t i = 0; i < in->nrcpts; i++) {
        const ph_bounce_rcpt *r = &in->rcpts[i];
        if (r->addr == NULL || r->addr[0] == '\0' || !valid_status(r->status))
            return -EINVAL;
        if (r->diagnostic_type && !all_in(r->diagnostic_type, TOKEN_MAX, "-_"))
            return -EINVAL;
        if (r->last_attempt < 0 || r->last_attempt > DATE_MAX_SECONDS)
            return -EINVAL;
    }
    if (in->now < 0 || in->now > DATE_MAX_SECONDS || in->arrival < 0 ||
        in->arrival > DATE_MAX_SECONDS)
        return -EINVAL;
    return 0;
}

/* --- cleaning outside text ---------------------------------------------------------------- */

/*
 * Appends src cleaned for one line of text: control bytes (C0, DEL, C1; CR and LF included)
 * become spaces, runs of spaces collapse to one, the ends are trimmed; non-ASCII is kept as it
 * is when it is valid UTF-8 and utf8 is allowed (*nonascii then set), else each byte becomes '?'.
 * At most max bytes of src are looked at. Returns whether anything but spaces was there.
 */
static bool put_clean(builder *b, const char *src, size_t max, bool utf8, bool *nonascii)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t n = strlen(src);
    if (n > max)
        n = max;
    bool space = false, any = false;
    for (size_t i = 0; i < n;) {
        unsigned cp = p[i];
        size_t k = p[i] < 0x80 ? 1 : utf8_decode(p + i, n - i, &cp);
        bool invalid = k == 0;
        if (invalid)
            k = 1; /* one byte that is no character */
        if (!invalid && (cp <= 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))) {
            space = any; /* controls and spaces: one space, and only between words */
            i += k;
            continue;
        }
        if (space)
            b_put(b, " ", 1);
        space = false;
        any = true;
        if (invalid || (k > 1 && !utf8)) {
            for (size_t j = 0; j < k; j++) /* one '?' per byte: shows how much was there */
                b_put(b, "?", 1);
        } else {
            b_put(b, p + i, k);
            if (k > 1)
                *nonascii = true;
        }
        i += k;
    }
    return any;
}

/* RFC 6533 QCHAR: printable ASCII except SP, '\', '+' and '='. */
static bool is_qchar(unsigned c)
{
    return c >= 0x21 && c <= 0x7E && c != '\\' && c != '+' && c != '=';
}

/* `rfc822; ADDR` for a plain address, else `utf-8; XTEXT` (RFC 6533 utf-8-addr-xtext). */
static void put_addr_value(builder *b, const char *addr)
{
    const unsigned char *p = (const unsigned char *)addr;
    size_t n = strlen(addr);
    bool plain = true;
    for (size_t i = 0; i < n && plain; i++)
        plain = p[i] >= 0x21 && p[i] <= 0x7E;
    if (plain) {
        b_str(b, "rfc822; ");
        b_put(b, addr, n);
        return;
    }
    b_str(b, "utf-8; ");
    for (size_t i = 0; i < n;) {
        unsigned cp = p[i];
        size_t k = p[i] < 0x80 ? 1 : utf8_decode(p + i, n - i, &cp);
        if (k == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
            cp = REPLACEMENT; /* no character, or a control: never written as itself */
        if (is_qchar(cp)) {
            char c = (char)cp;
            b_put(b, &c, 1);
        } else {
            char hex[16];
            snprintf(hex, sizeof(hex), "\\x{%X}", cp);
            b_str(b, hex);
        }
        i += k ? k : 1;
    }
}

/* --- formatting ------------------------------------------------------------------------------ */

/*
 * Appends one line-wrapped run of words (separated by single spaces; value from a cleaner):
 * a word goes on the next line when this one would pass `width` (never before the first word,
 * nor when it would not fit the next one either, unless this line has no room left for a space
 * and a byte), and a word too long for any line is cut where the line is full, at a UTF-8
 * character start.
 * `*col` is the current line's length; `brk` starts a new line (CRLF plus its indentation,
 * which counts `indent` columns).
 */
static void put_words(builder *b, const char *value, size_t *col, size_t width, const char *brk,
                      size_t indent)
{
    const char *p = value;
    bool first = true;
    while (*p) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        size_t w = strcspn(p, " ");
        bool fits_next = indent + w <= width, room_here = *col + 2 <= LINE_LIMIT;
        if (!first && *col + 1 + w > width && (fits_next || !room_here)) {
            b_str(b, brk);
            *col = indent;
        } else if (!first) {
            b_put(b, " ", 1);
            (*col)++;
        }
        while (*col + w > LINE_LIMIT) {
            size_t take = LINE_LIMIT - *col;
            while (take > 1 && ((unsigned char)p[take] & 0xC0) == 0x80)
                take--;
            b_put(b, p, take);
            b_str(b, brk);
            *col = indent;
            p += take;
            w -= take;
        }
        b_put(b, p, w);
        *col += w;
        p += w;
        first = false;
    }
}

/* A header field "Name: value", folded (RFC 5322 2.2.3) with CRLF SP. */
static void put_field(builder *b, const char *name, const char *value)
{
    b_str(b, name);
    b_str(b, ": ");
    size_t col = strlen(name) + 2;
    put_words(b, value, &col, FOLD_AT, "\r\n ", 1);
    b_str(b, "\r\n");
}

/* A field "Name: PREFIX TEXT" with TEXT from outside, cleaned to ASCII first (see put_clean);
 * no field at all when nothing is left of TEXT. */
static void put_field_clean(builder *b, const char *name, const char *prefix, const char *text,
                            size_t max)
{
    builder v;
    b_init(&v);
    bool unused = false;
    b_str(&v, prefix);
    bool any = put_clean(&v, text, max, false, &unused);
    if (v.err)
        b->err = v.err;
    else if (any)
        put_field(b, name, b_data(&v));
    b_free(&v);
}

static void put_date_field(builder *b, const char *name, int64_t t)
{
    char date[64];
    ph_format_date(t, date, sizeof(date));
    put_field(b, name, date);
}

/* --- part 2: message/delivery-status ------------------------------------------------------- */

static void put_rcpt_status(builder *b, const ph_bounce_rcpt *r)
{
    builder addr;
    b_init(&addr);
    put_addr_value(&addr, r->addr);
    if (addr.err)
        b->err = addr.err;
    put_field(b, "Final-Recipient", b_data(&addr));
    b_free(&addr);
    put_field(b, "Action", "failed");
    put_field(b, "Status", r->status);
    if (r->remote_mta && r->remote_mta[0])
        put_field_clean(b, "Remote-MTA", "dns; ", r->remote_mta, HOST_MAX);
    if (r->diagnostic && r->diagnostic[0]) {
        char prefix[TOKEN_MAX + 8];
        snprintf(prefix, sizeof(prefix), "%s; ", r->diagnostic_type ? r->diagnostic_type
                                                                      : "smtp");
        put_field_clean(b, "Diagnostic-Code", prefix, r->diagnostic, PH_BOUNCE_DIAG_MAX);
    }
    if (r->last_attempt > 0)
        put_date_field(b, "Last-Attempt-Date", r->last_attempt);
}

/* Per-message fields, then one block per recipient; blocks separated by an empty line. */
static void build_status(builder *b, const ph_bounce_info *in)
{
    char value[HOST_MAX + 8];
    snprintf(value, sizeof(value), "dns; %s", in->reporting_mta);
    put_field(b, "Reporting-MTA", value);
    if (in->queue_id)
        put_field(b, "X-Posthorn-Queue-ID", in->queue_id);
    if (in->arrival > 0)
        put_date_field(b, "Arrival-Date", in->arrival);
    for (size_t i = 0; i < in->nrcpts; i++) {
        b_str(b, "\r\n");
        put_rcpt_status(b, &in->rcpts[i]);
    }
}

/* --- part 1: the human explanation ---------------------------------------------------------- */

/* A paragraph line: label then cleaned text, wrapped with 4-space continuation lines. */
static void put_text_item(builder *b, const char *label, const char *text, size_t max,
                          bool *nonascii)
{
    builder v;
    b_init(&v);
    b_str(&v, label);
    put_clean(&v, text, max, true, nonascii);
    size_t col = 4;
    b_str(b, "    ");
    if (v.err)
        b->err = v.err;
    else
        put_words(b, b_data(&v), &col, TEXT_WIDTH, "\r\n        ", 8);
    b_str(b, "\r\n");
    b_free(&v);
}

static void build_text(builder *b, const ph_bounce_info *in, bool *nonascii)
{
    size_t col = 0;
    b_str(b, "This is the mail delivery system at ");
    b_str(b, in->reporting_mta);
    b_str(b, ".\r\n\r\n");
    put_words(b, in->msg_fd >= 0
                     ? "Your message could not be delivered to one or more of its recipients. "
                       "They are listed below with the reasons; the header section of your "
                       "message is attached."
                     : "Your message could not be delivered to one or more of its recipients. "
                       "They are listed below with the reasons.",
              &col, TEXT_WIDTH, "\r\n", 0);
    b_str(b, "\r\n");
    for (size_t i = 0; i < in->nrcpts; i++) {
        const ph_bounce_rcpt *r = &in->rcpts[i];
        builder addr;
        b_init(&addr);
        b_str(&addr, "<");
        put_clean(&addr, r->addr, PH_BOUNCE_ADDR_MAX, true, nonascii);
        b_str(&addr, ">");
        col = 0;
        b_str(b, "\r\n");
        if (addr.err)
            b->err = addr.err;
        put_words(b, b_data(&addr), &col, TEXT_WIDTH, "\r\n    ", 4);
        b_str(b, "\r\n");
        b_free(&addr);
        put_text_item(b, "Status: ", r->status, TOKEN_MAX, nonascii);
        if (r->remote_mta && r->remote_mta[0])
            put_text_item(b, "Remote server: ", r->remote_mta, HOST_MAX, nonascii);
        put_text_item(b, "Reason: ",
                      r->diagnostic && r->diagnostic[0] ? r->diagnostic : "(none given)",
                      PH_BOUNCE_DIAG_MAX, nonascii);
    }
    b_str(b, "\r\n");
    if (in->queue_id) {
        b_str(b, "Queue id of your message: ");
        b_str(b, in->queue_id);
        b_str(b, "\r\n");
    }
    b_str(b, "For further help, contact the postmaster of ");
    b_str(b, in->reporting_mta);
    b_str(b, ".\r\n");
}

/* Replaces the text by its base64 form in lines of 76 (for a text with UTF-8 in it). */
static int base64_lines(builder *text)
{
    size_t n = text->sb.len;
    size_t enc_cap = BASE64_ENCODED_LEN(n) + 1;
    char *enc = malloc(enc_cap);
    if (enc == NULL)
        return -ENOMEM;
    long m = base64_encode(text->sb.data, n, enc, enc_cap);
    builder out;
    b_init(&out);
    for (long i = 0; m > 0 && i < m; i += B64_LINE) {
        size_t take = (size_t)(m - i) < B64_LINE ? (size_t)(m - i) : B64_LINE;
        b_put(&out, enc + i, take);
        b_str(&out, "\r\n");
    }
    free(enc);
    if (m < 0 || out.err) {
        b_free(&out);
        return -ENOMEM;
    }
    b_free(text);
    *text = out;
    return 0;
}

/* --- part 3: the original header section ---------------------------------------------------- */

/* Reads up to cap bytes from offset 0 (fewer at end of file). Bytes read, or a negative errno. */
static long read_start(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t r = pread(fd, buf + got, cap - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno ? -errno : -EIO;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long)got;
}

/* Length of the header section in buf[0..n): up to the first empty line, else all of it. */
static size_t header_end(const char *buf, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        const char *nl = memchr(buf + pos, '\n', n - pos);
        if (nl == NULL)
            return n;
        size_t line = (size_t)(nl - buf) - pos;
        if (line == 0 || (line == 1 && buf[pos] == '\r'))
            return pos;
        pos += line + 1;
    }
    return n;
}

/* Copies the header bytes, CRLF everywhere (a bare CR or LF becomes CRLF), no NUL, no line
 * over the limit (cut with CRLF TAB, a continuation), ending in CRLF. */
static void put_headers(builder *b, const char *h, size_t n, bool *eightbit)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && h[i + 1] == '\n')
                i++;
            b_str(b, "\r\n");
            col = 0;
            continue;
        }
        if (col == LINE_LIMIT) {
            b_str(b, "\r\n\t");
            col = 1;
        }
        if (c >= 0x80)
            *eightbit = true;
        char out = c == '\0' ? ' ' : (char)c;
        b_put(b, &out, 1);
        col++;
    }
    if (col > 0)
        b_str(b, "\r\n");
}

static int build_headers(builder *b, const ph_bounce_info *in, bool *eightbit)
{
    size_t cap = PH_BOUNCE_HEADERS_MAX + 4; /* enough to see an empty line right at the cap */
    if (in->msg_size > 0 && in->msg_size < cap)
        cap = (size_t)in->msg_size;
    char *buf = malloc(cap ? cap : 1);
    if (buf == NULL)
        return -ENOMEM;
    long got = read_start(in->msg_fd, buf, cap);
    if (got < 0) {
        free(buf);
        return (int)got;
    }
    size_t end = header_end(buf, (size_t)got);
    if (end > PH_BOUNCE_HEADERS_MAX) { /* cut after the last whole line that fits */
        const char *nl = memrchr(buf, '\n', PH_BOUNCE_HEADERS_MAX);
        end = nl ? (size_t)(nl - buf) + 1 : PH_BOUNCE_HEADERS_MAX;
    }
    put_headers(b, buf, end, eightbit);
    free(buf);
    return 0;
}

/* --- boundary and assembly ------------------------------------------------------------------ */

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The seed's letters, digits, '-' and '_' (at most SEED_MAX): safe in a boundary and an id. */
static void clean_seed(const ph_bounce_info *in, char *out, size_t len)
{
    const char *seed = in->boundary_seed ? in->boundary_seed : in->queue_id ? in->queue_id : "";
    size_t k = 0;
    for (const char *p = seed; *p && k + 1 < len && k < SEED_MAX; p++)
        if (alnum_or((unsigned char)*p, "-_"))
            out[k++] = *p;
    out[k] = '\0';
}

static bool in_any(const builder *parts, size_t nparts, const char *s)
{
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].sb.len && memmem(parts[i].sb.data, parts[i].sb.len, s, strlen(s)))
            return true;
    return false;
}

/* "=_ph_SEED_HASH": '=' followed by '_' never occurs in base64 (part 1 when encoded) and the
 * hash covers the content it must not occur in, so the first try is all but certain to do. */
static int pick_boundary(const builder *parts, size_t nparts, const char *seed, char *out,
                         size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < nparts; i++)
        h = fnv1a(h, b_data(&parts[i]), parts[i].sb.len);
    for (int t = 0; t < BOUNDARY_TRIES; t++) {
        snprintf(out, len, "=_ph_%s_%016llx", seed, (unsigned long long)(h + (uint64_t)t));
        if (!in_any(parts, nparts, out))
            return 0;
    }
    return -EIO;
}

static void put_headers_top(builder *b, const ph_bounce_info *in, const char *seed,
                            const char *boundary)
{
    char line[HOST_MAX + SEED_MAX + 64];
    put_date_field(b, "Date", in->now);
    snprintf(line, sizeof(line), "Mail Delivery System <MAILER-DAEMON@%s>", in->reporting_mta);
    put_field(b, "From", line);
    b_str(b, "To: <"); /* the sender is validated: one line, no controls */
    b_str(b, in->sender);
    b_str(b, ">\r\n");
    put_field(b, "Subject", "Undelivered Mail Returned to Sender");
    snprintf(line, sizeof(line), "<bounce.%s%s%lld@%s>", seed, seed[0] ? "." : "",
             (long long)in->now, in->reporting_mta);
    put_field(b, "Message-ID", line);
    put_field(b, "Auto-Submitted", "auto-replied");
    put_field(b, "MIME-Version", "1.0");
    b_str(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"");
    b_str(b, boundary);
    b_str(b, "\"\r\n\r\nThis is a MIME-encapsulated message.\r\n");
}

static void put_part(builder *b, const char *boundary, const char *head, const builder *body)
{
    b_str(b, "\r\n--");
    b_str(b, boundary);
    b_str(b, "\r\n");
    b_str(b, head);
    b_str(b, "\r\n");
    b_put(b, b_data(body), body->sb.len);
}

enum { PART_TEXT, PART_STATUS, PART_HEADERS, NPARTS };

static int build_parts(const ph_bounce_info *in, builder *parts, size_t *nparts, bool *utf8,
                       bool *eightbit)
{
    build_text(&parts[PART_TEXT], in, utf8);
    if (parts[PART_TEXT].err == 0 && *utf8) {
        int rc = base64_lines(&parts[PART_TEXT]);
        if (rc < 0)
            return rc;
    }
    build_status(&parts[PART_STATUS], in);
    *nparts = 2;
    if (in->msg_fd >= 0) {
        int rc = build_headers(&parts[PART_HEADERS], in, eightbit);
        if (rc < 0)
            return rc;
        *nparts = 3;
    }
    for (size_t i = 0; i < *nparts; i++)
        if (parts[i].err)
            return parts[i].err;
    return 0;
}

static int assemble(const ph_bounce_info *in, const builder *parts, size_t nparts, bool utf8,
                    bool eightbit, builder *msg)
{
    char seed[SEED_MAX + 1], boundary[SEED_MAX + 32];
    clean_seed(in, seed, sizeof(seed));
    int rc = pick_boundary(parts, nparts, seed, boundary, sizeof(boundary));
    if (rc < 0)
        return rc;
    put_headers_top(msg, in, seed, boundary);
    put_part(msg, boundary,
             utf8 ? "Content-Description: Notification\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: base64\r\n"
                  : "Content-Description: Notification\r\n"
                    "Content-Type: text/plain; charset=us-ascii\r\n",
             &parts[PART_TEXT]);
    put_part(msg, boundary,
             "Content-Description: Delivery report\r\n"
             "Content-Type: message/delivery-status\r\n",
             &parts[PART_STATUS]);
    if (nparts > PART_HEADERS)
        put_part(msg, boundary,
                 eightbit ? "Content-Description: Undelivered message headers\r\n"
                            "Content-Type: text/rfc822-headers\r\n"
                            "Content-Transfer-Encoding: 8bit\r\n"
                          : "Content-Description: Undelivered message headers\r\n"
                            "Content-Type: text/rfc822-headers\r\n",
                 &parts[PART_HEADERS]);
    b_str(msg, "\r\n--");
    b_str(msg, boundary);
    b_str(msg, "--\r\n");
    return msg->err;
}

int ph_bounce_build(const ph_bounce_info *in, char **out, size_t *len)
{
    if (in == NULL || out == NULL || len == NULL)
        return -EINVAL;
    int rc = validate(in);
    if (rc < 0)
        return rc;
    builder parts[NPARTS], msg;
    for (size_t i = 0; i < NPARTS; i++)
        b_init(&parts[i]);
    b_init(&msg);
    size_t nparts = 0;
    bool utf8 = false, eightbit = false;
    rc = build_parts(in, parts, &nparts, &utf8, &eightbit);
    if (rc == 0)
        rc = assemble(in, parts, nparts, utf8, eightbit, &msg);
    for (size_t i = 0; i < NPARTS; i++)
        b_free(&parts[i]);
    if (rc < 0) {
        b_free(&msg);
        return rc;
    }
    *out = msg.sb.data; /* the caller owns it now */
    *len = msg.sb.len;
    return 0;
}
