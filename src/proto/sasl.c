/*
 * sasl.c - SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) exchanges for SMTP AUTH
 * (RFC 4954), server side (see sasl.h for the API, the replies and the ownership of secrets).
 *
 * Owns nothing outside the caller's sasl_exchange. Each client line is decoded with the strict
 * base64 decoder into the exchange's scratch buffer, split and checked into the fixed fields,
 * and the scratch is wiped before returning. Any result that ends the exchange without
 * credentials wipes the whole exchange, so secrets from a half-finished exchange never linger.
 * Failures are results (sasl_result), never asserts: every byte here comes from the peer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero in glibc's <string.h> */
#endif
#include "proto/sasl.h"

#include <string.h>

#include "proto/addr.h"
#include "proto/base64.h"
#include "proto/text.h"

/* What the next client line is. Zero is idle, so an all-zero exchange is a valid idle one. */
enum {
    ST_IDLE = 0,
    ST_PLAIN_MSG,   /* the PLAIN message, after an empty challenge */
    ST_LOGIN_USER,  /* the LOGIN username, after "Username:" */
    ST_LOGIN_PASS,  /* the LOGIN password, after "Password:" */
    ST_DONE,        /* credentials ready, awaiting sasl_wipe */
    ST__COUNT
};

static const char *const mech_names[SASL__MECH_COUNT] = {
    [SASL_PLAIN] = "PLAIN",
    [SASL_LOGIN] = "LOGIN",
};

/* The base64 challenge sent with 334 while waiting in each state (RFC 4954 4). */
static const char *const challenges[ST__COUNT] = {
    [ST_PLAIN_MSG] = "",
    [ST_LOGIN_USER] = "VXNlcm5hbWU6", /* "Username:" */
    [ST_LOGIN_PASS] = "UGFzc3dvcmQ6", /* "Password:" */
};

static const smtp_reply_id result_replies[SASL__RESULT_COUNT] = {
    [SASL_CONTINUE] = R_AUTH_CHALLENGE,
    [SASL_DONE] = R_NONE,
    [SASL_CANCELLED] = R_AUTH_CANCELLED,
    [SASL_BAD_BASE64] = R_AUTH_BAD_BASE64,
    [SASL_BAD_SYNTAX] = R_AUTH_BAD_MESSAGE,
    [SASL_TOO_LONG] = R_AUTH_TOO_LONG,
    [SASL_BAD_STATE] = R_BAD_SEQUENCE,
};

int sasl_mech_from_name(const char *name, size_t len)
{
    for (int m = 0; m < SASL__MECH_COUNT; m++)
        if (len == strlen(mech_names[m]) && text_ascii_ieq(name, mech_names[m], len))
            return m;
    return -1;
}

const char *sasl_mech_name(int mech)
{
    return mech >= 0 && mech < SASL__MECH_COUNT ? mech_names[mech] : NULL;
}

const char *sasl_challenge(const sasl_exchange *x)
{
    const char *c = x->state > ST_IDLE && x->state < ST__COUNT ? challenges[x->state] : NULL;
    return c != NULL ? c : "";
}

smtp_reply_id sasl_result_reply(sasl_result r)
{
    return (int)r >= 0 && r < SASL__RESULT_COUNT ? result_replies[r] : R_BAD_SEQUENCE;
}

void sasl_wipe(sasl_exchange *x)
{
    explicit_bzero(x, sizeof *x);
}

/*
 * True if s[0..n) holds a control character: C0 and DEL (one byte each) or C1 (U+0080-U+009F,
 * UTF-8 C2 80..C2 9F). SASLprep (RFC 4013 5, tables C.2.1/C.2.2) prohibits them; we refuse them
 * in names because names reach logs and the session record. s is valid UTF-8, so a C2 lead is
 * always followed by a byte.
 */
static bool has_control(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return true;
        if (s[i] == 0xc2 && i + 1 < n && s[i + 1] <= 0x9f)
            return true;
    }
    return false;
}

/* Copies one decoded field into dst (NUL-terminated) after checking it (see sasl.h). */
static sasl_result store_field(char *dst, size_t *dst_len, const unsigned char *src, size_t n,
                               bool is_name)
{
    if (n > SASL_FIELD_MAX)
        return SASL_TOO_LONG;
    if (memchr(src, '\0', n) != NULL || !smtp_valid_utf8((const char *)src, n))
        return SASL_BAD_SYNTAX;
    if (is_name && has_control(src, n))
        return SASL_BAD_SYNTAX;
    memcpy(dst, src, n);
    dst[n] = '\0';
    *dst_len = n;
    return SASL_CONTINUE;
}

/*
 * Decodes one client line into x->scratch[0..cap), setting *n. "*" cancels (RFC 4954 4) but
 * only as an answer to a challenge; "=" is the empty initial response and only that. Returns
 * SASL_CONTINUE when there is decoded data to look at.
 */
