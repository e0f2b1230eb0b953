/*
 * test_session.c - unit tests of the session state machine's driver contract, the parts the
 * transcripts cannot show: hooks pause input (nothing is lost), borrowed chunks, early talkers
 * and the greeting delay, timeouts and shutdown, idleness, notes, protocol names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "proto/session.h"

static smtp_session *new_session(bool delayed)
{
    smtp_session_config cfg = {.hostname = "mx.test", .banner = "Posthorn", .max_line = 512,
                               .max_data_line = 998, .max_message_size = 1 << 20,
                               .max_recipients = 100, .max_errors = 5,
                               .greeting_delayed = delayed};
    smtp_session *s = smtp_session_new(&cfg);
    assert_non_null(s);
    smtp_session_start(s);
    return s;
}

static const smtp_verdict accept_v = {SV_ACCEPT, 0, NULL, NULL};

/* Output so far as a C string (the buffer is cleared). */
static char *take_output(smtp_session *s, char *buf, size_t len)
{
    strbuf *o = smtp_session_output(s);
    size_t n = o->len < len - 1 ? o->len : len - 1;
    if (n)
        memcpy(buf, o->data, n);
    buf[n] = '\0';
    strbuf_clear(o);
    return buf;
}

/* Feeds text, accepting every hook, until all of it is consumed. */
static void feed_all(smtp_session *s, const char *text)
{
    size_t len = strlen(text), pos = 0;
    for (int guard = 0; guard < 10000; guard++) {
        while (smtp_session_hook(s))
            smtp_session_resolve(s, &accept_v);
        if (pos == len || smtp_session_want_close(s))
            return;
        pos += smtp_session_feed(s, text + pos, len - pos);
    }
    fail_msg("feed did not make progress");
}

static void test_connect_hook_comes_first(void **state)
{
    (void)state;
    char out[512];
    smtp_session *s = new_session(false);
    const smtp_hook_req *h = smtp_session_hook(s);
    assert_non_null(h);
    assert_int_equal(h->kind, HOOK_CONNECT);
    assert_string_equal(take_output(s, out, sizeof(out)), "");
    smtp_session_resolve(s, &accept_v);
    assert_string_equal(take_output(s, out, sizeof(out)), "220 mx.test ESMTP Posthorn\r\n");
    smtp_session_free(s);
}

static void test_pending_hook_pauses_input(void **state)
{
    (void)state;
    char out[2048];
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    const char *in = "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nNOOP\r\n";
    size_t used = smtp_session_feed(s, in, strlen(in));
    assert_int_equal(used, strlen("EHLO c.example\r\n")); /* stops at the HELO hook */
    assert_int_equal(smtp_session_hook(s)->kind, HOOK_HELO);
    assert_string_equal(smtp_session_hook(s)->arg, "c.example");
    assert_int_equal(smtp_session_feed(s, in + used, strlen(in) - used), 0);
    smtp_session_resolve(s, &accept_v);
    used += smtp_session_feed(s, in + used, strlen(in) - used);
    assert_int_equal(smtp_session_hook(s)->kind, HOOK_MAIL);
    assert_string_equal(smtp_session_hook(s)->path->mailbox, "a@example.org");
    smtp_session_resolve(s, &accept_v);
    used += smtp_session_feed(s, in + used, strlen(in) - used);
    assert_int_equal(used, strlen(in));
    take_output(s, out, sizeof(out));
    assert_non_null(strstr(out, "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"));
    smtp_session_free(s);
}

static void test_chunks_point_into_input(void **state)
{
    (void)state;
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    feed_all(s, "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\n");
    const char *in = "DATA\r\nbody line\r\n.\r\n";
    size_t used = smtp_session_feed(s, in, strlen(in));
    assert_int_equal(smtp_session_hook(s)->kind, HOOK_DATA_START);
    smtp_session_resolve(s, &accept_v);
    used += smtp_session_feed(s, in + used, strlen(in) - used);
    const smtp_hook_req *h = smtp_session_hook(s);
    assert_int_equal(h->kind, HOOK_DATA_CHUNK);
    assert_ptr_equal(h->chunk, in + 6); /* zero-copy: the span is the caller's bytes */
    assert_int_equal(h->chunk_len, strlen("body line\r\n"));
    smtp_session_resolve(s, &accept_v);
    used += smtp_session_feed(s, in + used, strlen(in) - used);
    assert_int_equal(smtp_session_hook(s)->kind, HOOK_MESSAGE);
    assert_int_equal(used, strlen(in));
    smtp_session_free(s);
}

static void test_prefix_is_first_chunk(void **state)
{
    (void)state;
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    feed_all(s, "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\n");
    smtp_session_feed(s, "DATA\r\n", 6);
    assert_int_equal(smtp_session_set_prefix(s, "Received: x\r\n", 13), 0);
    smtp_session_resolve(s, &accept_v);
    const smtp_hook_req *h = smtp_session_hook(s);
    assert_non_null(h);
    assert_int_equal(h->kind, HOOK_DATA_CHUNK);
    assert_memory_equal(h->chunk, "Received: x\r\n", 13);
    smtp_session_resolve(s, &accept_v);
    assert_int_equal(smtp_session_txn(s)->size, 13);
    smtp_session_free(s);
}

