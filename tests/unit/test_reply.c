/*
 * test_reply.c - unit tests for src/proto/reply.c: the reply table's consistency, the exact
 * wire form of table replies with and without a %s argument, the formatter (multi-line,
 * enhanced codes on every line, control-character scrubbing, invalid codes and enhanced codes,
 * the 512-octet line cap) and smtp_enhanced_valid. Table-driven; failures name the case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/reply.h"

/* Compares out against want, naming the case; both are shown with CR/LF visible. */
static void expect_wire(const char *what, size_t i, const strbuf *out, const char *want)
{
    const char *got = out->data != NULL ? out->data : "";
    if (out->len == strlen(want) && memcmp(got, want, out->len) == 0)
        return;
    print_error("case %s %zu\n--- got ---\n%s\n--- want ---\n%s\n", what, i, got, want);
    fail();
}

/* --- the table ------------------------------------------------------------------------------- */

/* Every id has a row, a sane code and text, and an enhanced code of the right class. */
static void test_reply_table(void **state)
{
    (void)state;
    assert_null(smtp_reply_get(R_NONE));
    assert_null(smtp_reply_get(R__COUNT));
    assert_null(smtp_reply_get((smtp_reply_id)-1));
    for (int id = R_NONE + 1; id < R__COUNT; id++) {
        const smtp_reply_def *d = smtp_reply_get((smtp_reply_id)id);
        if (d == NULL || d->text == NULL || d->code < 200 || d->code > 599)
            fail_msg("reply id %d: missing or bad row", id);
        if (d->enhanced != NULL && !smtp_enhanced_valid(d->code, d->enhanced))
            fail_msg("reply id %d: enhanced '%s' invalid for %d", id, d->enhanced, d->code);
        /* Only the greetings, 354 and 334 go without an enhanced code (RFC 2034 3): the text
         * of a 334 is the base64 challenge (RFC 4954 4). */
        bool bare = id == R_GREETING || id == R_HELO_OK || id == R_DATA_GO ||
                    id == R_AUTH_CHALLENGE;
        if ((d->enhanced == NULL) != bare)
            fail_msg("reply id %d: enhanced code presence wrong", id);
        const char *pct = strchr(d->text, '%');
        if (pct != NULL && (pct[1] != 's' || strchr(pct + 1, '%') != NULL))
            fail_msg("reply id %d: text may hold only one %%s", id);
    }
}

typedef struct id_case {
    smtp_reply_id id;
    const char *arg;
    const char *want;
} id_case;

