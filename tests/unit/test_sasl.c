/*
 * test_sasl.c - unit tests for src/proto/sasl.c: PLAIN and LOGIN exchanges with and without an
 * initial response, "=" as the empty initial response, cancellation at every step, strict
 * base64, the RFC 4616 message grammar (NUL placement, empty fields), UTF-8 and control
 * characters, the 255-octet field cap and the line cap, misuse (BAD_STATE), the reply mapping,
 * and that secrets are wiped: scratch after every call, everything after every failure and
 * after sasl_wipe. Table-driven: each case is a script of calls with the expected results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/base64.h"
#include "proto/reply.h"
#include "proto/sasl.h"
#include "proto/strbuf.h"

#define USER_CH "VXNlcm5hbWU6"
#define PASS_CH "UGFzc3dvcmQ6"

typedef enum {
    K_END = 0,
    K_NONE, /* begin without an initial response */
    K_B64,  /* the literal, base64-encoded */
    K_RAW,  /* the literal as-is */
    K_GEN,  /* a PLAIN message with fields of a, u, p octets of 'a', 'u', 'p', encoded */
    K_FILL, /* n octets of 'x', encoded */
    K_JUNK, /* n characters 'A', as-is */
} kind;

typedef struct step {
    kind k;
    const char *s;
    size_t n;
    size_t a, u, p;
    sasl_result want;
} step;

#define NONE(r) {K_NONE, NULL, 0, 0, 0, 0, r}
#define B64(lit, r) {K_B64, lit, sizeof(lit) - 1, 0, 0, 0, r}
#define RAW(lit, r) {K_RAW, lit, sizeof(lit) - 1, 0, 0, 0, r}
#define GEN(a, u, p, r) {K_GEN, NULL, 0, a, u, p, r}
#define FILL(n, r) {K_FILL, NULL, n, 0, 0, 0, r}
#define JUNK(n, r) {K_JUNK, NULL, n, 0, 0, 0, r}

typedef struct sasl_case {
    const char *name;
    int mech;
    step steps[5]; /* steps[0] is sasl_begin (K_NONE: no initial response), then sasl_step */
    const char *authzid, *user, *password; /* checked on DONE; NULL: the GEN lengths */
} sasl_case;

#define P SASL_PLAIN
#define L SASL_LOGIN