static void test_early_talker(void **state)
{
    (void)state;
    char out[512];
    smtp_session *s = new_session(true);
    smtp_session_resolve(s, &accept_v); /* connect accepted, banner waits for the delay */
    assert_string_equal(take_output(s, out, sizeof(out)), "");
    smtp_session_feed(s, "EHLO x\r\n", 8);
    assert_true(smtp_session_want_close(s));
    assert_non_null(strstr(take_output(s, out, sizeof(out)), "554 5.5.0"));
    smtp_session_free(s);
}

static void test_greeting_after_delay(void **state)
{
    (void)state;
    char out[512];
    smtp_session *s = new_session(true);
    smtp_session_resolve(s, &accept_v);
    smtp_session_greet(s);
    assert_string_equal(take_output(s, out, sizeof(out)), "220 mx.test ESMTP Posthorn\r\n");
    smtp_session_free(s);
}

static void test_abort_and_idle(void **state)
{
    (void)state;
    char out[1024];
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    assert_true(smtp_session_is_idle(s));
    feed_all(s, "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\nDATA\r\npart");
    assert_false(smtp_session_is_idle(s)); /* a message is in flight */
    take_output(s, out, sizeof(out));
    smtp_session_abort(s, R_TIMEOUT);
    assert_true(smtp_session_want_close(s));
    assert_string_equal(take_output(s, out, sizeof(out)),
                        "421 4.4.2 Timeout exceeded, closing transmission channel\r\n");
    assert_true(smtp_session_take_notes(s) & SN_TXN_ABORTED);
    smtp_session_free(s);
}

static void test_notes_and_counts(void **state)
{
    (void)state;
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    feed_all(s, "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nx\r\n.\r\n");
    assert_int_equal(smtp_session_take_notes(s), SN_MESSAGE_DONE);
    assert_int_equal(smtp_session_messages(s), 1);
    feed_all(s, "MAIL FROM:<>\r\nRSET\r\n");
    assert_int_equal(smtp_session_take_notes(s), SN_TXN_ABORTED | SN_RSET);
    assert_null(smtp_session_txn(s));
    smtp_session_free(s);
}

static void test_protocol_names(void **state)
{
    (void)state;
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    feed_all(s, "HELO c.example\r\n");
    assert_string_equal(smtp_session_protocol(s), "SMTP");
    feed_all(s, "EHLO c.example\r\n");
    assert_string_equal(smtp_session_protocol(s), "ESMTP");
    smtp_session_set_tls(s, true);
    assert_string_equal(smtp_session_protocol(s), "ESMTPS");
    feed_all(s, "MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8\r\n");
    assert_string_equal(smtp_session_protocol(s), "UTF8SMTPS");
    smtp_session_free(s);
}

static void test_reply_text_cannot_inject(void **state)
{
    (void)state;
    char out[1024];
    smtp_session *s = new_session(false);
    smtp_session_resolve(s, &accept_v);
    feed_all(s, "EHLO c.example\r\n");
    take_output(s, out, sizeof(out));
    smtp_session_feed(s, "MAIL FROM:<a@example.org>\r\n", 27);
    smtp_verdict v = {SV_REJECT, 550, "5.7.1", "no\r\n250 2.0.0 fake"};
    smtp_session_resolve(s, &v);
    take_output(s, out, sizeof(out));
    /* the CR is scrubbed and the LF starts a continuation line: no forged second reply */
    assert_string_equal(out, "550-5.7.1 no?\r\n550 5.7.1 250 2.0.0 fake\r\n");
    smtp_session_free(s);
}

static void test_disconnect_verdict(void **state)
{
    (void)state;
    char out[1024];
    smtp_session *s = new_session(false);
    smtp_verdict v = {SV_DISCONNECT, 0, NULL, NULL};
    smtp_session_resolve(s, &v);
    assert_true(smtp_session_want_close(s));
    assert_non_null(strstr(take_output(s, out, sizeof(out)), "421 4.7.0"));
    assert_int_equal(smtp_session_feed(s, "EHLO x\r\n", 8), 8); /* dropped */
    assert_string_equal(take_output(s, out, sizeof(out)), "");
    smtp_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_hook_comes_first),
        cmocka_unit_test(test_pending_hook_pauses_input),
        cmocka_unit_test(test_chunks_point_into_input),
        cmocka_unit_test(test_prefix_is_first_chunk),
        cmocka_unit_test(test_early_talker),
        cmocka_unit_test(test_greeting_after_delay),
        cmocka_unit_test(test_abort_and_idle),
        cmocka_unit_test(test_notes_and_counts),
        cmocka_unit_test(test_protocol_names),
        cmocka_unit_test(test_reply_text_cannot_inject),
        cmocka_unit_test(test_disconnect_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