static const id_case id_cases[] = {
    {R_GREETING, "mx.example ESMTP Posthorn", "220 mx.example ESMTP Posthorn\r\n"},
    {R_GREETING, "mx.example ESMTP\nsecond line", "220-mx.example ESMTP\r\n220 second line\r\n"},
    {R_BYE, NULL, "221 2.0.0 Bye\r\n"},
    {R_HELO_OK, "mx.example", "250 mx.example\r\n"},
    {R_HELO_OK, NULL, "250\r\n"},
    {R_ACTION_OK, NULL, "250 2.0.0 Ok\r\n"},
    {R_ACTION_OK, "ignored: no %s in the text", "250 2.0.0 Ok\r\n"},
    {R_SENDER_OK, NULL, "250 2.1.0 Ok\r\n"},
    {R_RCPT_OK, NULL, "250 2.1.5 Ok\r\n"},
    {R_QUEUED, "4Xyz12", "250 2.0.0 Ok: queued as 4Xyz12\r\n"},
    {R_QUEUED, NULL, "250 2.0.0 Ok: queued as \r\n"},
    {R_QUEUED, "id\r\n250 forged", "250-2.0.0 Ok: queued as id?\r\n250 2.0.0 250 forged\r\n"},
    {R_BDAT_OK, "1024", "250 2.0.0 Ok: 1024 octets received\r\n"},
    {R_VRFY, NULL,
     "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"},
    {R_DATA_GO, NULL, "354 End data with <CR><LF>.<CR><LF>\r\n"},
    {R_SHUTDOWN, NULL, "421 4.3.2 Service shutting down, closing transmission channel\r\n"},
    {R_TIMEOUT, NULL, "421 4.4.2 Timeout exceeded, closing transmission channel\r\n"},
    {R_TOO_MANY_ERRORS, NULL, "421 4.7.0 Too many errors, closing transmission channel\r\n"},
    {R_TOO_MANY_CONNS, NULL, "421 4.7.0 Too many connections, try again later\r\n"},
    {R_TOO_MANY_FROM_IP, NULL,
     "421 4.7.0 Too many connections from your address, try again later\r\n"},
    {R_DISCONNECT, NULL, "421 4.7.0 Closing transmission channel\r\n"},
    {R_STORE_FAILED, NULL,
     "451 4.3.0 Error: could not store the message, try again later\r\n"},
    {R_TEMP_REJECT, NULL, "451 4.3.0 Temporary failure, try again later\r\n"},
    {R_TOO_MANY_RCPTS, NULL, "452 4.5.3 Too many recipients\r\n"},
    {R_LINE_TOO_LONG, NULL, "500 5.5.6 Line too long\r\n"},
    {R_BARE_LF, NULL, "500 5.5.2 Bare LF or CR received: lines must end with CRLF\r\n"},
    {R_UNKNOWN_CMD, NULL, "500 5.5.2 Command unrecognized\r\n"},
    {R_SYNTAX, NULL, "501 5.5.2 Syntax error\r\n"},
    {R_SYNTAX_HELO, NULL, "501 5.5.2 Syntax: EHLO hostname\r\n"},
    {R_SYNTAX_MAIL, NULL, "501 5.5.2 Syntax: MAIL FROM:<address>\r\n"},
    {R_SYNTAX_RCPT, NULL, "501 5.5.2 Syntax: RCPT TO:<address>\r\n"},
    {R_SYNTAX_BDAT, NULL, "501 5.5.4 Syntax: BDAT size [LAST]\r\n"},
    {R_NO_ARGS, NULL, "501 5.5.4 No parameters allowed\r\n"},
    {R_BAD_SENDER, NULL, "501 5.1.7 Bad sender address syntax\r\n"},
    {R_BAD_RCPT, NULL, "501 5.1.3 Bad recipient address syntax\r\n"},
    {R_BAD_PARAM, NULL, "501 5.5.4 Invalid parameter value\r\n"},
    {R_NOT_IMPLEMENTED, NULL, "502 5.5.1 Command not implemented\r\n"},
    {R_NEED_HELO, NULL, "503 5.5.1 Send HELO/EHLO first\r\n"},
    {R_NESTED_MAIL, NULL, "503 5.5.1 Sender already specified\r\n"},
    {R_NEED_MAIL, NULL, "503 5.5.1 Need MAIL command first\r\n"},
    {R_NEED_RCPT, NULL, "503 5.5.1 Need RCPT command first\r\n"},
    {R_BAD_SEQUENCE, NULL, "503 5.5.1 Bad sequence of commands\r\n"},
    {R_DATA_AFTER_BDAT, NULL, "503 5.5.1 DATA not allowed after BDAT\r\n"},
    {R_PARAM_UNKNOWN, NULL, "555 5.5.4 Unsupported parameter\r\n"},
    {R_SIZE_EXCEEDED, NULL, "552 5.3.4 Message size exceeds fixed limit\r\n"},
    {R_NEED_SMTPUTF8, NULL, "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"},
    {R_EARLY_TALKER, NULL,
     "554 5.5.0 Protocol error: client sent data before the greeting\r\n"},
    {R_DATA_BARE_LF, NULL,
     "550 5.6.0 Message contains bare LF or CR: lines must end with CRLF\r\n"},
    {R_DATA_LINE_LONG, NULL, "550 5.6.0 Message line longer than 998 octets\r\n"},
    {R_REJECTED, NULL, "550 5.7.1 Rejected\r\n"},
    {R_BODY_8BIT, NULL, "554 5.6.0 8-bit data needs BODY=8BITMIME\r\n"},
    {R_TLS_READY, NULL, "220 2.0.0 Ready to start TLS\r\n"},
    {R_NEED_STARTTLS, NULL, "530 5.7.0 Must issue a STARTTLS command first\r\n"},
    {R_AUTH_REQUIRED, NULL, "530 5.7.0 Authentication required\r\n"},
    {R_AUTH_OK, NULL, "235 2.7.0 Authentication successful\r\n"},
    {R_AUTH_CHALLENGE, "VXNlcm5hbWU6", "334 VXNlcm5hbWU6\r\n"},
    {R_AUTH_CHALLENGE, "", "334 \r\n"}, /* RFC 4954 4: the SP stays before an empty challenge */
    {R_AUTH_CHALLENGE, NULL, "334 \r\n"},
    {R_AUTH_CANCELLED, NULL, "501 5.7.0 Authentication cancelled\r\n"},
    {R_AUTH_BAD_BASE64, NULL, "501 5.5.2 Invalid base64 data\r\n"},
    {R_AUTH_BAD_MESSAGE, NULL, "501 5.5.2 Malformed authentication response\r\n"},
    {R_AUTH_TOO_LONG, NULL, "500 5.5.6 Authentication Exchange line is too long\r\n"},
    {R_AUTH_UNKNOWN_MECH, NULL, "504 5.5.4 Unrecognized authentication mechanism\r\n"},
    {R_AUTH_FAILED, NULL, "535 5.7.8 Authentication credentials invalid\r\n"},
    {R_AUTH_TEMP_FAIL, NULL, "454 4.7.0 Temporary authentication failure\r\n"},
    {R_AUTH_NEED_TLS, NULL,
     "538 5.7.11 Encryption required for requested authentication mechanism\r\n"},
    {R_AUTH_ALREADY, NULL, "503 5.5.1 Already authenticated\r\n"},
    {R_TLS_UNAVAILABLE, NULL, "454 4.7.0 TLS not available due to temporary reason\r\n"},
    {R_AUTH_TOO_MANY, NULL, "421 4.7.0 Too many failed authentication attempts\r\n"},
};

