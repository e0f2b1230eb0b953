/*
 * test_addr.c - unit tests for src/proto/addr.c: RFC 5321 paths (dot-string and quoted local
 * parts, domains, address literals, source routes, null path, <Postmaster>), RFC 6531 UTF-8,
 * and the RFC 5321 4.5.3.1 length limits exactly at and one past each limit.
 * Table-driven; failures name the case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/addr.h"

#define N SMTP_PATH_ALLOW_NULL
#define PM SMTP_PATH_ALLOW_POSTMASTER

/* --- paths -------------------------------------------------------------------------------- */

typedef struct path_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    unsigned flags;
    int rc;
    const char *mailbox; /* on success */
    size_t at;
    bool is_null;
    bool utf8;
    size_t consumed; /* 0: the whole input */
} path_case;

#define OK(fl, in, mb, at) {in, 0, fl, 0, mb, at, false, false, 0}
#define OK8(fl, in, mb, at) {in, 0, fl, 0, mb, at, false, true, 0}
#define OKC(fl, in, mb, at, used) {in, 0, fl, 0, mb, at, false, false, used}
#define NUL_PATH(fl, in, used) {in, 0, fl, 0, "", 0, true, false, used}
#define BAD(fl, in) {in, 0, fl, -1, NULL, 0, false, false, 0}
#define BADN(in, n) {in, n, 0, -1, NULL, 0, false, false, 0}

