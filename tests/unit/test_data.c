/*
 * test_data.c - unit tests for the DATA framer (src/proto/data.c).
 *
 * Table-driven: every case is fed (a) whole, (b) one byte at a time, (c) split into two pieces
 * at every position; in every mode the concatenated spans, error bits, done flag, consumed count
 * and size must match the table. Each piece lives in its own heap copy, so ASan catches a span or
 * read outside the piece. A randomized differential test checks the framer against a simple
 * whole-buffer reference. Failures are cmocka assertions naming the case and mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/data.h"

#define ALL SIZE_MAX        /* consumed: the whole input */
#define NOSIZE UINT64_MAX   /* size: not checked beyond the defaults */
#define S(lit) lit, sizeof(lit) - 1

/*
 * Input is pre + pad 'x' bytes + in; expected output is wpre + wpad 'x' bytes + want. The pads
 * build long lines without 1000-byte literals. consumed counts from the start of the full input.
 */
typedef struct data_case {
    const char *name;
    const char *in; size_t in_len;
    const char *want; size_t want_len;
    unsigned errors;
    bool done;
    size_t consumed;
    uint64_t max_size;
    size_t max_line;
    uint64_t size;  /* expected f->size; NOSIZE: want_len when error-free, else unchecked */
    const char *pre; size_t pad;
    const char *wpre; size_t wpad;
} data_case;

