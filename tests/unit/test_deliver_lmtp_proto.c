/*
 * test_deliver_lmtp_proto.c - unit tests for src/deliver/lmtp_proto.c, the pure LMTP client.
 * Each session test plays a scripted server: srv() feeds server bytes, cli() takes every byte
 * the client has to send and compares it exactly (so an extra or missing pipelined command
 * fails), and the recipients' outcomes are checked at the end. Every session test runs twice:
 * once with each server write fed whole, once fed byte by byte. The dot-stuffer it shares with
 * the SMTP client is tested in test_dotstuff.c. Owns only what each test allocates and frees.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/lmtp_proto.h"

/* --- harness ------------------------------------------------------------------------------- */

#define MAXR 300

typedef struct t_ctx {
    bool bytewise;
    ph_lmtp_client c;
    ph_lmtp_result res[MAXR];
    const char *rcpts[MAXR];
    char names[MAXR][128];
} t_ctx;

static const bool WHOLE = false, BYTEWISE = true;

static int setup(void **state)
{
    const bool *mode = *state;
    t_ctx *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->bytewise = mode ? *mode : false;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Starts a session for n recipients r0@example.org.. (or the given ones). */
static void start_rcpts(t_ctx *t, const char *from, const char *const *rcpts, size_t n,
                        bool body8, bool utf8)
{
    ph_lmtp_params p = {.lhlo_name = "mx.example.net", .from = from, .body_8bitmime = body8,
                        .smtputf8 = utf8, .rcpts = rcpts, .nrcpts = n};
    assert_int_equal(ph_lmtp_client_init(&t->c, &p, t->res), 0);
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_READ);
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "greeting");
}

static void start(t_ctx *t, size_t n, bool body8, bool utf8)
{
    assert_true(n <= MAXR);
    for (size_t i = 0; i < n; i++) {
        snprintf(t->names[i], sizeof(t->names[i]), "r%zu@example.org", i);
        t->rcpts[i] = t->names[i];
    }
    start_rcpts(t, "alice@example.com", t->rcpts, n, body8, utf8);
}

/* Server bytes, whole or byte by byte. */
static void srv(t_ctx *t, const char *bytes)
{
    size_t len = strlen(bytes);
    if (!t->bytewise) {
        ph_lmtp_feed(&t->c, bytes, len);
        return;
    }
    for (size_t i = 0; i < len; i++)
        ph_lmtp_feed(&t->c, bytes + i, 1);
}

/* The client must have exactly `want` to send (taken in pieces of up to 7 bytes, so partial
 * writes are exercised); afterwards its output is empty. */
static void cli(t_ctx *t, const char *want)
{
    char got[16384];
    size_t n = 0, len;
    const char *out;
    while ((out = ph_lmtp_output(&t->c, &len)) != NULL) {
        assert_true(ph_lmtp_wants(&t->c) & PH_LMTP_WANT_WRITE);
        size_t take = len < 7 ? len : 7;
        assert_true(n + take < sizeof(got));
        memcpy(got + n, out, take);
        n += take;
        ph_lmtp_output_done(&t->c, take);
    }
    got[n] = '\0';
    assert_string_equal(got, want);
    assert_false(ph_lmtp_wants(&t->c) & PH_LMTP_WANT_WRITE);
}

static void res_is(t_ctx *t, size_t i, int code, const char *enh, const char *text)
{
    const ph_lmtp_result *r = &t->res[i];
    if (r->code != code || strcmp(r->enh, enh) != 0 || !strstr(r->text, text))
        fail_msg("recipient %zu: got %d \"%s\" \"%s\", want %d \"%s\" containing \"%s\"", i,
                 r->code, r->enh, r->text, code, enh, text);
}

static void done(t_ctx *t)
{
    assert_int_equal(ph_lmtp_wants(&t->c), 0);
    size_t len = 99;
    assert_null(ph_lmtp_output(&t->c, &len));
    assert_int_equal(len, 0);
}

