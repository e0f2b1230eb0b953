/*
 * test_deliver_recipients.c - the local recipient table on real files: loading (definitions,
 * mailboxes and aliases files, errors with FILE:LINE), ASCII case, plus-addresses, aliases to
 * aliases, cycles, depth and size limits, catch-alls, remote alias targets, the postmaster
 * rule, mailbox resolution (pattern, override, LMTP, Maildir++ folder) and the load-time check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/recipients.h"

typedef struct fixture {
    char dir[64];
    char paths[8][128];
    int npaths;
    ph_rcpt_table *t;
    char err[512];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/posthorn-rcpt-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ph_rcpt_table_free(f->t);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Writes text to a file in the fixture's directory; returns its path (fixture-owned). */
static const char *write_file(fixture *f, const char *name, const char *text)
{
    assert_true(f->npaths < 8);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    char *p = memcpy(f->paths[f->npaths++], path, sizeof(path));
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
    return p;
}

static const char *const basic_users[] = {"alice", "Bob", "postmaster", "a+b"};

static ph_domain_def maildir_def(const char *name)
{
    return (ph_domain_def){.name = name, .transport = PH_DELIVER_MAILDIR,
                           .maildir = "/var/vmail/%d/%u", .users = basic_users,
                           .nusers = 4, .delimiter = '+'};
}

static void load_ok(fixture *f, const ph_domain_def *defs, size_t n)
{
    int rc = ph_rcpt_table_load(defs, n, &f->t, f->err, sizeof(f->err));
    if (rc != 0)
        fail_msg("load failed: %d %s", rc, f->err);
    assert_non_null(f->t);
}

/* Loading must fail with code and an error containing want. */
static void load_fails(fixture *f, const ph_domain_def *defs, size_t n, int code,
                       const char *want)
{
    ph_rcpt_table *t = (ph_rcpt_table *)&f; /* must be reset to NULL */
    f->err[0] = '\0';
    int rc = ph_rcpt_table_load(defs, n, &t, f->err, sizeof(f->err));
    assert_int_equal(rc, code);
    assert_null(t);
    if (!strstr(f->err, want))
        fail_msg("error '%s' does not contain '%s'", f->err, want);
}

/* Expands addr and checks the kind and, for LOCAL, the comma-joined targets; remote targets
 * are written with a leading '!'. */
static void expect(fixture *f, const char *addr, ph_expand_kind kind, const char *targets)
{
    ph_expansion x;
    assert_int_equal(ph_rcpt_table_expand(f->t, addr, &x), 0);
    char got[16384] = "";
    size_t o = 0;
    for (size_t i = 0; i < x.ntargets; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s%s", i ? "," : "",
                              x.targets[i].local ? "" : "!", x.targets[i].addr);
    if (x.kind != kind || (targets && strcmp(got, targets) != 0))
        fail_msg("%s: got %s [%s] (%s), want %s [%s]", addr, ph_expand_kind_name(x.kind), got,
                 x.detail, ph_expand_kind_name(kind), targets ? targets : "");
    if (kind != PH_EXPAND_LOCAL)
        assert_int_equal(x.ntargets, 0);
    ph_expansion_clear(&x);
}

/* ---- users, case, plus-addresses -------------------------------------------------------- */

