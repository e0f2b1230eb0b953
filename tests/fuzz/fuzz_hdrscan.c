/*
 * fuzz_hdrscan.c - differential libFuzzer driver for the streaming header scanner
 * (src/proto/hdrscan.c).
 *
 * Input layout: bytes 0-1 seed the chunk sizes (and byte 0's top bits pick how large chunks get);
 * the rest is the message. The message is scanned three ways: by a separate line-based
 * reference written here from the rules in hdrscan.h (split into CRLF lines first, then classify
 * each line), by the scanner in one call, and by the scanner in pseudo-random chunks (some empty,
 * each in its own heap copy so ASan sees any read outside it). All three must agree on the
 * Received: count, the field count, whether the header section ended and its size; any
 * difference calls abort(), which libFuzzer reports as a crash with the input saved.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

typedef struct result {
    uint64_t received, fields, header_bytes;
    bool done;
} result;

typedef enum { LINE_FIELD, LINE_CONT, LINE_BODY, LINE_EMPTY, LINE_UNDECIDED } line_kind;

static bool ftext(uint8_t c)
{
    return c >= 33 && c <= 126 && c != ':';
}

static bool wsp(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static bool is_received(const uint8_t *p, size_t n)
{
    static const char want[] = "received";
    if (n != 8)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i] >= 'A' && p[i] <= 'Z' ? (uint8_t)(p[i] + 32) : p[i];
        if (c != (uint8_t)want[i])
            return false;
    }
    return true;
}

/* What one line is; complete says whether its CRLF was seen (else it is the input's tail). */
static line_kind classify(const uint8_t *line, size_t len, bool complete, uint64_t fields,
                          bool *received)
{
    *received = false;
    if (len == 0)
        return complete ? LINE_EMPTY : LINE_UNDECIDED;
    if (line[0] == '\r')
        return len == 1 && !complete ? LINE_UNDECIDED : LINE_BODY;
    if (wsp(line[0]))
        return fields > 0 ? LINE_CONT : LINE_BODY;
    size_t name = 0;
    while (name < len && ftext(line[name]))
        name++;
    if (name == 0)
        return LINE_BODY;
    size_t colon = name;
    while (colon < len && wsp(line[colon]))
        colon++;
    if (colon == len)
        return complete ? LINE_BODY : LINE_UNDECIDED;
    if (line[colon] != ':')
        return LINE_BODY;
    *received = is_received(line, name);
    return LINE_FIELD;
}

/* The reference: split into CRLF-terminated lines, classify each in turn. */
static result reference(const uint8_t *d, size_t n)
{
    result r = {0, 0, n, false};
    size_t pos = 0;
    for (;;) {
        const uint8_t *cr = NULL;
        for (size_t i = pos; i + 1 < n; i++)
            if (d[i] == '\r' && d[i + 1] == '\n') {
                cr = d + i;
                break;
            }
        bool complete = cr != NULL;
        size_t len = complete ? (size_t)(cr - d) - pos : n - pos;
        bool rcvd;
        line_kind k = classify(d + pos, len, complete, r.fields, &rcvd);
        if (k == LINE_EMPTY || k == LINE_BODY) {
            r.done = true;
            r.header_bytes = k == LINE_EMPTY ? pos + 2 : pos;
            return r;
        }
        if (k == LINE_FIELD) {
            r.fields++;
            r.received += rcvd;
        }
        if (!complete)
            return r;
        pos += len + 2;
    }
}

static result scan_once(const uint8_t *d, size_t n)
{
    ph_hdrscan s;
    ph_hdrscan_init(&s);
    CHECK(ph_hdrscan_feed(&s, d, n) == s.done);
    return (result){s.received, s.fields, s.header_bytes, s.done};
}

static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static result scan_chunked(const uint8_t *d, size_t n, uint32_t seed, uint32_t max_chunk)
{
    ph_hdrscan s;
    ph_hdrscan_init(&s);
    size_t off = 0;
    while (off < n) {
        size_t want = next_rand(&seed) % (max_chunk + 1); /* 0 is a legal, empty chunk */
        size_t take = want < n - off ? want : n - off;
        uint8_t *piece = malloc(take ? take : 1);
        CHECK(piece);
        memcpy(piece, d + off, take);
        bool was_done = s.done;
        result before = {s.received, s.fields, s.header_bytes, s.done};
        CHECK(ph_hdrscan_feed(&s, piece, take) == s.done);
        free(piece);
        if (was_done) /* nothing changes after the end */
            CHECK(s.received == before.received && s.fields == before.fields &&
                  s.header_bytes == before.header_bytes);
        CHECK(s.received <= s.fields && s.header_bytes <= off + take);
        off += take;
    }
    return (result){s.received, s.fields, s.header_bytes, s.done};
}

static bool same(result a, result b)
{
    return a.received == b.received && a.fields == b.fields && a.done == b.done &&
           a.header_bytes == b.header_bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = ((uint32_t)data[0] << 8 | data[1]) | 1u; /* xorshift needs non-zero */
    static const uint32_t max_chunks[] = {1, 3, 16, 256};
    uint32_t max_chunk = max_chunks[data[0] >> 6];
    const uint8_t *msg = data + 2;
    size_t n = size - 2;

    result ref = reference(msg, n);
    CHECK(same(scan_once(msg, n), ref));
    CHECK(same(scan_chunked(msg, n, seed, max_chunk), ref));
    return 0;
}
