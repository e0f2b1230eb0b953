/*
 * test_parse.c - unit tests for src/proto/parse.c: every verb and its case-insensitivity,
 * argument splitting, MAIL with each ESMTP parameter and each parameter error, RCPT, BDAT and
 * HELO/EHLO arguments. Table-driven; failures name the case and the reply id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/parse.h"

/* --- command lines -------------------------------------------------------------------------- */

typedef struct cmd_case {
    const char *line;
    size_t len; /* 0: strlen */
    smtp_verb verb;
    const char *arg;
    size_t arg_len; /* 0: strlen(arg) */
} cmd_case;

#define CMD(line, verb, arg) {line, 0, verb, arg, 0}

static const cmd_case cmd_cases[] = {
    CMD("HELO mx.example", V_HELO, "mx.example"),
    CMD("helo mx.example", V_HELO, "mx.example"),
    CMD("EHLO mx.example", V_EHLO, "mx.example"),
    CMD("EhLo mx.example", V_EHLO, "mx.example"),
    CMD("MAIL FROM:<a@b.c> SIZE=10", V_MAIL, "FROM:<a@b.c> SIZE=10"),
    CMD("mail from:<>", V_MAIL, "from:<>"),
    CMD("RCPT TO:<a@b.c>", V_RCPT, "TO:<a@b.c>"),
    CMD("rCpT TO:<a@b.c>", V_RCPT, "TO:<a@b.c>"),
    CMD("DATA", V_DATA, ""),
    CMD("data", V_DATA, ""),
    CMD("BDAT 100 LAST", V_BDAT, "100 LAST"),
    CMD("bdat 0", V_BDAT, "0"),
    CMD("RSET", V_RSET, ""),
    CMD("rset", V_RSET, ""),
    CMD("NOOP", V_NOOP, ""),
    CMD("NOOP anything goes", V_NOOP, "anything goes"),
    CMD("QUIT", V_QUIT, ""),
    CMD("Quit", V_QUIT, ""),
    CMD("VRFY user", V_VRFY, "user"),
    CMD("EXPN list", V_EXPN, "list"),
    CMD("HELP", V_HELP, ""),
    CMD("HELP MAIL", V_HELP, "MAIL"),
    CMD("STARTTLS", V_STARTTLS, ""),
    CMD("StartTLS", V_STARTTLS, ""),
    CMD("AUTH PLAIN AGFsaWNlAHNlY3JldA==", V_AUTH, "PLAIN AGFsaWNlAHNlY3JldA=="),
    CMD("auth login", V_AUTH, "login"),
    /* spacing: runs of spaces after the verb and at the end are dropped */
    CMD("DATA   ", V_DATA, ""),
    CMD("HELO   x   ", V_HELO, "x"),
    CMD("MAIL  FROM:<a@b.c>  SIZE=1  ", V_MAIL, "FROM:<a@b.c>  SIZE=1"),
    CMD("NOOP a  b", V_NOOP, "a  b"),
    /* the verb must be a whole word followed by a space or the end */
    CMD("MAILX", V_UNKNOWN, ""),
    CMD("MAIL:", V_UNKNOWN, ""),
    CMD("MAI", V_UNKNOWN, ""),
    CMD("DATA2", V_UNKNOWN, ""),
    CMD("STARTTLS2", V_UNKNOWN, ""),
    CMD("DATA\tx", V_UNKNOWN, ""),
    CMD("MAIL\tFROM:<a@b.c>", V_UNKNOWN, ""),
    CMD(" DATA", V_UNKNOWN, "DATA"),
    CMD("XYZZY plugh", V_UNKNOWN, "plugh"),
    CMD("UNKNOWN", V_UNKNOWN, ""),
    CMD("", V_UNKNOWN, ""),
    CMD("   ", V_UNKNOWN, ""),
    CMD("D\xc3\xa4TA", V_UNKNOWN, ""),
    {"QUIT\0", 5, V_UNKNOWN, "", 0},
    {"DATA\0x", 6, V_UNKNOWN, "", 0},
    {"NOOP \0", 6, V_NOOP, "\0", 1},
    {"QUITTING", 4, V_QUIT, "", 0}, /* len, not the NUL, ends the line */
};