static void test_users_and_case(void **state)
{
    fixture *f = *state;
    ph_domain_def defs[] = {maildir_def("example.com"), maildir_def("example.net")};
    load_ok(f, defs, 2);
    assert_true(ph_rcpt_table_is_local(f->t, "example.com"));
    assert_true(ph_rcpt_table_is_local(f->t, "EXAMPLE.Net"));
    assert_false(ph_rcpt_table_is_local(f->t, "example.org"));
    assert_false(ph_rcpt_table_is_local(f->t, "example.com."));
    assert_false(ph_rcpt_table_is_local(f->t, ""));
    expect(f, "alice@example.com", PH_EXPAND_LOCAL, "alice@example.com");
    expect(f, "ALICE@Example.COM", PH_EXPAND_LOCAL, "alice@example.com");
    expect(f, "bob@example.net", PH_EXPAND_LOCAL, "bob@example.net");
    expect(f, "carol@example.com", PH_EXPAND_UNKNOWN, NULL);
    expect(f, "alice@example.org", PH_EXPAND_NOT_LOCAL, NULL);
    expect(f, "alice", PH_EXPAND_NOT_LOCAL, NULL);
    expect(f, "@example.com", PH_EXPAND_UNKNOWN, NULL);
    /* non-ASCII bytes are not case-folded */
    expect(f, "\xc3\x84lice@example.com", PH_EXPAND_UNKNOWN, NULL);
}

static void test_plus_addressing(void **state)
{
    fixture *f = *state;
    ph_domain_def defs[] = {maildir_def("example.com"), maildir_def("example.net")};
    defs[1].delimiter = '\0';
    load_ok(f, defs, 2);
    /* the extension is kept as written; the user part lowercased */
    expect(f, "Alice+News@example.com", PH_EXPAND_LOCAL, "alice+News@example.com");
    expect(f, "alice+@example.com", PH_EXPAND_LOCAL, "alice+@example.com");
    expect(f, "alice+a+b@example.com", PH_EXPAND_LOCAL, "alice+a+b@example.com");
    /* a user whose name contains the delimiter matches whole first */
    expect(f, "a+b@example.com", PH_EXPAND_LOCAL, "a+b@example.com");
    expect(f, "A+B@example.com", PH_EXPAND_LOCAL, "a+b@example.com");
    expect(f, "a+c@example.com", PH_EXPAND_UNKNOWN, NULL); /* "a" is no user */
    /* a delimiter as the first byte does not split */
    expect(f, "+alice@example.com", PH_EXPAND_UNKNOWN, NULL);
    expect(f, "carol+x@example.com", PH_EXPAND_UNKNOWN, NULL);
    /* no delimiter configured: no plus-addressing */
    expect(f, "alice+x@example.net", PH_EXPAND_UNKNOWN, NULL);
    expect(f, "a+b@example.net", PH_EXPAND_LOCAL, "a+b@example.net");
}

static void test_other_delimiter(void **state)
{
    fixture *f = *state;
    ph_domain_def def = maildir_def("example.com");
    def.delimiter = '-';
    load_ok(f, &def, 1);
    expect(f, "alice-lists@example.com", PH_EXPAND_LOCAL, "alice-lists@example.com");
    expect(f, "alice+lists@example.com", PH_EXPAND_UNKNOWN, NULL);
    ph_mailbox m;
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "alice-lists@example.com", &m), 0);
    assert_string_equal(m.user, "alice@example.com");
    assert_string_equal(m.extension, "lists");
    ph_mailbox_clear(&m);
}

/* ---- catch-all and postmaster ---------------------------------------------------------- */

static void test_catch_all(void **state)
{
    fixture *f = *state;
    ph_domain_def defs[] = {maildir_def("example.com"), maildir_def("example.net"),
                            maildir_def("example.org"), maildir_def("example.edu")};
    defs[0].catch_all = "Alice";
    defs[1].catch_all = "Catch@Remote.EXAMPLE";
    defs[2].catch_all = "bob@example.com";
    defs[3].catch_all = "nobody"; /* names nothing: catch-alls do not chain */
    load_ok(f, defs, 4);
    expect(f, "anything@example.com", PH_EXPAND_LOCAL, "alice@example.com");
    expect(f, "bob@example.com", PH_EXPAND_LOCAL, "bob@example.com"); /* users first */
    expect(f, "bob+x@example.com", PH_EXPAND_LOCAL, "bob+x@example.com");
    expect(f, "anything@example.net", PH_EXPAND_LOCAL, "!Catch@remote.example");
    expect(f, "anything@example.org", PH_EXPAND_LOCAL, "bob@example.com");
    expect(f, "anything@example.edu", PH_EXPAND_BROKEN, NULL);
    expect(f, "alice@example.edu", PH_EXPAND_LOCAL, "alice@example.edu");
}