static void test_reply_ids(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof id_cases / sizeof id_cases[0]; i++) {
        strbuf out;
        strbuf_init(&out, 0);
        assert_int_equal(smtp_reply_append_id(&out, id_cases[i].id, id_cases[i].arg), 0);
        expect_wire("id", i, &out, id_cases[i].want);
        strbuf_free(&out);
    }
    /* HELP is free text, but must be one 214 2.0.0 reply pointing at RFC 5321. */
    strbuf out;
    strbuf_init(&out, 0);
    assert_int_equal(smtp_reply_append_id(&out, R_HELP, NULL), 0);
    assert_true(strncmp(out.data, "214 2.0.0 ", 10) == 0);
    assert_non_null(strstr(out.data, "RFC 5321"));
    assert_ptr_equal(strchr(out.data, '\n'), out.data + out.len - 1); /* one line */
    /* Unknown ids append nothing and fail. */
    assert_int_equal(smtp_reply_append_id(&out, R_NONE, NULL), -1);
    assert_int_equal(smtp_reply_append_id(&out, R__COUNT, NULL), -1);
    assert_int_equal(strncmp(out.data, "214 2.0.0 ", 10), 0);
    strbuf_free(&out);
}

/* --- the formatter ------------------------------------------------------------------------------ */

typedef struct fmt_case {
    int code;
    const char *enhanced;
    const char *text;
    const char *want;
} fmt_case;

