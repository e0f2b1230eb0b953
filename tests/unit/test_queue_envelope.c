/*
 * test_queue_envelope.c - unit tests for src/queue/envelope.c, the queue's envelope file format.
 * Table-driven: valid files that must round-trip byte for byte, invalid files with the exact
 * reason parse gives (line number, reason, escaped excerpt), envelopes serialize must refuse,
 * hostile error texts that must stay on their line and come back unchanged, every truncation
 * and every bit flip of a valid file, and 100000 recipients. Failures name the case.
 * Owns only what each test allocates and frees.
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

#include "queue/envelope.h"

/* --- helpers --------------------------------------------------------------------------------- */

/* body + its end line, malloc'd; *len gets the length. */
static char *seal_n(const char *body, size_t n, size_t *len)
{
    char *out = malloc(n + 32);
    assert_non_null(out);
    memcpy(out, body, n);
    int k = snprintf(out + n, 32, "end %016llx\n",
                     (unsigned long long)ph_envelope_checksum(body, n));
    *len = n + (size_t)k;
    return out;
}

static char *seal(const char *body, size_t *len)
{
    return seal_n(body, strlen(body), len);
}

/* Parses buf, expecting success; returns the envelope. */
static ph_envelope *parse_ok(const char *name, const char *buf, size_t len)
{
    char err[256];
    ph_envelope *e = NULL;
    int rc = ph_envelope_parse(buf, len, &e, err, sizeof(err));
    if (rc != 0)
        fail_msg("case %s: parse failed (%d): %s", name, rc, err);
    return e;
}

/* serialize(e) must give exactly want[0..wlen). */
static void expect_bytes(const char *name, const ph_envelope *e, const char *want, size_t wlen)
{
    char *out = NULL;
    size_t len = 0;
    int rc = ph_envelope_serialize(e, &out, &len);
    if (rc != 0)
        fail_msg("case %s: serialize failed (%d)", name, rc);
    if (len != wlen || memcmp(out, want, len) != 0)
        fail_msg("case %s: serialize differs:\n--- got\n%.*s--- want\n%.*s", name, (int)len,
                 out, (int)wlen, want);
    assert_int_equal(out[len], '\0');
    free(out);
}

#define HDR "posthorn-envelope 1\nid 5X5CR29M3ZM2P00\nreceived 1795480000\nclient 127.0.0.1\n"
#define MIN_TAIL "protocol ESMTP\nfrom <>\nsize 0\nrcpt <a@b.example> pending\n"
#define MINIMAL HDR MIN_TAIL

/* --- valid files round-trip ------------------------------------------------------------------ */

typedef struct valid_case {
    const char *name;
    const char *body; /* without the end line */
} valid_case;

static const valid_case valid_cases[] = {
    {"minimal", MINIMAL},
    {"full example", HDR "helo client.example\nprotocol ESMTPSA\nauth alice\n"
                         "tls TLSv1.3 TLS_AES_256_GCM_SHA384\nfrom <alice@example.org>\n"
                         "param BODY=8BITMIME\nparam SMTPUTF8\nparam SIZE=123\nsize 4711\n"
                         "rcpt <bob@example.net> pending\n"
                         "rcpt <carol@example.net> deferred next=1795480600 attempts=2 "
                         "error=451 4.7.1 Greylisted\n"
                         "rcpt <dave@example.net> delivered at=1795480100 attempts=1 "
                         "error=250 2.0.0 Ok: queued as 4711\n"
                         "rcpt <erin@example.net> failed at=1795480100 error=550 5.1.1 No "
                         "such user\n"},
    {"unix client, no helo", "posthorn-envelope 1\nid a-b_C\nreceived 0\nclient unix\n"
                             "protocol LMTP\nfrom <x@y>\nsize 1\nrcpt <x@y> pending\n"},
    {"utf8 addresses", HDR "protocol UTF8SMTP\nfrom <δοκιμή@παράδειγμα.δοκιμή>\n"
                           "param SMTPUTF8\nsize 9\nrcpt <用户@例子.广告> pending\n"
                           "rcpt <ü@x.example> pending\n"},
    {"quoted local part", HDR "protocol ESMTP\nfrom <\"john%20doe\"@example.com>\nsize 0\n"
                              "rcpt <\"a>b\"@x.y> pending\nrcpt <\"%25\"@x.y> pending\n"},
    {"escaped error", HDR MIN_TAIL "rcpt <c@d> deferred next=1 error=451 line1%0D%0Arcpt "
                                   "<evil@x> delivered at=1%0A%25 100%25 € caf%C3 %C2%85 x\n"},
    {"empty and spaced errors", HDR MIN_TAIL "rcpt <c@d> failed at=0 error=\n"
                                             "rcpt <e@f> pending error=  two  spaces  \n"},
    {"pending after attempts", HDR MIN_TAIL "rcpt <c@d> pending attempts=3 error=421 busy\n"},
    {"error text that looks like keys", HDR MIN_TAIL "rcpt <c@d> pending error=x attempts=1 "
                                                     "error=y\n"},
    {"maximum numbers", "posthorn-envelope 1\nid Z\nreceived 9223372036854775807\nclient x\n"
                        "protocol ESMTP\nfrom <>\nsize 9223372036854775807\n"
                        "rcpt <a@b> deferred next=9223372036854775807 attempts=4294967295\n"},
    {"escaped token fields", HDR "helo a%20b%09c\nprotocol ESMTP\nauth %25user%0A\n"
                             "tls TLS%20v1 x%7F\nfrom <a%0D@b>\nparam ENVID=a%20b+\n"
                             "size 0\nrcpt <a@b> pending\n"},
};

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const valid_case *c = &valid_cases[i];
        size_t len;
        char *buf = seal(c->body, &len);
        ph_envelope *e = parse_ok(c->name, buf, len);
        expect_bytes(c->name, e, buf, len);
        ph_envelope_free(e);
        free(buf);
    }
}