static void test_postmaster(void **state)
{
    fixture *f = *state;
    static const char *const no_pm[] = {"alice"};
    ph_domain_def defs[] = {maildir_def("example.net"), maildir_def("example.com"),
                            maildir_def("example.org")};
    defs[1].users = no_pm;
    defs[1].nusers = 1;
    defs[2].users = no_pm;
    defs[2].nusers = 1;
    defs[2].catch_all = "alice";
    load_ok(f, defs, 3);
    expect(f, "PostMaster@example.net", PH_EXPAND_LOCAL, "postmaster@example.net");
    /* RCPT TO:<Postmaster>: the first domain defined, not the first in sort order */
    expect(f, "Postmaster", PH_EXPAND_LOCAL, "postmaster@example.net");
    expect(f, "postmaster@example.com", PH_EXPAND_UNKNOWN, NULL);
    expect(f, "postmaster@example.org", PH_EXPAND_LOCAL, "alice@example.org");
}

/* ---- aliases ---------------------------------------------------------------------------- */

static const char aliases_text[] =
    "# comment\n"
    "\n"
    "sales: alice, Bob\n"
    "team:  sales,\n"
    "       carol@remote.example  # a remote member\n"
    "   # a comment between continuation lines\n"
    "\tdave@Other.EXAMPLE, alice\n"
    "Info@example.com: team\n"
    "postmaster: postmaster, admin@elsewhere.example\n"
    "dup: alice, ALICE, alice@example.com, sales\n"
    "loop1: loop2\n"
    "loop2: loop3\n"
    "loop3: loop1\n"
    "self: self\n"
    "broken: alice, ghost\n"
    "lists: alice+lists, bob+Lists\n"
    "cross: alice@example.net, info\n"
    "diamond: left right\n"
    "left: shared\n"
    "right: shared\n"
    "shared: alice, carol@remote.example\n"
    "alice+special: bob\n";

static void load_with_aliases(fixture *f)
{
    ph_domain_def defs[] = {maildir_def("example.com"), maildir_def("example.net")};
    defs[0].aliases_file = write_file(f, "aliases", aliases_text);
    load_ok(f, defs, 2);
}

static void test_aliases(void **state)
{
    fixture *f = *state;
    load_with_aliases(f);
    expect(f, "sales@example.com", PH_EXPAND_LOCAL, "alice@example.com,bob@example.com");
    expect(f, "SALES@EXAMPLE.COM", PH_EXPAND_LOCAL, "alice@example.com,bob@example.com");
    /* aliases to aliases, remote targets (domain lowercased), duplicates removed */
    expect(f, "team@example.com", PH_EXPAND_LOCAL,
           "alice@example.com,bob@example.com,!carol@remote.example,!dave@other.example");
    expect(f, "info@example.com", PH_EXPAND_LOCAL,
           "alice@example.com,bob@example.com,!carol@remote.example,!dave@other.example");
    expect(f, "dup@example.com", PH_EXPAND_LOCAL, "alice@example.com,bob@example.com");
    /* an alias naming itself keeps the user's own copy */
    expect(f, "postmaster@example.com", PH_EXPAND_LOCAL,
           "postmaster@example.com,!admin@elsewhere.example");
    expect(f, "Postmaster", PH_EXPAND_LOCAL, "postmaster@example.com,!admin@elsewhere.example");
    /* targets with extensions; a target in another local domain */
    expect(f, "lists@example.com", PH_EXPAND_LOCAL,
           "alice+lists@example.com,bob+Lists@example.com");
    expect(f, "cross@example.com", PH_EXPAND_LOCAL,
           "alice@example.net,alice@example.com,bob@example.com,!carol@remote.example,"
           "!dave@other.example");
    /* reached twice by two paths: not a loop, listed once */
    expect(f, "diamond@example.com", PH_EXPAND_LOCAL, "alice@example.com,!carol@remote.example");
    /* the aliases are of example.com only */
    expect(f, "sales@example.net", PH_EXPAND_UNKNOWN, NULL);
}