static const fmt_case fmt_cases[] = {
    /* single line */
    {250, "2.0.0", "Ok", "250 2.0.0 Ok\r\n"},
    {250, NULL, "Ok", "250 Ok\r\n"},
    {550, "5.7.1", "Go away", "550 5.7.1 Go away\r\n"},
    {451, "4.7.1", "Greylisted", "451 4.7.1 Greylisted\r\n"},
    {250, "2.999.999", "max", "250 2.999.999 max\r\n"},
    /* empty text: just the code (and the enhanced code), no trailing space */
    {250, "2.0.0", "", "250 2.0.0\r\n"},
    {250, NULL, "", "250\r\n"},
    {250, "2.0.0", NULL, "250 2.0.0\r\n"},
    {250, NULL, NULL, "250\r\n"},
    /* multi-line, enhanced code on every line */
    {250, "2.0.0", "a\nb\nc", "250-2.0.0 a\r\n250-2.0.0 b\r\n250 2.0.0 c\r\n"},
    {250, NULL, "mx.example\nPIPELINING\nSIZE 1000\n8BITMIME",
     "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"},
    {550, "5.7.1", "line one\nline two", "550-5.7.1 line one\r\n550 5.7.1 line two\r\n"},
    /* a trailing newline does not open an empty last line; inner empty lines stay */
    {250, "2.0.0", "a\n", "250 2.0.0 a\r\n"},
    {250, "2.0.0", "a\n\nb", "250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n"},
    {250, NULL, "a\n\nb", "250-a\r\n250-\r\n250 b\r\n"},
    {250, "2.0.0", "\n", "250 2.0.0\r\n"},
    {250, "2.0.0", "\n\n", "250-2.0.0\r\n250 2.0.0\r\n"},
    /* scrubbing: CR, controls, DEL and 8-bit bytes become '?' */
    {550, "5.7.1", "evil\r\n250 ok", "550-5.7.1 evil?\r\n550 5.7.1 250 ok\r\n"},
    {550, "5.7.1", "a\rb", "550 5.7.1 a?b\r\n"},
    {550, "5.7.1", "tab\there", "550 5.7.1 tab?here\r\n"},
    {550, "5.7.1", "\x01\x02\x1f\x7f", "550 5.7.1 ????\r\n"},
    {550, "5.7.1", "caf\xc3\xa9", "550 5.7.1 caf??\r\n"},
    {550, "5.7.1", "\x1b[31mred", "550 5.7.1 ?[31mred\r\n"},
    {550, "5.7.1", " leading and trailing ", "550 5.7.1  leading and trailing \r\n"},
    /* invalid enhanced codes are replaced by the code's class */
    {550, "4.7.1", "class mismatch", "550 5.0.0 class mismatch\r\n"},
    {450, "5.7.1", "class mismatch", "450 4.0.0 class mismatch\r\n"},
    {250, "5.0.0", "class mismatch", "250 2.0.0 class mismatch\r\n"},
    {550, "5.7", "short", "550 5.0.0 short\r\n"},
    {550, "5.7.1.1", "long", "550 5.0.0 long\r\n"},
    {550, "5.1000.1", "subject too long", "550 5.0.0 subject too long\r\n"},
    {550, "5.1.1000", "detail too long", "550 5.0.0 detail too long\r\n"},
    {550, "5..1", "empty subject", "550 5.0.0 empty subject\r\n"},
    {550, "5.1.", "empty detail", "550 5.0.0 empty detail\r\n"},
    {550, "", "empty", "550 5.0.0 empty\r\n"},
    {550, "x.y.z", "garbage", "550 5.0.0 garbage\r\n"},
    {550, "5.7.1 ", "trailing space", "550 5.0.0 trailing space\r\n"},
    {550, "3.0.0", "class 3", "550 5.0.0 class 3\r\n"},
    {550, "5.7.1\r\n250 x", "injection", "550 5.0.0 injection\r\n"},
    /* 3xx has no enhanced class: an enhanced code is dropped */
    {354, "2.0.0", "Go ahead", "354 Go ahead\r\n"},
    /* 334 keeps its SP before an empty challenge (RFC 4954 4); other codes drop it */
    {334, NULL, "", "334 \r\n"},
    {334, "2.0.0", "", "334 \r\n"},
    {354, NULL, "", "354\r\n"},
    {354, NULL, "Go ahead", "354 Go ahead\r\n"},
    /* invalid codes become 451 (and the enhanced code follows the new class) */
    {0, "5.7.1", "zero", "451 4.0.0 zero\r\n"},
    {199, NULL, "low", "451 low\r\n"},
    {600, "4.7.1", "high", "451 4.7.1 high\r\n"},
    {-550, "5.7.1", "negative", "451 4.0.0 negative\r\n"},
    {5500, "5.7.1", "four digits", "451 4.0.0 four digits\r\n"},
    {599, "5.0.0", "edge", "599 5.0.0 edge\r\n"},
    {200, "2.0.0", "edge", "200 2.0.0 edge\r\n"},
};

static void test_reply_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
        const fmt_case *c = &fmt_cases[i];
        strbuf out;
        strbuf_init(&out, 0);
        assert_int_equal(smtp_reply_append(&out, c->code, c->enhanced, c->text), 0);
        expect_wire("fmt", i, &out, c->want);
        strbuf_free(&out);
    }
}

/* Replies append: two in a row are both kept, in order. */
static void test_reply_appends(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out, 0);
    assert_int_equal(smtp_reply_append_id(&out, R_SENDER_OK, NULL), 0);
    assert_int_equal(smtp_reply_append_id(&out, R_RCPT_OK, NULL), 0);
    assert_string_equal(out.data, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
    strbuf_free(&out);
}