static void test_parsed_values(void **state)
{
    (void)state;
    size_t len;
    char *buf = seal(valid_cases[1].body, &len);
    ph_envelope *e = parse_ok("full example", buf, len);
    assert_string_equal(e->id, "5X5CR29M3ZM2P00");
    assert_int_equal(e->received, 1795480000);
    assert_string_equal(e->client, "127.0.0.1");
    assert_string_equal(e->helo, "client.example");
    assert_string_equal(e->protocol, "ESMTPSA");
    assert_string_equal(e->auth, "alice");
    assert_string_equal(e->tls_version, "TLSv1.3");
    assert_string_equal(e->tls_cipher, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(e->from, "alice@example.org");
    assert_int_equal(e->nparams, 3);
    assert_string_equal(ph_envelope_param(e, "body"), "8BITMIME");
    assert_string_equal(ph_envelope_param(e, "SMTPUTF8"), "");
    assert_null(ph_envelope_param(e, "RET"));
    assert_int_equal(e->size, 4711);
    assert_int_equal(e->nrcpts, 4);
    const ph_rcpt *r = e->rcpts;
    assert_string_equal(r[0].addr, "bob@example.net");
    assert_int_equal(r[0].state, PH_RCPT_PENDING);
    assert_null(r[0].last_error);
    assert_int_equal(r[1].state, PH_RCPT_DEFERRED);
    assert_int_equal(r[1].next_try, 1795480600);
    assert_int_equal(r[1].attempts, 2);
    assert_string_equal(r[1].last_error, "451 4.7.1 Greylisted");
    assert_int_equal(r[2].state, PH_RCPT_DELIVERED);
    assert_int_equal(r[2].done_at, 1795480100);
    assert_int_equal(r[3].state, PH_RCPT_FAILED);
    assert_int_equal(r[3].attempts, 0);
    assert_string_equal(r[3].last_error, "550 5.1.1 No such user");
    assert_false(ph_envelope_all_done(e));
    assert_int_equal(ph_envelope_next_due(e), 0);
    ph_envelope_free(e);
    free(buf);

    buf = seal(valid_cases[5].body, &len);
    e = parse_ok("escaped error", buf, len);
    assert_string_equal(e->rcpts[1].last_error,
                        "451 line1\r\nrcpt <evil@x> delivered at=1\n% 100% € caf\xC3 \xC2\x85 x");
    ph_envelope_free(e);
    free(buf);
}

/* --- invalid files, each with its exact reason ----------------------------------------------- */

typedef struct invalid_case {
    const char *name;
    const char *body;
    bool raw;          /* true: body is the whole file; false: an end line is appended */
    const char *error; /* the exact message */
} invalid_case;

#define BAD(n, body, err) {n, body, false, err}
#define RAW(n, body, err) {n, body, true, err}
#define RCPT_BAD(n, line, err) BAD(n, HDR MIN_TAIL line "\n", "line 9: " err)
#define HELO_BAD(n, value, err) BAD(n, HDR "helo " value "\n" MIN_TAIL, "line 5: " err)
#define CSUM_MINIMAL "552778e11ce5d1ee" /* ph_envelope_checksum of MINIMAL, checked below */

static const invalid_case invalid_cases[] = {
    /* the frame: magic, version, end line, checksum */
    RAW("empty file", "", "line 1: not a posthorn envelope: \"\""),
    RAW("other file", "From alice\n", "line 1: not a posthorn envelope: \"From alice\""),
    RAW("version 2", "posthorn-envelope 2\nend 0000000000000000\n",
        "line 1: unsupported envelope version (this is version 1): \"posthorn-envelope 2\""),
    RAW("version 10", "posthorn-envelope 10\n",
        "line 1: unsupported envelope version (this is version 1): \"posthorn-envelope 10\""),
    RAW("magic with CR", "posthorn-envelope 1\r\n",
        "line 1: unsupported envelope version (this is version 1): "
        "\"posthorn-envelope 1%0D\""),
    RAW("magic only", "posthorn-envelope 1\n",
        "line 1: missing end line (truncated file?): \"posthorn-envelope 1\""),
    RAW("magic unterminated", "posthorn-envelope 1",
        "line 1: missing end line (truncated file?): \"posthorn-envelope 1\""),
    RAW("no end line", MINIMAL,
        "line 8: missing end line (truncated file?): \"rcpt <a@b.example> pending\""),
    RAW("end unterminated", MINIMAL "end " CSUM_MINIMAL,
        "line 9: missing end line (truncated file?): \"end " CSUM_MINIMAL "\""),
    RAW("torn end line", MINIMAL "end 5527",
        "line 9: missing end line (truncated file?): \"end 5527\""),
    RAW("data after end", MINIMAL "end " CSUM_MINIMAL "\nx\n",
        "line 10: missing end line (truncated file?): \"x\""),
    RAW("end with CRLF", MINIMAL "end " CSUM_MINIMAL "\r\n",
        "line 9: malformed end line (want: end <16 lowercase hex digits>): \"end "
        CSUM_MINIMAL "%0D\""),
    RAW("end uppercase", MINIMAL "end 552778E11CE5D1EE\n",
        "line 9: malformed end line (want: end <16 lowercase hex digits>): "
        "\"end 552778E11CE5D1EE\""),
    RAW("end short", MINIMAL "end 52778e11ce5d1ee\n",
        "line 9: malformed end line (want: end <16 lowercase hex digits>): "
        "\"end 52778e11ce5d1ee\""),
    RAW("end no checksum", MINIMAL "end\n",
        "line 9: missing end line (truncated file?): \"end\""),
    RAW("checksum mismatch", MINIMAL "end 0123456789abcdef\n",
        "line 9: checksum mismatch (computed " CSUM_MINIMAL "): \"end 0123456789abcdef\""),
    RAW("changed byte", HDR "protocol ESMTP\nfrom <>\nsize 1\nrcpt <a@b.example> pending\n"
                        "end " CSUM_MINIMAL "\n",
        "line 9: checksum mismatch (computed 0681c09ed6decc59): \"end " CSUM_MINIMAL "\""),
    /* field order, presence, duplicates */
    BAD("missing id", "posthorn-envelope 1\nreceived 1\nclient x\n" MIN_TAIL,
        "line 2: missing required field 'id': \"received 1\""),
    BAD("duplicate id", "posthorn-envelope 1\nid A\nid B\n",
        "line 3: duplicate field 'id': \"id B\""),
    BAD("duplicate helo", HDR "helo a\nhelo b\n", "line 6: duplicate field 'helo': \"helo b\""),
    BAD("missing client", "posthorn-envelope 1\nid A\nreceived 1\nhelo h\n",
        "line 4: missing required field 'client': \"helo h\""),
    BAD("out of order", HDR "protocol ESMTP\nhelo h\n",
        "line 6: field 'helo' out of order (must come before 'protocol'): \"helo h\""),
    BAD("size after rcpt", HDR MIN_TAIL "size 1\n",
        "line 9: duplicate field 'size': \"size 1\""),
    BAD("param after rcpt", HDR MIN_TAIL "param X\n",
        "line 9: field 'param' out of order (must come before 'rcpt'): \"param X\""),
    BAD("no recipients", HDR "protocol ESMTP\nfrom <>\nsize 0\n",
        "line 8: missing required field 'rcpt': \"end bbca5c5b29f4a865\""),
    BAD("no size", HDR "protocol ESMTP\nfrom <>\nrcpt <a@b> pending\n",
        "line 7: missing required field 'size': \"rcpt <a@b> pending\""),
    BAD("unknown field", HDR "colour blue\n", "line 5: unknown field: \"colour blue\""),
    BAD("capitalised field", HDR "Helo h\n", "line 5: unknown field: \"Helo h\""),
    BAD("early end line", HDR "end 0000000000000000\n" MIN_TAIL,
        "line 5: end line before the last line: \"end 0000000000000000\""),
    BAD("empty line", HDR "\n" MIN_TAIL, "line 5: empty line: \"\""),
    BAD("field without value", HDR "helo\n",
        "line 5: field 'helo' without a value: \"helo\""),
    BAD("field with empty value", HDR "helo \n",
        "line 5: field 'helo' without a value: \"helo \""),
    BAD("double space", HDR "helo  h\n", "line 5: unescaped space: \"helo  h\""),
    BAD("leading space", HDR " helo h\n", "line 5: unknown field: \" helo h\""),
    /* values */
    BAD("bad id", "posthorn-envelope 1\nid ../x\n",
        "line 2: bad queue id (want 1-64 of A-Z a-z 0-9 - _): \"id ../x\""),
    BAD("long id", "posthorn-envelope 1\nid "
                   "12345678901234567890123456789012345678901234567890123456789012345\n",
        "line 2: bad queue id (want 1-64 of A-Z a-z 0-9 - _): \"id "
        "123456789012345678901234567890123456789012345678901234567...\""),
    BAD("leading zero", "posthorn-envelope 1\nid A\nreceived 01\n",
        "line 3: bad number: \"received 01\""),
    BAD("negative time", "posthorn-envelope 1\nid A\nreceived -1\n",
        "line 3: bad number: \"received -1\""),
    BAD("time overflow", "posthorn-envelope 1\nid A\nreceived 9223372036854775808\n",
        "line 3: bad number: \"received 9223372036854775808\""),
    BAD("trailing junk", "posthorn-envelope 1\nid A\nreceived 12a\n",
        "line 3: bad number: \"received 12a\""),
    BAD("size plus", HDR "protocol ESMTP\nfrom <>\nsize +1\n", "line 7: bad number: \"size +1\""),
    HELO_BAD("tab", "a\tb", "unescaped control byte 0x09: \"helo a%09b\""),
    HELO_BAD("CR", "a\r", "unescaped control byte 0x0D: \"helo a%0D\""),
    HELO_BAD("DEL", "a\x7f", "unescaped control byte 0x7F: \"helo a%7F\""),
    HELO_BAD("space", "a b", "unescaped space: \"helo a b\""),
    HELO_BAD("bad escape", "a%zz", "bad escape (want %XX, uppercase hex): \"helo a%25zz\""),
    HELO_BAD("short escape", "a%2", "bad escape (want %XX, uppercase hex): \"helo a%252\""),
    HELO_BAD("lowercase escape", "a%0a",
             "bad escape (want %XX, uppercase hex): \"helo a%250a\""),
    HELO_BAD("escaped NUL", "a%00", "escaped NUL byte: \"helo a%2500\""),
    HELO_BAD("needless escape", "a%41",
             "not canonically escaped (raw invalid UTF-8 or C1 control, or a needless "
             "escape): \"helo a%2541\""),
    HELO_BAD("raw invalid UTF-8", "caf\xe9",
             "not canonically escaped (raw invalid UTF-8 or C1 control, or a needless "
             "escape): \"helo caf%E9\""),
    HELO_BAD("raw C1", "a\xc2\x85",
             "not canonically escaped (raw invalid UTF-8 or C1 control, or a needless "
             "escape): \"helo a%C2%85\""),
    HELO_BAD("overlong UTF-8", "\xc0\xaf",
             "not canonically escaped (raw invalid UTF-8 or C1 control, or a needless "
             "escape): \"helo %C0%AF\""),
    HELO_BAD("surrogate", "\xed\xa0\x80",
             "not canonically escaped (raw invalid UTF-8 or C1 control, or a needless "
             "escape): \"helo %ED%A0%80\""),
    BAD("from without brackets", HDR "protocol ESMTP\nfrom a@b\n",
        "line 6: malformed path (want <address>): \"from a@b\""),
    BAD("from with params", HDR "protocol ESMTP\nfrom <a@b> SIZE=1\n",
        "line 6: malformed path (want <address>): \"from <a@b> SIZE=1\""),
    BAD("tls one token", HDR "protocol ESMTP\ntls TLSv1.3\n",
        "line 6: malformed tls line (want: tls VERSION CIPHER): \"tls TLSv1.3\""),
    BAD("tls three tokens", HDR "protocol ESMTP\ntls a b c\n",
        "line 6: malformed tls line (want: tls VERSION CIPHER): \"tls a b c\""),
    BAD("tls trailing space", HDR "protocol ESMTP\ntls a b \n",
        "line 6: malformed tls line (want: tls VERSION CIPHER): \"tls a b \""),
    BAD("param keyword", HDR "protocol ESMTP\nfrom <>\nparam =x\n",
        "line 7: bad ESMTP parameter keyword: \"param =x\""),
    BAD("param dash", HDR "protocol ESMTP\nfrom <>\nparam -X\n",
        "line 7: bad ESMTP parameter keyword: \"param -X\""),
    BAD("param duplicate", HDR "protocol ESMTP\nfrom <>\nparam SIZE=1\nparam size=2\n",
        "line 8: duplicate parameter: \"param size=2\""),
    /* recipients */
    RCPT_BAD("empty address", "rcpt <> pending", "empty recipient address: \"rcpt <> pending\""),
    RCPT_BAD("no brackets", "rcpt c@d pending",
             "malformed path (want <address>): \"rcpt c@d pending\""),
    RCPT_BAD("no state", "rcpt <c@d>",
             "unknown recipient state (want pending, deferred, delivered or failed): "
             "\"rcpt <c@d>\""),
    RCPT_BAD("unknown state", "rcpt <c@d> sent",
             "unknown recipient state (want pending, deferred, delivered or failed): "
             "\"rcpt <c@d> sent\""),
    RCPT_BAD("trailing space", "rcpt <c@d> pending ", "trailing space: \"rcpt <c@d> pending \""),
    RCPT_BAD("trailing space after key", "rcpt <c@d> pending attempts=1 ",
             "trailing space: \"rcpt <c@d> pending attempts=1 \""),
    RCPT_BAD("deferred without next", "rcpt <c@d> deferred attempts=1",
             "state 'deferred' needs key 'next': \"rcpt <c@d> deferred attempts=1\""),
    RCPT_BAD("delivered without at", "rcpt <c@d> delivered",
             "state 'delivered' needs key 'at': \"rcpt <c@d> delivered\""),
    RCPT_BAD("next when pending", "rcpt <c@d> pending next=5",
             "key 'next' is not allowed in state 'pending': \"rcpt <c@d> pending next=5\""),
    RCPT_BAD("at when deferred", "rcpt <c@d> deferred next=1 at=5",
             "key 'at' is not allowed in state 'deferred': \"rcpt <c@d> deferred next=1 at=5\""),
    RCPT_BAD("keys out of order", "rcpt <c@d> failed attempts=1 at=5",
             "unknown, repeated or misplaced recipient key (order: next= at= attempts= "
             "error=): \"rcpt <c@d> failed attempts=1 at=5\""),
    RCPT_BAD("key repeated", "rcpt <c@d> pending attempts=1 attempts=2",
             "unknown, repeated or misplaced recipient key (order: next= at= attempts= "
             "error=): \"rcpt <c@d> pending attempts=1 attempts=2\""),
    RCPT_BAD("unknown key", "rcpt <c@d> pending retries=1",
             "unknown, repeated or misplaced recipient key (order: next= at= attempts= "
             "error=): \"rcpt <c@d> pending retries=1\""),
    RCPT_BAD("double space before key", "rcpt <c@d> pending  attempts=1",
             "unknown, repeated or misplaced recipient key (order: next= at= attempts= "
             "error=): \"rcpt <c@d> pending  attempts=1\""),
    RCPT_BAD("attempts zero", "rcpt <c@d> pending attempts=0",
             "bad value for recipient key 'attempts': \"rcpt <c@d> pending attempts=0\""),
    RCPT_BAD("attempts overflow", "rcpt <c@d> pending attempts=4294967296",
             "bad value for recipient key 'attempts': "
             "\"rcpt <c@d> pending attempts=4294967296\""),
    RCPT_BAD("next empty", "rcpt <c@d> deferred next=",
             "bad value for recipient key 'next': \"rcpt <c@d> deferred next=\""),
    RCPT_BAD("error with LF escaped wrong", "rcpt <c@d> failed at=1 error=a\tb",
             "unescaped control byte 0x09: \"rcpt <c@d> failed at=1 error=a%09b\""),
    RCPT_BAD("error needless escape", "rcpt <c@d> failed at=1 error=a%20b",
             "not canonically escaped (raw invalid UTF-8 or C1 control, or a needless "
             "escape): \"rcpt <c@d> failed at=1 error=a%2520b\""),
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
        const invalid_case *c = &invalid_cases[i];
        size_t len = strlen(c->body);
        char *buf = c->raw ? NULL : seal(c->body, &len);
        char err[512];
        ph_envelope *e = (ph_envelope *)&err; /* must be reset to NULL */
        int rc = ph_envelope_parse(buf ? buf : c->body, len, &e, err, sizeof(err));
        if (rc != -EINVAL || e != NULL)
            fail_msg("case %s: parse gave %d, want -EINVAL", c->name, rc);
        if (strcmp(err, c->error) != 0)
            fail_msg("case %s:\n got: %s\nwant: %s", c->name, err, c->error);
        free(buf);
    }
}