static void test_alias_extensions(void **state)
{
    fixture *f = *state;
    load_with_aliases(f);
    /* the extension is stripped to find the alias and not propagated to its targets */
    expect(f, "sales+q3@example.com", PH_EXPAND_LOCAL, "alice@example.com,bob@example.com");
    /* an alias named with the delimiter wins over the user's plus-address */
    expect(f, "alice+special@example.com", PH_EXPAND_LOCAL, "bob@example.com");
    expect(f, "alice+other@example.com", PH_EXPAND_LOCAL, "alice+other@example.com");
}

static void test_alias_loops_and_broken(void **state)
{
    fixture *f = *state;
    load_with_aliases(f);
    ph_expansion x;
    assert_int_equal(ph_rcpt_table_expand(f->t, "loop1@example.com", &x), 0);
    assert_int_equal(x.kind, PH_EXPAND_LOOP);
    assert_non_null(strstr(x.detail, "loop"));
    assert_null(x.targets);
    ph_expansion_clear(&x);
    expect(f, "loop3@example.com", PH_EXPAND_LOOP, NULL);
    expect(f, "self@example.com", PH_EXPAND_LOOP, NULL);
    assert_int_equal(ph_rcpt_table_expand(f->t, "broken@example.com", &x), 0);
    assert_int_equal(x.kind, PH_EXPAND_BROKEN);
    if (!strstr(x.detail, "ghost@example.com"))
        fail_msg("detail: %s", x.detail);
    ph_expansion_clear(&x);
}

/* A chain of n aliases c1 -> c2 -> ... -> cn -> alice. */
static void chain_text(char *buf, size_t len, int n, const char *prefix)
{
    size_t o = strlen(buf);
    for (int i = 1; i <= n; i++) {
        if (i < n)
            o += (size_t)snprintf(buf + o, len - o, "%s%d: %s%d\n", prefix, i, prefix, i + 1);
        else
            o += (size_t)snprintf(buf + o, len - o, "%s%d: alice\n", prefix, i);
    }
}

static void test_alias_depth(void **state)
{
    fixture *f = *state;
    char text[4096] = "";
    chain_text(text, sizeof(text), PH_RCPT_ALIAS_DEPTH_MAX, "ok");
    chain_text(text, sizeof(text), PH_RCPT_ALIAS_DEPTH_MAX + 1, "deep");
    ph_domain_def def = maildir_def("example.com");
    def.aliases_file = write_file(f, "aliases", text);
    load_ok(f, &def, 1);
    expect(f, "ok1@example.com", PH_EXPAND_LOCAL, "alice@example.com");
    expect(f, "deep2@example.com", PH_EXPAND_LOCAL, "alice@example.com");
    ph_expansion x;
    assert_int_equal(ph_rcpt_table_expand(f->t, "deep1@example.com", &x), 0);
    assert_int_equal(x.kind, PH_EXPAND_LOOP);
    assert_non_null(strstr(x.detail, "deeper"));
    ph_expansion_clear(&x);
}

/* Levels of 10 aliases, each naming all 10 of the next level: 10^7 paths, 71 aliases. Only
 * expanding each alias once keeps this fast (the unit test's time limit catches the rest). */