#define GREETING "220 lmtp.example.org Dovecot ready.\r\n"
#define LHLO "LHLO mx.example.net\r\n"
#define CAPS_ALL "250-lmtp.example.org\r\n250-8BITMIME\r\n250-CHUNKING\r\n" \
                 "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
#define CAPS_PIPE "250-lmtp.example.org\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n" \
                  "250 PIPELINING\r\n"
#define CAPS_NOPIPE "250-lmtp.example.org\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
#define MAIL "MAIL FROM:<alice@example.com>"
#define RCPT(n) "RCPT TO:<r" #n "@example.org>\r\n"

static void hello(t_ctx *t, const char *caps)
{
    srv(t, GREETING);
    cli(t, LHLO);
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "LHLO");
    srv(t, caps);
}

static void message(t_ctx *t)
{
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_MESSAGE);
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "message data");
    ph_lmtp_message_sent(&t->c);
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_READ);
}

/* --- sessions ------------------------------------------------------------------------------ */

static void test_all_accepted_pipelined(void **state)
{
    t_ctx *t = *state;
    start(t, 2, true, false);
    hello(t, CAPS_PIPE);
    assert_int_equal(t->c.caps, PH_LMTP_CAP_PIPELINING | PH_LMTP_CAP_8BITMIME |
                                    PH_LMTP_CAP_ENHANCEDSTATUSCODES);
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_WRITE | PH_LMTP_WANT_READ);
    cli(t, MAIL " BODY=8BITMIME\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_READ);
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 OK\r\n");
    message(t);
    srv(t, "250 2.0.0 <r0@example.org> id1 Saved\r\n");
    assert_int_equal(t->res[0].code, 250);
    assert_int_equal(t->res[1].code, 0); /* still open */
    srv(t, "250 2.0.0 <r1@example.org> id2 Saved\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 250, "2.0.0", "<r0@example.org> id1 Saved");
    res_is(t, 1, 250, "2.0.0", "<r1@example.org> id2 Saved");
    assert_string_equal(t->res[0].text, "<r0@example.org> id1 Saved");
}

static void test_partial_success(void **state)
{
    t_ctx *t = *state;
    start(t, 4, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) RCPT(3) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
           "550 5.1.1 <r1@example.org> User doesn't exist: r1@example.org\r\n"
           "250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 OK\r\n");
    res_is(t, 1, 550, "5.1.1", "User doesn't exist: r1@example.org");
    message(t);
    /* one reply per accepted recipient, in RCPT order: r0, r2, r3 */
    srv(t, "250 2.0.0 <r0@example.org> Saved\r\n"
           "452 4.2.2 <r2@example.org> Mailbox is full\r\n"
           "550 5.2.0 <r3@example.org> Rejected\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 250, "2.0.0", "<r0@example.org> Saved");
    res_is(t, 1, 550, "5.1.1", "<r1@example.org>");
    res_is(t, 2, 452, "4.2.2", "Mailbox is full");
    res_is(t, 3, 550, "5.2.0", "<r3@example.org> Rejected");
}

static void test_no_pipelining_one_at_a_time(void **state)
{
    t_ctx *t = *state;
    start(t, 3, true, false);
    hello(t, CAPS_NOPIPE);
    assert_false(t->c.caps & PH_LMTP_CAP_PIPELINING);
    cli(t, MAIL " BODY=8BITMIME\r\n"); /* exactly one command */
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "MAIL FROM");
    srv(t, "250 2.1.0 OK\r\n");
    cli(t, RCPT(0));
    srv(t, "250 2.1.5 OK\r\n");
    cli(t, RCPT(1));
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "RCPT TO");
    srv(t, "450 4.2.1 <r1@example.org> Try later\r\n");
    cli(t, RCPT(2));
    srv(t, "250 2.1.5 OK\r\n");
    cli(t, "DATA\r\n");
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "DATA");
    srv(t, "354 OK\r\n");
    message(t);
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "end of data");
    srv(t, "250 2.0.0 saved r0\r\n250 2.0.0 saved r2\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 250, "2.0.0", "saved r0");
    res_is(t, 1, 450, "4.2.1", "Try later");
    res_is(t, 2, 250, "2.0.0", "saved r2");
}