static void test_invalid_checksums(void **state)
{
    (void)state;
    assert_int_equal(ph_envelope_checksum(MINIMAL, strlen(MINIMAL)), 0x552778e11ce5d1eeULL);
    assert_int_equal(ph_envelope_checksum("", 0), 0xcbf29ce484222325ULL); /* FNV-1a basis */
    assert_int_equal(ph_envelope_checksum("a", 1), 0xaf63dc4c8601ec8cULL); /* FNV test vector */
}

/* Lines too long, too many parameters or recipients: built, not tabled. */
static void expect_invalid(const char *name, const char *buf, size_t len, const char *want)
{
    char err[512];
    ph_envelope *e = NULL;
    int rc = ph_envelope_parse(buf, len, &e, err, sizeof(err));
    if (rc != -EINVAL || e != NULL)
        fail_msg("case %s: parse gave %d, want -EINVAL", name, rc);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("case %s:\n got: %s\nwant: %s...", name, err, want);
}

static void test_limits(void **state)
{
    (void)state;
    char *body = malloc(100 + 2 * PH_ENVELOPE_LINE_MAX);
    size_t len;
    /* a helo line of exactly the maximum parses; one byte more does not */
    for (int extra = 0; extra <= 1; extra++) {
        int n = sprintf(body, HDR "helo ");
        memset(body + n, 'h', PH_ENVELOPE_LINE_MAX - 5 + (size_t)extra);
        strcpy(body + n + PH_ENVELOPE_LINE_MAX - 5 + extra, "\n" MIN_TAIL);
        char *buf = seal(body, &len);
        if (extra == 0)
            ph_envelope_free(parse_ok("longest line", buf, len));
        else
            expect_invalid("line too long", buf, len,
                           "line 5: line too long (max 8192 bytes): \"helo hhhh");
        free(buf);
    }
    /* 32 parameters parse, 33 do not */
    strcpy(body, HDR "protocol ESMTP\nfrom <>\n");
    for (int i = 0; i < PH_ENVELOPE_PARAMS_MAX; i++)
        sprintf(body + strlen(body), "param X%d\n", i);
    strcat(body, "size 0\nrcpt <a@b> pending\n");
    char *buf = seal(body, &len);
    ph_envelope_free(parse_ok("32 params", buf, len));
    free(buf);
    strcpy(strstr(body, "size 0"), "param Y\nsize 0\nrcpt <a@b> pending\n");
    buf = seal(body, &len);
    expect_invalid("33 params", buf, len, "line 39: too many parameters: \"param Y\"");
    free(buf);
    free(body);
}

