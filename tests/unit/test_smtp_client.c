/*
 * test_smtp_client.c - unit tests for src/proto/smtp_client.c (the SMTP/LMTP client state
 * machine) and src/proto/client_reply.c (the reply reader it uses).
 *
 * Each session test plays a scripted server: srv() feeds server bytes, cli() takes every byte
 * the client has to send and compares it exactly (so an extra, missing or early pipelined
 * command fails), and each recipient's outcome (code, enhanced code, text, stage, remote) is
 * checked. Every session test runs twice: with each server write fed whole, and fed byte by
 * byte. The multi-line EHLO reply is also split in two at every position. Owns only what each
 * test allocates and frees.
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

#include "proto/smtp_client.h"

/* --- harness ------------------------------------------------------------------------------- */

#define MAXR 300

typedef struct t_ctx {
    bool bytewise;
    ph_smtp_client c;
    ph_smtp_client_params p;
    ph_smtp_envelope env;
    ph_client_result res[MAXR];
    ph_client_result res2[MAXR]; /* the second message on a reused session */
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

/* Default session: SMTP, no TLS, no AUTH; envelope from alice to r0.. rN-1. */
static void defaults(t_ctx *t, size_t n)
{
    assert_true(n <= MAXR);
    for (size_t i = 0; i < n; i++) {
        snprintf(t->names[i], sizeof(t->names[i]), "r%zu@example.org", i);
        t->rcpts[i] = t->names[i];
    }
    t->p = (ph_smtp_client_params){.mode = PH_SMTP_MODE_SMTP, .helo_name = "mx.example.net"};
    t->env = (ph_smtp_envelope){.from = "alice@example.com", .rcpts = t->rcpts, .nrcpts = n};
}

static void begin(t_ctx *t)
{
    assert_int_equal(ph_smtp_client_init(&t->c, &t->p, &t->env, t->res), 0);
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "greeting");
    for (size_t i = 0; i < t->env.nrcpts; i++)
        assert_int_equal(t->res[i].code, 0);
}

static void start(t_ctx *t, size_t n)
{
    defaults(t, n);
    begin(t);
}

/* Server bytes, whole or byte by byte. */
static void srv(t_ctx *t, const char *bytes)
{
    size_t len = strlen(bytes);
    if (!t->bytewise) {
        ph_smtp_client_feed(&t->c, bytes, len);
        return;
    }
    for (size_t i = 0; i < len; i++)
        ph_smtp_client_feed(&t->c, bytes + i, 1);
}

/* The client must have exactly `want` to send (taken in pieces of up to 7 bytes, so partial
 * writes are exercised); afterwards its output is empty. */
static void cli(t_ctx *t, const char *want)
{
    char got[16384];
    size_t n = 0, len;
    const char *out;
    while ((out = ph_smtp_client_output(&t->c, &len)) != NULL) {
        assert_true(ph_smtp_client_wants(&t->c) & PH_SMTP_WANT_WRITE);
        size_t take = len < 7 ? len : 7;
        assert_true(n + take < sizeof(got));
        memcpy(got + n, out, take);
        n += take;
        ph_smtp_client_output_done(&t->c, take);
    }
    got[n] = '\0';
    assert_string_equal(got, want);
    assert_false(ph_smtp_client_wants(&t->c) & PH_SMTP_WANT_WRITE);
}

static void check(const ph_client_result *r, size_t i, int code, const char *enh,
                  const char *text, ph_client_stage stage, bool remote)
{
    if (r->code != code || strcmp(r->enh, enh) != 0 || !strstr(r->text, text) ||
        r->stage != stage || r->remote != remote)
        fail_msg("recipient %zu: got %d \"%s\" \"%s\" stage %s remote %d, want %d \"%s\" "
                 "containing \"%s\" stage %s remote %d",
                 i, r->code, r->enh, r->text, ph_client_stage_name(r->stage), r->remote, code,
                 enh, text, ph_client_stage_name(stage), remote);
}

/* A remote outcome of the first message. */
static void res_is(t_ctx *t, size_t i, int code, const char *enh, const char *text,
                   ph_client_stage stage)
{
    check(&t->res[i], i, code, enh, text, stage, true);
}

/* An outcome Posthorn made itself. */
static void local_is(t_ctx *t, size_t i, int code, const char *enh, const char *text,
                     ph_client_stage stage)
{
    check(&t->res[i], i, code, enh, text, stage, false);
}

static void done(t_ctx *t)
{
    assert_int_equal(ph_smtp_client_wants(&t->c), 0);
    size_t len = 99;
    assert_null(ph_smtp_client_output(&t->c, &len));
    assert_int_equal(len, 0);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "nothing");
}

static void idle(t_ctx *t)
{
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_NEXT);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "next message");
    size_t len = 99;
    assert_null(ph_smtp_client_output(&t->c, &len));
}

static void quit(t_ctx *t)
{
    idle(t);
    assert_int_equal(ph_smtp_client_quit(&t->c), 0);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "QUIT");
    cli(t, "QUIT\r\n");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
}

#define GREETING "220 mx.example.org ESMTP ready\r\n"
#define EHLO "EHLO mx.example.net\r\n"
#define LHLO "LHLO mx.example.net\r\n"
#define CAPS_PIPE "250-mx.example.org hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" \
                  "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
#define CAPS_NOPIPE "250-mx.example.org hello\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
#define CAPS_TLS "250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
#define MAIL "MAIL FROM:<alice@example.com>"
#define RCPT(n) "RCPT TO:<r" #n "@example.org>\r\n"

static void hello(t_ctx *t, const char *caps)
{
    srv(t, GREETING);
    cli(t, EHLO);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "EHLO");
    srv(t, caps);
}

static void message(t_ctx *t)
{
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_MESSAGE);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "message data");
    ph_smtp_client_message_sent(&t->c);
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "end of data");
}

/* The second message of a reused session: rA@example.org .. for n recipients. */
static char next_names[MAXR][64];
static const char *next_rcpts[MAXR];

static void next_message(t_ctx *t, size_t n, uint64_t size)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(next_names[i], sizeof(next_names[i]), "s%zu@example.org", i);
        next_rcpts[i] = next_names[i];
    }
    ph_smtp_envelope e = {.from = "bob@example.com", .rcpts = next_rcpts, .nrcpts = n,
                          .size = size};
    idle(t);
    memset(t->res2, 0xAA, sizeof(t->res2)); /* next() must clear what it uses */
    assert_int_equal(ph_smtp_client_next(&t->c, &e, t->res2), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(t->res2[i].code, 0);
}

/* --- sessions: the plain path -------------------------------------------------------------- */

static void test_pipelined_all_accepted(void **state)
{
    t_ctx *t = *state;
    defaults(t, 2);
    t->env.size = 4711;
    t->env.body_8bitmime = true;
    begin(t);
    hello(t, CAPS_PIPE);
    assert_int_equal(t->c.caps, PH_SMTP_CAP_PIPELINING | PH_SMTP_CAP_SIZE |
                                    PH_SMTP_CAP_8BITMIME | PH_SMTP_CAP_ENHANCEDSTATUSCODES |
                                    PH_SMTP_CAP_SMTPUTF8);
    assert_true(t->c.size_max == 10240000);
    assert_true(t->c.esmtp);
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_WRITE | PH_SMTP_WANT_READ);
    /* ASCII addresses: no SMTPUTF8 although offered */
    cli(t, MAIL " SIZE=4711 BODY=8BITMIME\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "MAIL FROM");
    srv(t, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
           "354 End data with <CR><LF>.<CR><LF>\r\n");
    message(t);
    srv(t, "250 2.0.0 Ok: queued as 4XyZ\r\n");
    res_is(t, 0, 250, "2.0.0", "Ok: queued as 4XyZ", PH_STAGE_END_OF_DATA);
    res_is(t, 1, 250, "2.0.0", "Ok: queued as 4XyZ", PH_STAGE_END_OF_DATA);
    assert_string_equal(t->res[0].text, "Ok: queued as 4XyZ");
    assert_int_equal(t->c.transactions, 1);
    quit(t);
}

