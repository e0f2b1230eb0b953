/*
 * data.c - the DATA framer (see data.h): a byte-level state machine over the DATA stream that
 * finds CRLF.CRLF, drops the stuffed leading dot of each line, counts the message size and line
 * length, and flags bare LF / bare CR. It owns no memory: spans point into the caller's input
 * and all state lives in the smtp_data_framer, so input may be split at any byte.
 *
 * How it fails: never. Hostile input only sets DATA_ERR_* bits; from the first error on no span
 * is reported, but input is still consumed (and counted) up to the real end marker, which only a
 * genuine CRLF "." CRLF can form (SMTP smuggling, CVE-2023-51764..51766).
 *
 * Call contract details: a call may return a span together with done (the span, then the
 * marker, which is never passed on); once done, further calls consume nothing and return 0.
 *
 * Output is deterministic whatever the split: the concatenated spans are exactly the unstuffed
 * message octets before the byte at which the first error was detected (a bare CR is detected at
 * the byte after it, so a bare CR mid-line has already been passed on).
 */
#include "proto/data.h"

#include <string.h>

enum {
    S_BOL,   /* at the start of a line */
    S_MID,   /* inside a line; previous byte was not CR */
    S_CR,    /* inside a line right after a CR (already counted in size and passed on) */
    S_DOT,   /* a line-initial dot was consumed (never passed on) */
    S_DOTCR, /* line-initial "." CR consumed: LF ends the data */
    S_DONE,  /* the end marker has been consumed */
};

/* One call's cursor over the input, and the span being built. */
typedef struct feed_ctx {
    const char *q, *end;
    const char *span, *span_end;
    const char *cr; /* next CR at or after q (or end), cached so scans stay linear; NULL = unknown */
} feed_ctx;

void smtp_data_init(smtp_data_framer *f, uint64_t max_size, size_t max_line)
{
    memset(f, 0, sizeof *f);
    f->max_size = max_size;
    f->max_line = max_line;
    f->state = S_BOL;
}

/* Adds n octets to the size; returns how many of them fit under max_size. */
static size_t count_size(smtp_data_framer *f, size_t n)
{
    uint64_t old = f->size;
    f->size = old > UINT64_MAX - n ? UINT64_MAX : old + n;
    if (f->max_size == 0 || f->size <= f->max_size)
        return n;
    f->errors |= DATA_ERR_SIZE;
    return old >= f->max_size ? 0 : (size_t)(f->max_size - old);
}

/* Adds n octets to the current line; returns how many of them fit under max_line. */
static size_t count_line(smtp_data_framer *f, size_t n)
{
    size_t old = f->line_len;
    f->line_len = old > SIZE_MAX - n ? SIZE_MAX : old + n;
    if (f->max_line == 0 || f->line_len <= f->max_line)
        return n;
    f->errors |= DATA_ERR_LINE;
    return old >= f->max_line ? 0 : f->max_line - old;
}

/* Records that [x, x+n) belongs to the message. Callers guarantee it extends the span. */
static void emit(feed_ctx *c, const char *x, size_t n)
{
    if (n == 0)
        return;
    if (!c->span)
        c->span = x;
    c->span_end = x + n;
}

/*
 * Consumes n message octets at c->q (in_line: they count towards the line length too) and passes
 * on the prefix that is within the limits, unless an error was already seen: after the first
 * error nothing more is passed on.
 */
static void take(smtp_data_framer *f, feed_ctx *c, size_t n, bool in_line)
{
    bool clean = f->errors == 0;
    size_t fit = count_size(f, n);
    if (in_line) {
        size_t line_fit = count_line(f, n);
        fit = line_fit < fit ? line_fit : fit;
    }
    if (clean)
        emit(c, c->q, fit);
    c->q += n;
}

/* A CR was not followed by LF: it is line data and an error, never a line end. */
static void bare_cr(smtp_data_framer *f, bool counted)
{
    f->errors |= DATA_ERR_BARE_LF;
    if (!counted)
        count_size(f, 1);
    count_line(f, 1);
}