/* --- serialize refuses what would not parse back -------------------------------------------- */

static ph_envelope *make_valid(void)
{
    ph_envelope *e = ph_envelope_new();
    assert_non_null(e);
    assert_int_equal(ph_envelope_set_string(&e->id, "5X5CR29M3ZM2P00"), 0);
    e->received = 1795480000;
    assert_int_equal(ph_envelope_set_string(&e->client, "127.0.0.1"), 0);
    assert_int_equal(ph_envelope_set_string(&e->protocol, "ESMTP"), 0);
    assert_int_equal(ph_envelope_set_string(&e->from, ""), 0);
    assert_int_equal(ph_envelope_add_rcpt(e, "a@b.example"), 0);
    return e;
}

static void no_id(ph_envelope *e) { ph_envelope_set_string(&e->id, NULL); }
static void bad_id(ph_envelope *e) { ph_envelope_set_string(&e->id, "a/b"); }
static void no_client(ph_envelope *e) { ph_envelope_set_string(&e->client, NULL); }
static void empty_client(ph_envelope *e) { ph_envelope_set_string(&e->client, ""); }
static void empty_helo(ph_envelope *e) { ph_envelope_set_string(&e->helo, ""); }
static void no_protocol(ph_envelope *e) { ph_envelope_set_string(&e->protocol, NULL); }
static void no_from(ph_envelope *e) { ph_envelope_set_string(&e->from, NULL); }
static void half_tls(ph_envelope *e) { ph_envelope_set_string(&e->tls_version, "TLSv1.3"); }
static void negative_time(ph_envelope *e) { e->received = -1; }
static void huge_size(ph_envelope *e) { e->size = (uint64_t)INT64_MAX + 1; }
static void no_rcpts(ph_envelope *e)
{
    free(e->rcpts[0].addr);
    e->nrcpts = 0;
}
static void empty_rcpt(ph_envelope *e) { ph_envelope_set_string(&e->rcpts[0].addr, ""); }
static void bad_state(ph_envelope *e) { e->rcpts[0].state = (ph_rcpt_state)7; }
static void negative_next(ph_envelope *e)
{
    e->rcpts[0].state = PH_RCPT_DEFERRED;
    e->rcpts[0].next_try = -5;
}
static void long_helo(ph_envelope *e)
{
    char *h = malloc(PH_ENVELOPE_LINE_MAX);
    memset(h, 'h', PH_ENVELOPE_LINE_MAX - 5);
    h[PH_ENVELOPE_LINE_MAX - 5] = 'x'; /* one over: "helo " + 8188 bytes */
    h[PH_ENVELOPE_LINE_MAX - 4] = '\0';
    free(e->helo);
    e->helo = h;
}
static void long_escaped_error(ph_envelope *e)
{
    char *t = malloc(3000);
    memset(t, '\n', 2999); /* each escapes to 3 bytes: 8997 > 8192 */
    t[2999] = '\0';
    e->rcpts[0].last_error = t;
}
static void duplicate_param(ph_envelope *e)
{
    assert_int_equal(ph_envelope_add_param(e, "SIZE=1"), 0);
    e->params = realloc(e->params, 2 * sizeof(char *));
    e->params[1] = strcpy(malloc(8), "size=2");
    e->nparams = 2;
}

