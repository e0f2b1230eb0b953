/*
 * test_base64.c - unit tests for src/proto/base64.c: the RFC 4648 section 10 vectors both ways,
 * round trips of every length and byte value, every character outside the alphabet, every bad
 * padding and non-canonical trailing-bit form, whitespace, the other (URL-safe) alphabet, and
 * the exact output capacities. Table-driven; failures name the case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/base64.h"

#define LIT(s) s, sizeof(s) - 1

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

typedef struct vec {
    const char *data;
    size_t len;
    const char *b64;
} vec;

static const vec vectors[] = {
    /* RFC 4648 10 */
    {LIT(""), ""},
    {LIT("f"), "Zg=="},
    {LIT("fo"), "Zm8="},
    {LIT("foo"), "Zm9v"},
    {LIT("foob"), "Zm9vYg=="},
    {LIT("fooba"), "Zm9vYmE="},
    {LIT("foobar"), "Zm9vYmFy"},
    /* SASL: the PLAIN message of RFC 4616 4 and the LOGIN prompts */
    {LIT("\0tim\0tanstaaftanstaaf"), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"},
    {LIT("Ursel\0Kurt\0xipj3plmq"), "VXJzZWwAS3VydAB4aXBqM3BsbXE="},
    {LIT("Username:"), "VXNlcm5hbWU6"},
    {LIT("Password:"), "UGFzc3dvcmQ6"},
    /* binary: every 6-bit value at the edges of the alphabet */
    {LIT("\0\0\0"), "AAAA"},
    {LIT("\xff\xff\xff"), "////"},
    {LIT("\xfb\xef\xbe"), "++++"},
    {LIT("\xff"), "/w=="},
    {LIT("\xff\xff"), "//8="},
    {LIT("\0"), "AA=="},
    {LIT("\0\0"), "AAA="},
    {LIT("caf\xc3\xa9"), "Y2Fmw6k="},
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vec *v = &vectors[i];
        char enc[64];
        unsigned char dec[64];
        long n = base64_encode(v->data, v->len, enc, sizeof enc);
        if (n != (long)strlen(v->b64) || strcmp(enc, v->b64) != 0)
            fail_msg("vector %zu: encoded '%s', want '%s'", i, enc, v->b64);
        n = base64_decode(v->b64, strlen(v->b64), dec, sizeof dec);
        if (n != (long)v->len || memcmp(dec, v->data, v->len) != 0)
            fail_msg("vector %zu: '%s' decoded to %ld octets", i, v->b64, n);
    }
}

/* Every length 0..300 of varied bytes survives encode + decode, and lengths match the macros. */
static void test_round_trip(void **state)
{
    (void)state;
    unsigned char data[300], back[300];
    char enc[BASE64_ENCODED_LEN(300) + 1];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (unsigned char)(seed >> 16);
    }
    for (size_t len = 0; len <= sizeof data; len++) {
        long n = base64_encode(data, len, enc, sizeof enc);
        assert_int_equal(n, BASE64_ENCODED_LEN(len));
        assert_int_equal(enc[n], '\0');
        long m = base64_decode(enc, (size_t)n, back, sizeof back);
        if (m != (long)len || memcmp(back, data, len) != 0)
            fail_msg("round trip of %zu octets failed (%ld)", len, m);
        assert_true((size_t)m <= BASE64_DECODED_MAX((size_t)n));
    }
    /* all 256 byte values in one text */
    for (size_t i = 0; i < 256; i++)
        data[i] = (unsigned char)i;
    long n = base64_encode(data, 256, enc, sizeof enc);
    assert_int_equal(base64_decode(enc, (size_t)n, back, sizeof back), 256);
    assert_memory_equal(back, data, 256);
}

/* Each of the 256 octets in every position of a 4-character group: valid only if in the
 * alphabet (and '=' only as padding, where the group allows it). */
static void test_every_character(void **state)
{
    (void)state;
    unsigned char out[4];
    for (int c = 0; c < 256; c++) {
        bool in_alpha = c != 0 && strchr(alphabet, c) != NULL;
        for (size_t pos = 0; pos < 4; pos++) {
            char text[5] = "AAAA";
            text[pos] = (char)c;
            long n = base64_decode(text, 4, out, sizeof out);
            /* "AAA=" and "AA=="-like forms: '=' is fine as the last character */
            bool want = in_alpha || (c == '=' && pos == 3);
            if ((n >= 0) != want)
                fail_msg("char 0x%02x at %zu: got %ld", c, pos, n);
        }
    }
}

typedef struct bad_case {
    const char *text;
    size_t len;
} bad_case;