static const data_case cases[] = {
    /* --- plain messages and terminators --- */
    { .name = "empty message", .in = S(".\r\n"), .want = S(""), .done = true, .consumed = ALL },
    { .name = "one empty line", .in = S("\r\n.\r\n"), .want = S("\r\n"), .done = true,
      .consumed = ALL },
    { .name = "simple", .in = S("Subject: hi\r\n\r\nbody\r\n.\r\n"),
      .want = S("Subject: hi\r\n\r\nbody\r\n"), .done = true, .consumed = ALL },
    { .name = "nothing yet", .in = S(""), .want = S(""), .consumed = ALL },
    { .name = "unterminated line", .in = S("abc"), .want = S("abc"), .consumed = ALL },
    { .name = "partial marker dot", .in = S("abc\r\n."), .want = S("abc\r\n"), .consumed = ALL },
    { .name = "partial marker dot CR", .in = S("abc\r\n.\r"), .want = S("abc\r\n"),
      .consumed = ALL, .size = 5 },
    { .name = "lone dot, start", .in = S("."), .want = S(""), .consumed = ALL },
    { .name = "trailing CR pending", .in = S("abc\r"), .want = S("abc\r"), .consumed = ALL },
    { .name = "pipelined command left", .in = S("abc\r\n.\r\nQUIT\r\n"), .want = S("abc\r\n"),
      .done = true, .consumed = 8 },
    { .name = "pipelined after empty", .in = S(".\r\nMAIL FROM:<>\r\n"), .want = S(""),
      .done = true, .consumed = 3 },
    { .name = "pipelined marker twice", .in = S("a\r\n.\r\n.\r\n"), .want = S("a\r\n"),
      .done = true, .consumed = 6 },
    { .name = "marker-like text mid-line", .in = S("a.\r\n.b\r\n.\r\n"),
      .want = S("a.\r\nb\r\n"), .done = true, .consumed = ALL },
    { .name = "two blank lines", .in = S("\r\n\r\n.\r\n"), .want = S("\r\n\r\n"), .done = true,
      .consumed = ALL },

    /* --- dot-stuffing --- */
    { .name = "stuffed dot alone", .in = S("..\r\n.\r\n"), .want = S(".\r\n"), .done = true,
      .consumed = ALL },
    { .name = "stuffed two dots", .in = S("...\r\n.\r\n"), .want = S("..\r\n"), .done = true,
      .consumed = ALL },
    { .name = "stuffed mid message", .in = S("a\r\n..\r\nb\r\n.\r\n"),
      .want = S("a\r\n.\r\nb\r\n"), .done = true, .consumed = ALL },
    { .name = "dot text at start", .in = S(".abc\r\n.\r\n"), .want = S("abc\r\n"), .done = true,
      .consumed = ALL },
    { .name = "dot space", .in = S(". \r\n.\r\n"), .want = S(" \r\n"), .done = true,
      .consumed = ALL },
    { .name = "dot mid-line kept", .in = S("a.b.\r\n.\r\n"), .want = S("a.b.\r\n"),
      .done = true, .consumed = ALL },
    { .name = "many stuffed lines", .in = S("..a\r\n..b\r\n...\r\n.\r\n"),
      .want = S(".a\r\n.b\r\n..\r\n"), .done = true, .consumed = ALL },
    { .name = "stuffed then marker", .in = S("..\r\n.\r\nX"), .want = S(".\r\n"), .done = true,
      .consumed = 7 },

    /* --- smuggling: nothing but CRLF.CRLF ends the data --- */
    { .name = "LF.LF", .in = S("a\n.\nb\r\n.\r\n"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 7 },
    { .name = "LF.CRLF", .in = S("a\n.\r\nb\r\n.\r\n"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 8 },
    { .name = "CR.CR", .in = S("a\r.\rb\r\n.\r\n"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 7 },
    { .name = "CRLF.LF", .in = S("a\r\n.\nb\r\n.\r\n"), .want = S("a\r\n"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 7 },
    { .name = "CR.CRLF", .in = S("a\r.\r\nb\r\n.\r\n"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 8 },
    { .name = "CRLF.CR then non-LF", .in = S("a\r\n.\rb\r\n.\r\n"), .want = S("a\r\n"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 7 },
    { .name = "CRLF.CR then CRLF", .in = S("a\r\n.\r\r\n.\r\n"), .want = S("a\r\n"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 6 },
    { .name = "CRLF.CR then dot", .in = S("a\r\n.\r.\r\n.\r\n"), .want = S("a\r\n"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 7 },
    { .name = "CRLF NUL.CRLF is data", .in = S("a\r\n\0.\r\nb\r\n.\r\n"),
      .want = S("a\r\n\0.\r\nb\r\n"), .done = true, .consumed = ALL },
    { .name = "LF.LF alone never ends", .in = S("a\n.\n"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 4 },
    { .name = "LF.CRLF alone never ends", .in = S("a\n.\r\n"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 5 },
    { .name = "CR.CR alone never ends", .in = S("a\r.\r"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 4 },
    { .name = "CRLF.LF alone never ends", .in = S("a\r\n.\n"), .want = S("a\r\n"),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 4 },
    { .name = "CR.LF never ends", .in = S("a\r.\n"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 4 },
    { .name = "LF.CR never ends", .in = S("a\n.\r"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 4 },
    { .name = "LF at start then .CRLF", .in = S("\n.\r\n.\r\n"), .want = S(""),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 4 },
    { .name = "CR at start then .CRLF", .in = S("\r.\r\n.\r\n"), .want = S("\r"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 4 },
    { .name = "dot LF at start", .in = S(".\n.\r\n"), .want = S(""),
      .errors = DATA_ERR_BARE_LF, .consumed = ALL, .size = 4 },
    { .name = "dot CR at start, non-LF", .in = S(".\rX\r\n.\r\n"), .want = S(""),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 4 },
    { .name = "CR CRLF: first CR bare", .in = S("a\r\r\n.\r\n"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 4 },
    { .name = "LF CRLF: real marker after", .in = S("a\n\r\n.\r\n"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 4 },
    { .name = "LF CR LF. CRLF", .in = S("a\n\r\n.\r\nQUIT\r\n"), .want = S("a"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = 7, .size = 4 },
    { .name = "smuggled command", .in = S("x\n.\nMAIL FROM:<e@v>\r\n.\r\nRSET\r\n"),
      .want = S("x"), .errors = DATA_ERR_BARE_LF, .done = true, .consumed = 24, .size = 21 },
    { .name = "CR NUL", .in = S("a\r\0\r\n.\r\n"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 5 },
    { .name = "LF LF", .in = S("\n\n.\r\n"), .want = S(""), .errors = DATA_ERR_BARE_LF,
      .consumed = ALL, .size = 5 },
    { .name = "CRCRLF.CRCRLF", .in = S("a\r\r\n.\r\r\n.\r\n"), .want = S("a\r"),
      .errors = DATA_ERR_BARE_LF, .done = true, .consumed = ALL, .size = 7 },

    /* --- 8-bit and NUL --- */
    { .name = "binary bytes", .in = S("\x80\xff\0\x01\r\n\xc3\xa9\x7f\r\n.\r\n"),
      .want = S("\x80\xff\0\x01\r\n\xc3\xa9\x7f\r\n"), .done = true, .consumed = ALL },
    { .name = "NUL line", .in = S("\0\0\r\n.\r\n"), .want = S("\0\0\r\n"), .done = true,
      .consumed = ALL },
    { .name = "8-bit after dot", .in = S(".\xff\r\n.\r\n"), .want = S("\xff\r\n"),
      .done = true, .consumed = ALL },

    /* --- size cap (unstuffed octets, CRLFs of the message included) --- */
    { .name = "size at limit", .in = S("01234567\r\n.\r\n"), .want = S("01234567\r\n"),
      .done = true, .consumed = ALL, .max_size = 10 },
    { .name = "size one past", .in = S("012345678\r\n.\r\n"), .want = S("012345678\r"),
      .errors = DATA_ERR_SIZE, .done = true, .consumed = ALL, .max_size = 10, .size = 11 },
    { .name = "size keeps counting", .in = S("0123456789AB\r\n.\r\n"), .want = S("0123456789"),
      .errors = DATA_ERR_SIZE, .done = true, .consumed = ALL, .max_size = 10, .size = 14 },
    { .name = "size stuffed dot free", .in = S("..abc\r\n.\r\n"), .want = S(".abc\r\n"),
      .done = true, .consumed = ALL, .max_size = 6 },
    { .name = "size stuffed one past", .in = S("..abcd\r\n.\r\n"), .want = S(".abcd\r"),
      .errors = DATA_ERR_SIZE, .done = true, .consumed = ALL, .max_size = 6, .size = 7 },
    { .name = "size empty message, cap 1", .in = S(".\r\n"), .want = S(""), .done = true,
      .consumed = ALL, .max_size = 1 },
    { .name = "size cap then bare LF", .in = S("abc\nd\r\n.\r\n"), .want = S("ab"),
      .errors = DATA_ERR_SIZE | DATA_ERR_BARE_LF, .done = true, .consumed = ALL,
      .max_size = 2, .size = 7 },

    /* --- line length (unstuffed octets, CRLF excluded) --- */
    { .name = "line 998", .pad = 998, .in = S("\r\n.\r\n"), .wpad = 998, .want = S("\r\n"),
      .done = true, .consumed = ALL, .max_line = 998 },
    { .name = "line 999", .pad = 999, .in = S("\r\n.\r\n"), .wpad = 998, .want = S(""),
      .errors = DATA_ERR_LINE, .done = true, .consumed = ALL, .max_line = 998, .size = 1001 },
    { .name = "line 998 stuffed", .pre = ".", .pad = 998, .in = S("\r\n.\r\n"), .wpad = 998,
      .want = S("\r\n"), .done = true, .consumed = ALL, .max_line = 998 },
    { .name = "line 999 stuffed", .pre = ".", .pad = 999, .in = S("\r\n.\r\n"), .wpad = 998,
      .want = S(""), .errors = DATA_ERR_LINE, .done = true, .consumed = ALL, .max_line = 998,
      .size = 1001 },
    { .name = "second line 999", .pre = "ab\r\n", .pad = 999, .in = S("\r\n.\r\n"),
      .wpre = "ab\r\n", .wpad = 998, .want = S(""), .errors = DATA_ERR_LINE, .done = true,
      .consumed = ALL, .max_line = 998, .size = 1005 },
    { .name = "line 998 then bare CR", .pad = 998, .in = S("\rz\r\n.\r\n"), .wpad = 998,
      .want = S("\r"), .errors = DATA_ERR_LINE | DATA_ERR_BARE_LF, .done = true,
      .consumed = ALL, .max_line = 998, .size = 1002 },
    { .name = "line 998 unterminated", .pad = 998, .in = S(""), .wpad = 998, .want = S(""),
      .consumed = ALL, .max_line = 998 },
    { .name = "line 998 lines", .pad = 998, .in = S("\r\n..\r\n.\r\n"), .wpad = 998,
      .want = S("\r\n.\r\n"), .done = true, .consumed = ALL, .max_line = 998 },
    { .name = "long line unlimited", .pad = 5000, .in = S("\r\n.\r\n"), .wpad = 5000,
      .want = S("\r\n"), .done = true, .consumed = ALL },
    { .name = "bare LF counts in line", .in = S("abc\nd\r\n.\r\n"), .want = S("abc"),
      .errors = DATA_ERR_BARE_LF | DATA_ERR_LINE, .done = true, .consumed = ALL,
      .max_line = 4, .size = 7 },
};

#define N_CASES (sizeof cases / sizeof cases[0])

/* A growable byte buffer for assembling inputs and outputs. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const void *x, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->len, x, n);
    b->len += n;
}

static void buf_pad(buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_add(b, "x", 1);
}

static void build(buf *b, const char *pre, size_t pad, const char *tail, size_t tail_len)
{
    b->len = 0;
    buf_add(b, "", 0);
    if (pre)
        buf_add(b, pre, strlen(pre));
    buf_pad(b, pad);
    buf_add(b, tail, tail_len);
}

/* What one run of the framer produced. */
typedef struct result {
    buf out;
    size_t consumed;
    unsigned errors;
    bool done;
    uint64_t size;
} result;

/*
 * Feeds one piece (a private heap copy, so ASan sees any access outside it) until it is used up
 * or the data is done, checking the per-call contract.
 */
static void feed_piece(smtp_data_framer *f, const char *piece, size_t n, result *r)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, piece, n);
    size_t off = 0;
    while (off < n && !r->done) {
        smtp_data_out o;
        size_t used = smtp_data_feed(f, copy + off, n - off, &o);
        assert_true(used > 0);
        assert_true(used <= n - off);
        if (o.span) {
            assert_true(o.span >= copy + off);
            assert_true(o.span + o.span_len <= copy + off + used);
            assert_true(o.span_len > 0);
            buf_add(&r->out, o.span, o.span_len);
        } else {
            assert_int_equal(o.span_len, 0);
        }
        if (f->errors && !r->errors)
            r->errors = f->errors; /* first error seen: later spans are forbidden */
        else if (r->errors)
            assert_null(o.span);
        r->done = o.done;
        off += used;
        r->consumed += used;
    }
    if (r->done && off < n) {
        smtp_data_out o;
        assert_int_equal(smtp_data_feed(f, copy + off, n - off, &o), 0);
        assert_true(o.done);
    }
    free(copy);
}

/* Runs the framer over the input cut at the given ascending positions. */
static void run_cuts(const data_case *c, const buf *in, const size_t *cuts, size_t ncuts,
                     result *r)
{
    smtp_data_framer f;
    smtp_data_init(&f, c->max_size, c->max_line);
    memset(r, 0, sizeof *r);
    buf_add(&r->out, "", 0); /* never NULL, even when empty */
    size_t start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t stop = i < ncuts ? cuts[i] : in->len;
        feed_piece(&f, in->p + start, stop - start, r);
        start = stop;
    }
    r->errors = f.errors;
    r->size = f.size;
}

static void check(const data_case *c, const buf *want, size_t in_len, const result *r,
                  const char *mode, size_t at)
{
    size_t consumed = c->consumed == ALL ? in_len : c->consumed + (c->pre ? strlen(c->pre) : 0)
                                                                + c->pad;
    if (r->out.len != want->len || memcmp(r->out.p, want->p, want->len) != 0 ||
        r->errors != c->errors || r->done != c->done || r->consumed != consumed)
        fail_msg("%s [%s %zu]: out %zu/%zu bytes, errors %#x/%#x, done %d/%d, consumed %zu/%zu",
                 c->name, mode, at, r->out.len, want->len, r->errors, c->errors, r->done,
                 c->done, r->consumed, consumed);
    uint64_t size = c->size ? c->size : want->len;
    if (c->size || !c->errors)
        assert_int_equal(r->size, size);
    assert_true(r->size >= r->out.len);
}

static void test_case(void **state)
{
    const data_case *c = *state;
    buf in = { 0 }, want = { 0 };
    build(&in, c->pre, c->pad, c->in, c->in_len);
    build(&want, c->wpre, c->wpad, c->want, c->want_len);
    result r;

    run_cuts(c, &in, NULL, 0, &r);
    check(c, &want, in.len, &r, "whole", 0);
    free(r.out.p);

    size_t *cuts = malloc((in.len + 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < in.len; i++)
        cuts[i] = i + 1;
    run_cuts(c, &in, cuts, in.len ? in.len - 1 : 0, &r);
    check(c, &want, in.len, &r, "bytewise", 1);
    free(r.out.p);

    for (size_t at = 0; at <= in.len; at++) {
        run_cuts(c, &in, &at, 1, &r);
        check(c, &want, in.len, &r, "split", at);
        free(r.out.p);
    }
    free(cuts);
    free(in.p);
    free(want.p);
}

/* --- randomized differential test against a whole-buffer reference --------------------- */

/* Unstuffed message, errors-free reading: the reference result for clean inputs. */
typedef struct ref {
    bool done;
    size_t consumed;
    bool bare;
    buf out; /* every unstuffed octet before the marker, errors or not */
} ref;

static bool line_start(const char *s, size_t i)
{
    return i == 0 || (i >= 2 && s[i - 2] == '\r' && s[i - 1] == '\n');
}

/*
 * Written from the rules, not from the state machine: the end is the first ".CRLF" at a line
 * start (start of data or after CRLF); line-start dots go; LF without CR before it and CR
 * followed by a non-LF byte are bare.
 */
static void reference(const char *s, size_t n, ref *r)
{
    memset(r, 0, sizeof *r);
    buf_add(&r->out, "", 0);
    r->consumed = n;
    for (size_t i = 0; i < n; i++) {
        if (line_start(s, i) && n - i >= 3 && memcmp(s + i, ".\r\n", 3) == 0) {
            r->done = true;
            r->consumed = i + 3;
            break;
        }
    }
    /* A trailing line-start ".CR" is still undecided: the framer has not counted the CR. */
    bool dot_cr = !r->done && n >= 2 && s[n - 1] == '\r' && s[n - 2] == '.' &&
                  line_start(s, n - 2);
    size_t end = r->done ? r->consumed - 3 : n;
    for (size_t i = 0; i < end; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            r->bare = true;
        if (s[i] == '\r' && i + 1 < n && s[i + 1] != '\n')
            r->bare = true;
        if (!(s[i] == '.' && line_start(s, i)))
            buf_add(&r->out, s + i, 1);
    }
    if (dot_cr)
        r->out.len--;
}

static void test_random(void **state)
{
    (void)state;
    static const char alphabet[] = { '\r', '\n', '.', 'a', '\0', '\r', '\n', '.' };
    uint32_t seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char in[24];
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof in;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alphabet[(seed >> 16) % sizeof alphabet];
        }
        seed = seed * 1103515245u + 12345u;
        size_t cut = n ? (seed >> 16) % (n + 1) : 0;
        data_case c = { .name = "random" };
        buf b = { .p = in, .len = n };
        result r;
        run_cuts(&c, &b, &cut, 1, &r);
        ref want;
        reference(in, n, &want);
        assert_int_equal(r.done, want.done);
        assert_int_equal(r.consumed, want.consumed);
        assert_int_equal(r.errors != 0, want.bare);
        assert_int_equal(r.size, want.out.len);
        /* Clean: exactly the message. With an error: a prefix of it. */
        assert_true(r.out.len <= want.out.len);
        if (r.out.len)
            assert_memory_equal(r.out.p, want.out.p, r.out.len);
        if (!r.errors)
            assert_int_equal(r.out.len, want.out.len);
        free(r.out.p);
        free(want.out.p);
    }
}

/* Feeding after done consumes nothing; a fresh init starts over. */
static void test_after_done(void **state)
{
    (void)state;
    smtp_data_framer f;
    smtp_data_out o;
    smtp_data_init(&f, 0, 0);
    assert_int_equal(smtp_data_feed(&f, ".\r\nX", 4, &o), 3);
    assert_true(o.done);
    assert_int_equal(smtp_data_feed(&f, "X", 1, &o), 0);
    assert_true(o.done);
    assert_null(o.span);
    assert_int_equal(smtp_data_feed(&f, "", 0, &o), 0);
    smtp_data_init(&f, 0, 0);
    assert_int_equal(smtp_data_feed(&f, NULL, 0, &o), 0); /* empty read: no-op */
    assert_false(o.done);
    assert_null(o.span);
    assert_int_equal(smtp_data_feed(&f, "X", 1, &o), 1);
    assert_false(o.done);
    assert_non_null(o.span);
}

/* One span per call: a stuffed dot splits the message into two calls. */
static void test_one_span_per_call(void **state)
{
    (void)state;
    static const char in[] = "ab\r\n..cd\r\n.\r\n";
    smtp_data_framer f;
    smtp_data_out o;
    smtp_data_init(&f, 0, 0);
    size_t n = smtp_data_feed(&f, in, sizeof in - 1, &o);
    assert_int_equal(n, 5); /* "ab\r\n" and the stuffed dot */
    assert_ptr_equal(o.span, in);
    assert_int_equal(o.span_len, 4);
    assert_false(o.done);
    size_t m = smtp_data_feed(&f, in + n, sizeof in - 1 - n, &o);
    assert_int_equal(n + m, sizeof in - 1); /* span and marker in one call */
    assert_ptr_equal(o.span, in + 5);
    assert_int_equal(o.span_len, 5);
    assert_true(o.done);
}

int main(void)
{
    static struct CMUnitTest tests[N_CASES + 3];
    for (size_t i = 0; i < N_CASES; i++) {
        tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_case,
                                        .initial_state = (void *)&cases[i] };
    }
    tests[N_CASES] = (struct CMUnitTest)cmocka_unit_test(test_random);
    tests[N_CASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_after_done);
    tests[N_CASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_one_span_per_call);
    return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
