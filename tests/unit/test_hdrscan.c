/*
 * test_hdrscan.c - unit tests for src/proto/hdrscan.c, the streaming Received: counter used for
 * mail-loop detection. Table-driven: each case is a message with the counts, end state and
 * header size expected; every case is fed whole, byte by byte, split in two at every point and
 * in three at every pair of points, and must give the same answer each time. Then: 150
 * Received: fields in random chunks, input after the end is ignored, and a long body costs one
 * call. Failures name the case and the split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/hdrscan.h"

typedef struct scan_case {
    const char *name;
    const char *msg;
    uint64_t received;
    uint64_t fields;
    bool done;
    long header_bytes; /* -1: the whole input */
} scan_case;

static const scan_case cases[] = {
    {"basic", "Received: from a\r\nReceived: from b\r\nSubject: x\r\n\r\nbody\r\n"
              "Received: in the body\r\n", 2, 3, true, 50},
    {"case-insensitive", "rEcEiVeD: x\r\nRECEIVED: y\r\nreceived: z\r\n\r\n", 3, 3, true, -1},
    {"folded values are not fields", "Received: from a\r\n\tby b\r\n Received: x\r\n"
                                     "Received: c\r\n\r\n", 2, 2, true, -1},
    {"other names", "Received-SPF: pass\r\nX-Received: by x\r\nReceivedX: y\r\nReceive: z\r\n"
                    "XReceived: w\r\nReceivedreceived: v\r\n\r\n", 0, 6, true, -1},
    {"space before colon", "Received : x\r\nReceived\t \t: y\r\n\r\n", 2, 2, true, -1},
    {"no separator", "Received: a\r\nReceived: b\r\n", 2, 2, false, -1},
    {"non-field line starts the body", "Received: a\r\nthis is body\r\nReceived: b\r\n", 1, 1,
     true, 13},
    {"name then space then text", "Received: a\r\nReceived x: b\r\n", 1, 1, true, 13},
    {"empty message", "", 0, 0, false, -1},
    {"starts with the empty line", "\r\nReceived: x\r\n", 0, 0, true, 2},
    {"continuation of nothing", " Received: x\r\n", 0, 0, true, 0},
    {"colon first", ":x\r\nReceived: y\r\n", 0, 0, true, 0},
    {"name without colon", "Received\r\nReceived: x\r\n", 0, 0, true, 0},
    {"bare LF is not a line end", "Subject: a\nReceived: b\r\n\r\n", 0, 1, true, -1},
    {"bare CR is not a line end", "Subject: a\rReceived: b\r\n\r\n", 0, 1, true, -1},
    {"CR CR LF ends the line", "Received: a\r\r\nReceived: b\r\n\r\n", 2, 2, true, -1},
    {"bare CR starting a line", "Received: a\r\n\rx\r\nReceived: b\r\n", 1, 1, true, 13},
    {"CR CR LF as a line", "Received: a\r\n\r\r\nReceived: b\r\n", 1, 1, true, 13},
    {"empty value", "Received:\r\n\r\n", 1, 1, true, -1},
    {"non-ASCII name", "R\xc3\xa9" "ceived: x\r\nReceived: y\r\n", 0, 0, true, 0},
    {"control byte in name", "Rece\x01ived: x\r\n", 0, 0, true, 0},
    {"unfinished name at the end", "Received: a\r\nReceiv", 1, 1, false, -1},
    {"unfinished CR at the end", "Received: a\r\n\r", 1, 1, false, -1},
    {"empty line after continuation", "Received: a\r\n b\r\n\r\nReceived: c\r\n", 1, 1, true,
     19},
};

typedef struct result {
    uint64_t received, fields, header_bytes;
    bool done;
} result;

/* Feeds msg cut at the given points (ascending offsets; each piece in its own heap copy so
 * ASan catches any read past a piece). */
static result scan_split(const char *msg, size_t len, const size_t *cuts, size_t ncuts)
{
    ph_hdrscan s;
    ph_hdrscan_init(&s);
    size_t from = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        char *piece = malloc(to - from + 1);
        assert_non_null(piece);
        memcpy(piece, msg + from, to - from);
        bool done = ph_hdrscan_feed(&s, piece, to - from);
        free(piece);
        assert_true(done == s.done);
        assert_true(done == ph_hdrscan_done(&s));
        from = to;
    }
    return (result){s.received, s.fields, s.header_bytes, s.done};
}

static void expect(const scan_case *c, result r, const char *how)
{
    size_t len = strlen(c->msg);
    uint64_t want_hb = c->header_bytes < 0 ? len : (uint64_t)c->header_bytes;
    if (r.received != c->received || r.fields != c->fields || r.done != c->done ||
        r.header_bytes != want_hb)
        fail_msg("%s (%s): received %llu/%llu fields %llu/%llu done %d/%d header_bytes "
                 "%llu/%llu",
                 c->name, how, (unsigned long long)r.received,
                 (unsigned long long)c->received, (unsigned long long)r.fields,
                 (unsigned long long)c->fields, r.done, c->done,
                 (unsigned long long)r.header_bytes, (unsigned long long)want_hb);
}