static const sasl_case cases[] = {
    /* PLAIN happy paths */
    {"plain initial", P, {B64("\0user\0pass", SASL_DONE)}, "", "user", "pass"},
    {"plain rfc4616 example", P, {B64("\0tim\0tanstaaftanstaaf", SASL_DONE)}, "", "tim",
     "tanstaaftanstaaf"},
    {"plain authzid", P, {B64("Ursel\0Kurt\0xipj3plmq", SASL_DONE)}, "Ursel", "Kurt",
     "xipj3plmq"},
    {"plain authzid same", P, {B64("kurt\0kurt\0pw", SASL_DONE)}, "kurt", "kurt", "pw"},
    {"plain challenge", P, {NONE(SASL_CONTINUE), B64("\0u\0p", SASL_DONE)}, "", "u", "p"},
    {"plain utf8", P, {B64("\0j\xc3\xbcrgen\0p\xc3\xa4ss\xe2\x82\xac", SASL_DONE)}, "",
     "j\xc3\xbcrgen", "p\xc3\xa4ss\xe2\x82\xac"},
    {"plain 4-byte utf8", P, {B64("\0\xf0\x9f\x93\xaf\0\xf4\x8f\xbf\xbf", SASL_DONE)}, "",
     "\xf0\x9f\x93\xaf", "\xf4\x8f\xbf\xbf"},
    {"plain controls in password ok", P, {B64("\0u\0p\tw \x7f", SASL_DONE)}, "", "u",
     "p\tw \x7f"},
    {"plain spaces in user ok", P, {B64("\0 a b \0p", SASL_DONE)}, "", " a b ", "p"},
    {"plain max fields", P, {GEN(255, 255, 255, SASL_DONE)}, NULL, NULL, NULL},
    {"plain max user", P, {GEN(0, 255, 1, SASL_DONE)}, NULL, NULL, NULL},
    {"plain max fields after challenge", P, {NONE(SASL_CONTINUE), GEN(255, 255, 255, SASL_DONE)},
     NULL, NULL, NULL},
    /* PLAIN: "=", cancel, empty */
    {"plain = is empty", P, {RAW("=", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain cancel", P, {NONE(SASL_CONTINUE), RAW("*", SASL_CANCELLED)}, NULL, NULL, NULL},
    {"plain * as initial", P, {RAW("*", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain = as answer", P, {NONE(SASL_CONTINUE), RAW("=", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain ** answer", P, {NONE(SASL_CONTINUE), RAW("**", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain empty answer", P, {NONE(SASL_CONTINUE), RAW("", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain empty initial", P, {RAW("", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    /* PLAIN: NUL placement */
    {"plain no nul", P, {B64("userpass", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain one nul", P, {B64("user\0pass", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain one nul leading", P, {B64("\0userpass", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain empty user", P, {B64("\0\0pass", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain empty password", P, {B64("\0user\0", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain only nuls", P, {B64("\0\0", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain three nuls", P, {B64("\0u\0p\0", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain nul in password", P, {B64("\0user\0pa\0ss", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain nul after authzid", P, {B64("a\0\0u\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain single nul", P, {B64("\0", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    /* PLAIN: UTF-8 and control characters */
    {"plain latin1 user", P, {B64("\0j\xfcrgen\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain latin1 password", P, {B64("\0u\0p\xe4ss", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain latin1 authzid", P, {B64("\xe4\0u\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain overlong", P, {B64("\0\xc0\xaf\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain surrogate", P, {B64("\0u\0\xed\xa0\x80", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain truncated utf8", P, {B64("\0u\xe2\x82\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain above 10ffff", P, {B64("\0u\0\xf4\x90\x80\x80", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain tab in user", P, {B64("\0us\ter\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain crlf in user", P, {B64("\0u\r\n250 ok\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain del in user", P, {B64("\0u\x7f\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain c1 in user", P, {B64("\0u\xc2\x85\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain c1 edge ok", P, {B64("\0u\xc2\xa0\0p", SASL_DONE)}, "", "u\xc2\xa0", "p"},
    {"plain esc in authzid", P, {B64("\x1b[0m\0u\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    /* PLAIN: sizes */
    {"plain user 256", P, {GEN(0, 256, 1, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"plain password 256", P, {GEN(0, 1, 256, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"plain authzid 256", P, {GEN(256, 1, 1, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"plain user 500", P, {GEN(0, 500, 1, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"plain message 768", P, {FILL(768, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"plain message 767 no nul", P, {FILL(767, SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"plain junk 5000", P, {JUNK(5000, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"plain junk 12288 answer", P, {NONE(SASL_CONTINUE), JUNK(12288, SASL_TOO_LONG)}, NULL, NULL,
     NULL},
    /* PLAIN: bad base64 */
    {"plain no padding", P, {RAW("AHVzZXIAcGFzcw", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain good padding", P, {RAW("AHVzZXIAcGFzcw==", SASL_DONE)}, "", "user", "pass"},
    {"plain trailing space", P, {RAW("AHVzZXIAcGFzcw== ", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain crlf inside", P, {RAW("AHVzZXIA\r\ncGFzcw==", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain non-canonical", P, {RAW("AHVzZXIAcGFzcx==", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"plain bad answer", P, {NONE(SASL_CONTINUE), RAW("AHV!", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    /* LOGIN happy paths */
    {"login", L, {NONE(SASL_CONTINUE), B64("user", SASL_CONTINUE), B64("pass", SASL_DONE)}, "",
     "user", "pass"},
    {"login initial user", L, {B64("user", SASL_CONTINUE), B64("pass", SASL_DONE)}, "", "user",
     "pass"},
    {"login utf8", L,
     {NONE(SASL_CONTINUE), B64("\xc3\xa9l\xc3\xa8ve", SASL_CONTINUE),
      B64("\xe5\xaf\x86\xe7\xa0\x81", SASL_DONE)},
     "", "\xc3\xa9l\xc3\xa8ve", "\xe5\xaf\x86\xe7\xa0\x81"},
    {"login max", L, {NONE(SASL_CONTINUE), FILL(255, SASL_CONTINUE), FILL(255, SASL_DONE)}, NULL,
     NULL, NULL},
    {"login password controls ok", L, {B64("u", SASL_CONTINUE), B64("a\tb", SASL_DONE)}, "", "u",
     "a\tb"},
    /* LOGIN: "=", cancel at every step, empty lines */
    {"login = is empty user", L, {RAW("=", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"login cancel at user", L, {NONE(SASL_CONTINUE), RAW("*", SASL_CANCELLED)}, NULL, NULL,
     NULL},
    {"login cancel at password", L,
     {NONE(SASL_CONTINUE), B64("user", SASL_CONTINUE), RAW("*", SASL_CANCELLED)}, NULL, NULL,
     NULL},
    {"login cancel after initial", L, {B64("user", SASL_CONTINUE), RAW("*", SASL_CANCELLED)},
     NULL, NULL, NULL},
    {"login * as initial", L, {RAW("*", SASL_BAD_BASE64)}, NULL, NULL, NULL},
    {"login = as password", L, {B64("u", SASL_CONTINUE), RAW("=", SASL_BAD_BASE64)}, NULL, NULL,
     NULL},
    {"login empty user", L, {NONE(SASL_CONTINUE), RAW("", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"login empty password", L, {B64("u", SASL_CONTINUE), RAW("", SASL_BAD_SYNTAX)}, NULL, NULL,
     NULL},
    /* LOGIN: NUL, UTF-8, controls */
    {"login nul in user", L, {NONE(SASL_CONTINUE), B64("us\0er", SASL_BAD_SYNTAX)}, NULL, NULL,
     NULL},
    {"login nul user prefix", L, {B64("\0admin", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"login nul in password", L, {B64("u", SASL_CONTINUE), B64("pa\0ss", SASL_BAD_SYNTAX)}, NULL,
     NULL, NULL},
    {"login plain message as user", L, {B64("\0u\0p", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"login latin1 user", L, {B64("j\xfcrgen", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    {"login latin1 password", L, {B64("u", SASL_CONTINUE), B64("\xe4", SASL_BAD_SYNTAX)}, NULL,
     NULL, NULL},
    {"login newline in user", L, {B64("u\n", SASL_BAD_SYNTAX)}, NULL, NULL, NULL},
    /* LOGIN: sizes and base64 */
    {"login user 256", L, {NONE(SASL_CONTINUE), FILL(256, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"login initial user 256", L, {FILL(256, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"login password 256", L, {B64("u", SASL_CONTINUE), FILL(256, SASL_TOO_LONG)}, NULL, NULL,
     NULL},
    {"login junk", L, {B64("u", SASL_CONTINUE), JUNK(1000, SASL_TOO_LONG)}, NULL, NULL, NULL},
    {"login bad user b64", L, {NONE(SASL_CONTINUE), RAW("dXNlcg", SASL_BAD_BASE64)}, NULL, NULL,
     NULL},
    {"login bad password b64", L, {B64("u", SASL_CONTINUE), RAW("cGFzcw= ", SASL_BAD_BASE64)},
     NULL, NULL, NULL},
    {"login non-canonical", L, {RAW("dXNlch==", SASL_BAD_BASE64)}, NULL, NULL, NULL},
};

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

/* Builds the wire line of step s into line (cap 16384); returns its length. */
static size_t build_line(const step *s, char *line)
{
    static unsigned char raw[20000];
    size_t n = 0;
    switch (s->k) {
    case K_RAW:
        memcpy(line, s->s, s->n);
        return s->n;
    case K_JUNK:
        memset(line, 'A', s->n);
        return s->n;
    case K_B64:
        memcpy(raw, s->s, s->n);
        n = s->n;
        break;
    case K_FILL:
        memset(raw, 'x', s->n);
        n = s->n;
        break;
    case K_GEN:
        memset(raw, 'a', s->a);
        raw[s->a] = '\0';
        memset(raw + s->a + 1, 'u', s->u);
        raw[s->a + 1 + s->u] = '\0';
        memset(raw + s->a + s->u + 2, 'p', s->p);
        n = s->a + s->u + s->p + 2;
        break;
    default:
        fail();
    }
    long e = base64_encode(raw, n, line, 16384);
    assert_true(e >= 0);
    return (size_t)e;
}

static bool filled(const char *f, size_t len, char c, size_t want)
{
    if (len != want || f[len] != '\0')
        return false;
    for (size_t i = 0; i < len; i++)
        if (f[i] != c)
            return false;
    return true;
}

/* The credentials after DONE: NUL-terminated, no NUL inside, and what the case expects. */
static void check_done(const sasl_case *c, const step *last, const sasl_exchange *x)
{
    assert_int_equal(strlen(x->authzid), x->authzid_len);
    assert_int_equal(strlen(x->user), x->user_len);
    assert_int_equal(strlen(x->password), x->password_len);
    assert_true(x->user_len > 0 && x->password_len > 0);
    if (c->user != NULL) {
        if (strcmp(x->authzid, c->authzid) != 0 || strcmp(x->user, c->user) != 0 ||
            strcmp(x->password, c->password) != 0)
            fail_msg("case '%s': got '%s' '%s' '%s'", c->name, x->authzid, x->user, x->password);
    } else if (last->k == K_GEN) {
        assert_true(filled(x->authzid, x->authzid_len, 'a', last->a));
        assert_true(filled(x->user, x->user_len, 'u', last->u));
        assert_true(filled(x->password, x->password_len, 'p', last->p));
    } else { /* LOGIN with FILL steps */
        assert_true(filled(x->user, x->user_len, 'x', 255));
        assert_true(filled(x->password, x->password_len, 'x', 255));
    }
    if (c->mech == SASL_LOGIN)
        assert_int_equal(x->authzid_len, 0);
}

/* After CONTINUE: the challenge for what comes next. */
static const char *want_challenge(const sasl_case *c, size_t i)
{
    if (c->mech == SASL_PLAIN)
        return "";
    return i == 0 && c->steps[0].k == K_NONE ? USER_CH : PASS_CH;
}

static void run_case(const sasl_case *c, sasl_exchange *x, char *line)
{
    memset(x, 0x5A, sizeof *x); /* begin must not depend on prior content */
    for (size_t i = 0; i < 5 && c->steps[i].k != K_END; i++) {
        const step *s = &c->steps[i];
        sasl_result r;
        if (i == 0 && s->k == K_NONE) {
            r = sasl_begin(x, c->mech, NULL, 0, false);
        } else {
            size_t n = build_line(s, line);
            r = i == 0 ? sasl_begin(x, c->mech, line, n, true) : sasl_step(x, line, n);
        }
        if (r != s->want)
            fail_msg("case '%s' step %zu: got %d, want %d", c->name, i, r, s->want);
        assert_true(all_zero(x->scratch, sizeof x->scratch));
        if (r == SASL_CONTINUE && strcmp(sasl_challenge(x), want_challenge(c, i)) != 0)
            fail_msg("case '%s' step %zu: challenge '%s'", c->name, i, sasl_challenge(x));
        if (r == SASL_DONE)
            check_done(c, s, x);
        if (r != SASL_CONTINUE && r != SASL_DONE && !all_zero(x, sizeof *x))
            fail_msg("case '%s' step %zu: not wiped after failure", c->name, i);
        if (r != SASL_CONTINUE) {
            assert_true(i + 1 == 5 || c->steps[i + 1].k == K_END); /* the script ends here */
            break;
        }
    }
    sasl_wipe(x);
    assert_true(all_zero(x, sizeof *x));
}

static void test_exchanges(void **state)
{
    (void)state;
    static char line[16384];
    sasl_exchange x;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], &x, line);
}

typedef struct name_case {
    const char *name;
    size_t len;
    int want;
} name_case;

static const name_case names[] = {
    {"PLAIN", 5, SASL_PLAIN}, {"plain", 5, SASL_PLAIN}, {"PlAiN", 5, SASL_PLAIN},
    {"LOGIN", 5, SASL_LOGIN}, {"login", 5, SASL_LOGIN}, {"LOGIN xyz", 5, SASL_LOGIN},
    {"PLAI", 4, -1},          {"PLAINX", 6, -1},        {"", 0, -1},
    {"PLAIN\0", 6, -1},       {"CRAM-MD5", 8, -1},      {"XOAUTH2", 7, -1},
    {"LOGIN ", 6, -1},        {" LOGIN", 6, -1},        {"P\xc4\xbd" "AIN", 6, -1},
    {"PLAIN", 0, -1},
};

static void test_mech_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (sasl_mech_from_name(names[i].name, names[i].len) != names[i].want)
            fail_msg("name case %zu", i);
    assert_string_equal(sasl_mech_name(SASL_PLAIN), "PLAIN");
    assert_string_equal(sasl_mech_name(SASL_LOGIN), "LOGIN");
    assert_null(sasl_mech_name(-1));
    assert_null(sasl_mech_name(SASL__MECH_COUNT));
}

/* Misuse is a result, and it leaves nothing behind. */
static void test_bad_state(void **state)
{
    (void)state;
    sasl_exchange x;
    memset(&x, 0, sizeof x);
    assert_int_equal(sasl_step(&x, "dQ==", 4), SASL_BAD_STATE); /* idle */
    assert_string_equal(sasl_challenge(&x), "");
    assert_int_equal(sasl_begin(&x, 2, NULL, 0, false), SASL_BAD_STATE);
    assert_int_equal(sasl_begin(&x, -1, "dQ==", 4, true), SASL_BAD_STATE);
    assert_true(all_zero(&x, sizeof x));

    /* a step after DONE is misuse: it fails and wipes the credentials */
    assert_int_equal(sasl_begin(&x, SASL_PLAIN, "AHUAcA==", 8, true), SASL_DONE);
    assert_string_equal(sasl_challenge(&x), "");
    assert_int_equal(sasl_step(&x, "AHUAcA==", 8), SASL_BAD_STATE);
    assert_true(all_zero(&x, sizeof x));

    /* a step after a failure, too */
    assert_int_equal(sasl_begin(&x, SASL_LOGIN, NULL, 0, false), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, "*", 1), SASL_CANCELLED);
    assert_int_equal(sasl_step(&x, "dQ==", 4), SASL_BAD_STATE);

    /* begin again after DONE starts afresh: old credentials are gone */
    assert_int_equal(sasl_begin(&x, SASL_PLAIN, "YQB1AHA=", 8, true), SASL_DONE);
    assert_string_equal(x.authzid, "a");
    assert_int_equal(sasl_begin(&x, SASL_LOGIN, NULL, 0, false), SASL_CONTINUE);
    assert_int_equal(x.authzid_len, 0);
    assert_true(all_zero(x.authzid, sizeof x.authzid));
    assert_true(all_zero(x.password, sizeof x.password));
    sasl_wipe(&x);
}

/* sasl_wipe clears credentials (and everything else) after DONE and mid-exchange. */
static void test_wipe(void **state)
{
    (void)state;
    sasl_exchange x;
    assert_int_equal(sasl_begin(&x, SASL_LOGIN, "dXNlcg==", 8, true), SASL_CONTINUE);
    assert_string_equal(x.user, "user");
    sasl_wipe(&x);
    assert_true(all_zero(&x, sizeof x));
    assert_int_equal(sasl_step(&x, "cGFzcw==", 8), SASL_BAD_STATE);

    assert_int_equal(sasl_begin(&x, SASL_PLAIN, "AHVzZXIAcGFzcw==", 16, true), SASL_DONE);
    assert_string_equal(x.password, "pass");
    sasl_wipe(&x);
    assert_true(all_zero(&x, sizeof x));
}

typedef struct reply_case {
    sasl_result r;
    smtp_reply_id id;
    const char *wire; /* for the challenge: with the PLAIN (empty) challenge */
} reply_case;

static const reply_case replies[] = {
    {SASL_CONTINUE, R_AUTH_CHALLENGE, "334 \r\n"},
    {SASL_DONE, R_NONE, NULL},
    {SASL_CANCELLED, R_AUTH_CANCELLED, "501 5.7.0 Authentication cancelled\r\n"},
    {SASL_BAD_BASE64, R_AUTH_BAD_BASE64, "501 5.5.2 Invalid base64 data\r\n"},
    {SASL_BAD_SYNTAX, R_AUTH_BAD_MESSAGE, "501 5.5.2 Malformed authentication response\r\n"},
    {SASL_TOO_LONG, R_AUTH_TOO_LONG, "500 5.5.6 Authentication Exchange line is too long\r\n"},
    {SASL_BAD_STATE, R_BAD_SEQUENCE, "503 5.5.1 Bad sequence of commands\r\n"},
    {SASL__RESULT_COUNT, R_BAD_SEQUENCE, NULL},
    {(sasl_result)-1, R_BAD_SEQUENCE, NULL},
};

static void test_replies(void **state)
{
    (void)state;
    sasl_exchange x;
    assert_int_equal(sasl_begin(&x, SASL_PLAIN, NULL, 0, false), SASL_CONTINUE);
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
        const reply_case *c = &replies[i];
        assert_int_equal(sasl_result_reply(c->r), c->id);
        if (c->wire == NULL)
            continue;
        strbuf out;
        strbuf_init(&out, 0);
        assert_int_equal(smtp_reply_append_id(&out, c->id, sasl_challenge(&x)), 0);
        if (strcmp(out.data, c->wire) != 0)
            fail_msg("reply case %zu: '%s'", i, out.data);
        strbuf_free(&out);
    }
    /* LOGIN's challenges on the wire */
    strbuf out;
    strbuf_init(&out, 0);
    assert_int_equal(sasl_begin(&x, SASL_LOGIN, NULL, 0, false), SASL_CONTINUE);
    smtp_reply_append_id(&out, sasl_result_reply(SASL_CONTINUE), sasl_challenge(&x));
    assert_int_equal(sasl_step(&x, "dXNlcg==", 8), SASL_CONTINUE);
    smtp_reply_append_id(&out, sasl_result_reply(SASL_CONTINUE), sasl_challenge(&x));
    assert_string_equal(out.data, "334 " USER_CH "\r\n334 " PASS_CH "\r\n");
    strbuf_free(&out);
    sasl_wipe(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exchanges), cmocka_unit_test(test_mech_names),
        cmocka_unit_test(test_bad_state), cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