static void test_not_pipelined_partial(void **state)
{
    t_ctx *t = *state;
    defaults(t, 3);
    t->env.body_8bitmime = true;
    t->env.size = 100;
    begin(t);
    hello(t, CAPS_NOPIPE);
    assert_false(t->c.caps & PH_SMTP_CAP_PIPELINING);
    cli(t, MAIL " BODY=8BITMIME\r\n"); /* exactly one command; no SIZE offered, none sent */
    srv(t, "250 2.1.0 Ok\r\n");
    cli(t, RCPT(0));
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "RCPT TO");
    srv(t, "250 2.1.5 Ok\r\n");
    cli(t, RCPT(1));
    srv(t, "550 5.1.1 <r1@example.org>: Recipient address rejected: User unknown\r\n");
    cli(t, RCPT(2));
    srv(t, "250 2.1.5 Ok\r\n");
    cli(t, "DATA\r\n");
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "DATA");
    srv(t, "354 go\r\n");
    message(t);
    srv(t, "250 2.0.0 Ok: queued\r\n");
    res_is(t, 0, 250, "2.0.0", "queued", PH_STAGE_END_OF_DATA);
    res_is(t, 1, 550, "5.1.1", "<r1@example.org>: Recipient address rejected: User unknown",
           PH_STAGE_RCPT);
    res_is(t, 2, 250, "2.0.0", "queued", PH_STAGE_END_OF_DATA);
    quit(t);
}

static void test_pipelined_partial(void **state)
{
    t_ctx *t = *state;
    start(t, 4);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) RCPT(3) "DATA\r\n"); /* size 0: no SIZE= */
    srv(t, "250 2.1.0 Ok\r\n450 4.2.0 <r0@example.org>: Greylisted\r\n250 2.1.5 Ok\r\n"
           "552 5.2.2 over quota\r\n250 2.1.5 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "554 5.7.1 spam\r\n"); /* the final reply goes to the accepted ones only */
    res_is(t, 0, 450, "4.2.0", "Greylisted", PH_STAGE_RCPT);
    res_is(t, 1, 554, "5.7.1", "spam", PH_STAGE_END_OF_DATA);
    res_is(t, 2, 552, "5.2.2", "over quota", PH_STAGE_RCPT);
    res_is(t, 3, 554, "5.7.1", "spam", PH_STAGE_END_OF_DATA);
    assert_string_equal(t->res[3].text, "spam"); /* no "(in reply to ...)" here */
    quit(t);
}

static void test_no_pipelining_all_refused_skips_data(void **state)
{
    t_ctx *t = *state;
    start(t, 2);
    hello(t, CAPS_NOPIPE);
    cli(t, MAIL "\r\n");
    srv(t, "250 2.1.0 Ok\r\n");
    cli(t, RCPT(0));
    srv(t, "550 5.1.1 no such user\r\n");
    cli(t, RCPT(1));
    srv(t, "450 4.1.1 try later\r\n");
    cli(t, ""); /* no DATA: nobody would get the message */
    res_is(t, 0, 550, "5.1.1", "no such user", PH_STAGE_RCPT);
    res_is(t, 1, 450, "4.1.1", "try later", PH_STAGE_RCPT);
    /* the server still holds MAIL: the next message starts with RSET */
    next_message(t, 1, 0);
    cli(t, "RSET\r\n");
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "RSET");
    srv(t, "250 2.0.0 Ok\r\n");
    cli(t, "MAIL FROM:<bob@example.com>\r\n");
    srv(t, "250 2.1.0 Ok\r\n");
    cli(t, "RCPT TO:<s0@example.org>\r\n");
    srv(t, "250 2.1.5 Ok\r\n");
    cli(t, "DATA\r\n");
    srv(t, "354 go\r\n");
    message(t);
    srv(t, "250 2.0.0 queued as 2\r\n");
    check(&t->res2[0], 0, 250, "2.0.0", "queued as 2", PH_STAGE_END_OF_DATA, true);
    /* the first message's outcomes were left alone */
    res_is(t, 0, 550, "5.1.1", "no such user", PH_STAGE_RCPT);
    quit(t);
}

static void test_pipelined_all_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n550 5.1.1 a\r\n550 5.1.1 b\r\n");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ); /* DATA's reply */
    srv(t, "554 5.5.1 Error: no valid recipients\r\n");
    res_is(t, 0, 550, "5.1.1", "a", PH_STAGE_RCPT);
    res_is(t, 1, 550, "5.1.1", "b", PH_STAGE_RCPT);
    /* reuse: RSET pipelined in front of the next transaction */
    next_message(t, 2, 0);
    cli(t, "RSET\r\nMAIL FROM:<bob@example.com>\r\nRCPT TO:<s0@example.org>\r\n"
           "RCPT TO:<s1@example.org>\r\nDATA\r\n");
    srv(t, "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 2.0.0 Ok\r\n");
    check(&t->res2[1], 1, 250, "2.0.0", "Ok", PH_STAGE_END_OF_DATA, true);
    assert_int_equal(t->c.transactions, 2);
    quit(t);
}

static void test_pipelined_354_without_recipients_closes(void **state)
{
    t_ctx *t = *state;
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n550 5.1.1 nope\r\n354 go ahead anyway\r\n");
    done(t); /* the server reads message data now: only closing ends that cleanly */
    res_is(t, 0, 550, "5.1.1", "nope", PH_STAGE_RCPT);
}

static void test_reuse_without_rset(void **state)
{
    t_ctx *t = *state;
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "550 5.7.1 message content rejected\r\n");
    res_is(t, 0, 550, "5.7.1", "content rejected", PH_STAGE_END_OF_DATA);
    /* the transaction ended with its final reply (even a refusal): MAIL follows directly */
    next_message(t, 1, 300);
    cli(t, "MAIL FROM:<bob@example.com> SIZE=300\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 2.0.0 Ok\r\n");
    check(&t->res2[0], 0, 250, "2.0.0", "Ok", PH_STAGE_END_OF_DATA, true);
    /* a third message, straight after the second one's 250: MAIL again, no RSET */
    next_message(t, 1, 0);
    cli(t, "MAIL FROM:<bob@example.com>\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "451 4.3.0 try again\r\n");
    check(&t->res2[0], 0, 451, "4.3.0", "try again", PH_STAGE_END_OF_DATA, true);
    assert_int_equal(t->c.transactions, 3);
    quit(t);
}

