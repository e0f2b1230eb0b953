/*
 * fuzz_sasl.c - libFuzzer driver for the SASL exchange (src/proto/sasl.c) and the strict base64
 * codec under it (src/proto/base64.c).
 *
 * Input: the first byte picks the mechanism (low 2 bits: PLAIN, LOGIN, or an invalid one) and
 * whether the AUTH command had an initial response (bit 2); the rest is split at '\n' into
 * lines: the initial response if any, then the client's answers. Each line is an exact-size
 * heap copy so ASan sees any over-read. After every call the driver traps if a promise breaks:
 * the result is known; scratch is wiped; a challenge is one of the mechanism's; on DONE every
 * field is NUL-terminated within 255 octets, NUL-free, valid UTF-8, user and password non-empty;
 * after a failure and after sasl_wipe every byte of the exchange is zero.
 * The whole input also goes through base64: encode-decode returns the data, and any text the
 * decoder accepts re-encodes to exactly itself (the decoder accepts only canonical text).
 * Owns nothing beyond per-input heap copies (freed before return).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/base64.h"
#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            __builtin_trap();                                                                 \
    } while (0)

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static void check_field(const char *f, size_t len, size_t cap)
{
    CHECK(len < cap && f[len] == '\0' && strlen(f) == len);
    CHECK(smtp_valid_utf8(f, len));
}

static void check_result(const sasl_exchange *x, int mech, sasl_result r)
{
    CHECK(r >= SASL_CONTINUE && r < SASL__RESULT_COUNT);
    CHECK(all_zero(x->scratch, sizeof x->scratch));
    if (r == SASL_CONTINUE) {
        const char *c = sasl_challenge(x);
        if (mech == SASL_PLAIN)
            CHECK(strcmp(c, "") == 0);
        else
            CHECK(strcmp(c, "VXNlcm5hbWU6") == 0 || strcmp(c, "UGFzc3dvcmQ6") == 0);
    } else if (r == SASL_DONE) {
        check_field(x->authzid, x->authzid_len, sizeof x->authzid);
        check_field(x->user, x->user_len, sizeof x->user);
        check_field(x->password, x->password_len, sizeof x->password);
        CHECK(x->user_len > 0 && x->password_len > 0);
        CHECK(mech != SASL_LOGIN || x->authzid_len == 0);
    } else {
        CHECK(all_zero(x, sizeof *x));
    }
    CHECK(r == SASL_DONE || r == SASL_CONTINUE || sasl_result_reply(r) != R_NONE);
}

/* One call on an exact-size copy of line[0..len). */
static sasl_result feed(sasl_exchange *x, int mech, const uint8_t *line, size_t len, int begin,
                        int has_initial)
{
    char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, line, len);
    sasl_result r = begin ? sasl_begin(x, mech, copy, len, has_initial)
                          : sasl_step(x, copy, len);
    free(copy);
    check_result(x, mech, r);
    return r;
}

static void fuzz_exchange(const uint8_t *data, size_t size)
{
    int mech = data[0] & 3; /* 2 and 3 are not mechanisms: begin must say BAD_STATE */
    int has_initial = (data[0] & 4) != 0;
    const uint8_t *p = data + 1, *end = data + size;
    sasl_exchange x;
    memset(&x, 0xA5, sizeof x);
    sasl_result r;
    if (has_initial) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        r = feed(&x, mech, p, len, 1, 1);
        p = nl != NULL ? nl + 1 : end;
    } else {
        r = feed(&x, mech, NULL, 0, 1, 0);
    }
    CHECK(mech < SASL__MECH_COUNT || r == SASL_BAD_STATE);
    /* Keep feeding after the end too: a finished exchange must answer BAD_STATE. */
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        sasl_result prev = r;
        r = feed(&x, mech, p, len, 0, 0);
        CHECK(prev == SASL_CONTINUE || r == SASL_BAD_STATE);
        p = nl != NULL ? nl + 1 : end;
    }
    sasl_wipe(&x);
    CHECK(all_zero(&x, sizeof x));
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
    size_t ecap = BASE64_ENCODED_LEN(size) + 1;
    char *enc = malloc(ecap);
    unsigned char *dec = malloc(size + 1);
    char *re = malloc(ecap);
    if (enc == NULL || dec == NULL || re == NULL)
        abort();
    long n = base64_encode(data, size, enc, ecap);
    CHECK(n == (long)ecap - 1);
    CHECK(base64_decode(enc, (size_t)n, dec, size) == (long)size);
    CHECK(size == 0 || memcmp(dec, data, size) == 0);

    /* The input as a base64 text: if accepted, its encoding is exactly the input. */
    long m = base64_decode((const char *)data, size, dec, size);
    CHECK(m >= BASE64_ERR_SPACE && m <= (long)BASE64_DECODED_MAX(size));
    if (m >= 0) {
        CHECK(base64_encode(dec, (size_t)m, re, ecap) == (long)size);
        CHECK(memcmp(re, data, size) == 0);
    }
    free(enc);
    free(dec);
    free(re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_exchange(data, size);
    fuzz_base64(data, size);
    return 0;
}