static const path_case path_cases[] = {
    /* plain mailboxes */
    OK(0, "<a@b.c>", "a@b.c", 1),
    OK(0, "<user@example.com>", "user@example.com", 4),
    OK(0, "<User.Name+tag@Example.COM>", "User.Name+tag@Example.COM", 13),
    OK(0, "<a.b.c@x.y>", "a.b.c@x.y", 5),
    OK(0, "<!#$%&'*+-/=?^_`{|}~@x.y>", "!#$%&'*+-/=?^_`{|}~@x.y", 19),
    OK(0, "<1@2.3>", "1@2.3", 1),
    OK(0, "<a@b>", "a@b", 1),
    OK(0, "<a@xn--bcher-kva.example>", "a@xn--bcher-kva.example", 1),
    OK(0, "<a@a-b.c--d>", "a@a-b.c--d", 1),
    OK(N | PM, "<a@b.c>", "a@b.c", 1),
    OKC(0, "<a@b.c> SIZE=100", "a@b.c", 1, 7),
    OKC(0, "<a@b.c>>", "a@b.c", 1, 7),
    {"<a@x.y>\0", 8, 0, 0, "a@x.y", 1, false, false, 7},
    /* quoted local parts */
    OK(0, "<\"john doe\"@example.com>", "\"john doe\"@example.com", 10),
    OK(0, "<\"a\\\"b\"@x.y>", "\"a\\\"b\"@x.y", 6),
    OK(0, "<\"a\\\\b\"@x.y>", "\"a\\\\b\"@x.y", 6),
    OK(0, "<\"a\\ b\"@x.y>", "\"a\\ b\"@x.y", 6),
    OK(0, "<\"a>b\"@x.y>", "\"a>b\"@x.y", 5),
    OK(0, "<\"a@b\"@x.y>", "\"a@b\"@x.y", 5),
    OK(0, "<\"\"@x.y>", "\"\"@x.y", 2),
    OK(0, "<\"a..b.\"@x.y>", "\"a..b.\"@x.y", 7),
    OK(0, "<\"(not a comment)\"@x.y>", "\"(not a comment)\"@x.y", 17),
    OK(0, "<\"[]<>,;:\"@x.y>", "\"[]<>,;:\"@x.y", 9),
    /* address literals */
    OK(0, "<a@[1.2.3.4]>", "a@[1.2.3.4]", 1),
    OK(0, "<a@[IPv6:::1]>", "a@[IPv6:::1]", 1),
    OK(0, "<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", 1),
    OK(0, "<a@[IPv6:::ffff:192.0.2.1]>", "a@[IPv6:::ffff:192.0.2.1]", 1),
    OK(0, "<a@[x-tag:x>y]>", "a@[x-tag:x>y]", 1),
    OK(0, "<\"q\"@[1.2.3.4]>", "\"q\"@[1.2.3.4]", 3),
    /* source routes: accepted and dropped */
    OK(0, "<@a.example,@b.example:user@c.example>", "user@c.example", 4),
    OK(0, "<@a.example:user@c.example>", "user@c.example", 4),
    OK(0, "<@a,@b,@c:u@d>", "u@d", 1),
    OK(N, "<@a.example:\"q r\"@[1.2.3.4]>", "\"q r\"@[1.2.3.4]", 5),
    /* <Postmaster> */
    OK(PM, "<Postmaster>", "Postmaster", 10),
    OK(PM, "<postmaster>", "postmaster", 10),
    OK(PM | N, "<pOsTmAsTeR>", "pOsTmAsTeR", 10),
    OKC(PM, "<POSTMASTER> x", "POSTMASTER", 10, 12),
    OK(PM, "<postmaster@example.com>", "postmaster@example.com", 10),
    OK(0, "<postmaster@example.com>", "postmaster@example.com", 10),
    BAD(0, "<Postmaster>"),
    BAD(N, "<Postmaster>"),
    BAD(PM, "<Postmaster@>"),
    BAD(PM, "<Postmaster >"),
    BAD(PM, "<Postmaster"),
    BAD(PM, "<Postmasters>"),
    BAD(PM, "<@a.example:Postmaster>"),
    /* the null path */
    NUL_PATH(N, "<>", 2),
    NUL_PATH(N | PM, "<>", 2),
    NUL_PATH(N, "<> SIZE=1", 2),
    BAD(0, "<>"),
    BAD(PM, "<>"),
    BAD(N, "< >"),
    /* UTF-8 (RFC 6531) */
    OK8(0, "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
        "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", 6),
    OK8(0, "<a@b\xc3\xbc" "cher.example>", "a@b\xc3\xbc" "cher.example", 1),
    OK8(0, "<\xc3\xbc@x.y>", "\xc3\xbc@x.y", 2),
    OK8(0, "<\"\xc3\xbc\"@x.y>", "\"\xc3\xbc\"@x.y", 4),
    OK8(0, "<\xf0\x9f\x98\x80@x.y>", "\xf0\x9f\x98\x80@x.y", 4),
    OK8(0, "<@b\xc3\xbc.example:a@b.c>", "a@b.c", 1),
    BAD(0, "<\xc0\xaf@x.y>"),                 /* overlong '/' */
    BAD(0, "<\xe0\x80\xaf@x.y>"),             /* overlong, 3 bytes */
    BAD(0, "<a@\xed\xa0\x80.example>"),       /* surrogate U+D800 */
    BAD(0, "<\xf4\x90\x80\x80@x.y>"),         /* U+110000 */
    BAD(0, "<\x80@x.y>"),                     /* lone continuation byte */
    BAD(0, "<\xe4\xb8@x.y>"),                 /* truncated sequence */
    BAD(0, "<\xff@x.y>"),                     /* never valid */
    BAD(0, "<\"\xc0\xaf\"@x.y>"),             /* inside quotes too */
    BAD(0, "<@b\xc0\xaf.example:a@b.c>"),     /* and in the source route */
    BAD(0, "<a@b.\xc3>"),                     /* truncated at the end */
    /* generic syntax errors */
    BAD(N | PM, ""),
    BAD(N | PM, "<"),
    BAD(N | PM, ">"),
    BAD(0, "a@b.c"),
    BAD(0, "<a@b.c"),
    BAD(0, "<a@b.c "),
    BAD(0, " <a@b.c>"),
    BAD(0, "<a@b.c >"),
    BAD(0, "< a@b.c>"),
    BAD(0, "<a @b.c>"),
    BAD(0, "<a@ b.c>"),
    BAD(0, "<a b@c.d>"),
    BAD(0, "<a@b.c\t>"),
    BAD(0, "<a>"),
    BAD(0, "<a@>"),
    BAD(0, "<@b.c>"),
    BAD(0, "<a@b@c>"),
    BAD(0, "<@>"),
    BAD(0, "<\"\">"),
    BADN("<a\0b@x.y>", 9),
    BADN("<a@x\0.y>", 8),
    /* dot-string errors */
    BAD(0, "<.a@b.c>"),
    BAD(0, "<a.@b.c>"),
    BAD(0, "<a..b@c.d>"),
    BAD(0, "<.@b.c>"),
    BAD(0, "<a(b)@c.d>"),
    BAD(0, "<a,b@c.d>"),
    BAD(0, "<a;b@c.d>"),
    BAD(0, "<a:b@c.d>"),
    BAD(0, "<a[b@c.d>"),
    BAD(0, "<a\\b@c.d>"),
    BAD(0, "<a\"b\"@c.d>"),
    BAD(0, "<a\x7f@c.d>"),
    BAD(0, "<a\x01@c.d>"),
    /* quoted-string errors */
    BAD(0, "<\"a\"b@c.d>"),
    BAD(0, "<\"a\".b@c.d>"),
    BAD(0, "<\"a@x.y>"),
    BAD(0, "<\"a\\>"),
    BAD(0, "<\"a\\"),
    BAD(0, "<\"a\x01\"@x.y>"),
    BAD(0, "<\"a\x7f\"@x.y>"),
    BAD(0, "<\"a\t\"@x.y>"),
    BAD(0, "<\"a\\\x01\"@x.y>"),
    BAD(0, "<\"a\\\xc3\xa9\"@x.y>"),
    BAD(0, "<\"a\"\"b\"@x.y>"),
    /* domain errors */
    BAD(0, "<a@-b.c>"),
    BAD(0, "<a@b-.c>"),
    BAD(0, "<a@b..c>"),
    BAD(0, "<a@.b.c>"),
    BAD(0, "<a@b.c.>"),
    BAD(0, "<a@b_c.d>"),
    BAD(0, "<a@b!c.d>"),
    /* literal errors */
    BAD(0, "<a@[1.2.3.4>"),
    BAD(0, "<a@[1.2.3.4]x>"),
    BAD(0, "<a@[1.2.3.4]]>"),
    BAD(0, "<a@[300.1.1.1]>"),
    BAD(0, "<a@[IPv6:1::2::3]>"),
    BAD(0, "<a@[]>"),
    BAD(0, "<a@x[1.2.3.4]>"),
    /* source route errors */
    BAD(0, "<@:u@c.d>"),
    BAD(0, "<@a,u@c.d>"),
    BAD(0, "<@a.example u@c.d>"),
    BAD(0, "<@a.example:>"),
    BAD(N, "<@a.example:>"),
    BAD(0, "<@[1.2.3.4]:u@c.d>"),
    BAD(0, "<@a..b:u@c.d>"),
    BAD(0, "<@a.example,:u@c.d>"),
    BAD(0, "<@a.example,@:u@c.d>"),
    BAD(0, "<@a.example;u@c.d>"),
    BAD(0, "<@a.example>"),
    BAD(0, "<@a.example,@b.example>"),
    BAD(0, "<a.example:u@c.d>"),
    BAD(0, "<@a.example::u@c.d>"),
};