/* Lines are cut to 512 octets including CRLF (RFC 5321 4.5.3.1.5); other lines unaffected. */
static void test_reply_line_cap(void **state)
{
    (void)state;
    char text[1200];
    memset(text, 'x', 1100);
    text[600] = '\n';
    text[1100] = '\0';
    strbuf out;
    strbuf_init(&out, 0);
    assert_int_equal(smtp_reply_append(&out, 550, "5.7.1", text), 0);
    const char *nl = strstr(out.data, "\r\n");
    assert_non_null(nl);
    assert_int_equal(nl - out.data + 2, 512);
    assert_true(strncmp(out.data, "550-5.7.1 xxx", 13) == 0);
    /* second line: 499 x's fit entirely */
    assert_int_equal(out.len - (size_t)(nl + 2 - out.data), 10 + 499 + 2);
    strbuf_free(&out);

    /* exactly 512 octets is kept whole: 512 - "550 5.7.1 " - CRLF = 500 bytes of text */
    memset(text, 'y', 501);
    text[500] = '\0';
    strbuf_init(&out, 0);
    assert_int_equal(smtp_reply_append(&out, 550, "5.7.1", text), 0);
    assert_int_equal(out.len, 512);
    strbuf_clear(&out);
    text[500] = 'y';
    text[501] = '\0';
    assert_int_equal(smtp_reply_append(&out, 550, "5.7.1", text), 0);
    assert_int_equal(out.len, 512);
    assert_memory_equal(out.data + 510, "\r\n", 2);
    strbuf_free(&out);
}

/* A buffer that cannot grow fails the whole reply and keeps what it had. */
static void test_reply_no_room(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out, 20);
    assert_int_equal(smtp_reply_append_id(&out, R_ACTION_OK, NULL), 0); /* 14 bytes */
    assert_int_equal(smtp_reply_append(&out, 250, "2.0.0", "a\nb"), -1);
    assert_int_equal(out.len, 14);
    assert_string_equal(out.data, "250 2.0.0 Ok\r\n");
    assert_int_equal(smtp_reply_append_id(&out, R_BYE, NULL), -1);
    assert_int_equal(out.len, 14);
    assert_int_equal(smtp_reply_append(&out, 250, NULL, "1"), -1); /* 7 more: 21 > 20 */
    assert_int_equal(smtp_reply_append(&out, 250, NULL, NULL), 0);  /* 5 more: 19 */
    assert_string_equal(out.data, "250 2.0.0 Ok\r\n250\r\n");
    strbuf_free(&out);
}

typedef struct enh_case {
    int code;
    const char *enhanced;
    int valid;
} enh_case;

static const enh_case enh_cases[] = {
    {250, "2.0.0", 1},     {250, "2.1.5", 1},    {451, "4.3.0", 1},     {550, "5.7.1", 1},
    {554, "5.999.999", 1}, {221, "2.10.100", 1}, {500, "5.05.002", 1},  {599, "5.0.0", 1},
    {250, "4.0.0", 0},     {550, "2.0.0", 0},    {354, "3.0.0", 0},     {354, "2.0.0", 0},
    {250, NULL, 0},        {250, "", 0},         {250, "2", 0},         {250, "2.", 0},
    {250, "2.0", 0},       {250, "2.0.", 0},     {250, "2..0", 0},      {250, ".0.0", 0},
    {250, "2.0.0.", 0},    {250, "2.0.0 ", 0},   {250, " 2.0.0", 0},    {250, "2.1000.0", 0},
    {250, "2.0.1000", 0},  {250, "2.a.0", 0},    {250, "2.0.-1", 0},    {250, "22.0.0", 0},
    {199, "1.0.0", 0},     {600, "6.0.0", 0},    {0, "0.0.0", 0},       {-250, "2.0.0", 0},
};

static void test_enhanced_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof enh_cases / sizeof enh_cases[0]; i++) {
        const enh_case *c = &enh_cases[i];
        int v = smtp_enhanced_valid(c->code, c->enhanced) ? 1 : 0;
        if (v != c->valid)
            fail_msg("case %zu: %d '%s': got %d, want %d", i, c->code,
                     c->enhanced != NULL ? c->enhanced : "(null)", v, c->valid);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_table),   cmocka_unit_test(test_reply_ids),
        cmocka_unit_test(test_reply_format),  cmocka_unit_test(test_reply_appends),
        cmocka_unit_test(test_reply_line_cap), cmocka_unit_test(test_reply_no_room),
        cmocka_unit_test(test_enhanced_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