typedef struct refuse_case {
    const char *name;
    void (*mutate)(ph_envelope *e);
} refuse_case;

static const refuse_case refuse_cases[] = {
    {"no id", no_id},
    {"bad id", bad_id},
    {"no client", no_client},
    {"empty client", empty_client},
    {"empty helo", empty_helo},
    {"no protocol", no_protocol},
    {"no from", no_from},
    {"half tls", half_tls},
    {"negative time", negative_time},
    {"huge size", huge_size},
    {"no recipients", no_rcpts},
    {"empty recipient", empty_rcpt},
    {"bad state", bad_state},
    {"negative next", negative_next},
    {"line too long", long_helo},
    {"escaped error too long", long_escaped_error},
    {"duplicate param", duplicate_param},
};

static void test_serialize_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refuse_cases) / sizeof(refuse_cases[0]); i++) {
        ph_envelope *e = make_valid();
        refuse_cases[i].mutate(e);
        char *out = (char *)"x";
        size_t len = 1;
        int rc = ph_envelope_serialize(e, &out, &len);
        if (rc != -EINVAL || out != NULL || len != 0)
            fail_msg("case %s: serialize gave %d, want -EINVAL", refuse_cases[i].name, rc);
        ph_envelope_free(e);
    }
    char *out;
    size_t len;
    assert_int_equal(ph_envelope_serialize(NULL, &out, &len), -EINVAL);
}