static void test_path_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const path_case *c = &path_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->in);
        smtp_path p;
        memset(&p, 0x5a, sizeof p);
        size_t used = 9999;
        int rc = smtp_parse_path(c->in, len, c->flags, &p, &used);
        if (rc != c->rc)
            fail_msg("path case %zu '%s': rc %d, want %d", i, c->in, rc, c->rc);
        if (rc != 0)
            continue;
        size_t want_used = c->consumed != 0 ? c->consumed : len;
        if (used != want_used || strcmp(p.mailbox, c->mailbox) != 0 ||
            p.len != strlen(c->mailbox) || p.at != c->at || p.is_null != c->is_null ||
            p.utf8 != c->utf8)
            fail_msg("path case %zu '%s': got '%s' len %zu at %zu null %d utf8 %d used %zu",
                     i, c->in, p.mailbox, p.len, p.at, p.is_null, p.utf8, used);
    }
}

/* --- length limits (RFC 5321 4.5.3.1) ------------------------------------------------------- */

/* n bytes of domain: labels of 40 'a's between dots, never starting or ending with a dot. */
static void fill_domain(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 41 == 40 && i + 1 < n) ? '.' : 'a';
    buf[n] = '\0';
}

typedef struct len_case {
    const char *name;
    const char *route;  /* source route including "@...:" or "" */
    size_t local;       /* length of the local part */
    bool quoted;        /* local part as a quoted-string (quotes count) */
    size_t domain;      /* length of the domain */
    int rc;
} len_case;

static const len_case len_cases[] = {
    {"local 64", "", 64, false, 11, 0},
    {"local 65", "", 65, false, 11, -1},
    {"quoted local 64", "", 64, true, 11, 0},
    {"quoted local 65", "", 65, true, 11, -1},
    {"local 1", "", 1, false, 11, 0},
    {"path 256", "", 64, false, 189, 0},
    {"path 257", "", 64, false, 190, -1},
    {"path 256 quoted", "", 64, true, 189, 0},
    {"path 257 quoted", "", 64, true, 190, -1},
    {"path 256 with route", "@r.example:", 60, false, 182, 0},
    {"path 257 with route", "@r.example:", 60, false, 183, -1},
    {"path way over", "", 64, false, 5000, -1},
};