static void test_mail_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "451 4.3.0 Temporary failure\r\n503 5.5.1 MAIL needed first\r\n");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ); /* drains the rest */
    srv(t, "503 5.5.1 MAIL needed first\r\n503 5.5.1 MAIL needed first\r\n");
    res_is(t, 0, 451, "4.3.0", "Temporary failure (in reply to MAIL FROM)", PH_STAGE_MAIL);
    res_is(t, 1, 451, "4.3.0", "Temporary failure (in reply to MAIL FROM)", PH_STAGE_MAIL);
    /* not pipelined: MAIL refused, nothing else is sent */
    start(t, 1);
    hello(t, CAPS_NOPIPE);
    cli(t, MAIL "\r\n");
    srv(t, "553 5.7.1 sender rejected\r\n");
    cli(t, "");
    res_is(t, 0, 553, "5.7.1", "sender rejected (in reply to MAIL FROM)", PH_STAGE_MAIL);
    quit(t);
}

static void test_data_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown\r\n554 5.3.0 no DATA today\r\n");
    res_is(t, 0, 554, "5.3.0", "no DATA today (in reply to DATA)", PH_STAGE_DATA);
    res_is(t, 1, 550, "5.1.1", "unknown", PH_STAGE_RCPT);
    next_message(t, 1, 0); /* DATA refused: the server may still hold the transaction */
    cli(t, "RSET\r\nMAIL FROM:<bob@example.com>\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n250 Ok\r\n451 4.3.0 still no DATA\r\n");
    check(&t->res2[0], 0, 451, "4.3.0", "still no DATA (in reply to DATA)", PH_STAGE_DATA,
          true);
    quit(t);
}

static void test_rset_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n550 5.1.1 no\r\n554 5.5.1 no recipients\r\n");
    next_message(t, 1, 0);
    cli(t, "RSET\r\nMAIL FROM:<bob@example.com>\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
    srv(t, "500 5.5.2 what is RSET\r\n250 Ok\r\n250 Ok\r\n");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    srv(t, "554 5.5.1 no valid recipients\r\n");
    check(&t->res2[0], 0, 500, "5.5.2", "what is RSET (in reply to RSET)", PH_STAGE_RSET, true);
    cli(t, "QUIT\r\n"); /* the session cannot be trusted with another message */
    srv(t, "221 Bye\r\n");
    done(t);
}

/* --- greeting, EHLO, HELO ------------------------------------------------------------------ */

static void test_greeting_refused(void **state)
{
    t_ctx *t = *state;
    start(t, 2);
    srv(t, "554 5.3.2 not now\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 2.0.0 Bye\r\n");
    done(t);
    res_is(t, 0, 554, "5.3.2", "not now (in reply to greeting)", PH_STAGE_GREETING);
    res_is(t, 1, 554, "5.3.2", "not now", PH_STAGE_GREETING);

    start(t, 1);
    srv(t, "450-busy\r\n450 come back later\r\n");
    cli(t, "QUIT\r\n");
    ph_smtp_client_closed(&t->c); /* no 221: fine after QUIT */
    done(t);
    res_is(t, 0, 450, "", "busy come back later (in reply to greeting)", PH_STAGE_GREETING);

    start(t, 1);
    srv(t, "421 4.3.2 busy\r\n");
    done(t); /* no QUIT after 421 */
    res_is(t, 0, 421, "4.3.2", "busy", PH_STAGE_GREETING);

    start(t, 1);
    srv(t, "354 what\r\n");
    done(t);
    local_is(t, 0, 451, "4.5.0", "SMTP protocol error: unexpected greeting code",
             PH_STAGE_GREETING);
}

static void helo_fallback_case(t_ctx *t, const char *ehlo_reply)
{
    defaults(t, 1);
    t->env.body_8bitmime = true;
    t->env.size = 99999999;
    begin(t);
    srv(t, GREETING);
    cli(t, EHLO);
    srv(t, ehlo_reply);
    cli(t, "HELO mx.example.net\r\n");
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "HELO");
    srv(t, "250 mx.example.org\r\n");
    assert_false(t->c.esmtp);
    assert_int_equal(t->c.caps, 0);
    cli(t, MAIL "\r\n"); /* no SIZE, no BODY: 8-bit data goes as is */
    srv(t, "250 Ok\r\n");
    cli(t, RCPT(0));
    srv(t, "250 Ok\r\n");
    cli(t, "DATA\r\n");
    srv(t, "354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n");
    res_is(t, 0, 250, "", "Ok", PH_STAGE_END_OF_DATA);
    quit(t);
}

static void test_ehlo_helo_fallback(void **state)
{
    t_ctx *t = *state;
    helo_fallback_case(t, "502 5.5.2 Error: command not recognized\r\n");
    helo_fallback_case(t, "500 unknown command\r\n");
    helo_fallback_case(t, "550 no ESMTP for you\r\n");

    /* a 4xx to EHLO: no fallback, everyone temporary */
    start(t, 1);
    srv(t, GREETING);
    cli(t, EHLO);
    srv(t, "451 4.3.0 later\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 Bye\r\n");
    done(t);
    res_is(t, 0, 451, "4.3.0", "later (in reply to EHLO)", PH_STAGE_EHLO);

    /* HELO refused too */
    start(t, 1);
    srv(t, GREETING);
    cli(t, EHLO);
    srv(t, "502 no\r\n");
    cli(t, "HELO mx.example.net\r\n");
    srv(t, "550 5.7.1 go away\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 Bye\r\n");
    done(t);
    res_is(t, 0, 550, "5.7.1", "go away (in reply to HELO)", PH_STAGE_HELO);

    /* HELO and an address that needs SMTPUTF8: fails for good, nothing sent */
    defaults(t, 1);
    t->rcpts[0] = "j\xc3\xb6rg@example.org";
    begin(t);
    srv(t, GREETING);
    cli(t, EHLO);
    srv(t, "502 no\r\n");
    cli(t, "HELO mx.example.net\r\n");
    srv(t, "250 hi\r\n");
    cli(t, "");
    local_is(t, 0, 550, "5.6.7", "needs SMTPUTF8", PH_STAGE_MAIL);
    quit(t);
}

/* The EHLO reply split into two feeds at every position: capabilities come out the same. */
static void test_ehlo_split_everywhere(void **state)
{
    t_ctx *t = *state;
    const char *caps = "250-mx.example.org at your service\r\n250-PIPELINING\r\n"
                       "250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n"
                       "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n"
                       "250-DSN\r\n250 SMTPUTF8\r\n";
    size_t len = strlen(caps);
    for (size_t cut = 0; cut <= len; cut++) {
        defaults(t, 1);
        t->env.size = 10;
        begin(t);
        srv(t, GREETING);
        cli(t, EHLO);
        ph_smtp_client_feed(&t->c, caps, cut);
        ph_smtp_client_feed(&t->c, caps + cut, len - cut);
        assert_int_equal(t->c.caps, PH_SMTP_CAP_PIPELINING | PH_SMTP_CAP_SIZE |
                                        PH_SMTP_CAP_8BITMIME | PH_SMTP_CAP_AUTH |
                                        PH_SMTP_CAP_STARTTLS |
                                        PH_SMTP_CAP_ENHANCEDSTATUSCODES |
                                        PH_SMTP_CAP_CHUNKING | PH_SMTP_CAP_SMTPUTF8);
        assert_int_equal(t->c.auth_mechs, PH_SMTP_AUTH_PLAIN | PH_SMTP_AUTH_LOGIN);
        assert_true(t->c.size_max == 35882577);
        /* policy none: STARTTLS offered but not used; no AUTH configured */
        cli(t, MAIL " SIZE=10\r\n" RCPT(0) "DATA\r\n");
    }
}