static sasl_result decode_line(sasl_exchange *x, const char *line, size_t len, bool initial,
                               size_t cap, size_t *n)
{
    *n = 0;
    if (!initial && len == 1 && line[0] == '*')
        return SASL_CANCELLED;
    if (initial && len == 1 && line[0] == '=')
        return SASL_CONTINUE;
    long r = base64_decode(line, len, x->scratch, cap);
    if (r == BASE64_ERR_SPACE)
        return SASL_TOO_LONG;
    if (r < 0)
        return SASL_BAD_BASE64;
    *n = (size_t)r;
    return SASL_CONTINUE;
}

/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd; authcid, passwd = 1*SAFE. */
static sasl_result plain_message(sasl_exchange *x, size_t n)
{
    const unsigned char *m = x->scratch;
    const unsigned char *nul1 = memchr(m, '\0', n);
    if (nul1 == NULL)
        return SASL_BAD_SYNTAX;
    const unsigned char *user = nul1 + 1;
    const unsigned char *nul2 = memchr(user, '\0', n - (size_t)(user - m));
    if (nul2 == NULL)
        return SASL_BAD_SYNTAX;
    const unsigned char *pass = nul2 + 1;
    size_t user_len = (size_t)(nul2 - user), pass_len = n - (size_t)(pass - m);
    sasl_result r = store_field(x->authzid, &x->authzid_len, m, (size_t)(nul1 - m), true);
    if (r == SASL_CONTINUE)
        r = store_field(x->user, &x->user_len, user, user_len, true);
    if (r == SASL_CONTINUE) /* a third NUL lands in the password: store_field rejects it */
        r = store_field(x->password, &x->password_len, pass, pass_len, false);
    if (r == SASL_CONTINUE && (user_len == 0 || pass_len == 0))
        r = SASL_BAD_SYNTAX;
    return r == SASL_CONTINUE ? SASL_DONE : r;
}

static sasl_result plain_step(sasl_exchange *x, const char *line, size_t len, bool initial)
{
    size_t n;
    sasl_result r = decode_line(x, line, len, initial, SASL_PLAIN_MAX, &n);
    return r == SASL_CONTINUE ? plain_message(x, n) : r;
}

static sasl_result login_user(sasl_exchange *x, const char *line, size_t len, bool initial)
{
    size_t n;
    sasl_result r = decode_line(x, line, len, initial, SASL_FIELD_MAX, &n);
    if (r == SASL_CONTINUE)
        r = store_field(x->user, &x->user_len, x->scratch, n, true);
    if (r == SASL_CONTINUE && n == 0)
        r = SASL_BAD_SYNTAX;
    if (r == SASL_CONTINUE)
        x->state = ST_LOGIN_PASS;
    return r;
}

static sasl_result login_pass(sasl_exchange *x, const char *line, size_t len, bool initial)
{
    size_t n;
    sasl_result r = decode_line(x, line, len, initial, SASL_FIELD_MAX, &n);
    if (r == SASL_CONTINUE)
        r = store_field(x->password, &x->password_len, x->scratch, n, false);
    if (r == SASL_CONTINUE)
        r = n == 0 ? SASL_BAD_SYNTAX : SASL_DONE; /* empty like PLAIN's 1*SAFE passwd */
    return r;
}

typedef sasl_result (*step_fn)(sasl_exchange *x, const char *line, size_t len, bool initial);

static const step_fn step_fns[ST__COUNT] = {
    [ST_PLAIN_MSG] = plain_step,
    [ST_LOGIN_USER] = login_user,
    [ST_LOGIN_PASS] = login_pass,
};

/* Every call ends here: scratch is always wiped; a failure wipes everything. */
static sasl_result finish(sasl_exchange *x, sasl_result r)
{
    explicit_bzero(x->scratch, sizeof x->scratch);
    if (r == SASL_DONE)
        x->state = ST_DONE;
    else if (r != SASL_CONTINUE)
        sasl_wipe(x);
    return r;
}

static sasl_result run_step(sasl_exchange *x, const char *line, size_t len, bool initial)
{
    step_fn fn = x->state > ST_IDLE && x->state < ST__COUNT ? step_fns[x->state] : NULL;
    return finish(x, fn != NULL ? fn(x, line, len, initial) : SASL_BAD_STATE);
}

sasl_result sasl_begin(sasl_exchange *x, int mech, const char *initial, size_t len,
                       bool has_initial)
{
    sasl_wipe(x);
    if (sasl_mech_name(mech) == NULL)
        return SASL_BAD_STATE;
    x->mech = mech;
    x->state = mech == SASL_PLAIN ? ST_PLAIN_MSG : ST_LOGIN_USER;
    if (!has_initial)
        return SASL_CONTINUE;
    return run_step(x, initial, len, true);
}

sasl_result sasl_step(sasl_exchange *x, const char *line, size_t len)
{
    return run_step(x, line, len, false);
}