static void test_path_lengths(void **state)
{
    (void)state;
    static char buf[8192];
    for (size_t i = 0; i < sizeof len_cases / sizeof len_cases[0]; i++) {
        const len_case *c = &len_cases[i];
        size_t n = 0;
        buf[n++] = '<';
        memcpy(buf + n, c->route, strlen(c->route));
        n += strlen(c->route);
        memset(buf + n, 'l', c->local);
        if (c->quoted) {
            buf[n] = '"';
            buf[n + c->local - 1] = '"';
        }
        n += c->local;
        buf[n++] = '@';
        fill_domain(buf + n, c->domain);
        n += c->domain;
        buf[n++] = '>';
        smtp_path p;
        size_t used = 0;
        int rc = smtp_parse_path(buf, n, 0, &p, &used);
        if (rc != c->rc)
            fail_msg("length case '%s' (path %zu octets): rc %d, want %d", c->name, n, rc, c->rc);
        if (rc == 0 && (used != n || p.len != n - 2 - strlen(c->route) || p.at != c->local))
            fail_msg("length case '%s': used %zu len %zu at %zu", c->name, used, p.len, p.at);
    }
}

/* --- domains -------------------------------------------------------------------------------- */

typedef struct dom_case {
    const char *in;
    bool utf8;
    bool valid;
} dom_case;

static const dom_case dom_cases[] = {
    {"example.com", false, true},
    {"a", false, true},
    {"A.B.C", false, true},
    {"a-b.c", false, true},
    {"a--b.c", false, true},
    {"1.2.3.4", false, true},
    {"123", false, true},
    {"xn--bcher-kva.example", false, true},
    {"", false, false},
    {".", false, false},
    {"-a.com", false, false},
    {"a-.com", false, false},
    {"a..b", false, false},
    {".a", false, false},
    {"a.", false, false},
    {"a_b.com", false, false},
    {"a b", false, false},
    {"a@b", false, false},
    {"[1.2.3.4]", false, false},
    {"b\xc3\xbc" "cher.example", false, false},
    {"b\xc3\xbc" "cher.example", true, true},
    {"\xc3\xbc", true, true},
    {"\xc3\xbc-.x", true, false},
    {"-\xc3\xbc.x", true, false},
    {"\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", true, true},
    {"b\xc0\xaf.example", true, false},
    {"b\xed\xa0\x80.example", true, false},
    {"b\xc3", true, false},
    {"example.com", true, true},
};

static void test_domain_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dom_cases / sizeof dom_cases[0]; i++) {
        const dom_case *c = &dom_cases[i];
        bool v = smtp_valid_domain(c->in, strlen(c->in), c->utf8);
        if (v != c->valid)
            fail_msg("domain case %zu '%s' utf8 %d: got %d", i, c->in, c->utf8, v);
    }
}

typedef struct dom_len_case {
    const char *name;
    size_t len;
    size_t label; /* 0: fill_domain's 40-octet labels; else one label of this many 'a's */
    bool valid;
} dom_len_case;

static const dom_len_case dom_len_cases[] = {
    {"domain 255", 255, 0, true},
    {"domain 256", 256, 0, false},
    {"label 63", 63, 63, true},
    {"label 64", 64, 64, false},
    {"label 1", 1, 1, true},
};

static void test_domain_lengths(void **state)
{
    (void)state;
    char buf[512];
    for (size_t i = 0; i < sizeof dom_len_cases / sizeof dom_len_cases[0]; i++) {
        const dom_len_case *c = &dom_len_cases[i];
        if (c->label != 0) {
            memset(buf, 'a', c->label);
            buf[c->label] = '\0';
        } else {
            fill_domain(buf, c->len);
        }
        for (int u = 0; u < 2; u++)
            if (smtp_valid_domain(buf, c->len, u != 0) != c->valid)
                fail_msg("domain length case '%s' (utf8 %d)", c->name, u);
    }
    /* A U-label is not held to 63 octets (its A-label may still fit), only to 255 overall. */
    size_t n = 0;
    for (int k = 0; k < 40; k++) {
        buf[n++] = (char)0xc3;
        buf[n++] = (char)0xbc;
    }
    assert_true(smtp_valid_domain(buf, n, true));
    assert_false(smtp_valid_domain(buf, n, false));
}

/* --- address literals ------------------------------------------------------------------------ */