static const bad_case bad_cases[] = {
    /* length not a multiple of 4 (missing or extra padding) */
    {LIT("Z")}, {LIT("Zg")}, {LIT("Zg=")}, {LIT("Zm8")}, {LIT("Zg===")}, {LIT("Zm9vY")},
    {LIT("Zm9vYg")}, {LIT("Zm9vYg=")}, {LIT("Zm9vYmE")}, {LIT("Zm9v=")},
    /* pad characters in the wrong places */
    {LIT("=")}, {LIT("==")}, {LIT("===")}, {LIT("====")}, {LIT("A===")}, {LIT("=AAA")},
    {LIT("A=AA")}, {LIT("AA=A")}, {LIT("==AA")}, {LIT("A==A")}, {LIT("=A==")},
    {LIT("Zg==Zg==")}, {LIT("Zm8=Zm8=")}, {LIT("Zg==AAAA")}, {LIT("AAAA====")},
    {LIT("Zm9v====")}, {LIT("Zm9vYg==\0\0\0\0")},
    /* non-canonical: non-zero bits under the padding (RFC 4648 3.5) */
    {LIT("Zh==")}, {LIT("Zi==")}, {LIT("Zp==")}, {LIT("Z/==")}, {LIT("Zm9=")},
    {LIT("Zm+=")}, {LIT("Zm/=")}, {LIT("AB==")}, {LIT("AAB=")}, {LIT("//9=")},
    /* whitespace and line breaks are not skipped */
    {LIT("Zm9v\r\n")}, {LIT(" Zm9v")}, {LIT("Zm9v ")}, {LIT("Zm 9v")}, {LIT("Zm9v\n")},
    {LIT("Zm9\tv")}, {LIT("Zm9vYmFy\r\nZm9v")}, {LIT("Zm9v    ")},
    /* NUL and other bytes */
    {LIT("Zm9\0")}, {LIT("\0\0\0\0")}, {LIT("Zm9v\xff\xff\xff\xff")}, {LIT("Zm9.")},
    /* the URL-safe alphabet (RFC 4648 5) is a different encoding */
    {LIT("-_-_")}, {LIT("Pz8_")}, {LIT("Pz8-")},
    /* "*" (the SASL cancel) is not base64 */
    {LIT("*")}, {LIT("****")},
};

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        unsigned char out[64];
        long n = base64_decode(bad_cases[i].text, bad_cases[i].len, out, sizeof out);
        if (n != BASE64_ERR_SYNTAX)
            fail_msg("bad case %zu ('%s'): got %ld", i, bad_cases[i].text, n);
    }
}

/* Exhaustively: "A?==" is valid iff the last data character's low 4 bits are zero, "AA?="
 * iff its low 2 bits are, so each octet string has exactly one accepted encoding. */
static void test_canonical_bits(void **state)
{
    (void)state;
    unsigned char out[3];
    for (int v = 0; v < 64; v++) {
        char two[5] = "A?==", three[5] = "AA?=";
        two[1] = alphabet[v];
        three[2] = alphabet[v];
        long n2 = base64_decode(two, 4, out, sizeof out);
        long n3 = base64_decode(three, 4, out, sizeof out);
        if ((n2 == 1) != ((v & 15) == 0) || (n2 != 1 && n2 != BASE64_ERR_SYNTAX))
            fail_msg("'%s': got %ld", two, n2);
        if ((n3 == 2) != ((v & 3) == 0) || (n3 != 2 && n3 != BASE64_ERR_SYNTAX))
            fail_msg("'%s': got %ld", three, n3);
    }
}

typedef struct cap_case {
    const char *text; /* base64 */
    size_t cap;
    long want;
} cap_case;

static const cap_case dec_caps[] = {
    {"Zm9v", 3, 3},         {"Zm9v", 2, BASE64_ERR_SPACE}, {"Zg==", 1, 1},
    {"Zg==", 0, BASE64_ERR_SPACE}, {"Zm8=", 2, 2},          {"Zm8=", 1, BASE64_ERR_SPACE},
    {"Zm9vYmFy", 6, 6},     {"Zm9vYmFy", 5, BASE64_ERR_SPACE}, {"", 0, 0},
    /* space is judged from the length before the characters are looked at */
    {"!!!!!!!!", 5, BASE64_ERR_SPACE}, {"!!!!", 3, BASE64_ERR_SYNTAX},
    /* ... but only once the length is a multiple of 4 */
    {"Zm9vY", 0, BASE64_ERR_SYNTAX},
};

static void test_decode_capacity(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dec_caps / sizeof dec_caps[0]; i++) {
        unsigned char out[16];
        memset(out, 0xAA, sizeof out);
        long n = base64_decode(dec_caps[i].text, strlen(dec_caps[i].text), out, dec_caps[i].cap);
        if (n != dec_caps[i].want)
            fail_msg("cap case %zu: got %ld want %ld", i, n, dec_caps[i].want);
        /* nothing is written past cap */
        for (size_t k = dec_caps[i].cap; k < sizeof out; k++)
            assert_int_equal(out[k], 0xAA);
    }
}

/* Encoding needs BASE64_ENCODED_LEN + 1 (the NUL); one less fails and leaves out untouched. */
static void test_encode_capacity(void **state)
{
    (void)state;
    for (size_t len = 0; len < 10; len++) {
        char out[32];
        size_t need = BASE64_ENCODED_LEN(len) + 1;
        memset(out, '#', sizeof out);
        assert_int_equal(base64_encode("abcdefghij", len, out, need - 1), BASE64_ERR_SPACE);
        for (size_t k = 0; k < sizeof out; k++)
            assert_int_equal(out[k], '#');
        assert_int_equal(base64_encode("abcdefghij", len, out, need), (long)need - 1);
        assert_int_equal(out[need - 1], '\0');
        assert_int_equal(out[need], '#');
    }
    char one[1];
    assert_int_equal(base64_encode(NULL, 0, one, 1), 0);
    assert_int_equal(one[0], '\0');
    assert_int_equal(base64_encode(NULL, 0, one, 0), BASE64_ERR_SPACE);
    assert_int_equal(base64_encode("x", (size_t)-1, one, 1), BASE64_ERR_SPACE); /* overflow */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),          cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_character),  cmocka_unit_test(test_bad),
        cmocka_unit_test(test_canonical_bits),   cmocka_unit_test(test_decode_capacity),
        cmocka_unit_test(test_encode_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
