/*
 * test_submit.c - locally submitted messages: CRLF line ends, the lone-dot end, -t recipients
 * from To/Cc/Bcc with Bcc removed, bare names qualified, missing From/Date/Message-ID added,
 * Received: on top, headerless input, limits and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "queue/submit.h"

static ph_submit_opts opts(void)
{
    return (ph_submit_opts){.sender = "root@host.example", .hostname = "host.example",
                            .qid = "QID000000000001", .login = "root", .uid = 0,
                            .now = 1795480000, .dot_ends = true};
}

static const char *RECEIVED = "Received: by host.example (Posthorn, from userid 0)\r\n"
                              "\tid QID000000000001; Tue, 24 Nov 2026 00:26:40 +0000\r\n";

static void test_plain_with_cmdline_rcpt(void **state)
{
    (void)state;
    ph_submit_opts o = opts();
    const char *rcpts[] = {"alice@example.org"};
    o.rcpts = rcpts;
    o.nrcpts = 1;
    const char *in = "Subject: hi\nFrom: me@host.example\n\nline\n.\nafter dot\n";
    ph_submission s;
    char err[200];
    assert_int_equal(ph_submit_prepare(in, strlen(in), &o, &s, err, sizeof(err)), 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "%sSubject: hi\r\nFrom: me@host.example\r\nDate: Tue, 24 Nov 2026 00:26:40 +0000\r\n"
             "Message-ID: <QID000000000001@host.example>\r\n\r\nline\r\n",
             RECEIVED);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.data, want, s.len);
    assert_int_equal(s.nrcpts, 1);
    assert_string_equal(s.rcpts[0], "alice@example.org");
    assert_false(s.eightbit);
    ph_submission_free(&s);
}

static void test_extract_and_bcc(void **state)
{
    (void)state;
    ph_submit_opts o = opts();
    o.extract_rcpts = true;
    o.dot_ends = false;
    o.full_name = "The Admin";
    const char *in = "To: Alice <alice@example.org>, bob\r\nCc: team: c@x.example;\r\n"
                     "Bcc: secret@y.example,\r\n alice@example.org\r\nSubject: caf\xc3\xa9\r\n"
                     "\r\n.\r\nbody\r\n";
    ph_submission s;
    char err[200];
    assert_int_equal(ph_submit_prepare(in, strlen(in), &o, &s, err, sizeof(err)), 0);
    assert_int_equal(s.nrcpts, 4);
    assert_string_equal(s.rcpts[0], "alice@example.org");
    assert_string_equal(s.rcpts[1], "bob@host.example");
    assert_string_equal(s.rcpts[2], "c@x.example");
    assert_string_equal(s.rcpts[3], "secret@y.example");
    assert_null(memmem(s.data, s.len, "Bcc", 3));
    assert_null(memmem(s.data, s.len, "secret", 6));
    assert_non_null(memmem(s.data, s.len, "From: \"The Admin\" <root@host.example>\r\n", 39));
    assert_non_null(memmem(s.data, s.len, "\r\n\r\n.\r\nbody\r\n", 13)); /* -i: dot kept */
    assert_true(s.eightbit);
    ph_submission_free(&s);
}

static void test_headerless_and_errors(void **state)
{
    (void)state;
    ph_submit_opts o = opts();
    const char *rcpts[] = {"a@example.org"};
    o.rcpts = rcpts;
    o.nrcpts = 1;
    ph_submission s;
    char err[200];
    const char *in = "just a line of text";
    assert_int_equal(ph_submit_prepare(in, strlen(in), &o, &s, err, sizeof(err)), 0);
    const char *tail = "\r\n\r\njust a line of text\r\n";
    assert_true(s.len > strlen(tail));
    assert_memory_equal(s.data + s.len - strlen(tail), tail, strlen(tail));
    ph_submission_free(&s);

    o.nrcpts = 0;
    assert_int_equal(ph_submit_prepare(in, strlen(in), &o, &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "no recipients");
    const char *bad[] = {"not an address@@x"};
    o.rcpts = bad;
    o.nrcpts = 1;
    assert_int_equal(ph_submit_prepare(in, strlen(in), &o, &s, err, sizeof(err)), -EINVAL);
    assert_null(s.data);
    o.rcpts = rcpts;
    o.max_size = 10;
    assert_int_equal(ph_submit_prepare(in, strlen(in), &o, &s, err, sizeof(err)), -EFBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_with_cmdline_rcpt),
        cmocka_unit_test(test_extract_and_bcc),
        cmocka_unit_test(test_headerless_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