/* --- building envelopes through the API ------------------------------------------------------ */

static void test_build(void **state)
{
    (void)state;
    ph_envelope *e = make_valid();
    assert_int_equal(ph_envelope_set_string(&e->helo, "client.example"), 0);
    assert_int_equal(ph_envelope_add_param(e, "BODY=8BITMIME"), 0);
    assert_int_equal(ph_envelope_add_param(e, "SMTPUTF8"), 0);
    assert_int_equal(ph_envelope_add_param(e, "body=7BIT"), -EINVAL);
    assert_int_equal(ph_envelope_add_param(e, "=x"), -EINVAL);
    assert_int_equal(ph_envelope_add_param(e, "A B"), -EINVAL);
    e->size = 4711;
    assert_int_equal(ph_envelope_add_rcpt(e, "c@d"), 0);
    assert_int_equal(ph_envelope_add_rcpt(e, "e@f"), 0);
    assert_int_equal(ph_envelope_add_rcpt(e, ""), -EINVAL);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 1, PH_RCPT_DEFERRED, 1795480600,
                                                "451 4.7.1 Greylisted"), 0);
    e->rcpts[1].attempts = 1;
    assert_int_equal(ph_envelope_rcpt_set_state(e, 2, PH_RCPT_FAILED, 1795480100, "550 no"), 0);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 3, PH_RCPT_PENDING, 0, NULL), -EINVAL);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, (ph_rcpt_state)4, 0, NULL), -EINVAL);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_DELIVERED, -1, NULL), -EINVAL);
    const char *want = HDR "helo client.example\nprotocol ESMTP\nfrom <>\n"
                           "param BODY=8BITMIME\nparam SMTPUTF8\nsize 4711\n"
                           "rcpt <a@b.example> pending\n"
                           "rcpt <c@d> deferred next=1795480600 attempts=1 error=451 4.7.1 "
                           "Greylisted\n"
                           "rcpt <e@f> failed at=1795480100 error=550 no\n";
    size_t len;
    char *buf = seal(want, &len);
    expect_bytes("built", e, buf, len);
    free(buf);
    ph_envelope_free(e);
}