static void test_alias_work_bounded(void **state)
{
    fixture *f = *state;
    size_t len = 32 * 1024, o = 0;
    char *text = malloc(len);
    o += (size_t)snprintf(text + o, len - o, "top:");
    for (int j = 0; j < 10; j++)
        o += (size_t)snprintf(text + o, len - o, " l1x%d", j);
    o += (size_t)snprintf(text + o, len - o, "\n");
    for (int level = 1; level <= 7; level++)
        for (int i = 0; i < 10; i++) {
            o += (size_t)snprintf(text + o, len - o, "l%dx%d:", level, i);
            for (int j = 0; j < 10; j++)
                o += level < 7 ? (size_t)snprintf(text + o, len - o, " l%dx%d,", level + 1, j)
                               : (size_t)snprintf(text + o, len - o, " alice");
            o += (size_t)snprintf(text + o, len - o, "\n");
        }
    ph_domain_def def = maildir_def("example.com");
    def.aliases_file = write_file(f, "aliases", text);
    free(text);
    load_ok(f, &def, 1);
    expect(f, "top@example.com", PH_EXPAND_LOCAL, "alice@example.com");
}

/* An aliases file with big: n distinct remote targets over several continuation lines. */
static void test_too_many_targets(void **state)
{
    fixture *f = *state;
    size_t len = 64 * 1024, o = 0;
    char *text = malloc(len);
    for (int a = 0; a < 2; a++) {
        int n = a ? PH_RCPT_TARGETS_MAX + 1 : PH_RCPT_TARGETS_MAX;
        o += (size_t)snprintf(text + o, len - o, "%s:", a ? "big" : "fits");
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(text + o, len - o, "%s u%d@remote.example,",
                                  i && i % 10 == 0 ? "\n " : "", i);
        o += (size_t)snprintf(text + o, len - o, "\n");
    }
    ph_domain_def def = maildir_def("example.com");
    def.aliases_file = write_file(f, "aliases", text);
    free(text);
    load_ok(f, &def, 1);
    ph_expansion x;
    assert_int_equal(ph_rcpt_table_expand(f->t, "fits@example.com", &x), 0);
    assert_int_equal(x.kind, PH_EXPAND_LOCAL);
    assert_int_equal(x.ntargets, PH_RCPT_TARGETS_MAX);
    assert_string_equal(x.targets[999].addr, "u999@remote.example");
    assert_false(x.targets[999].local);
    ph_expansion_clear(&x);
    expect(f, "big@example.com", PH_EXPAND_TOO_MANY, NULL);
}

/* ---- mailboxes -------------------------------------------------------------------------- */

static void test_mailbox_resolution(void **state)
{
    fixture *f = *state;
    char pattern[160], text[512];
    snprintf(pattern, sizeof(pattern), "%s/mail/%%d/%%u/100%%%%", f->dir);
    snprintf(text, sizeof(text), "# users\ncarol\nDave@Example.COM   %s/custom/dave\n"
             "alice %s/custom/alice\n", f->dir, f->dir);
    ph_domain_def defs[] = {maildir_def("example.com"), maildir_def("lmtp.example")};
    defs[0].maildir = pattern;
    defs[0].mailboxes_file = write_file(f, "mailboxes", text);
    defs[1].transport = PH_DELIVER_LMTP;
    defs[1].maildir = NULL;
    defs[1].lmtp = "unix:/run/dovecot/lmtp";
    load_ok(f, defs, 2);

    ph_mailbox m;
    char want[256];
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "Bob@EXAMPLE.com", &m), 0);
    assert_int_equal(m.transport, PH_DELIVER_MAILDIR);
    assert_string_equal(m.user, "bob@example.com");
    snprintf(want, sizeof(want), "%s/mail/example.com/bob/100%%", f->dir);
    assert_string_equal(m.maildir, want);
    assert_null(m.extension);
    assert_null(m.folder);
    assert_null(m.lmtp);
    ph_mailbox_clear(&m);

    /* the file's path overrides the pattern; an inline user also in the file is merged */
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "dave@example.com", &m), 0);
    snprintf(want, sizeof(want), "%s/custom/dave", f->dir);
    assert_string_equal(m.maildir, want);
    ph_mailbox_clear(&m);
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "alice@example.com", &m), 0);
    snprintf(want, sizeof(want), "%s/custom/alice", f->dir);
    assert_string_equal(m.maildir, want);
    ph_mailbox_clear(&m);
    expect(f, "carol@example.com", PH_EXPAND_LOCAL, "carol@example.com");

    assert_int_equal(ph_rcpt_table_mailbox(f->t, "alice+x@lmtp.example", &m), 0);
    assert_int_equal(m.transport, PH_DELIVER_LMTP);
    assert_string_equal(m.lmtp, "unix:/run/dovecot/lmtp");
    assert_string_equal(m.user, "alice@lmtp.example");
    assert_string_equal(m.extension, "x");
    assert_null(m.maildir);
    assert_null(m.folder);
    ph_mailbox_clear(&m);

    /* users only: aliases, unknown users and other domains are not mailboxes */
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "nobody@example.com", &m), -ENOENT);
    assert_null(m.user);
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "alice@example.org", &m), -ENOENT);
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "alice", &m), -ENOENT);
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "@example.com", &m), -ENOENT);
}