static void test_capability_forms(void **state)
{
    t_ctx *t = *state;
    /* lower case, old AUTH= form, SIZE without a number, unknown keywords, look-alikes */
    start(t, 1);
    hello(t, "250-mx\r\n250-pipelining\r\n250-AUTH=LOGIN\r\n250-SIZE\r\n250-PIPELININGX\r\n"
             "250-8BITMIMEY\r\n250-X-EXPS GSSAPI\r\n250 etrn\r\n");
    assert_int_equal(t->c.caps, PH_SMTP_CAP_PIPELINING | PH_SMTP_CAP_AUTH | PH_SMTP_CAP_SIZE);
    assert_int_equal(t->c.auth_mechs, PH_SMTP_AUTH_LOGIN);
    assert_true(t->c.size_max == 0);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n"); /* size 0 (unknown): no SIZE= */

    /* a SIZE that does not fit 64 bits: no limit worth the name, never an overflow */
    defaults(t, 1);
    t->env.size = UINT64_MAX - 1;
    begin(t);
    hello(t, "250-mx\r\n250 SIZE 99999999999999999999999999\r\n");
    assert_true(t->c.size_max == UINT64_MAX);
    cli(t, MAIL " SIZE=18446744073709551614\r\n");

    /* capabilities only count in a 2xx reply's later lines: not the first line */
    start(t, 1);
    hello(t, "250 PIPELINING\r\n");
    assert_int_equal(t->c.caps, 0);
    cli(t, MAIL "\r\n");
}

/* --- SIZE, 8BITMIME, SMTPUTF8 -------------------------------------------------------------- */

static void test_size_refused_before_mail(void **state)
{
    t_ctx *t = *state;
    defaults(t, 2);
    t->env.size = 2001;
    begin(t);
    hello(t, "250-mx\r\n250-PIPELINING\r\n250 SIZE 2000\r\n");
    cli(t, ""); /* nothing sent */
    local_is(t, 0, 552, "5.3.4", "message size 2001 exceeds the SMTP server's limit of 2000",
             PH_STAGE_MAIL);
    local_is(t, 1, 552, "5.3.4", "2000 bytes", PH_STAGE_MAIL);
    /* the session goes on: a smaller message fits, and no RSET is needed */
    next_message(t, 1, 2000);
    cli(t, "MAIL FROM:<bob@example.com> SIZE=2000\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
    srv(t, "250 Ok\r\n452 4.5.3 too many\r\n554 no valid recipients\r\n");
    check(&t->res2[0], 0, 452, "4.5.3", "too many", PH_STAGE_RCPT, true);
    quit(t);
}

static void test_8bitmime_smtputf8(void **state)
{
    t_ctx *t = *state;
    /* 8BITMIME not offered: BODY left out, the message goes as is */
    defaults(t, 1);
    t->env.body_8bitmime = true;
    begin(t);
    hello(t, "250-x\r\n250 PIPELINING\r\n");
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* a 7-bit message: no BODY even though offered */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* an address needs SMTPUTF8 (sender, or a recipient) and it is offered */
    defaults(t, 2);
    t->env.from = "\xc3\xa5sa@example.com";
    t->env.body_8bitmime = true;
    begin(t);
    hello(t, CAPS_PIPE);
    cli(t, "MAIL FROM:<\xc3\xa5sa@example.com> BODY=8BITMIME SMTPUTF8\r\n" RCPT(0) RCPT(1)
           "DATA\r\n");
    defaults(t, 2);
    t->rcpts[1] = "j\xc3\xb6rg@\xc3\xa9xample.org";
    begin(t);
    hello(t, CAPS_PIPE);
    cli(t, MAIL " SMTPUTF8\r\n" RCPT(0) "RCPT TO:<j\xc3\xb6rg@\xc3\xa9xample.org>\r\nDATA\r\n");

    /* the caller says the message needs it, all addresses ASCII */
    defaults(t, 1);
    t->env.smtputf8 = true;
    begin(t);
    hello(t, CAPS_PIPE);
    cli(t, MAIL " SMTPUTF8\r\n" RCPT(0) "DATA\r\n");

    /* needed but missing: everyone fails for good, no transaction at all, session goes on */
    defaults(t, 2);
    t->rcpts[0] = "j\xc3\xb6rg@example.org";
    begin(t);
    hello(t, "250-x\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    cli(t, "");
    local_is(t, 0, 550, "5.6.7", "the message needs SMTPUTF8 but the SMTP server does not "
                                 "offer it", PH_STAGE_MAIL);
    local_is(t, 1, 550, "5.6.7", "needs SMTPUTF8", PH_STAGE_MAIL);
    next_message(t, 1, 0);
    cli(t, "MAIL FROM:<bob@example.com>\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
}

static void test_null_sender_and_quoted_path(void **state)
{
    t_ctx *t = *state;
    defaults(t, 1);
    t->env.from = "";
    t->rcpts[0] = "\"john doe\"@example.org";
    begin(t);
    hello(t, CAPS_NOPIPE);
    cli(t, "MAIL FROM:<>\r\n");
    srv(t, "250 2.1.0 Ok\r\n");
    cli(t, "RCPT TO:<\"john doe\"@example.org>\r\n");
}

/* --- STARTTLS ------------------------------------------------------------------------------ */

/* Greeting, EHLO with STARTTLS offered, STARTTLS, 220, handshake, EHLO again. */
static void starttls(t_ctx *t, const char *caps_after)
{
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "STARTTLS");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    srv(t, "220 2.0.0 Ready to start TLS\r\n");
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_TLS);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "TLS handshake");
    assert_false(t->c.tls_active);
    assert_int_equal(ph_smtp_client_tls_started(&t->c), 0);
    assert_true(t->c.tls_active);
    cli(t, EHLO);
    assert_int_equal(t->c.caps, 0); /* what was said in clear is forgotten */
    srv(t, caps_after);
}

static void test_starttls_opportunistic(void **state)
{
    t_ctx *t = *state;
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    assert_int_equal(ph_smtp_client_tls_started(&t->c), -EINVAL); /* not asked for */
    /* after TLS no PIPELINING any more: one command at a time */
    starttls(t, "250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n");
    cli(t, MAIL "\r\n"); /* no second STARTTLS although still offered */
    srv(t, "250 Ok\r\n");
    cli(t, RCPT(0));

    /* not offered: on in clear */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* refused: on in clear, without asking again */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    srv(t, "454 4.7.0 TLS not available due to temporary reason\r\n");
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    assert_false(t->c.tls_active);
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n");
    res_is(t, 0, 250, "", "Ok", PH_STAGE_END_OF_DATA);

    /* policy none: offered, never used */
    start(t, 1);
    hello(t, CAPS_TLS);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* implicit TLS: never STARTTLS, even when required */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    t->p.tls_active = true;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
}