typedef struct lit_case {
    const char *in;
    bool valid;
} lit_case;

static const lit_case lit_cases[] = {
    /* IPv4 */
    {"[1.2.3.4]", true},
    {"[0.0.0.0]", true},
    {"[255.255.255.255]", true},
    {"[001.002.003.004]", true},
    {"[1.2.3]", false},
    {"[1.2.3.4.5]", false},
    {"[256.1.1.1]", false},
    {"[1.2.3.1000]", false},
    {"[0001.2.3.4]", false},
    {"[1..2.3]", false},
    {"[1.2.3.4.]", false},
    {"[.1.2.3.4]", false},
    {"[1.2.3.4 ]", false},
    {"[ 1.2.3.4]", false},
    {"[1.2.3.a]", false},
    {"[-1.2.3.4]", false},
    {"[]", false},
    {"[", false},
    {"]", false},
    {"", false},
    {"1.2.3.4", false},
    {"[1.2.3.4", false},
    {"1.2.3.4]", false},
    /* IPv6-full */
    {"[IPv6:1:2:3:4:5:6:7:8]", true},
    {"[IPv6:2001:0db8:0000:0000:0000:ff00:0042:8329]", true},
    {"[IPv6:ABCD:ef01:2345:6789:abcd:EF01:2345:6789]", true},
    {"[ipv6:1:2:3:4:5:6:7:8]", true},
    {"[IPV6:1:2:3:4:5:6:7:8]", true},
    {"[IPv6:1:2:3:4:5:6:7]", false},
    {"[IPv6:1:2:3:4:5:6:7:8:9]", false},
    {"[IPv6:12345:2:3:4:5:6:7:8]", false},
    {"[IPv6:g:2:3:4:5:6:7:8]", false},
    {"[IPv6:1:2:3:4:5:6:7:]", false},
    {"[IPv6::2:3:4:5:6:7:8]", false},
    {"[IPv6:1:2:3:4:5:6:7:8:]", false},
    /* IPv6-comp */
    {"[IPv6:::]", true},
    {"[IPv6:::1]", true},
    {"[IPv6:1::]", true},
    {"[IPv6:fe80::1]", true},
    {"[IPv6:2001:db8::ff00:42:8329]", true},
    {"[IPv6:1:2:3:4:5:6::]", true},
    {"[IPv6:::1:2:3:4:5:6]", true},
    {"[IPv6:1:2:3::4:5:6]", true},
    {"[IPv6:1:2:3:4:5:6:7::]", false}, /* "::" must stand for at least two groups */
    {"[IPv6:::1:2:3:4:5:6:7]", false},
    {"[IPv6:1:2:3:4::5:6:7]", false},
    {"[IPv6:1::2::3]", false},
    {"[IPv6:1:::2]", false},
    {"[IPv6::::]", false},
    {"[IPv6::1]", false},
    {"[IPv6:1:]", false},
    {"[IPv6:1::2:]", false},
    {"[IPv6::1::]", false},
    {"[IPv6:12345::]", false},
    {"[IPv6:]", false},
    {"[IPv6:g::]", false},
    {"[IPv6: ::1]", false},
    /* IPv6v4-full */
    {"[IPv6:1:2:3:4:5:6:1.2.3.4]", true},
    {"[IPv6:0:0:0:0:0:ffff:192.0.2.1]", true},
    {"[IPv6:1:2:3:4:5:1.2.3.4]", false},
    {"[IPv6:1:2:3:4:5:6:7:1.2.3.4]", false},
    {"[IPv6:1:2:3:4:5:6:1.2.3.256]", false},
    {"[IPv6:1:2:3:4:5:6:1.2.3]", false},
    {"[IPv6:1.2.3.4]", false},
    {"[IPv6:1.2.3.4:1:2:3:4:5:6]", false},
    /* IPv6v4-comp */
    {"[IPv6:::1.2.3.4]", true},
    {"[IPv6:::ffff:1.2.3.4]", true},
    {"[IPv6:1::1.2.3.4]", true},
    {"[IPv6:1:2:3:4::1.2.3.4]", true},
    {"[IPv6:1::2:3:4:1.2.3.4]", true},
    {"[IPv6:1:2:3:4:5::1.2.3.4]", false},
    {"[IPv6:1::2:3:4:5:1.2.3.4]", false},
    {"[IPv6:1.2.3.4::]", false},
    {"[IPv6:1.2.3.4::1]", false},
    {"[IPv6:::1.2.3.4:1]", false},
    {"[IPv6:::1.2.3]", false},
    /* General-address-literal */
    {"[x-tag:stuff]", true},
    {"[tag:a>b]", true},
    {"[tag1:!\"#$%&'()*+,-./0123456789:;<=>?@ABCXYZ^_`abcxyz{|}~]", true},
    {"[-tag:x]", true}, /* Ldh-str may begin with '-' */
    {"[tag-:x]", false},
    {"[:x]", false},
    {"[tag:]", false},
    {"[tag:a[b]", false},
    {"[tag:a\\b]", false},
    {"[tag:a b]", false},
    {"[tag:a\x7f]", false},
    {"[tag:a\xc3\xa9]", false},
    {"[t_g:x]", false},
    {"[IPv6:zzz]", false}, /* the IPv6 tag means IPv6, not a general literal */
    {"[IPv6x:zzz]", true},
};