static void test_maildir_folder(void **state)
{
    fixture *f = *state;
    char pattern[160], path[256], want[256];
    snprintf(pattern, sizeof(pattern), "%s/%%u", f->dir);
    ph_domain_def def = maildir_def("example.com");
    def.maildir = pattern;
    load_ok(f, &def, 1);
    snprintf(path, sizeof(path), "%s/alice", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/alice/.news", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/alice/.file", f->dir);
    fclose(fopen(path, "w"));

    ph_mailbox m;
    assert_int_equal(ph_rcpt_table_mailbox(f->t, "alice+News@example.com", &m), 0);
    snprintf(want, sizeof(want), "%s/alice/.news", f->dir);
    assert_non_null(m.folder);
    assert_string_equal(m.folder, want);
    assert_string_equal(m.extension, "News");
    snprintf(want, sizeof(want), "%s/alice", f->dir);
    assert_string_equal(m.maildir, want);
    ph_mailbox_clear(&m);
    /* no such folder, a file rather than a folder, characters outside [a-z0-9_-]: INBOX */
    static const char *const inbox[] = {"alice+sport@example.com", "alice+file@example.com",
                                        "alice+../alice/.news@example.com", "alice+@example.com",
                                        "alice+ne.ws@example.com", "alice@example.com"};
    for (size_t i = 0; i < sizeof(inbox) / sizeof(*inbox); i++) {
        assert_int_equal(ph_rcpt_table_mailbox(f->t, inbox[i], &m), 0);
        if (m.folder)
            fail_msg("%s: folder %s", inbox[i], m.folder);
        ph_mailbox_clear(&m);
    }
}

/* ---- load errors ------------------------------------------------------------------------ */

static void test_definition_errors(void **state)
{
    fixture *f = *state;
    ph_domain_def defs[2] = {maildir_def("example.com"), maildir_def("Example.COM")};
    load_fails(f, defs, 2, -EINVAL, "domain example.com defined twice");
    defs[1] = maildir_def("bad/domain");
    load_fails(f, defs, 2, -EINVAL, "invalid domain name 'bad/domain'");
    defs[1] = maildir_def("..example");
    load_fails(f, defs, 2, -EINVAL, "invalid domain name");
    defs[1] = maildir_def("example.net");
    defs[1].maildir = "/var/vmail/%x";
    load_fails(f, defs, 2, -EINVAL, "bad maildir pattern");
    defs[1].maildir = "/var/vmail/%";
    load_fails(f, defs, 2, -EINVAL, "bad maildir pattern");
    defs[1].maildir = "vmail/%u";
    load_fails(f, defs, 2, -EINVAL, "absolute");
    defs[1].maildir = NULL;
    load_fails(f, defs, 2, -EINVAL, "absolute");
    defs[1] = maildir_def("example.net");
    defs[1].transport = PH_DELIVER_LMTP;
    load_fails(f, defs, 2, -EINVAL, "LMTP transport without a destination");
    defs[1] = maildir_def("example.net");
    defs[1].catch_all = "|/bin/sh";
    load_fails(f, defs, 2, -EINVAL, "catch-all '|/bin/sh'");
    defs[1].catch_all = "a@b@";
    load_fails(f, defs, 2, -EINVAL, "catch-all");
    static const char *const bad_users[] = {"ok", "../etc"};
    defs[1] = maildir_def("example.net");
    defs[1].users = bad_users;
    defs[1].nusers = 2;
    load_fails(f, defs, 2, -EINVAL, "invalid user name '../etc'");
    static const char *const slash_user[] = {"a/b"};
    defs[1].users = slash_user;
    defs[1].nusers = 1;
    load_fails(f, defs, 2, -EINVAL, "invalid user name 'a/b'");
    defs[1] = maildir_def("example.net");
    defs[1].aliases_file = "/nonexistent/aliases";
    load_fails(f, defs, 2, -ENOENT, "/nonexistent/aliases: ");
    defs[1] = maildir_def("example.net");
    defs[1].mailboxes_file = "/nonexistent/mailboxes";
    load_fails(f, defs, 2, -ENOENT, "/nonexistent/mailboxes: ");
    /* no domains at all: an empty table where nothing is local */
    load_ok(f, NULL, 0);
    assert_false(ph_rcpt_table_is_local(f->t, "example.com"));
    expect(f, "postmaster", PH_EXPAND_NOT_LOCAL, NULL);
}

