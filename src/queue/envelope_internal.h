/*
 * envelope_internal.h - what the two halves of the envelope format share: envelope.c (envelope
 * objects, the field and recipient-key tables, serialize and parse: the public API of
 * envelope.h) and envelope_text.c (how one value is written and read back: the output buffer,
 * escaping and canonical unescaping, numbers, the parser's error report).
 *
 * Internal to those two files: no other module includes it; everyone else uses envelope.h.
 * Pure like envelope.c: no I/O, clock or globals. Writers append to an obuf and never check each
 * append (a failed allocation sets the sticky oom flag; the caller checks once at the end).
 * The decoders return 0, -EINVAL after reporting "line N: reason: "excerpt"" through
 * ph_env_fail(), or -ENOMEM; the number parsers return false for anything but a canonical
 * number (the caller reports it).
 */
#ifndef POSTHORN_QUEUE_ENVELOPE_INTERNAL_H
#define POSTHORN_QUEUE_ENVELOPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "queue/envelope.h"

/* Output buffer (sticky out-of-memory flag, so writers need not check each append). p is
 * malloc'd and belongs to whoever holds the obuf. */
typedef struct obuf {
    char *p;
    size_t len, cap;
    bool oom;
} obuf;

/* The parser's state: the input, where it is, what it has seen, where errors go. */
typedef struct parser {
    const char *buf;
    size_t len;
    size_t body_end; /* start of the end line */
    size_t lineno;
    const char *line; /* the current line, without its LF */
    size_t linelen;
    ph_envelope *env;
    unsigned seen;   /* bit i: fields[i] seen */
    size_t next;     /* fields[] index the next line may have at least */
    obuf scratch;    /* re-encoding buffer for the canonical check */
    char *err;
    size_t errlen;
} parser;

/* --- envelope_text.c ------------------------------------------------------------------------- */

/* Makes room for n more bytes; false (and oom set) when memory is short or was already. */
bool ph_env_ob_grow(obuf *b, size_t n);

/* Appends s[0..n) escaped (see envelope.h); `token` escapes spaces too. */
void ph_env_ob_escape(obuf *b, const char *s, size_t n, bool token);

/* Appends a path as "<addr>", the address escaped as a token. */
void ph_env_put_path(obuf *b, const char *addr);

/* Appends v in decimal. */
void ph_env_ob_putu(obuf *b, uint64_t v);

/* Formats "line N: reason: "excerpt"" (the current line, escaped) into p->err; returns
 * -EINVAL. */
__attribute__((format(printf, 2, 3))) int ph_env_fail(parser *p, const char *fmt, ...);

/* Decodes the escaped value s[0..n) into a new string (*out), insisting on the canonical
 * encoding: re-escaping must give s back. 0, -EINVAL (reported) or -ENOMEM. */
int ph_env_decode(parser *p, const char *s, size_t n, bool token, char **out);

/* Decodes the path token "<...>" into *out. */
int ph_env_decode_path(parser *p, const char *s, size_t n, char **out);

/* Canonical decimal s[0..n) (no sign, no leading zero) not above max. */
bool ph_env_num_parse(const char *s, size_t n, uint64_t max, uint64_t *v);

/* Exactly 16 lowercase hex digits s[0..n) (the end line's checksum) into *v. */
bool ph_env_parse_hex64(const char *s, size_t n, uint64_t *v);

/* --- inline appenders of both files ---------------------------------------------------------- */

static inline void ob_put(obuf *b, const void *s, size_t n)
{
    if (n > 0 && ph_env_ob_grow(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static inline void ob_putc(obuf *b, char c)
{
    ob_put(b, &c, 1);
}

static inline void ob_puts(obuf *b, const char *s)
{
    ob_put(b, s, strlen(s));
}

#endif