static void test_command_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++) {
        const cmd_case *c = &cmd_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->line);
        size_t alen = c->arg_len != 0 ? c->arg_len : strlen(c->arg);
        smtp_command cmd;
        smtp_parse_command(c->line, len, &cmd);
        if (cmd.verb != c->verb || cmd.arg_len != alen || memcmp(cmd.arg, c->arg, alen) != 0)
            fail_msg("command case %zu '%s': verb %s arg '%.*s'", i, c->line,
                     smtp_verb_name(cmd.verb), (int)cmd.arg_len, cmd.arg);
        /* arg always points into the line */
        if (cmd.arg < c->line || cmd.arg + cmd.arg_len > c->line + len)
            fail_msg("command case %zu: arg outside the line", i);
    }
    smtp_command cmd;
    smtp_parse_command(NULL, 0, &cmd);
    assert_int_equal(cmd.verb, V_UNKNOWN);
    assert_int_equal(cmd.arg_len, 0);
    assert_non_null(cmd.arg);
}

static void test_verb_names(void **state)
{
    (void)state;
    static const struct {
        smtp_verb v;
        const char *name;
    } names[] = {
        {V_UNKNOWN, "UNKNOWN"}, {V_HELO, "HELO"}, {V_EHLO, "EHLO"},
        {V_MAIL, "MAIL"},       {V_RCPT, "RCPT"}, {V_DATA, "DATA"},
        {V_BDAT, "BDAT"},       {V_RSET, "RSET"}, {V_NOOP, "NOOP"},
        {V_QUIT, "QUIT"},       {V_VRFY, "VRFY"}, {V_EXPN, "EXPN"},
        {V_HELP, "HELP"},       {V_STARTTLS, "STARTTLS"}, {V_AUTH, "AUTH"},
        {V__COUNT, "UNKNOWN"},  {(smtp_verb)-1, "UNKNOWN"}, {(smtp_verb)999, "UNKNOWN"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(smtp_verb_name(names[i].v), names[i].name);
    /* Every verb's own name parses back to it (no verb missing from the lookup). */
    for (int v = V_UNKNOWN + 1; v < V__COUNT; v++) {
        smtp_command cmd;
        const char *name = smtp_verb_name((smtp_verb)v);
        smtp_parse_command(name, strlen(name), &cmd);
        assert_int_equal(cmd.verb, v);
    }
}

/* --- MAIL ----------------------------------------------------------------------------------- */

typedef struct mail_case {
    const char *arg;
    smtp_reply_id rc;
    const char *mailbox; /* checked on success */
    bool has_size;
    uint64_t size;
    smtp_body body;
    bool smtputf8;
} mail_case;

#define M_OK(arg, mb) {arg, R_NONE, mb, false, 0, BODY_UNSPEC, false}
#define M_P(arg, mb, hs, sz, body, u8) {arg, R_NONE, mb, hs, sz, body, u8}
#define M_ERR(arg, rc) {arg, rc, NULL, false, 0, BODY_UNSPEC, false}

#define UTF8_ADDR "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>"

static const mail_case mail_cases[] = {
    M_OK("FROM:<a@b.c>", "a@b.c"),
    M_OK("from:<a@b.c>", "a@b.c"),
    M_OK("FrOm:<a@b.c>", "a@b.c"),
    M_OK("FROM: <a@b.c>", "a@b.c"),
    M_OK("FROM:<>", ""),
    M_OK("FROM: <>", ""),
    M_OK("FROM:<a@b.c>   ", "a@b.c"),
    M_OK("FROM:<@r.example:a@b.c>", "a@b.c"),
    M_OK("FROM:<\"john doe\"@b.c>", "\"john doe\"@b.c"),
    M_OK("FROM:<a@[1.2.3.4]>", "a@[1.2.3.4]"),
    /* SIZE (RFC 1870) */
    M_P("FROM:<a@b.c> SIZE=100", "a@b.c", true, 100, BODY_UNSPEC, false),
    M_P("FROM:<a@b.c> size=0", "a@b.c", true, 0, BODY_UNSPEC, false),
    M_P("FROM:<a@b.c> SIZE=18446744073709551615", "a@b.c", true, UINT64_MAX, BODY_UNSPEC,
        false),
    M_P("FROM:<a@b.c> SIZE=00000000000000000001", "a@b.c", true, 1, BODY_UNSPEC, false),
    M_P("FROM:<> SIZE=5", "", true, 5, BODY_UNSPEC, false),
    M_ERR("FROM:<a@b.c> SIZE=18446744073709551616", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=99999999999999999999", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=000000000000000000001", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=-1", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=+1", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=1x", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=0x10", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE==1", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=1\x01", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=1 SIZE=2", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=1 size=1", R_BAD_PARAM),
    /* BODY (RFC 6152) */
    M_P("FROM:<a@b.c> BODY=7BIT", "a@b.c", false, 0, BODY_7BIT, false),
    M_P("FROM:<a@b.c> BODY=8BITMIME", "a@b.c", false, 0, BODY_8BITMIME, false),
    M_P("FROM:<a@b.c> body=8bitmime", "a@b.c", false, 0, BODY_8BITMIME, false),
    M_P("FROM:<a@b.c> Body=7bit", "a@b.c", false, 0, BODY_7BIT, false),
    M_ERR("FROM:<a@b.c> BODY=BINARYMIME", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY=8BIT", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY=8BITMIMEX", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY=8BITMIME=x", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY=", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY=7BIT BODY=7BIT", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> BODY=7BIT BODY=8BITMIME", R_BAD_PARAM),
    /* SMTPUTF8 (RFC 6531) */
    M_P("FROM:<a@b.c> SMTPUTF8", "a@b.c", false, 0, BODY_UNSPEC, true),
    M_P("FROM:<a@b.c> smtputf8", "a@b.c", false, 0, BODY_UNSPEC, true),
    M_ERR("FROM:<a@b.c> SMTPUTF8=yes", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SMTPUTF8=", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SMTPUTF8 SMTPUTF8", R_BAD_PARAM),
    M_ERR("FROM:" UTF8_ADDR, R_NEED_SMTPUTF8),
    M_ERR("FROM:" UTF8_ADDR " SIZE=1 BODY=8BITMIME", R_NEED_SMTPUTF8),
    M_ERR("FROM:<a@b\xc3\xbc.example>", R_NEED_SMTPUTF8),
    M_ERR("FROM:<@b\xc3\xbc.example:a@b.c>", R_NEED_SMTPUTF8),
    M_P("FROM:" UTF8_ADDR " SMTPUTF8",
        "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", false, 0,
        BODY_UNSPEC, true),
    M_P("FROM:<\xc3\xbc@x.y> BODY=8BITMIME SMTPUTF8", "\xc3\xbc@x.y", false, 0, BODY_8BITMIME,
        true),
    M_ERR("FROM:" UTF8_ADDR " SMTPUTF8 FOO", R_PARAM_UNKNOWN), /* param errors first */
    M_ERR("FROM:<\xc0\xaf@x.y> SMTPUTF8", R_BAD_SENDER),
    M_ERR("FROM:<\xed\xa0\x80@x.y> SMTPUTF8", R_BAD_SENDER),
    /* all together, any case, any order, runs of spaces */
    M_P("FROM:<a@b.c> SIZE=1000 BODY=8BITMIME SMTPUTF8", "a@b.c", true, 1000, BODY_8BITMIME,
        true),
    M_P("from:<a@b.c> smtputf8 body=7bit size=7", "a@b.c", true, 7, BODY_7BIT, true),
    M_P("FROM:<a@b.c>  SIZE=1   BODY=7BIT  ", "a@b.c", true, 1, BODY_7BIT, false),
    /* unknown or malformed keywords */
    M_ERR("FROM:<a@b.c> FOO=bar", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> FOO", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> AUTH=<>", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> RET=FULL", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> ENVID=x", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> SIZES=1", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> SIZ=1", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> =1", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> SI_ZE=1", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> -SIZE=1", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> SIZE=1 FOO", R_PARAM_UNKNOWN),
    M_ERR("FROM:<a@b.c> FOO SIZE=x", R_PARAM_UNKNOWN), /* the first error wins */
    M_ERR("FROM:<a@b.c> SIZE=x FOO", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> SIZE=1\tBODY=7BIT", R_BAD_PARAM),
    M_ERR("FROM:<a@b.c> \xc3\xbc=1", R_PARAM_UNKNOWN),
    /* the FROM: prefix */
    M_ERR("", R_SYNTAX_MAIL),
    M_ERR("FROM:", R_SYNTAX_MAIL),
    M_ERR("FROM: ", R_SYNTAX_MAIL),
    M_ERR("FROM", R_SYNTAX_MAIL),
    M_ERR("FRM:<a@b.c>", R_SYNTAX_MAIL),
    M_ERR("FROM <a@b.c>", R_SYNTAX_MAIL),
    M_ERR("FROM :<a@b.c>", R_SYNTAX_MAIL),
    M_ERR("FROM=<a@b.c>", R_SYNTAX_MAIL),
    M_ERR("TO:<a@b.c>", R_SYNTAX_MAIL),
    M_ERR("<a@b.c>", R_SYNTAX_MAIL),
    /* after the path */
    M_ERR("FROM:<a@b.c>SIZE=1", R_SYNTAX_MAIL),
    M_ERR("FROM:<a@b.c>>", R_SYNTAX_MAIL),
    M_ERR("FROM:<>x", R_SYNTAX_MAIL),
    /* the path */
    M_ERR("FROM:  <a@b.c>", R_BAD_SENDER),
    M_ERR("FROM:a@b.c", R_BAD_SENDER),
    M_ERR("FROM:<a@b.c", R_BAD_SENDER),
    M_ERR("FROM:<a@b.c >", R_BAD_SENDER),
    M_ERR("FROM:<Postmaster>", R_BAD_SENDER),
    M_ERR("FROM:<a>", R_BAD_SENDER),
    M_ERR("FROM:<a@-b.c>", R_BAD_SENDER),
    M_ERR("FROM:<a@[300.1.1.1]>", R_BAD_SENDER),
    M_ERR("FROM:< >", R_BAD_SENDER),
};

static void test_mail_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mail_cases / sizeof mail_cases[0]; i++) {
        const mail_case *c = &mail_cases[i];
        smtp_path path;
        smtp_mail_params p;
        memset(&p, 0x5a, sizeof p);
        smtp_reply_id rc = smtp_parse_mail(c->arg, strlen(c->arg), &path, &p);
        if (rc != c->rc)
            fail_msg("mail case %zu '%s': rc %d, want %d", i, c->arg, rc, c->rc);
        if (rc != R_NONE)
            continue;
        if (strcmp(path.mailbox, c->mailbox) != 0 || path.is_null != (c->mailbox[0] == '\0') ||
            p.has_size != c->has_size || p.size != c->size || p.body != c->body ||
            p.smtputf8 != c->smtputf8)
            fail_msg("mail case %zu '%s': got '%s' size %d/%llu body %d utf8 %d", i, c->arg,
                     path.mailbox, p.has_size, (unsigned long long)p.size, p.body, p.smtputf8);
    }
}

/* --- RCPT ----------------------------------------------------------------------------------- */

typedef struct rcpt_case {
    const char *arg;
    bool utf8_ok;
    smtp_reply_id rc;
    const char *mailbox;
} rcpt_case;

static const rcpt_case rcpt_cases[] = {
    {"TO:<a@b.c>", false, R_NONE, "a@b.c"},
    {"to:<a@b.c>", false, R_NONE, "a@b.c"},
    {"tO:<a@b.c>", true, R_NONE, "a@b.c"},
    {"TO: <a@b.c>", false, R_NONE, "a@b.c"},
    {"TO:<a@b.c>   ", false, R_NONE, "a@b.c"},
    {"TO:<Postmaster>", false, R_NONE, "Postmaster"},
    {"TO:<postmaster>", false, R_NONE, "postmaster"},
    {"TO:<POSTMASTER>", false, R_NONE, "POSTMASTER"},
    {"TO:<postmaster@b.c>", false, R_NONE, "postmaster@b.c"},
    {"TO:<@r.example,@s.example:a@b.c>", false, R_NONE, "a@b.c"},
    {"TO:<\"x y\"@[IPv6:::1]>", false, R_NONE, "\"x y\"@[IPv6:::1]"},
    {"TO:<\xc3\xbc@x.y>", true, R_NONE, "\xc3\xbc@x.y"},
    {"TO:<\xc3\xbc@x.y>", false, R_NEED_SMTPUTF8, NULL},
    {"TO:<a@b\xc3\xbc.example>", false, R_NEED_SMTPUTF8, NULL},
    {"TO:" UTF8_ADDR, false, R_NEED_SMTPUTF8, NULL},
    {"TO:<\xc0\xaf@x.y>", true, R_BAD_RCPT, NULL},
    {"TO:<>", false, R_BAD_RCPT, NULL},
    {"TO:<>", true, R_BAD_RCPT, NULL},
    {"TO:a@b.c", false, R_BAD_RCPT, NULL},
    {"TO:<a@b.c", false, R_BAD_RCPT, NULL},
    {"TO:  <a@b.c>", false, R_BAD_RCPT, NULL},
    {"TO:<a>", false, R_BAD_RCPT, NULL},
    {"TO:<Postmaster@>", false, R_BAD_RCPT, NULL},
    {"TO:<a@b.c> NOTIFY=NEVER", false, R_PARAM_UNKNOWN, NULL},
    {"TO:<a@b.c> ORCPT=rfc822;a@b.c", false, R_PARAM_UNKNOWN, NULL},
    {"TO:<a@b.c> X", false, R_PARAM_UNKNOWN, NULL},
    {"TO:<\xc3\xbc@x.y> X", false, R_PARAM_UNKNOWN, NULL},
    {"", false, R_SYNTAX_RCPT, NULL},
    {"TO:", false, R_SYNTAX_RCPT, NULL},
    {"TO: ", false, R_SYNTAX_RCPT, NULL},
    {"TO<a@b.c>", false, R_SYNTAX_RCPT, NULL},
    {"TO :<a@b.c>", false, R_SYNTAX_RCPT, NULL},
    {"FROM:<a@b.c>", false, R_SYNTAX_RCPT, NULL},
    {"TO:<a@b.c>x", false, R_SYNTAX_RCPT, NULL},
    {"TO:<a@b.c>NOTIFY=NEVER", false, R_SYNTAX_RCPT, NULL},
};

static void test_rcpt_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rcpt_cases / sizeof rcpt_cases[0]; i++) {
        const rcpt_case *c = &rcpt_cases[i];
        smtp_path path;
        smtp_reply_id rc = smtp_parse_rcpt(c->arg, strlen(c->arg), c->utf8_ok, &path);
        if (rc != c->rc)
            fail_msg("rcpt case %zu '%s': rc %d, want %d", i, c->arg, rc, c->rc);
        if (rc == R_NONE && (strcmp(path.mailbox, c->mailbox) != 0 || path.is_null))
            fail_msg("rcpt case %zu '%s': got '%s'", i, c->arg, path.mailbox);
    }
}

