/*
 * fuzz_data.c - libFuzzer driver for the DATA framer (src/proto/data.c).
 *
 * Input layout: byte 0 picks the split strategy, byte 1 seeds the piece sizes, byte 2 the size
 * cap and byte 3 the line cap (small values, so the limits are actually hit); the rest is the
 * DATA stream. The stream is framed once whole and once in pieces (each piece in its own heap
 * copy, so ASan sees any access outside it) and the invariants below are checked. Any violation
 * calls abort(), which libFuzzer reports as a crash with the input saved.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* What one framing of the stream produced. */
typedef struct run {
    char *out;
    size_t out_len, out_cap;
    size_t consumed;
    unsigned errors;
    bool done;
    uint64_t size;
} run;

static void append(run *r, const char *p, size_t n)
{
    if (r->out_len + n > r->out_cap) {
        r->out_cap = (r->out_len + n) * 2;
        r->out = realloc(r->out, r->out_cap);
        CHECK(r->out);
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
}

/* Feeds one piece until it is used up or the data is done, checking the per-call contract. */
static void feed_piece(smtp_data_framer *f, const char *src, size_t n, run *r)
{
    char *piece = malloc(n ? n : 1);
    CHECK(piece);
    if (n)
        memcpy(piece, src, n);
    size_t off = 0;
    while (off < n && !r->done) {
        smtp_data_out o;
        unsigned errors_before = f->errors;
        size_t used = smtp_data_feed(f, piece + off, n - off, &o);
        CHECK(used > 0 && used <= n - off);
        if (o.span) {
            CHECK(o.span_len > 0);
            CHECK(o.span >= piece + off && o.span + o.span_len <= piece + off + used);
            CHECK(errors_before == 0); /* no span once an error is known */
            append(r, o.span, o.span_len);
        } else {
            CHECK(o.span_len == 0);
        }
        CHECK(f->size >= r->out_len);
        r->done = o.done;
        off += used;
        r->consumed += used;
    }
    if (r->done && off < n) { /* after the marker nothing more is taken */
        smtp_data_out o;
        CHECK(smtp_data_feed(f, piece + off, n - off, &o) == 0 && o.done && !o.span);
    }
    free(piece);
}

/* Cuts the stream into pieces chosen by the strategy byte and a small PRNG. */
static void frame(const char *p, size_t n, uint64_t max_size, size_t max_line,
                  uint8_t strategy, uint32_t seed, run *r)
{
    smtp_data_framer f;
    smtp_data_init(&f, max_size, max_line);
    memset(r, 0, sizeof *r);
    size_t off = 0;
    while (off < n) {
        size_t piece = n - off;
        seed = seed * 1103515245u + 12345u;
        if (strategy % 4 == 1)
            piece = 1;
        else if (strategy % 4 == 2)
            piece = 1 + (seed >> 16) % 8;
        else if (strategy % 4 == 3)
            piece = 1 + (seed >> 16) % 200;
        if (piece > n - off)
            piece = n - off;
        feed_piece(&f, p + off, piece, r);
        off += piece;
    }
    r->errors = f.errors;
    r->size = f.size;
}

/* A clean message never carries a bare CR or LF onward (the smuggling invariant). */
static void check_clean_output(const run *r)
{
    for (size_t i = 0; i < r->out_len; i++) {
        if (r->out[i] == '\n')
            CHECK(i > 0 && r->out[i - 1] == '\r');
        if (r->out[i] == '\r' && i + 1 < r->out_len)
            CHECK(r->out[i + 1] == '\n');
    }
    if (r->done)
        CHECK(r->out_len == 0 || (r->out_len >= 2 && r->out[r->out_len - 1] == '\n'));
    CHECK(r->size == r->out_len);
}

/* Done means the consumed input ends in CRLF.CRLF, or is ".CRLF" alone. */
static void check_marker(const char *p, const run *r)
{
    size_t c = r->consumed;
    CHECK(c >= 3 && memcmp(p + c - 3, ".\r\n", 3) == 0);
    CHECK(c == 3 || (c >= 5 && memcmp(p + c - 5, "\r\n", 2) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t strategy = data[0];
    uint32_t seed = data[1];
    uint64_t max_size = data[2] & 0x80 ? (uint64_t)(data[2] & 0x7f) * 16 : data[2];
    size_t max_line = data[3];
    const char *p = (const char *)data + 4;
    size_t n = size - 4;

    run whole, cut;
    frame(p, n, max_size, max_line, 0, seed, &whole);
    frame(p, n, max_size, max_line, strategy, seed, &cut);

    CHECK(whole.out_len == cut.out_len);
    CHECK(whole.out_len == 0 || memcmp(whole.out, cut.out, whole.out_len) == 0);
    CHECK(whole.errors == cut.errors && whole.done == cut.done);
    CHECK(whole.consumed == cut.consumed && whole.size == cut.size);
    CHECK(whole.size >= whole.out_len);
    CHECK(whole.done ? whole.consumed <= n : whole.consumed == n);
    if (whole.done)
        check_marker(p, &whole);
    if (whole.errors == 0)
        check_clean_output(&whole);
    if (max_size && whole.size <= max_size)
        CHECK(!(whole.errors & DATA_ERR_SIZE));
    if (max_size && whole.size > max_size)
        CHECK(whole.errors & DATA_ERR_SIZE);
    free(whole.out);
    free(cut.out);
    return 0;
}