static void test_cases_whole_and_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const scan_case *c = &cases[i];
        size_t len = strlen(c->msg);
        expect(c, scan_split(c->msg, len, NULL, 0), "whole");
        size_t *cuts = malloc((len + 1) * sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t k = 0; k < len; k++)
            cuts[k] = k + 1;
        expect(c, scan_split(c->msg, len, cuts, len ? len - 1 : 0), "byte by byte");
        free(cuts);
    }
}

static void test_cases_every_split(void **state)
{
    (void)state;
    char how[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const scan_case *c = &cases[i];
        size_t len = strlen(c->msg);
        for (size_t a = 0; a <= len; a++) {
            snprintf(how, sizeof(how), "split at %zu", a);
            expect(c, scan_split(c->msg, len, (size_t[]){a}, 1), how);
            for (size_t b = a; b <= len; b++) {
                snprintf(how, sizeof(how), "split at %zu and %zu", a, b);
                expect(c, scan_split(c->msg, len, (size_t[]){a, b}, 2), how);
            }
        }
    }
}

/* 150 Received: fields (a loop long past any limit), folded like real ones, in random chunks. */
static void test_150_received(void **state)
{
    (void)state;
    size_t cap = 150 * 100 + 200, len = 0;
    char *msg = malloc(cap);
    assert_non_null(msg);
    for (int i = 0; i < 150; i++)
        len += (size_t)snprintf(msg + len, cap - len,
                                "%s: from hop%d.example\r\n\tby hop%d.example; date\r\n",
                                i % 2 ? "Received" : "received", i, i + 1);
    len += (size_t)snprintf(msg + len, cap - len, "Subject: loop\r\n\r\nReceived: body\r\n");
    size_t header_len = len - strlen("Received: body\r\n");

    srand(12345);
    for (int round = 0; round < 200; round++) {
        size_t cuts[64], n = 0, at = 0;
        while (n < 64) {
            at += (size_t)(rand() % 300);
            if (at >= len)
                break;
            cuts[n++] = at;
        }
        result r = scan_split(msg, len, cuts, n);
        assert_int_equal(r.received, 150);
        assert_int_equal(r.fields, 151);
        assert_true(r.done);
        assert_int_equal(r.header_bytes, header_len);
    }
    free(msg);
}

/* Once the header section is over, more input changes nothing, even more Received: fields. */
static void test_input_after_end_ignored(void **state)
{
    (void)state;
    ph_hdrscan s;
    ph_hdrscan_init(&s);
    static const char head[] = "Received: a\r\n\r\n";
    assert_true(ph_hdrscan_feed(&s, head, strlen(head)));
    static const char more[] = "Received: b\r\nReceived: c\r\n\r\n";
    for (int i = 0; i < 10; i++)
        assert_true(ph_hdrscan_feed(&s, more, strlen(more)));
    assert_int_equal(s.received, 1);
    assert_int_equal(s.header_bytes, strlen(head));
    assert_true(ph_hdrscan_feed(&s, NULL, 0));
}

/* A long value without CR costs one memchr per chunk, and a 4 MiB body after the header section
 * is never read: the result is the same as without it. */
static void test_long_value_and_body(void **state)
{
    (void)state;
    size_t big = 4u << 20;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, 'x', big);
    ph_hdrscan s;
    ph_hdrscan_init(&s);
    assert_false(ph_hdrscan_feed(&s, "Received: ", 10));
    assert_false(ph_hdrscan_feed(&s, buf, big)); /* one huge value */
    assert_true(ph_hdrscan_feed(&s, "\r\n\r\n", 4));
    assert_true(ph_hdrscan_done(&s));
    assert_int_equal(s.received, 1);
    assert_int_equal(s.header_bytes, 10 + big + 4);
    memcpy(buf, "Received: z\r\n", 13);
    assert_true(ph_hdrscan_feed(&s, buf, big));
    assert_int_equal(s.received, 1);
    free(buf);
}

/* init resets everything, so one ph_hdrscan can serve the next message. */
static void test_reinit(void **state)
{
    (void)state;
    ph_hdrscan s;
    ph_hdrscan_init(&s);
    ph_hdrscan_feed(&s, "Received: a\r\n\r\n", 15);
    assert_true(s.done);
    ph_hdrscan_init(&s);
    assert_false(s.done);
    assert_int_equal(s.received, 0);
    assert_int_equal(s.header_bytes, 0);
    ph_hdrscan_feed(&s, "Received: a\r\nReceived: b\r\n", 26);
    assert_int_equal(s.received, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_whole_and_bytewise),
        cmocka_unit_test(test_cases_every_split),
        cmocka_unit_test(test_150_received),
        cmocka_unit_test(test_input_after_end_ignored),
        cmocka_unit_test(test_long_value_and_body),
        cmocka_unit_test(test_reinit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