typedef struct file_case {
    const char *text;
    const char *error; /* with ":LINE: " after the file name */
} file_case;

static void run_file_cases(fixture *f, const file_case *cases, size_t n, bool aliases)
{
    for (size_t i = 0; i < n; i++) {
        f->npaths = 0;
        ph_domain_def def = maildir_def("example.com");
        const char *path = write_file(f, aliases ? "aliases" : "mailboxes", cases[i].text);
        if (aliases)
            def.aliases_file = path;
        else
            def.mailboxes_file = path;
        char want[512];
        snprintf(want, sizeof(want), "%s%s", path, cases[i].error);
        load_fails(f, &def, 1, -EINVAL, want);
    }
}

static void test_mailboxes_file_errors(void **state)
{
    static const file_case cases[] = {
        {"ok\n\nbad..name\n", ":3: invalid user name 'bad..name'"},
        {"# c\nok\nbob@example.org\n", ":3: 'bob@example.org' is not in domain example.com"},
        {"bob /a /b\n", ":1: too many fields"},
        {"ok\nbob relative/path\n", ":2: maildir path must be absolute"},
        {"bob\nx\nBob /x\n", ":3: duplicate user 'bob' (first on line 1)"},
        {"bob\n  a/b\n", ":2: invalid user name 'a/b'"},
        {"0123456789012345678901234567890123456789012345678901234567890123456789\n",
         ":1: invalid user name"},
    };
    run_file_cases(*state, cases, sizeof(cases) / sizeof(*cases), false);
}

static void test_aliases_file_errors(void **state)
{
    static const file_case cases[] = {
        {"a: b\nno colon here\n", ":2: expected 'alias: target, ...'"},
        {"# c\n  alice\n", ":2: continuation line without an alias"},
        {"a: b\nc: |/usr/bin/procmail\n", ":2: alias 'c': target '|/usr/bin/procmail': pipes"},
        {"c: bob,\n  /var/mail/c\n", ":2: alias 'c': target '/var/mail/c': pipes, files"},
        {"c: :include:/etc/list\n", ":1: alias 'c': target ':include:/etc/list'"},
        {"c: \"quoted user\"\n", ":1: alias 'c': target '\"quoted': quoted"},
        {"c: bob@\n", ":1: alias 'c': target 'bob@': invalid domain"},
        {"a: b\nempty:\n# no targets\nc: d\n", ":2: alias 'empty' has no targets"},
        {"a: b\nlast: ,\n", ":2: alias 'last' has no targets"},
        {"Sales: a\nx: y\nsales: b\n", ":3: duplicate alias 'sales' (first on line 1)"},
        {"a b: c\n", ":1: expected one alias name before ':'"},
        {"a@example.org: c\n", ":1: 'a@example.org' is not in domain example.com"},
        {": c\n", ":1: expected one alias name"},
        {"a..b: c\n", ":1: invalid alias name 'a..b'"},
    };
    run_file_cases(*state, cases, sizeof(cases) / sizeof(*cases), true);
}