static void test_no_pipelining_all_rejected_skips_data(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    hello(t, CAPS_NOPIPE);
    cli(t, MAIL "\r\n");
    srv(t, "250 2.1.0 OK\r\n");
    cli(t, RCPT(0));
    srv(t, "550 5.1.1 no such user\r\n");
    cli(t, RCPT(1));
    srv(t, "550 5.1.1 no such user either\r\n");
    cli(t, "QUIT\r\n"); /* no DATA: nobody would get the message */
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 550, "5.1.1", "no such user");
    res_is(t, 1, 550, "5.1.1", "no such user either");
}

static void test_pipelined_all_rejected(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n550 5.1.1 a\r\n550 5.1.1 b\r\n503 5.5.0 No valid recipients\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 550, "5.1.1", "a");
    res_is(t, 1, 550, "5.1.1", "b");
}

static void test_pipelined_354_without_recipients_closes(void **state)
{
    t_ctx *t = *state;
    start(t, 1, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n550 5.1.1 nope\r\n354 go ahead anyway\r\n");
    done(t); /* the server reads message data now: only closing ends that cleanly */
    res_is(t, 0, 550, "5.1.1", "nope");
}

static void test_mail_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "451 4.3.0 Temporary failure\r\n503 5.5.1 MAIL needed first\r\n");
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_READ); /* drains the other replies */
    srv(t, "503 5.5.1 MAIL needed first\r\n503 5.5.1 MAIL needed first\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 451, "4.3.0", "Temporary failure (in reply to MAIL FROM)");
    res_is(t, 1, 451, "4.3.0", "Temporary failure (in reply to MAIL FROM)");
}

static void test_data_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 unknown\r\n554 5.3.0 no DATA today\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 554, "5.3.0", "no DATA today (in reply to DATA)");
    res_is(t, 1, 550, "5.1.1", "unknown");
}

static void test_greeting_and_lhlo_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    srv(t, "554 5.3.2 not now\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 554, "5.3.2", "not now (in reply to greeting)");
    res_is(t, 1, 554, "5.3.2", "not now");

    start(t, 1, false, false);
    srv(t, GREETING);
    cli(t, LHLO);
    srv(t, "500 5.5.1 LHLO? never heard of it\r\n");
    cli(t, "QUIT\r\n");
    ph_lmtp_closed(&t->c); /* no 221: fine after QUIT */
    done(t);
    res_is(t, 0, 500, "5.5.1", "never heard of it (in reply to LHLO)");
}