static void test_starttls_required(void **state)
{
    t_ctx *t = *state;
    /* offered: used */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    begin(t);
    starttls(t, "250-mx\r\n250 PIPELINING\r\n");
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");

    /* not offered */
    defaults(t, 2);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    begin(t);
    hello(t, CAPS_PIPE);
    cli(t, "QUIT\r\n");
    srv(t, "221 Bye\r\n");
    done(t);
    local_is(t, 0, 454, "4.7.4", "TLS required but not offered", PH_STAGE_STARTTLS);
    local_is(t, 1, 454, "4.7.4", "TLS required but not offered", PH_STAGE_STARTTLS);

    /* refused (even with a 5xx: no bounce for a TLS problem) */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    srv(t, "554 5.7.3 no TLS for you\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 Bye\r\n");
    done(t);
    local_is(t, 0, 454, "4.7.4", "TLS required but STARTTLS was refused: 554 5.7.3 no TLS for you",
             PH_STAGE_STARTTLS);

    /* after the HELO fallback nothing can be offered */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    begin(t);
    srv(t, GREETING);
    cli(t, EHLO);
    srv(t, "502 eh?\r\n");
    cli(t, "HELO mx.example.net\r\n");
    srv(t, "250 hi\r\n");
    cli(t, "QUIT\r\n");
    local_is(t, 0, 454, "4.7.4", "not offered", PH_STAGE_STARTTLS);
}

static void test_starttls_failures(void **state)
{
    t_ctx *t = *state;
    /* a reply pipelined behind the 220 (plaintext the attacker wants read as TLS data) */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    ph_smtp_client_feed(&t->c, "220 go\r\n250 injected\r\n", 23);
    done(t);
    local_is(t, 0, 451, "4.5.0", "data after the 220 to STARTTLS", PH_STAGE_TLS);
    assert_int_equal(ph_smtp_client_tls_started(&t->c), -EINVAL);

    /* the same arriving later */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    srv(t, "220 go\r\n");
    srv(t, "2");
    done(t);
    local_is(t, 0, 451, "4.5.0", "SMTP protocol error", PH_STAGE_TLS);

    /* the handshake fails: the driver reports it */
    defaults(t, 2);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    srv(t, "220 go\r\n");
    ph_smtp_client_fail(&t->c, 454, "4.7.5", "TLS handshake failed: certificate verify failed");
    done(t);
    local_is(t, 1, 454, "4.7.5", "certificate verify failed", PH_STAGE_TLS);

    /* 421 to STARTTLS */
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    begin(t);
    hello(t, CAPS_TLS);
    cli(t, "STARTTLS\r\n");
    srv(t, "421 4.3.2 shutting down\r\n");
    done(t);
    res_is(t, 0, 421, "4.3.2", "shutting down (in reply to STARTTLS)", PH_STAGE_STARTTLS);
}

/* --- AUTH ---------------------------------------------------------------------------------- */

static void auth_defaults(t_ctx *t)
{
    defaults(t, 1);
    t->p.tls = PH_SMTP_TLS_REQUIRED;
    t->p.auth_user = "alice";
    t->p.auth_pass = "s3cret";
}

/* No trace of the password's base64 anywhere in the client once it was sent. */
static void no_secret_left(t_ctx *t)
{
    const char *needles[] = {"AGFsaWNlAHMzY3JldA==", "czNjcmV0", "s3cret"};
    const char *mem = (const char *)&t->c.out;
    for (size_t i = 0; i < 3; i++)
        assert_null(memmem(mem, sizeof(t->c.out), needles[i], strlen(needles[i])));
}

static void test_auth_plain(void **state)
{
    t_ctx *t = *state;
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n");
    cli(t, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"); /* PLAIN preferred */
    no_secret_left(t);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "AUTH");
    srv(t, "235 2.7.0 Authentication successful\r\n");
    assert_true(t->c.authenticated);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n");
    /* the next message: no second AUTH */
    next_message(t, 1, 0);
    cli(t, "MAIL FROM:<bob@example.com>\r\nRCPT TO:<s0@example.org>\r\nDATA\r\n");
}

static void test_auth_login(void **state)
{
    t_ctx *t = *state;
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 AUTH LOGIN CRAM-MD5\r\n");
    cli(t, "AUTH LOGIN\r\n");
    srv(t, "334 VXNlcm5hbWU6\r\n");
    cli(t, "YWxpY2U=\r\n");
    srv(t, "334 UGFzc3dvcmQ6\r\n");
    cli(t, "czNjcmV0\r\n");
    no_secret_left(t);
    srv(t, "235 2.7.0 Authentication successful\r\n");
    cli(t, MAIL "\r\n");

    /* a third 334 makes no sense */
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 AUTH=LOGIN\r\n");
    cli(t, "AUTH LOGIN\r\n");
    srv(t, "334 VXNlcm5hbWU6\r\n");
    cli(t, "YWxpY2U=\r\n");
    srv(t, "334 UGFzc3dvcmQ6\r\n");
    cli(t, "czNjcmV0\r\n");
    srv(t, "334 more?\r\n");
    done(t);
    local_is(t, 0, 451, "4.5.0", "unexpected 334 to AUTH", PH_STAGE_AUTH);
    no_secret_left(t);

    /* 235 before the password was even asked for */
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 AUTH LOGIN\r\n");
    cli(t, "AUTH LOGIN\r\n");
    srv(t, "235 sure\r\n");
    done(t);
    local_is(t, 0, 451, "4.5.0", "unexpected reply code", PH_STAGE_AUTH);
}