static void test_states(void **state)
{
    (void)state;
    ph_envelope *e = ph_envelope_new();
    assert_true(ph_envelope_all_done(e)); /* no recipients */
    assert_int_equal(ph_envelope_next_due(e), -1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ph_envelope_add_rcpt(e, "x@y"), 0);
    assert_false(ph_envelope_all_done(e));
    assert_int_equal(ph_envelope_next_due(e), 0);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_DEFERRED, 500, "4xx"), 0);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 1, PH_RCPT_DEFERRED, 300, "4xx"), 0);
    assert_int_equal(ph_envelope_next_due(e), 0); /* rcpt 2 still pending */
    assert_int_equal(ph_envelope_rcpt_set_state(e, 2, PH_RCPT_DELIVERED, 100, NULL), 0);
    assert_int_equal(ph_envelope_next_due(e), 300);
    assert_false(ph_envelope_all_done(e));
    assert_int_equal(ph_envelope_rcpt_set_state(e, 1, PH_RCPT_FAILED, 200, "5xx"), 0);
    assert_int_equal(e->rcpts[1].next_try, 0);
    assert_int_equal(e->rcpts[1].done_at, 200);
    assert_string_equal(e->rcpts[1].last_error, "5xx");
    assert_int_equal(ph_envelope_next_due(e), 500);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_DELIVERED, 600, NULL), 0);
    assert_null(e->rcpts[0].last_error);
    assert_true(ph_envelope_all_done(e));
    assert_int_equal(ph_envelope_next_due(e), -1);
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_PENDING, -1, NULL), 0);
    assert_int_equal(e->rcpts[0].done_at, 0);
    assert_false(ph_envelope_all_done(e));
    assert_string_equal(ph_rcpt_state_name(PH_RCPT_DEFERRED), "deferred");
    assert_string_equal(ph_rcpt_state_name((ph_rcpt_state)9), "?");
    ph_envelope_free(e);
    ph_envelope_free(NULL);
}

/* --- hostile error texts --------------------------------------------------------------------- */

typedef struct hostile_case {
    const char *name;
    const char *error;   /* what a remote server said */
    const char *encoded; /* how it must appear after "error=" */
} hostile_case;

static const hostile_case hostile_cases[] = {
    {"CRLF injection", "451 x\r\nrcpt <evil@x> delivered at=1\r\nend 0000000000000000",
     "451 x%0D%0Arcpt <evil@x> delivered at=1%0D%0Aend 0000000000000000"},
    {"bare LF and CR", "a\nb\rc", "a%0Ab%0Dc"},
    {"terminal escape", "\x1b[31mred\x1b[0m", "%1B[31mred%1B[0m"},
    {"C1 CSI", "\xc2\x9b" "31m", "%C2%9B31m"},
    {"percent", "100% sure %41", "100%25 sure %2541"},
    {"latin-1", "caf\xe9 ol\xe9", "caf%E9 ol%E9"},
    {"utf-8 kept", "Zustellung fehlgeschlagen: Postfach voll ✉ 𝄞", NULL},
    {"truncated UTF-8", "\xe2\x82", "%E2%82"},
    {"DEL and tab", "\x7f\t", "%7F%09"},
    {"spaces kept", "  a  b  ", NULL},
};

static void test_hostile_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hostile_cases) / sizeof(hostile_cases[0]); i++) {
        const hostile_case *c = &hostile_cases[i];
        ph_envelope *e = make_valid();
        assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_FAILED, 7, c->error), 0);
        char *out;
        size_t len;
        assert_int_equal(ph_envelope_serialize(e, &out, &len), 0);
        char want[512];
        snprintf(want, sizeof(want), "\nrcpt <a@b.example> failed at=7 error=%s\nend ",
                 c->encoded ? c->encoded : c->error);
        if (strstr(out, want) == NULL)
            fail_msg("case %s: not found:\n%s\nin:\n%s", c->name, want, out);
        size_t lines = 0;
        for (size_t k = 0; k < len; k++)
            lines += out[k] == '\n';
        if (lines != 9)
            fail_msg("case %s: %zu lines, want 9", c->name, lines);
        ph_envelope *back = parse_ok(c->name, out, len);
        assert_string_equal(back->rcpts[0].last_error, c->error);
        ph_envelope_free(back);
        ph_envelope_free(e);
        free(out);
    }
}

