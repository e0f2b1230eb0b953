/*
 * fuzz_queue_envelope.c - libFuzzer driver for the queue's envelope format
 * (src/queue/envelope.c).
 *
 * Each input is parsed three ways: as it is; sealed (a newline if missing, then a correct
 * "end <checksum>" line, so the fuzzer gets past the checksum into the field parsers); and as
 * the error text (up to its first NUL) and helo of a built envelope. Beyond ASan/UBSan the
 * driver traps when a promise is broken: a rejected file gets a "line N: ..." reason; an
 * accepted one serializes back to exactly its own bytes (one encoding per envelope), and
 * parses again to the same bytes; a built envelope always serializes, stays the expected
 * number of lines, and parses back to the same strings. Owns only per-input heap copies.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            __builtin_trap();                                                                 \
    } while (0)

/* serialize(e) equals want[0..n), and so does serialize(parse(that)). */
static void check_canonical(const ph_envelope *e, const char *want, size_t n)
{
    char *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    CHECK(ph_envelope_serialize(e, &out, &len) == 0);
    CHECK(len == n && memcmp(out, want, n) == 0 && out[len] == '\0');
    ph_envelope *back = NULL;
    CHECK(ph_envelope_parse(out, len, &back, NULL, 0) == 0);
    CHECK(ph_envelope_serialize(back, &again, &len2) == 0);
    CHECK(len2 == len && memcmp(again, out, len) == 0);
    ph_envelope_free(back);
    free(again);
    free(out);
}

static void check_parse(const char *buf, size_t len)
{
    char err[200];
    ph_envelope *e = (ph_envelope *)err;
    int rc = ph_envelope_parse(buf, len, &e, err, sizeof(err));
    if (rc != 0) {
        CHECK(rc == -EINVAL && e == NULL);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && strncmp(err, "line ", 5) == 0);
        for (const char *q = err; *q; q++)
            CHECK((unsigned char)*q >= 0x20 && *q != 0x7F); /* safe to log */
        return;
    }
    CHECK(e->id && e->client && e->protocol && e->from);
    CHECK(e->nrcpts >= 1 && e->nrcpts <= PH_ENVELOPE_RCPTS_MAX);
    CHECK(e->nparams <= PH_ENVELOPE_PARAMS_MAX);
    CHECK((e->tls_version == NULL) == (e->tls_cipher == NULL));
    CHECK(ph_envelope_all_done(e) == (ph_envelope_next_due(e) < 0));
    check_canonical(e, buf, len);
    ph_envelope_free(e);
}

static void check_sealed(const uint8_t *data, size_t size)
{
    bool nl = size > 0 && data[size - 1] == '\n';
    char *buf = malloc(size + 32);
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    size_t n = size;
    if (!nl)
        buf[n++] = '\n';
    n += (size_t)snprintf(buf + n, 32, "end %016llx\n",
                          (unsigned long long)ph_envelope_checksum(buf, n));
    check_parse(buf, n);
    free(buf);
}

/* Any bytes as a remote server's error text and as a helo name: one line each, round trip. */
static void check_built(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    ph_envelope *e = ph_envelope_new();
    CHECK(e != NULL);
    CHECK(ph_envelope_set_string(&e->id, "Q1") == 0 && ph_envelope_set_string(&e->client, "x") == 0);
    CHECK(ph_envelope_set_string(&e->protocol, "ESMTP") == 0 &&
          ph_envelope_set_string(&e->from, "") == 0 && ph_envelope_add_rcpt(e, "a@b") == 0);
    CHECK(ph_envelope_rcpt_set_state(e, 0, PH_RCPT_DEFERRED, 60, text) == 0);
    bool helo = text[0] != '\0' && strlen(text) < 2000;
    if (helo)
        CHECK(ph_envelope_set_string(&e->helo, text) == 0);
    char *out = NULL;
    size_t len = 0, lines = 0;
    CHECK(ph_envelope_serialize(e, &out, &len) == 0);
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    CHECK(lines == 9u + helo);
    ph_envelope *back = NULL;
    CHECK(ph_envelope_parse(out, len, &back, NULL, 0) == 0);
    CHECK(strcmp(back->rcpts[0].last_error, e->rcpts[0].last_error) == 0);
    CHECK(!helo || strcmp(back->helo, text) == 0);
    ph_envelope_free(back);
    ph_envelope_free(e);
    free(out);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse((const char *)data, size);
    check_sealed(data, size);
    check_built(data, size);
    return 0;
}