static void test_auth_refused(void **state)
{
    t_ctx *t = *state;
    /* 535: the credentials are wrong - temporary, quoting the server */
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n");
    cli(t, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
    srv(t, "535 5.7.8 Error: authentication failed: bad credentials\r\n");
    cli(t, "QUIT\r\n");
    srv(t, "221 Bye\r\n");
    done(t);
    local_is(t, 0, 454, "4.7.0",
             "authentication failed: 535 5.7.8 Error: authentication failed: bad credentials",
             PH_STAGE_AUTH);

    /* a 4xx is the server's own temporary failure */
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 AUTH PLAIN\r\n");
    cli(t, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
    srv(t, "454 4.7.0 Temporary authentication failure\r\n");
    cli(t, "QUIT\r\n");
    res_is(t, 0, 454, "4.7.0", "Temporary authentication failure (in reply to AUTH)",
           PH_STAGE_AUTH);

    /* not offered */
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 PIPELINING\r\n");
    cli(t, "QUIT\r\n");
    local_is(t, 0, 454, "4.7.0", "does not offer it", PH_STAGE_AUTH);

    /* offered without a mechanism we speak */
    auth_defaults(t);
    begin(t);
    starttls(t, "250-mx\r\n250 AUTH CRAM-MD5 GSSAPI PLAINX\r\n");
    cli(t, "QUIT\r\n");
    local_is(t, 0, 454, "4.7.0", "no AUTH mechanism we support", PH_STAGE_AUTH);

    /* no TLS: the credentials stay here */
    auth_defaults(t);
    t->p.tls = PH_SMTP_TLS_OPPORTUNISTIC;
    begin(t);
    hello(t, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n");
    cli(t, "QUIT\r\n");
    local_is(t, 0, 454, "4.7.0", "without TLS", PH_STAGE_AUTH);

    /* ... unless allowed */
    auth_defaults(t);
    t->p.tls = PH_SMTP_TLS_NONE;
    t->p.auth_insecure = true;
    begin(t);
    hello(t, "250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    cli(t, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
    srv(t, "235 ok\r\n");
    cli(t, MAIL "\r\n");
}

/* --- LMTP mode ----------------------------------------------------------------------------- */

static void test_lmtp_mode(void **state)
{
    t_ctx *t = *state;
    defaults(t, 4);
    t->p.mode = PH_SMTP_MODE_LMTP;
    begin(t);
    srv(t, "220 lmtp.example.org Dovecot ready.\r\n");
    cli(t, LHLO);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "LHLO");
    srv(t, "250-lmtp.example.org\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
           "250 PIPELINING\r\n");
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) RCPT(3) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <r1@example.org> User doesn't exist\r\n"
           "250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 OK\r\n");
    message(t);
    srv(t, "250 2.0.0 <r0@example.org> Saved\r\n");
    res_is(t, 0, 250, "2.0.0", "<r0@example.org> Saved", PH_STAGE_END_OF_DATA);
    assert_int_equal(t->res[2].code, 0); /* one reply per recipient: r2 still open */
    srv(t, "452 4.2.2 <r2@example.org> Mailbox is full\r\n550 5.2.0 <r3@example.org> No\r\n");
    res_is(t, 1, 550, "5.1.1", "User doesn't exist", PH_STAGE_RCPT);
    res_is(t, 2, 452, "4.2.2", "Mailbox is full", PH_STAGE_END_OF_DATA);
    res_is(t, 3, 550, "5.2.0", "<r3@example.org> No", PH_STAGE_END_OF_DATA);
    quit(t);

    /* no HELO fallback in LMTP */
    defaults(t, 1);
    t->p.mode = PH_SMTP_MODE_LMTP;
    begin(t);
    srv(t, GREETING);
    cli(t, LHLO);
    srv(t, "500 5.5.1 LHLO? never heard of it\r\n");
    cli(t, "QUIT\r\n");
    ph_smtp_client_closed(&t->c);
    done(t);
    res_is(t, 0, 500, "5.5.1", "never heard of it (in reply to LHLO)", PH_STAGE_LHLO);

    /* the texts say LMTP */
    defaults(t, 1);
    t->p.mode = PH_SMTP_MODE_LMTP;
    begin(t);
    srv(t, GREETING);
    ph_smtp_client_closed(&t->c);
    local_is(t, 0, 451, "4.4.2", "connection closed by the LMTP server (waiting for LHLO)",
             PH_STAGE_LHLO);
}

/* --- replies that break the session -------------------------------------------------------- */

static void test_421_mid_session(void **state)
{
    t_ctx *t = *state;
    start(t, 3);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n421 4.3.2 Shutting down\r\n");
    done(t); /* no QUIT: the server is gone */
    for (size_t i = 0; i < 3; i++)
        res_is(t, i, 421, "4.3.2", "Shutting down (in reply to RCPT TO)", PH_STAGE_RCPT);

    /* 421 after the message: an LMTP server's delivered recipients stay delivered */
    defaults(t, 3);
    t->p.mode = PH_SMTP_MODE_LMTP;
    begin(t);
    srv(t, GREETING);
    cli(t, LHLO);
    srv(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) "DATA\r\n");
    srv(t, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 x\r\n250 2.1.5 OK\r\n354 OK\r\n");
    message(t);
    srv(t, "250 2.0.0 saved\r\n421 4.4.2 Disconnected for inactivity\r\n");
    done(t);
    res_is(t, 0, 250, "2.0.0", "saved", PH_STAGE_END_OF_DATA);
    res_is(t, 1, 550, "5.1.1", "x", PH_STAGE_RCPT);
    res_is(t, 2, 421, "4.4.2", "Disconnected for inactivity", PH_STAGE_END_OF_DATA);

    /* 421 while the message is being sent */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    srv(t, "421 4.4.2 timeout\r\n");
    done(t);
    res_is(t, 0, 421, "4.4.2", "timeout (in reply to message data)", PH_STAGE_MESSAGE);

    /* 421 while idle between messages: session over, nothing open */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n");
    idle(t);
    srv(t, "421 4.4.2 idle timeout\r\n");
    done(t);
    res_is(t, 0, 250, "", "Ok", PH_STAGE_END_OF_DATA);
    assert_int_equal(ph_smtp_client_next(&t->c, &t->env, t->res2), -EINVAL);
    assert_int_equal(ph_smtp_client_quit(&t->c), -EINVAL);

    /* 421 to QUIT is just a goodbye */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n");
    assert_int_equal(ph_smtp_client_quit(&t->c), 0);
    cli(t, "QUIT\r\n");
    srv(t, "421 bye\r\n");
    done(t);
    res_is(t, 0, 250, "", "Ok", PH_STAGE_END_OF_DATA);
}

static void garbage_case(t_ctx *t, const char *reply, const char *why, ph_client_stage stage)
{
    start(t, 2);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n550 5.1.1 gone\r\n");
    srv(t, reply);
    done(t);
    res_is(t, 0, 550, "5.1.1", "gone", PH_STAGE_RCPT);
    local_is(t, 1, 451, "4.5.0", "SMTP protocol error", stage);
    local_is(t, 1, 451, "4.5.0", why, stage);
}

static void test_garbage_replies(void **state)
{
    t_ctx *t = *state;
    garbage_case(t, "hello there\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "25\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "2500 Ok\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "190 Ok\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "260 Ok\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "25x Ok\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "\x01\x02\r\n", "malformed reply line", PH_STAGE_RCPT);
    garbage_case(t, "250-2.1.5 Ok\r\n251 2.1.5 Ok\r\n", "mixed codes", PH_STAGE_RCPT);
    garbage_case(t, "354 not for RCPT\r\n", "unexpected reply code", PH_STAGE_RCPT);
    garbage_case(t, "250 Ok\r\n250 DATA needs 354\r\n", "unexpected reply code", PH_STAGE_DATA);
    garbage_case(t, "250 Ok\r\n354 go\r\n250 too early\r\n",
                 "reply while the message was being sent", PH_STAGE_MESSAGE);

    /* a reply while idle */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n250 unasked\r\n");
    done(t);
    res_is(t, 0, 250, "", "Ok", PH_STAGE_END_OF_DATA);

    /* too many lines in one reply */
    start(t, 1);
    srv(t, "220-a\r\n");
    for (int i = 0; i < PH_CLIENT_REPLY_LINES_MAX; i++)
        srv(t, "220-more\r\n");
    done(t);
    local_is(t, 0, 451, "4.5.0", "too many lines", PH_STAGE_GREETING);
}

static void test_long_lines(void **state)
{
    t_ctx *t = *state;
    /* a 1500-byte line is fine (text cut to fit, never inside a UTF-8 character) */
    char line[4000];
    strcpy(line, "550 5.1.1 ");
    for (size_t i = 0; i < 745; i++)
        strcat(line, "\xc3\xa9"); /* U+00E9, two bytes */
    strcat(line, "\r\n");
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n");
    srv(t, line);
    res_is(t, 0, 550, "5.1.1", "\xc3\xa9", PH_STAGE_RCPT);
    size_t n = strlen(t->res[0].text);
    assert_true(n >= 500 && n < sizeof(t->res[0].text));
    assert_int_equal(n % 2, 0); /* whole characters only */

    /* a line over PH_CLIENT_LINE_MAX is a protocol error */
    memset(line, 'x', sizeof(line));
    memcpy(line, "250 ", 4);
    line[PH_CLIENT_LINE_MAX + 1] = '\r';
    line[PH_CLIENT_LINE_MAX + 2] = '\n';
    line[PH_CLIENT_LINE_MAX + 3] = '\0';
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, line);
    done(t);
    local_is(t, 0, 451, "4.5.0", "reply line too long", PH_STAGE_MAIL);

    /* exactly PH_CLIENT_LINE_MAX bytes is still fine */
    line[PH_CLIENT_LINE_MAX] = '\r';
    line[PH_CLIENT_LINE_MAX + 1] = '\n';
    line[PH_CLIENT_LINE_MAX + 2] = '\0';
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, line);
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    assert_string_equal(ph_smtp_client_waiting_for(&t->c), "RCPT TO");

    /* an endless line without LF: reported at its end, memory stays bounded */
    start(t, 1);
    srv(t, "220 ");
    memset(line, 'y', sizeof(line));
    for (int i = 0; i < 10; i++)
        ph_smtp_client_feed(&t->c, line, sizeof(line));
    assert_int_equal(ph_smtp_client_wants(&t->c), PH_SMTP_WANT_READ);
    srv(t, "\n");
    done(t);
    local_is(t, 0, 451, "4.5.0", "reply line too long", PH_STAGE_GREETING);
}