/* Every byte but NUL, in every string field, comes back unchanged. */
static void test_all_bytes(void **state)
{
    (void)state;
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    ph_envelope *e = make_valid();
    char **slots[] = {&e->client, &e->helo, &e->protocol, &e->auth, &e->tls_version,
                      &e->tls_cipher, &e->from, &e->rcpts[0].addr, &e->rcpts[0].last_error};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
        assert_int_equal(ph_envelope_set_string(slots[i], all), 0);
    char param[300] = "ENVID=";
    strcat(param, all);
    assert_int_equal(ph_envelope_add_param(e, param), 0);
    char *out;
    size_t len;
    assert_int_equal(ph_envelope_serialize(e, &out, &len), 0);
    for (size_t k = 0; k < len; k++)
        assert_true((unsigned char)out[k] >= 0x20 || out[k] == '\n');
    ph_envelope *back = parse_ok("all bytes", out, len);
    assert_string_equal(back->client, all);
    assert_string_equal(back->tls_cipher, all);
    assert_string_equal(back->from, all);
    assert_string_equal(back->rcpts[0].addr, all);
    assert_string_equal(back->rcpts[0].last_error, all);
    assert_string_equal(ph_envelope_param(back, "envid"), all);
    expect_bytes("all bytes again", back, out, len);
    ph_envelope_free(back);
    ph_envelope_free(e);
    free(out);
}

static void test_error_truncation(void **state)
{
    (void)state;
    char long_err[PH_ENVELOPE_ERROR_MAX + 10];
    memset(long_err, 'a', sizeof(long_err));
    memcpy(long_err + PH_ENVELOPE_ERROR_MAX - 2, "€", 3); /* straddles the cut */
    long_err[sizeof(long_err) - 1] = '\0';
    ph_envelope *e = make_valid();
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_DEFERRED, 1, long_err), 0);
    assert_int_equal(strlen(e->rcpts[0].last_error), PH_ENVELOPE_ERROR_MAX - 2);
    long_err[PH_ENVELOPE_ERROR_MAX] = '\0';
    assert_int_equal(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_DEFERRED, 1, long_err), 0);
    assert_string_equal(e->rcpts[0].last_error, long_err); /* exactly the maximum */
    ph_envelope_free(e);
}

/* --- damage: every truncation and every bit flip of a valid file is caught -------------------- */

static void test_damage(void **state)
{
    (void)state;
    size_t len;
    char *buf = seal(valid_cases[1].body, &len);
    char err[256];
    ph_envelope *e;
    for (size_t n = 0; n < len; n++) {
        if (ph_envelope_parse(buf, n, &e, err, sizeof(err)) != -EINVAL)
            fail_msg("truncation to %zu bytes parsed", n);
    }
    for (size_t k = 0; k < len; k++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[k] ^= (char)(1 << bit);
            if (ph_envelope_parse(buf, len, &e, err, sizeof(err)) != -EINVAL)
                fail_msg("flip of bit %d at byte %zu parsed", bit, k);
            buf[k] ^= (char)(1 << bit);
        }
    }
    assert_int_equal(ph_envelope_parse(NULL, 0, &e, err, sizeof(err)), -EINVAL);
    assert_int_equal(ph_envelope_parse(buf, len, &e, NULL, 0), 0); /* no error buffer needed */
    ph_envelope_free(e);
    assert_int_equal(ph_envelope_parse(buf, len, NULL, err, sizeof(err)), -EINVAL);
    free(buf);
}

/* --- big recipient lists --------------------------------------------------------------------- */

static void test_many_recipients(void **state)
{
    (void)state;
    ph_envelope *e = make_valid();
    char addr[64];
    for (int i = 1; i < PH_ENVELOPE_RCPTS_MAX; i++) {
        snprintf(addr, sizeof(addr), "user%d@example.net", i);
        assert_int_equal(ph_envelope_add_rcpt(e, addr), 0);
        if (i % 3 == 0)
            ph_envelope_rcpt_set_state(e, (size_t)i, PH_RCPT_DELIVERED, i, NULL);
    }
    assert_int_equal(ph_envelope_add_rcpt(e, "one@too.many"), -EINVAL);
    assert_int_equal(e->nrcpts, PH_ENVELOPE_RCPTS_MAX);
    char *out;
    size_t len;
    assert_int_equal(ph_envelope_serialize(e, &out, &len), 0);
    ph_envelope *back = parse_ok("100000 recipients", out, len);
    assert_int_equal(back->nrcpts, PH_ENVELOPE_RCPTS_MAX);
    assert_string_equal(back->rcpts[99999].addr, "user99999@example.net");
    assert_int_equal(back->rcpts[99999].done_at, 99999);
    expect_bytes("100000 recipients", back, out, len);
    ph_envelope_free(back);

    /* one more recipient line (re-sealed) is refused with its line number */
    size_t body = len - 21; /* without "end <16 hex>\n" */
    char *more = malloc(body + 64);
    memcpy(more, out, body);
    int k = sprintf(more + body, "rcpt <x@y> pending\n");
    char *sealed = seal_n(more, body + (size_t)k, &len);
    expect_invalid("100001 recipients", sealed, len,
                   "line 100008: too many recipients (max 100000): \"rcpt <x@y> pending\"");
    free(sealed);
    free(more);
    free(out);
    ph_envelope_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_parsed_values),
        cmocka_unit_test(test_invalid),          cmocka_unit_test(test_invalid_checksums),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_serialize_refuses),
        cmocka_unit_test(test_build),            cmocka_unit_test(test_states),
        cmocka_unit_test(test_hostile_errors),   cmocka_unit_test(test_all_bytes),
        cmocka_unit_test(test_error_truncation), cmocka_unit_test(test_damage),
        cmocka_unit_test(test_many_recipients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