/* --- BDAT ----------------------------------------------------------------------------------- */

typedef struct bdat_case {
    const char *arg;
    smtp_reply_id rc;
    uint64_t size;
    bool last;
} bdat_case;

static const bdat_case bdat_cases[] = {
    {"100", R_NONE, 100, false},
    {"100 LAST", R_NONE, 100, true},
    {"100 last", R_NONE, 100, true},
    {"100 LaSt", R_NONE, 100, true},
    {"0", R_NONE, 0, false},
    {"0 LAST", R_NONE, 0, true},
    {"007", R_NONE, 7, false},
    {"100  LAST", R_NONE, 100, true},
    {"100 LAST  ", R_NONE, 100, true},
    {"100   ", R_NONE, 100, false},
    {"999999999999999999", R_NONE, 999999999999999999ULL, false},
    {"999999999999999999 LAST", R_NONE, 999999999999999999ULL, true},
    {"1000000000000000000", R_SYNTAX_BDAT, 0, false},
    {"18446744073709551616", R_SYNTAX_BDAT, 0, false},
    {"", R_SYNTAX_BDAT, 0, false},
    {" ", R_SYNTAX_BDAT, 0, false},
    {"LAST", R_SYNTAX_BDAT, 0, false},
    {"LAST 100", R_SYNTAX_BDAT, 0, false},
    {"-1", R_SYNTAX_BDAT, 0, false},
    {"+5", R_SYNTAX_BDAT, 0, false},
    {"1x", R_SYNTAX_BDAT, 0, false},
    {"0x10", R_SYNTAX_BDAT, 0, false},
    {"1 2", R_SYNTAX_BDAT, 0, false},
    {"100 LAST x", R_SYNTAX_BDAT, 0, false},
    {"100 LAST LAST", R_SYNTAX_BDAT, 0, false},
    {"100 FIRST", R_SYNTAX_BDAT, 0, false},
    {"100 LASTX", R_SYNTAX_BDAT, 0, false},
    {"100 LAS", R_SYNTAX_BDAT, 0, false},
    {"100LAST", R_SYNTAX_BDAT, 0, false},
    {"100\tLAST", R_SYNTAX_BDAT, 0, false},
};

