/*
 * test_dotstuff.c - unit tests for src/proto/dotstuff.c, the chunked dot-stuffer of the SMTP
 * and LMTP clients: fixed cases, each fed whole, cut once and twice at every position, and
 * byte by byte (the output must not depend on chunk boundaries), the worst case for the output
 * bound, and empty chunks. Owns nothing beyond its stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/dotstuff.h"

typedef struct stuff_case {
    const char *in;
    const char *out; /* including the terminator */
} stuff_case;

static const stuff_case stuff_cases[] = {
    {"", ".\r\n"},
    {".", "..\r\n.\r\n"},
    {"..", "...\r\n.\r\n"},
    {".\r\n", "..\r\n.\r\n"},
    {"..\r\n", "...\r\n.\r\n"},
    {"a\r\n.\r\n", "a\r\n..\r\n.\r\n"},
    {"a\r\n.leading\r\nb.c\r\n..two\r\n", "a\r\n..leading\r\nb.c\r\n...two\r\n.\r\n"},
    {"no final crlf", "no final crlf\r\n.\r\n"},
    {"x\r\n.", "x\r\n..\r\n.\r\n"},
    {"x\r\n\r\n.\r\n\r\n", "x\r\n\r\n..\r\n\r\n.\r\n"},
    {"ends in cr\r", "ends in cr\r\r\n.\r\n"},
    {"ends in lf\n", "ends in lf\n\r\n.\r\n"},
    {"bare lf\n.x\n", "bare lf\n..x\n\r\n.\r\n"},
    {"bare cr\r.x\r\n", "bare cr\r.x\r\n.\r\n"}, /* a CR alone does not start a line */
    {"\r\n", "\r\n.\r\n"},
    {"\r\n.\r\n.\r\n", "\r\n..\r\n..\r\n.\r\n"},
    {"a.\r\n.b.\r\n", "a.\r\n..b.\r\n.\r\n"},
    {"Subject: x\r\n\r\n.\r\n..\r\n...\r\n", "Subject: x\r\n\r\n..\r\n...\r\n....\r\n.\r\n"},
};

/* Stuffs in, split into pieces at the given cut points (sorted, within the input). */
static size_t stuff_pieces(const char *in, const size_t *cuts, size_t ncuts, char *out)
{
    ph_dotstuffer d;
    ph_dotstuff_init(&d);
    size_t len = strlen(in), at = 0, n = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        size_t w = ph_dotstuff(&d, in + at, end - at, out + n);
        assert_true(w <= PH_DOTSTUFF_BOUND(end - at));
        n += w;
        at = end;
    }
    size_t f = ph_dotstuff_finish(&d, out + n);
    assert_true(f <= PH_DOTSTUFF_END_MAX);
    n += f;
    out[n] = '\0';
    return n;
}

static void test_cases(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < sizeof(stuff_cases) / sizeof(stuff_cases[0]); i++) {
        const stuff_case *sc = &stuff_cases[i];
        size_t len = strlen(sc->in);
        stuff_pieces(sc->in, NULL, 0, out);
        if (strcmp(out, sc->out) != 0)
            fail_msg("case %zu whole: got \"%s\"", i, out);
        for (size_t a = 0; a <= len; a++) /* one cut anywhere */
            for (size_t b = a; b <= len; b++) { /* and a second one (a == b: an empty piece) */
                size_t cuts[2] = {a, b};
                stuff_pieces(sc->in, cuts, 2, out);
                if (strcmp(out, sc->out) != 0)
                    fail_msg("case %zu cut at %zu,%zu: got \"%s\"", i, a, b, out);
            }
        size_t cuts[64];
        assert_true(len <= 64);
        for (size_t k = 0; k < len; k++)
            cuts[k] = k + 1;
        stuff_pieces(sc->in, cuts, len, out); /* byte by byte */
        if (strcmp(out, sc->out) != 0)
            fail_msg("case %zu byte by byte: got \"%s\"", i, out);
    }
}

/* The worst case for the bound: every line a lone dot; and a single dot (the one dot that
 * needs no LF before it). */
static void test_bound(void **state)
{
    (void)state;
    char in[3000], out[PH_DOTSTUFF_BOUND(3000) + 8];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (i % 2 == 0) ? '.' : '\n';
    ph_dotstuffer d;
    ph_dotstuff_init(&d);
    size_t n = ph_dotstuff(&d, in, sizeof(in), out);
    assert_int_equal(n, sizeof(in) + sizeof(in) / 2);
    assert_true(n <= PH_DOTSTUFF_BOUND(sizeof(in)));

    ph_dotstuff_init(&d);
    n = ph_dotstuff(&d, ".", 1, out);
    assert_int_equal(n, 2);
    assert_true(n <= PH_DOTSTUFF_BOUND(1));
    assert_memory_equal(out, "..", 2);
}

/* Empty chunks change nothing (no NULL dereference either), and init starts afresh. */
static void test_empty_and_reuse(void **state)
{
    (void)state;
    char out[32];
    ph_dotstuffer d;
    ph_dotstuff_init(&d);
    assert_int_equal(ph_dotstuff(&d, NULL, 0, out), 0);
    assert_int_equal(ph_dotstuff(&d, "a\r\n", 3, out), 3);
    assert_int_equal(ph_dotstuff(&d, NULL, 0, out), 0);
    assert_int_equal(ph_dotstuff_finish(&d, out), 3); /* ended in CRLF: just ".\r\n" */
    assert_memory_equal(out, ".\r\n", 3);
    ph_dotstuff_init(&d);
    assert_int_equal(ph_dotstuff(&d, ".x", 2, out), 3);
    assert_memory_equal(out, "..x", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_empty_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