static void test_multiline_replies(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    srv(t, "220-lmtp.example.org first\r\n220-second\r\n220 third\r\n");
    cli(t, LHLO);
    srv(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n"
           "550-5.1.1 The user does not exist\r\n550-5.1.1 here or\r\n550 5.1.1 anywhere\r\n"
           "250 2.1.5 OK\r\n354 OK\r\n");
    message(t);
    srv(t, "452-4.2.2 Quota\r\n452 4.2.2 exceeded\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 550, "5.1.1", "");
    assert_string_equal(t->res[0].text, "The user does not exist here or anywhere");
    res_is(t, 1, 452, "4.2.2", "");
    assert_string_equal(t->res[1].text, "Quota exceeded");
}

/* The LHLO reply split into two feeds at every position: capabilities come out the same. */
static void test_lhlo_split_everywhere(void **state)
{
    t_ctx *t = *state;
    const char *caps = CAPS_ALL;
    size_t len = strlen(caps);
    for (size_t cut = 0; cut <= len; cut++) {
        start(t, 1, true, true);
        srv(t, GREETING);
        cli(t, LHLO);
        ph_lmtp_feed(&t->c, caps, cut);
        ph_lmtp_feed(&t->c, caps + cut, len - cut);
        assert_int_equal(t->c.caps, PH_LMTP_CAP_PIPELINING | PH_LMTP_CAP_8BITMIME |
                                        PH_LMTP_CAP_SMTPUTF8 | PH_LMTP_CAP_ENHANCEDSTATUSCODES);
        cli(t, MAIL " BODY=8BITMIME SMTPUTF8\r\n" RCPT(0) "DATA\r\n");
    }
}

static void test_421_mid_session(void **state)
{
    t_ctx *t = *state;
    start(t, 3, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n421 4.3.2 Shutting down\r\n");
    done(t); /* no QUIT: the server is gone */
    for (size_t i = 0; i < 3; i++)
        res_is(t, i, 421, "4.3.2", "Shutting down");

    /* 421 after the message: delivered ones stay delivered */
    start(t, 3, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 x\r\n250 2.1.5 OK\r\n354 OK\r\n");
    message(t);
    srv(t, "250 2.0.0 saved\r\n421 4.4.2 Disconnected for inactivity\r\n");
    done(t);
    res_is(t, 0, 250, "2.0.0", "saved");
    res_is(t, 1, 550, "5.1.1", "x");
    res_is(t, 2, 421, "4.4.2", "Disconnected for inactivity");

    /* 421 as the greeting */
    start(t, 1, false, false);
    srv(t, "421 4.3.2 busy\r\n");
    done(t);
    res_is(t, 0, 421, "4.3.2", "busy");
}

static void garbage_case(t_ctx *t, const char *reply, const char *why)
{
    start(t, 2, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n550 5.1.1 gone\r\n");
    srv(t, reply);
    done(t);
    res_is(t, 0, 550, "5.1.1", "gone");
    res_is(t, 1, 451, "4.5.0", "LMTP protocol error");
    res_is(t, 1, 451, "4.5.0", why);
}

static void test_garbage_replies(void **state)
{
    t_ctx *t = *state;
    garbage_case(t, "hello there\r\n", "malformed reply line");
    garbage_case(t, "25\r\n", "malformed reply line");
    garbage_case(t, "2500 OK\r\n", "malformed reply line");
    garbage_case(t, "190 OK\r\n", "malformed reply line");
    garbage_case(t, "\r\n", "malformed reply line");
    garbage_case(t, "250-2.1.5 OK\r\n251 2.1.5 OK\r\n", "mixed codes");
    garbage_case(t, "354 not for RCPT\r\n", "unexpected reply code");
    garbage_case(t, "250 OK\r\n250 DATA needs 354\r\n", "unexpected reply code");
}

static void test_long_lines(void **state)
{
    t_ctx *t = *state;
    /* a 1500-byte line is fine (text cut to fit, never split inside a UTF-8 character) */
    char line[4000];
    strcpy(line, "550 5.1.1 ");
    for (size_t i = 0; i < 745; i++)
        strcat(line, "\xc3\xa9"); /* U+00E9, two bytes */
    strcat(line, "\r\n");
    start(t, 1, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n");
    srv(t, line);
    res_is(t, 0, 550, "5.1.1", "\xc3\xa9");
    size_t n = strlen(t->res[0].text);
    assert_true(n >= 500 && n < sizeof(t->res[0].text));
    assert_int_equal(n % 2, 0); /* whole characters only */

    /* a line over PH_LMTP_LINE_MAX is a protocol error */
    memset(line, 'x', sizeof(line));
    memcpy(line, "250 ", 4);
    line[PH_LMTP_LINE_MAX + 1] = '\r';
    line[PH_LMTP_LINE_MAX + 2] = '\n';
    line[PH_LMTP_LINE_MAX + 3] = '\0';
    start(t, 1, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, line);
    done(t);
    res_is(t, 0, 451, "4.5.0", "reply line too long");

    /* exactly PH_LMTP_LINE_MAX bytes is still fine */
    line[PH_LMTP_LINE_MAX] = '\r';
    line[PH_LMTP_LINE_MAX + 1] = '\n';
    line[PH_LMTP_LINE_MAX + 2] = '\0';
    start(t, 1, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, line);
    assert_int_equal(ph_lmtp_wants(&t->c), PH_LMTP_WANT_READ);
    assert_string_equal(ph_lmtp_waiting_for(&t->c), "RCPT TO");
}

static void test_reply_texts(void **state)
{
    t_ctx *t = *state;
    start(t, 5, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) RCPT(3) RCPT(4) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n"
           "550 5.1.1\r\n"                 /* code only, no text */
           "550 4.1.1 wrong class\r\n"      /* not an enhanced code of a 5xx reply */
           "550 no enhanced code\r\n"
           "550 5.1.1 ctl\x01" "bytes\x7f!\r\n"
           "550\r\n"
           "503 5.5.1 no\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 Bye\r\n");
    done(t);
    res_is(t, 0, 550, "5.1.1", "");
    assert_string_equal(t->res[0].text, "");
    res_is(t, 1, 550, "", "4.1.1 wrong class");
    res_is(t, 2, 550, "", "no enhanced code");
    res_is(t, 3, 550, "5.1.1", "ctl?bytes?!");
    res_is(t, 4, 550, "", "");
}

static void test_8bitmime_smtputf8(void **state)
{
    t_ctx *t = *state;
    /* 8BITMIME not offered: BODY simply left out */
    start(t, 1, true, false);
    hello(t, "250-x\r\n250 PIPELINING\r\n");
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* the message is 7-bit: no BODY even though the server offers it */
    start(t, 1, false, false);
    hello(t, CAPS_ALL);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* SMTPUTF8 needed and offered */
    const char *utf[] = {"j\xc3\xb6rg@example.org"};
    start_rcpts(t, "\xc3\xa5sa@example.com", utf, 1, true, true);
    hello(t, CAPS_ALL);
    cli(t, "MAIL FROM:<\xc3\xa5sa@example.com> BODY=8BITMIME SMTPUTF8\r\n"
           "RCPT TO:<j\xc3\xb6rg@example.org>\r\nDATA\r\n");

    /* SMTPUTF8 needed but missing: everyone fails for good, no transaction at all */
    start(t, 2, true, true);
    hello(t, CAPS_PIPE);
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 550, "5.6.7", "needs SMTPUTF8");
    res_is(t, 1, 550, "5.6.7", "does not offer it");
}

static void test_null_sender_and_quoted_path(void **state)
{
    t_ctx *t = *state;
    const char *r[] = {"\"john doe\"@example.org"};
    start_rcpts(t, "", r, 1, false, false);
    hello(t, CAPS_NOPIPE);
    cli(t, "MAIL FROM:<>\r\n");
    srv(t, "250 2.1.0 OK\r\n");
    cli(t, "RCPT TO:<\"john doe\"@example.org>\r\n");
}

static void test_early_close(void **state)
{
    t_ctx *t = *state;
    start(t, 2, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 OK\r\n");
    message(t);
    srv(t, "250 2.0.0 saved\r\n452 4.2.2 <r1@exa"); /* then the connection drops */
    ph_lmtp_closed(&t->c);
    done(t);
    res_is(t, 0, 250, "2.0.0", "saved");
    res_is(t, 1, 451, "4.4.2", "connection closed by the LMTP server (waiting for end of data)");

    start(t, 1, false, false);
    ph_lmtp_closed(&t->c);
    done(t);
    res_is(t, 0, 451, "4.4.2", "waiting for greeting");

    /* the driver's own failure (a timeout) */
    start(t, 2, false, false);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n550 5.1.1 no\r\n");
    ph_lmtp_fail(&t->c, 451, "4.4.2", "timeout");
    done(t);
    res_is(t, 0, 550, "5.1.1", "no");
    res_is(t, 1, 451, "4.4.2", "timeout");
    ph_lmtp_feed(&t->c, "250 late\r\n", 10); /* ignored after the end */
    res_is(t, 1, 451, "4.4.2", "timeout");
}

/* More recipients than the output buffer holds: commands are emitted as the driver writes,
 * and the replies still match. */
static void test_many_recipients(void **state)
{
    t_ctx *t = *state;
    start(t, MAXR, false, false);
    hello(t, CAPS_PIPE);
    size_t len, sent = 0, rcpt_lines = 0;
    const char *out;
    char expect[64];
    while ((out = ph_lmtp_output(&t->c, &len)) != NULL) {
        for (size_t i = 0; i < len; i++)
            rcpt_lines += out[i] == '\n';
        sent += len;
        ph_lmtp_output_done(&t->c, len);
    }
    assert_int_equal(rcpt_lines, MAXR + 2); /* MAIL, every RCPT, DATA */
    assert_true(sent > PH_LMTP_OUT_MAX);
    srv(t, "250 2.1.0 OK\r\n");
    for (size_t i = 0; i < MAXR; i++)
        srv(t, i % 3 == 1 ? "550 5.1.1 no\r\n" : "250 2.1.5 OK\r\n");
    srv(t, "354 OK\r\n");
    message(t);
    for (size_t i = 0; i < MAXR; i++)
        if (i % 3 != 1) {
            snprintf(expect, sizeof(expect), "250 2.0.0 saved %zu\r\n", i);
            srv(t, expect);
        }
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    for (size_t i = 0; i < MAXR; i++) {
        snprintf(expect, sizeof(expect), "saved %zu", i);
        if (i % 3 == 1)
            res_is(t, i, 550, "5.1.1", "no");
        else
            res_is(t, i, 250, "2.0.0", expect);
    }
}

static void test_init_rejects(void **state)
{
    t_ctx *t = *state;
    char longpath[PH_LMTP_PATH_MAX + 2];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    const char *bad[][2] = {
        {"mx.example.net", "x@example.org\r\nRSET"},
        {"mx.example.net", ""},
        {"mx.example.net", longpath},
        {"mx example", "x@example.org"},
        {"", "x@example.org"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ph_lmtp_params p = {.lhlo_name = bad[i][0], .from = "", .rcpts = &bad[i][1],
                            .nrcpts = 1};
        assert_int_equal(ph_lmtp_client_init(&t->c, &p, t->res), -EINVAL);
    }
    const char *ok[] = {"x@example.org"};
    ph_lmtp_params p = {.lhlo_name = "h", .from = "a\nb", .rcpts = ok, .nrcpts = 1};
    assert_int_equal(ph_lmtp_client_init(&t->c, &p, t->res), -EINVAL);
    p.from = "";
    p.nrcpts = 0;
    assert_int_equal(ph_lmtp_client_init(&t->c, &p, t->res), -EINVAL);
    p.nrcpts = 1;
    p.from = NULL;
    assert_int_equal(ph_lmtp_client_init(&t->c, &p, t->res), -EINVAL);
}

/* --- main ---------------------------------------------------------------------------------- */

#define SESSION(f)                                                                        \
    cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *)&WHOLE),         \
        cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *)&BYTEWISE)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SESSION(test_all_accepted_pipelined),
        SESSION(test_partial_success),
        SESSION(test_no_pipelining_one_at_a_time),
        SESSION(test_no_pipelining_all_rejected_skips_data),
        SESSION(test_pipelined_all_rejected),
        SESSION(test_pipelined_354_without_recipients_closes),
        SESSION(test_mail_refused),
        SESSION(test_data_refused),
        SESSION(test_greeting_and_lhlo_refused),
        SESSION(test_multiline_replies),
        SESSION(test_lhlo_split_everywhere),
        SESSION(test_421_mid_session),
        SESSION(test_garbage_replies),
        SESSION(test_long_lines),
        SESSION(test_reply_texts),
        SESSION(test_8bitmime_smtputf8),
        SESSION(test_null_sender_and_quoted_path),
        SESSION(test_early_close),
        SESSION(test_many_recipients),
        SESSION(test_init_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