static void test_literal_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lit_cases / sizeof lit_cases[0]; i++) {
        const lit_case *c = &lit_cases[i];
        bool v = smtp_valid_address_literal(c->in, strlen(c->in));
        if (v != c->valid)
            fail_msg("literal case %zu '%s': got %d", i, c->in, v);
    }
}

/* --- UTF-8 ----------------------------------------------------------------------------------- */

typedef struct utf8_case {
    const char *in;
    size_t len; /* 0: strlen */
    bool valid;
} utf8_case;

static const utf8_case utf8_cases[] = {
    {"", 0, true},
    {"plain ascii", 0, true},
    {"a\0b", 3, true},
    {"\xc2\x80", 0, true},             /* U+0080, smallest 2-byte */
    {"\xdf\xbf", 0, true},             /* U+07FF */
    {"\xe0\xa0\x80", 0, true},         /* U+0800, smallest 3-byte */
    {"\xed\x9f\xbf", 0, true},         /* U+D7FF, below the surrogates */
    {"\xee\x80\x80", 0, true},         /* U+E000, above them */
    {"\xef\xbf\xbf", 0, true},         /* U+FFFF */
    {"\xf0\x90\x80\x80", 0, true},     /* U+10000, smallest 4-byte */
    {"\xf4\x8f\xbf\xbf", 0, true},     /* U+10FFFF, the last code point */
    {"\xf0\x9f\x98\x80", 0, true},     /* emoji */
    {"caf\xc3\xa9 \xe4\xbe\x8b", 0, true},
    {"\x80", 0, false},                /* lone continuation */
    {"\xbf", 0, false},
    {"\xc0\x80", 0, false},            /* overlong NUL */
    {"\xc1\xbf", 0, false},            /* overlong */
    {"\xe0\x9f\xbf", 0, false},        /* overlong 3-byte */
    {"\xf0\x8f\xbf\xbf", 0, false},    /* overlong 4-byte */
    {"\xed\xa0\x80", 0, false},        /* U+D800 */
    {"\xed\xbf\xbf", 0, false},        /* U+DFFF */
    {"\xf4\x90\x80\x80", 0, false},    /* U+110000 */
    {"\xf5\x80\x80\x80", 0, false},
    {"\xf8\x88\x80\x80\x80", 0, false}, /* 5-byte form */
    {"\xfe", 0, false},
    {"\xff", 0, false},
    {"\xc3", 0, false},                /* truncated */
    {"\xe4\xbe", 0, false},
    {"\xf0\x9f\x98", 0, false},
    {"\xc3\x28", 0, false},            /* bad continuation */
    {"\xe4\x28\x8b", 0, false},
    {"\xe4\xbe\x28", 0, false},
    {"\xf0\x9f\x28\x80", 0, false},
    {"\xf0\x9f\x98\x28", 0, false},
    {"a\xc3\xa9\xc3", 0, false},       /* good, then truncated */
};

static void test_utf8_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const utf8_case *c = &utf8_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->in);
        if (smtp_valid_utf8(c->in, len) != c->valid)
            fail_msg("utf8 case %zu: want %d", i, c->valid);
    }
    /* A truncated sequence cut by len, not by a NUL, is caught too. */
    assert_false(smtp_valid_utf8("\xc3\xa9", 1));
    assert_true(smtp_valid_utf8("\xc3\xa9", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_cases),    cmocka_unit_test(test_path_lengths),
        cmocka_unit_test(test_domain_cases),  cmocka_unit_test(test_domain_lengths),
        cmocka_unit_test(test_literal_cases), cmocka_unit_test(test_utf8_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