static void test_reply_texts(void **state)
{
    t_ctx *t = *state;
    start(t, 6);
    srv(t, "220-mx.example.org first\r\n220-second\n220 third\r\n"); /* a lone LF is fine */
    cli(t, EHLO);
    srv(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) RCPT(2) RCPT(3) RCPT(4) RCPT(5) "DATA\r\n");
    srv(t, "250 2.1.0 Ok\r\n"
           "550 5.1.1\r\n"                /* code only, no text */
           "550 4.1.1 wrong class\r\n"     /* not an enhanced code of a 5xx reply */
           "550 no enhanced code\r\n"
           "550 5.1.1 ctl\x01" "bytes\x7f!\r\n"
           "550\r\n"
           "550-5.1.1 The user does not exist\r\n550-5.1.1 here or\r\n550 5.1.1 anywhere\r\n"
           "503 5.5.1 no\r\n");
    res_is(t, 0, 550, "5.1.1", "", PH_STAGE_RCPT);
    assert_string_equal(t->res[0].text, "");
    res_is(t, 1, 550, "", "4.1.1 wrong class", PH_STAGE_RCPT);
    res_is(t, 2, 550, "", "no enhanced code", PH_STAGE_RCPT);
    res_is(t, 3, 550, "5.1.1", "ctl?bytes?!", PH_STAGE_RCPT);
    res_is(t, 4, 550, "", "", PH_STAGE_RCPT);
    assert_string_equal(t->res[5].text, "The user does not exist here or anywhere");
    quit(t);
}

static void test_early_close_and_fail(void **state)
{
    t_ctx *t = *state;
    start(t, 2);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n550 5.1.1 no\r\n354 go\r\n");
    message(t);
    srv(t, "250 2.0.0 O"); /* then the connection drops */
    ph_smtp_client_closed(&t->c);
    done(t);
    local_is(t, 0, 451, "4.4.2",
             "connection closed by the SMTP server (waiting for end of data)",
             PH_STAGE_END_OF_DATA);
    res_is(t, 1, 550, "5.1.1", "no", PH_STAGE_RCPT);

    start(t, 1);
    ph_smtp_client_closed(&t->c);
    done(t);
    local_is(t, 0, 451, "4.4.2", "waiting for greeting", PH_STAGE_GREETING);

    /* the driver's own failure (a timeout), then late bytes are ignored */
    start(t, 2);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) RCPT(1) "DATA\r\n");
    srv(t, "250 Ok\r\n550 5.1.1 no\r\n");
    assert_int_equal(ph_smtp_client_stage(&t->c), PH_STAGE_RCPT);
    ph_smtp_client_fail(&t->c, 451, "4.4.2", "timeout");
    done(t);
    res_is(t, 0, 550, "5.1.1", "no", PH_STAGE_RCPT);
    local_is(t, 1, 451, "4.4.2", "timeout", PH_STAGE_RCPT);
    ph_smtp_client_feed(&t->c, "250 late\r\n", 10);
    ph_smtp_client_closed(&t->c);
    ph_smtp_client_fail(&t->c, 550, NULL, NULL);
    local_is(t, 1, 451, "4.4.2", "timeout", PH_STAGE_RCPT);

    /* the driver could not read the message file */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    ph_smtp_client_fail(&t->c, 451, "4.3.0", "cannot read the queue file");
    done(t);
    local_is(t, 0, 451, "4.3.0", "cannot read", PH_STAGE_MESSAGE);

    /* closed while idle: nothing to blame */
    start(t, 1);
    hello(t, CAPS_PIPE);
    cli(t, MAIL "\r\n" RCPT(0) "DATA\r\n");
    srv(t, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    message(t);
    srv(t, "250 Ok\r\n");
    ph_smtp_client_closed(&t->c);
    done(t);
    res_is(t, 0, 250, "", "Ok", PH_STAGE_END_OF_DATA);
}

/* More recipients than the output buffer holds: commands go out as the driver writes, and the
 * replies still match. */
static void test_many_recipients(void **state)
{
    t_ctx *t = *state;
    start(t, MAXR);
    hello(t, CAPS_PIPE);
    size_t len, sent = 0, lines = 0;
    const char *out;
    char expect[64];
    while ((out = ph_smtp_client_output(&t->c, &len)) != NULL) {
        for (size_t i = 0; i < len; i++)
            lines += out[i] == '\n';
        sent += len;
        ph_smtp_client_output_done(&t->c, len);
    }
    assert_int_equal(lines, MAXR + 2); /* MAIL, every RCPT, DATA */
    assert_true(sent > PH_SMTP_OUT_MAX);
    srv(t, "250 2.1.0 Ok\r\n");
    for (size_t i = 0; i < MAXR; i++)
        srv(t, i % 3 == 1 ? "550 5.1.1 no\r\n" : "250 2.1.5 Ok\r\n");
    srv(t, "354 go\r\n");
    message(t);
    srv(t, "250 2.0.0 queued\r\n");
    for (size_t i = 0; i < MAXR; i++) {
        snprintf(expect, sizeof(expect), "%s", i % 3 == 1 ? "no" : "queued");
        res_is(t, i, i % 3 == 1 ? 550 : 250, i % 3 == 1 ? "5.1.1" : "2.0.0", expect,
               i % 3 == 1 ? PH_STAGE_RCPT : PH_STAGE_END_OF_DATA);
    }
    quit(t);
}

static void test_init_rejects(void **state)
{
    t_ctx *t = *state;
    char longpath[PH_SMTP_PATH_MAX + 2];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    const char *bad[][2] = {
        {"mx.example.net", "x@example.org\r\nRSET"},
        {"mx.example.net", ""},
        {"mx.example.net", longpath},
        {"mx example", "x@example.org"},
        {"", "x@example.org"},
        {"mx\r\n", "x@example.org"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ph_smtp_client_params p = {.helo_name = bad[i][0]};
        ph_smtp_envelope e = {.from = "", .rcpts = &bad[i][1], .nrcpts = 1};
        assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    }
    const char *ok[] = {"x@example.org"};
    ph_smtp_client_params p = {.helo_name = "h"};
    ph_smtp_envelope e = {.from = "a\nb", .rcpts = ok, .nrcpts = 1};
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    e.from = longpath;
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    e.from = "";
    e.nrcpts = 0;
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    e.nrcpts = 1;
    e.from = NULL;
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    e.from = "";
    assert_int_equal(ph_smtp_client_init(&t->c, &p, NULL, t->res), -EINVAL);
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, NULL), -EINVAL);
    p.tls = (ph_smtp_tls_policy)7;
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    p.tls = PH_SMTP_TLS_NONE;
    p.mode = (ph_smtp_mode)3;
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    p.mode = PH_SMTP_MODE_SMTP;
    p.auth_user = "u"; /* no password */
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    p.auth_user = "";
    p.auth_pass = "x";
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    char longcred[PH_SMTP_CRED_MAX + 2];
    memset(longcred, 'c', sizeof(longcred) - 1);
    longcred[sizeof(longcred) - 1] = '\0';
    p.auth_user = "u";
    p.auth_pass = longcred;
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), -EINVAL);
    p.auth_pass = "";
    assert_int_equal(ph_smtp_client_init(&t->c, &p, &e, t->res), 0);

    /* next() and quit() only when idle; a bad envelope changes nothing */
    assert_int_equal(ph_smtp_client_quit(&t->c), -EINVAL);
    assert_int_equal(ph_smtp_client_next(&t->c, &e, t->res2), -EINVAL);
    start(t, 1);
    hello(t, "250-x\r\n250 SIZE 10\r\n");
    cli(t, MAIL "\r\n"); /* size unknown (0): no SIZE=, no check */
    srv(t, "250 Ok\r\n");
    cli(t, RCPT(0));
    srv(t, "550 no\r\n");
    idle(t);
    e.from = "a\rb";
    assert_int_equal(ph_smtp_client_next(&t->c, &e, t->res2), -EINVAL);
    idle(t);
    quit(t);
}