static void test_bdat_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bdat_cases / sizeof bdat_cases[0]; i++) {
        const bdat_case *c = &bdat_cases[i];
        uint64_t size = 12345;
        bool last = true;
        smtp_reply_id rc = smtp_parse_bdat(c->arg, strlen(c->arg), &size, &last);
        if (rc != c->rc)
            fail_msg("bdat case %zu '%s': rc %d, want %d", i, c->arg, rc, c->rc);
        if (rc == R_NONE && (size != c->size || last != c->last))
            fail_msg("bdat case %zu '%s': size %llu last %d", i, c->arg,
                     (unsigned long long)size, last);
    }
}

/* --- HELO/EHLO ------------------------------------------------------------------------------ */

typedef struct helo_case {
    const char *arg;
    smtp_reply_id rc;
} helo_case;

static const helo_case helo_cases[] = {
    {"example.com", R_NONE},
    {"localhost", R_NONE},
    {"mx1.mail.example", R_NONE},
    {"my_host.example", R_NONE},
    {"-weird-.example", R_NONE},
    {"1.2.3.4", R_NONE},
    {"[1.2.3.4]", R_NONE},
    {"[IPv6:::1]", R_NONE},
    {"[IPv6:2001:db8::1]", R_NONE},
    {"b\xc3\xbc" "cher.example", R_NONE},
    {"", R_SYNTAX_HELO},
    {"a b", R_SYNTAX_HELO},
    {"a..b", R_SYNTAX_HELO},
    {".a", R_SYNTAX_HELO},
    {"a.", R_SYNTAX_HELO},
    {".", R_SYNTAX_HELO},
    {"host!", R_SYNTAX_HELO},
    {"host@example", R_SYNTAX_HELO},
    {"host\texample", R_SYNTAX_HELO},
    {"[1.2.3]", R_SYNTAX_HELO},
    {"[1.2.3.4", R_SYNTAX_HELO},
    {"[IPv6:1::2::3]", R_SYNTAX_HELO},
    {"[1.2.3.4] x", R_SYNTAX_HELO},
    {"\xc0\xaf" ".example", R_SYNTAX_HELO},
    {"b\xc3", R_SYNTAX_HELO},
};

static void test_helo_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof helo_cases / sizeof helo_cases[0]; i++) {
        const helo_case *c = &helo_cases[i];
        smtp_reply_id rc = smtp_parse_helo(c->arg, strlen(c->arg));
        if (rc != c->rc)
            fail_msg("helo case %zu '%s': rc %d, want %d", i, c->arg, rc, c->rc);
    }
    /* 255 octets is the limit (RFC 5321 4.5.3.1.2); 256 is one too many. */
    char name[300];
    memset(name, 'h', sizeof name);
    for (size_t k = 39; k < sizeof name; k += 40)
        name[k] = '.';
    assert_int_equal(smtp_parse_helo(name, 255), R_NONE);
    assert_int_equal(smtp_parse_helo(name, 256), R_SYNTAX_HELO);
    assert_int_equal(smtp_parse_helo(NULL, 0), R_SYNTAX_HELO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_cases), cmocka_unit_test(test_verb_names),
        cmocka_unit_test(test_mail_cases),    cmocka_unit_test(test_rcpt_cases),
        cmocka_unit_test(test_bdat_cases),    cmocka_unit_test(test_helo_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