/* One byte inside a line (state S_MID). */
static void line_byte(smtp_data_framer *f, feed_ctx *c)
{
    char ch = *c->q;
    f->state = S_MID;
    if (ch == '\r') {
        /* Size now, line length later: CR of a CRLF is not part of the line. */
        take(f, c, 1, false);
        f->state = S_CR;
        return;
    }
    if (ch == '\n')
        f->errors |= DATA_ERR_BARE_LF; /* counted as data, never a line end */
    take(f, c, 1, true);
}

/* One byte through the full state machine. */
static void step(smtp_data_framer *f, feed_ctx *c)
{
    char ch = *c->q;
    switch (f->state) {
    case S_BOL:
        if (ch == '.') {
            f->state = S_DOT;
            c->q++;
            return;
        }
        break;
    case S_DOT:
        if (ch == '\r') {
            f->state = S_DOTCR;
            c->q++;
            return;
        }
        break; /* dot-unstuffing: the dot is gone, ch is line data */
    case S_DOTCR:
        if (ch == '\n') {
            f->state = S_DONE;
            c->q++;
            return;
        }
        bare_cr(f, false);
        break;
    case S_CR:
        if (ch == '\n') {
            take(f, c, 1, false);
            f->line_len = 0;
            f->state = S_BOL;
            return;
        }
        bare_cr(f, true);
        break;
    default:
        break;
    }
    line_byte(f, c);
}

/* First CR or LF at or after c->q, or c->end. Two memchr passes, each byte scanned once. */
static const char *find_break(feed_ctx *c)
{
    if (!c->cr || c->cr < c->q) {
        c->cr = memchr(c->q, '\r', (size_t)(c->end - c->q));
        if (!c->cr)
            c->cr = c->end;
    }
    const char *lf = memchr(c->q, '\n', (size_t)(c->cr - c->q));
    return lf ? lf : c->cr;
}

/*
 * Fast path inside a line: takes every byte up to the next CR or LF in one go, and goes on over
 * CRLF when the next line visibly starts with something other than a dot (the next line is then
 * the same as S_MID with an empty line). Anything else is left to step().
 */
static void run_plain(smtp_data_framer *f, feed_ctx *c)
{
    for (;;) {
        const char *brk = find_break(c);
        if (brk > c->q)
            take(f, c, (size_t)(brk - c->q), true);
        if (c->end - brk < 3 || brk[0] != '\r' || brk[1] != '\n' || brk[2] == '.')
            return;
        take(f, c, 2, false);
        f->line_len = 0;
    }
}

/* Would ch, in the current state, be passed on as message data (errors aside)? */
static bool would_emit(const smtp_data_framer *f, char ch)
{
    switch (f->state) {
    case S_BOL: return ch != '.';
    case S_DOT: return ch != '\r';
    case S_MID:
    case S_CR: return true;
    default: return false;
    }
}

/*
 * A call reports one span: stop before a byte that would start a second one (after a stuffed
 * dot), so the caller can hand each span to a hook. Bytes that are never passed on (the dot,
 * the end marker) are consumed on the way, so the span and "done" may come in the same call.
 */
static bool must_stop(const smtp_data_framer *f, const feed_ctx *c)
{
    return c->span && c->span_end != c->q && f->errors == 0 && would_emit(f, *c->q);
}

size_t smtp_data_feed(smtp_data_framer *f, const char *p, size_t len, smtp_data_out *out)
{
    out->span = NULL;
    out->span_len = 0;
    out->done = f->state == S_DONE;
    if (len == 0) /* p may be NULL; NULL + 0 is undefined in C */
        return 0;
    feed_ctx c = { .q = p, .end = p + len, .span = NULL, .span_end = NULL, .cr = NULL };

    /* After done nothing is consumed: the bytes belong to the next command. */
    while (c.q < c.end && f->state != S_DONE) {
        if (must_stop(f, &c))
            break;
        if (f->state == S_MID) {
            run_plain(f, &c);
            if (c.q == c.end)
                break;
        }
        step(f, &c);
    }
    out->span = c.span;
    out->span_len = c.span ? (size_t)(c.span_end - c.span) : 0;
    out->done = f->state == S_DONE;
    return (size_t)(c.q - p);
}