/* --- the reply reader on its own ----------------------------------------------------------- */

static void test_reply_reader(void **state)
{
    (void)state;
    ph_reply_reader r;
    ph_reply_reader_init(&r);
    const char *in = "250-first line\r\n250-2.0.0 second\r\n250 2.0.0 last\r\nxyz";
    size_t len = strlen(in), used;
    ph_reply_event ev = ph_reply_reader_feed(&r, in, len, &used);
    assert_int_equal(ev, PH_REPLY_LINE);
    assert_int_equal(used, 16);
    assert_int_equal(r.line_text_len, 10);
    assert_memory_equal(r.line_text, "first line", 10);
    in += used, len -= used;
    ev = ph_reply_reader_feed(&r, in, len, &used);
    assert_int_equal(ev, PH_REPLY_LINE);
    assert_memory_equal(r.line_text, "second", 6); /* the enhanced code is split off */
    assert_string_equal(r.reply.enh, ""); /* only the first line's counts */
    in += used, len -= used;
    ev = ph_reply_reader_feed(&r, in, len, &used);
    assert_int_equal(ev, PH_REPLY_DONE);
    assert_int_equal(r.reply.code, 250);
    assert_int_equal(r.lines, 3);
    assert_string_equal(r.reply.text, "first line second last");
    assert_true(r.reply.remote);
    in += used, len -= used;
    ev = ph_reply_reader_feed(&r, in, len, &used);
    assert_int_equal(ev, PH_REPLY_NEED_MORE);
    assert_int_equal(used, 3);
    ev = ph_reply_reader_feed(&r, "\n", 1, &used); /* "xyz\n": broken, and that sticks */
    assert_int_equal(ev, PH_REPLY_ERROR);
    assert_string_equal(r.error, "malformed reply line");
    ev = ph_reply_reader_feed(&r, "250 ok\r\n", 8, &used);
    assert_int_equal(ev, PH_REPLY_ERROR);
    assert_int_equal(used, 0);

    /* a new reply starts clean */
    ph_reply_reader_init(&r);
    ev = ph_reply_reader_feed(&r, "550 5.7.1 a\r\n", 13, &used);
    assert_int_equal(ev, PH_REPLY_DONE);
    assert_string_equal(r.reply.enh, "5.7.1");
    ev = ph_reply_reader_feed(&r, "221 bye\r\n", 9, &used);
    assert_int_equal(ev, PH_REPLY_DONE);
    assert_int_equal(r.reply.code, 221);
    assert_string_equal(r.reply.enh, "");
    assert_string_equal(r.reply.text, "bye");
    assert_int_equal(r.lines, 1);

    /* enhanced code forms: 1-3 digits per part, followed by a space or the end */
    static const struct {
        const char *line, *enh, *text;
    } forms[] = {
        {"550 5.1.1 x\r\n", "5.1.1", "x"},     {"550 5.123.456 x\r\n", "5.123.456", "x"},
        {"550 5.1234.1 x\r\n", "", "5.1234.1 x"}, {"550 5.1.1x\r\n", "", "5.1.1x"},
        {"550 5..1 x\r\n", "", "5..1 x"},      {"550 5.1 x\r\n", "", "5.1 x"},
        {"250 2.0.0\r\n", "2.0.0", ""},        {"450 5.1.1 x\r\n", "", "5.1.1 x"},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        ph_reply_reader_init(&r);
        ev = ph_reply_reader_feed(&r, forms[i].line, strlen(forms[i].line), &used);
        assert_int_equal(ev, PH_REPLY_DONE);
        assert_string_equal(r.reply.enh, forms[i].enh);
        assert_string_equal(r.reply.text, forms[i].text);
    }

    /* a NUL inside the text is just another control byte */
    ph_reply_reader_init(&r);
    ev = ph_reply_reader_feed(&r, "250 a\0b\r\n", 9, &used);
    assert_int_equal(ev, PH_REPLY_DONE);
    assert_string_equal(r.reply.text, "a?b");
    assert_int_equal(r.line_text_len, 3);

    ph_client_result res;
    ph_client_result_set(&res, PH_STAGE_CONNECT, false, 451, "4.4.1", "connect: refused\n");
    assert_string_equal(res.text, "connect: refused?");
    assert_string_equal(ph_client_stage_name(res.stage), "connect");
    assert_string_equal(ph_client_stage_name((ph_client_stage)99), "none");
    ph_client_result_set(&res, PH_STAGE_RCPT, true, 550, "5.1.1.1.1.1.1.1.1.1.1.1", NULL);
    assert_int_equal(strlen(res.enh), sizeof(res.enh) - 1);
    assert_string_equal(res.text, "");
}

/* --- main ---------------------------------------------------------------------------------- */

#define SESSION(f)                                                                        \
    cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *)&WHOLE),         \
        cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *)&BYTEWISE)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SESSION(test_pipelined_all_accepted),
        SESSION(test_not_pipelined_partial),
        SESSION(test_pipelined_partial),
        SESSION(test_no_pipelining_all_refused_skips_data),
        SESSION(test_pipelined_all_refused),
        SESSION(test_pipelined_354_without_recipients_closes),
        SESSION(test_reuse_without_rset),
        SESSION(test_mail_refused),
        SESSION(test_data_refused),
        SESSION(test_rset_refused),
        SESSION(test_greeting_refused),
        SESSION(test_ehlo_helo_fallback),
        SESSION(test_ehlo_split_everywhere),
        SESSION(test_capability_forms),
        SESSION(test_size_refused_before_mail),
        SESSION(test_8bitmime_smtputf8),
        SESSION(test_null_sender_and_quoted_path),
        SESSION(test_starttls_opportunistic),
        SESSION(test_starttls_required),
        SESSION(test_starttls_failures),
        SESSION(test_auth_plain),
        SESSION(test_auth_login),
        SESSION(test_auth_refused),
        SESSION(test_lmtp_mode),
        SESSION(test_421_mid_session),
        SESSION(test_garbage_replies),
        SESSION(test_long_lines),
        SESSION(test_reply_texts),
        SESSION(test_early_close_and_fail),
        SESSION(test_many_recipients),
        SESSION(test_init_rejects),
        cmocka_unit_test(test_reply_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