static void test_files_ok_details(void **state)
{
    fixture *f = *state;
    /* CRLF files, tabs, a comment right after the name, a file user named as an address */
    ph_domain_def def = maildir_def("example.com");
    def.users = NULL;
    def.nusers = 0;
    def.mailboxes_file = write_file(f, "mailboxes", "\tzed\r\nyan@EXAMPLE.com # comment\r\n");
    def.aliases_file = write_file(f, "aliases", "x:zed,yan\r\n\r\nw:\tx\t# c\r\n");
    load_ok(f, &def, 1);
    expect(f, "zed@example.com", PH_EXPAND_LOCAL, "zed@example.com");
    expect(f, "w@example.com", PH_EXPAND_LOCAL, "zed@example.com,yan@example.com");
    expect(f, "alice@example.com", PH_EXPAND_UNKNOWN, NULL);
}

/* ---- the load-time check ---------------------------------------------------------------- */

typedef struct warnings {
    char text[4096];
    int count;
} warnings;

static void collect(void *arg, const char *message)
{
    warnings *w = arg;
    size_t o = strlen(w->text);
    snprintf(w->text + o, sizeof(w->text) - o, "%s\n", message);
    w->count++;
}

static void test_check(void **state)
{
    fixture *f = *state;
    static const char *const users[] = {"alice"};
    ph_domain_def defs[] = {maildir_def("example.com"), maildir_def("example.net")};
    defs[0].users = users;
    defs[0].nusers = 1;
    defs[0].aliases_file = write_file(f, "aliases",
                                      "good: alice\nbroken: ghost\nl1: l2\nl2: l1\n");
    defs[0].catch_all = "nobody@example.net";
    load_ok(f, defs, 2);
    warnings w = {0};
    int n = ph_rcpt_table_check(f->t, collect, &w);
    assert_int_equal(n, w.count);
    char want[256];
    snprintf(want, sizeof(want), "%s:2: alias 'broken': broken:", defs[0].aliases_file);
    if (n != 5 || !strstr(w.text, want) || !strstr(w.text, ":3: alias 'l1': loop") ||
        !strstr(w.text, ":4: alias 'l2': loop") ||
        !strstr(w.text, "domain example.com: catch-all 'nobody@example.net'") ||
        !strstr(w.text, "domain example.com: postmaster is broken"))
        fail_msg("%d warnings:\n%s", n, w.text);
    /* a clean table: nothing to say */
    ph_rcpt_table_free(f->t);
    f->t = NULL;
    load_ok(f, &defs[1], 1);
    memset(&w, 0, sizeof(w));
    assert_int_equal(ph_rcpt_table_check(f->t, collect, &w), 0);
    /* postmaster missing and no catch-all */
    ph_rcpt_table_free(f->t);
    f->t = NULL;
    defs[0].aliases_file = NULL;
    defs[0].catch_all = NULL;
    load_ok(f, defs, 1);
    assert_int_equal(ph_rcpt_table_check(f->t, collect, &w), 1);
    assert_non_null(strstr(w.text, "domain example.com: postmaster is not defined"));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(ph_expand_kind_name(PH_EXPAND_NOT_LOCAL), "not-local");
    assert_string_equal(ph_expand_kind_name(PH_EXPAND_BROKEN), "broken");
    assert_string_equal(ph_expand_kind_name((ph_expand_kind)99), "?");
    ph_rcpt_table_free(NULL);
    ph_expansion_clear(NULL);
    ph_mailbox_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_and_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plus_addressing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_delimiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postmaster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_extensions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_loops_and_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_work_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definition_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailboxes_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_ok_details, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
