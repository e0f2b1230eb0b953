/*
 * parse.c - SMTP command line parsing (RFC 5321 4.1.1, 4.1.2) and the ESMTP parameters Posthorn
 * supports: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531). See parse.h.
 *
 * Pure functions over borrowed (pointer, length) spans of one line without its CRLF: no
 * allocation, no state, nothing read past the given length (the line may hold NUL bytes).
 * Results point into the caller's line or are copied into the caller's smtp_path. Every
 * failure is a reply id from reply.h, chosen so the client learns exactly what was wrong.
 */
#include "proto/parse.h"
#include "proto/text.h"

#include <string.h>

#define BDAT_DIGITS_MAX 18 /* parse.h: fits uint64_t without an overflow check */
#define SIZE_DIGITS_MAX 20 /* UINT64_MAX has 20 digits; overflow is checked */

/* True if s[0..len) equals the NUL-terminated word w, ignoring ASCII case. */
static bool word_is(const char *s, size_t len, const char *w)
{
    return len == strlen(w) && text_ascii_ieq(s, w, len);
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* --- verbs ---------------------------------------------------------------------------------- */

static const char *const verb_names[V__COUNT] = {
    [V_UNKNOWN] = "UNKNOWN", [V_HELO] = "HELO", [V_EHLO] = "EHLO",
    [V_MAIL] = "MAIL",       [V_RCPT] = "RCPT", [V_DATA] = "DATA",
    [V_BDAT] = "BDAT",       [V_RSET] = "RSET", [V_NOOP] = "NOOP",
    [V_QUIT] = "QUIT",       [V_VRFY] = "VRFY", [V_EXPN] = "EXPN",
    [V_HELP] = "HELP",       [V_STARTTLS] = "STARTTLS", [V_AUTH] = "AUTH",
};

const char *smtp_verb_name(smtp_verb v)
{
    if ((int)v < 0 || (int)v >= (int)V__COUNT)
        return verb_names[V_UNKNOWN];
    return verb_names[v];
}

static smtp_verb verb_lookup(const char *s, size_t len)
{
    for (int v = V_UNKNOWN + 1; v < V__COUNT; v++)
        if (word_is(s, len, verb_names[v]))
            return (smtp_verb)v;
    return V_UNKNOWN;
}

void smtp_parse_command(const char *line, size_t len, smtp_command *out)
{
    if (line == NULL) {
        line = "";
        len = 0;
    }
    /* The verb is everything up to the first space: "MAILX" or "MAIL:" is not MAIL. */
    size_t v = 0;
    while (v < len && line[v] != ' ')
        v++;
    out->verb = verb_lookup(line, v);
    size_t a = v;
    while (a < len && line[a] == ' ')
        a++;
    size_t e = len;
    while (e > a && line[e - 1] == ' ')
        e--;
    out->arg = line + a;
    out->arg_len = e - a;
}

/* --- ESMTP parameters ------------------------------------------------------------------------- */

/* esmtp-value = 1*(%d33-60 / %d62-126) (RFC 5321 4.1.2); our values are all ASCII. */
static bool valid_esmtp_value(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126 || c == '=')
            return false;
    }
    return true;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool valid_esmtp_keyword(const char *s, size_t len)
{
    if (len == 0 || !is_alnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Decimal of 1..max digits into *out; false on anything else or on uint64_t overflow. */
static bool parse_decimal(const char *s, size_t len, size_t max, uint64_t *out)
{
    if (len == 0 || len > max)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

typedef smtp_reply_id (*param_fn)(const char *val, size_t vlen, bool has_val,
                                  smtp_mail_params *p);

static smtp_reply_id param_size(const char *val, size_t vlen, bool has_val, smtp_mail_params *p)
{
    if (!has_val || !parse_decimal(val, vlen, SIZE_DIGITS_MAX, &p->size))
        return R_BAD_PARAM;
    p->has_size = true;
    return R_NONE;
}

static smtp_reply_id param_body(const char *val, size_t vlen, bool has_val, smtp_mail_params *p)
{
    if (has_val && word_is(val, vlen, "7BIT"))
        p->body = BODY_7BIT;
    else if (has_val && word_is(val, vlen, "8BITMIME"))
        p->body = BODY_8BITMIME;
    else
        return R_BAD_PARAM; /* includes BINARYMIME: we do not offer it */
    return R_NONE;
}

static smtp_reply_id param_smtputf8(const char *val, size_t vlen, bool has_val,
                                    smtp_mail_params *p)
{
    (void)val;
    (void)vlen;
    if (has_val)
        return R_BAD_PARAM; /* RFC 6531 3.4: SMTPUTF8 takes no value */
    p->smtputf8 = true;
    return R_NONE;
}

static const struct {
    const char *keyword;
    param_fn fn;
} mail_params[] = {
    {"SIZE", param_size},
    {"BODY", param_body},
    {"SMTPUTF8", param_smtputf8},
};

#define N_MAIL_PARAMS (sizeof mail_params / sizeof mail_params[0])

/* One "keyword[=value]" token of MAIL; seen tracks keywords already given (bit per row). */
static smtp_reply_id mail_param(const char *s, size_t len, unsigned *seen, smtp_mail_params *p)
{
    const char *eq = memchr(s, '=', len);
    size_t klen = eq != NULL ? (size_t)(eq - s) : len;
    if (!valid_esmtp_keyword(s, klen))
        return R_PARAM_UNKNOWN;
    for (size_t i = 0; i < N_MAIL_PARAMS; i++) {
        if (!word_is(s, klen, mail_params[i].keyword))
            continue;
        if (*seen & (1u << i))
            return R_BAD_PARAM; /* duplicate: which value would the client mean? */
        *seen |= 1u << i;
        const char *val = eq != NULL ? eq + 1 : NULL;
        size_t vlen = eq != NULL ? len - klen - 1 : 0;
        if (eq != NULL && !valid_esmtp_value(val, vlen))
            return R_BAD_PARAM;
        return mail_params[i].fn(val, vlen, eq != NULL, p);
    }
    return R_PARAM_UNKNOWN;
}

/*
 * Parses each space-separated parameter of s[0..len) (runs of spaces allowed), stopping at the
 * first error. p == NULL means no parameter is accepted at all (RCPT, for now).
 */
static smtp_reply_id each_param(const char *s, size_t len, smtp_mail_params *p)
{
    unsigned seen = 0;
    size_t i = 0;
    while (i < len) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        size_t end = i;
        while (end < len && s[end] != ' ')
            end++;
        if (p == NULL)
            return R_PARAM_UNKNOWN;
        smtp_reply_id r = mail_param(s + i, end - i, &seen, p);
        if (r != R_NONE)
            return r;
        i = end;
    }
    return R_NONE;
}

/* --- MAIL and RCPT ---------------------------------------------------------------------------- */

/*
 * The shared front of MAIL and RCPT: "<prefix><path>[ params]" with one optional space after
 * the prefix. Returns R_NONE and the parameter span, or syntax (no prefix / nothing after it)
 * or bad_path.
 */
static smtp_reply_id parse_path_arg(const char *arg, size_t len, const char *prefix,
                                    unsigned flags, smtp_path *path, const char **params,
                                    size_t *plen, smtp_reply_id syntax, smtp_reply_id bad_path)
{
    memset(path, 0, sizeof *path);
    size_t pl = strlen(prefix);
    if (arg == NULL || len < pl || !text_ascii_ieq(arg, prefix, pl))
        return syntax;
    size_t i = pl;
    if (i < len && arg[i] == ' ')
        i++;
    if (i == len)
        return syntax;
    size_t used = 0;
    if (smtp_parse_path(arg + i, len - i, flags, path, &used) < 0)
        return bad_path;
    i += used;
    /* The path must be followed by the end or by the space before the parameters. */
    if (i < len && arg[i] != ' ')
        return syntax;
    *params = arg + i;
    *plen = len - i;
    return R_NONE;
}

smtp_reply_id smtp_parse_mail(const char *arg, size_t len, smtp_path *path, smtp_mail_params *p)
{
    memset(p, 0, sizeof *p);
    const char *params = NULL;
    size_t plen = 0;
    smtp_reply_id r = parse_path_arg(arg, len, "FROM:", SMTP_PATH_ALLOW_NULL, path, &params,
                                     &plen, R_SYNTAX_MAIL, R_BAD_SENDER);
    if (r == R_NONE)
        r = each_param(params, plen, p);
    if (r == R_NONE && path->utf8 && !p->smtputf8)
        r = R_NEED_SMTPUTF8;
    return r;
}

smtp_reply_id smtp_parse_rcpt(const char *arg, size_t len, bool utf8_ok, smtp_path *path)
{
    const char *params = NULL;
    size_t plen = 0;
    smtp_reply_id r = parse_path_arg(arg, len, "TO:", SMTP_PATH_ALLOW_POSTMASTER, path,
                                     &params, &plen, R_SYNTAX_RCPT, R_BAD_RCPT);
    if (r == R_NONE)
        r = each_param(params, plen, NULL); /* no RCPT parameters supported yet */
    if (r == R_NONE && path->utf8 && !utf8_ok)
        r = R_NEED_SMTPUTF8;
    return r;
}

/* --- BDAT and HELO ---------------------------------------------------------------------------- */

smtp_reply_id smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last)
{
    *size = 0;
    *last = false;
    if (arg == NULL)
        return R_SYNTAX_BDAT;
    size_t i = 0;
    while (i < len && arg[i] == ' ')
        i++;
    size_t d = i;
    while (i < len && arg[i] != ' ')
        i++;
    if (!parse_decimal(arg + d, i - d, BDAT_DIGITS_MAX, size))
        return R_SYNTAX_BDAT;
    while (i < len && arg[i] == ' ')
        i++;
    size_t w = i;
    while (i < len && arg[i] != ' ')
        i++;
    if (i > w && !word_is(arg + w, i - w, "LAST"))
        return R_SYNTAX_BDAT;
    *last = i > w;
    while (i < len && arg[i] == ' ')
        i++;
    return i == len ? R_NONE : R_SYNTAX_BDAT;
}

/*
 * HELO/EHLO names are checked leniently (real clients send "_" and odd hostnames; the name
 * only goes into Received:), but never accept anything that is not a plausible name: labels
 * of letters, digits, '-', '_' or UTF-8, no empty label, no spaces.
 */
static bool helo_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > SMTP_DOMAIN_MAX || !smtp_valid_utf8(s, len))
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (is_alnum(c) || c == '-' || c == '_' || c >= 0x80) {
            label++;
        } else {
            return false;
        }
    }
    return label > 0;
}

smtp_reply_id smtp_parse_helo(const char *arg, size_t len)
{
    if (arg == NULL || len == 0)
        return R_SYNTAX_HELO;
    if (arg[0] == '[')
        return smtp_valid_address_literal(arg, len) ? R_NONE : R_SYNTAX_HELO;
    return helo_name_ok(arg, len) ? R_NONE : R_SYNTAX_HELO;
}
