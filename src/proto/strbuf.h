/*
 * strbuf.h - a growable byte buffer with an explicit cap, used for reply output and line
 * assembly in the protocol core. The buffer owns its memory; strbuf_free releases it.
 */
#ifndef POSTHORN_PROTO_STRBUF_H
#define POSTHORN_PROTO_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *data;  /* NUL-terminated when len < cap; may be NULL while empty */
    size_t len;
    size_t cap;
    size_t limit; /* growth never exceeds this many bytes (0 = no limit) */
} strbuf;

void strbuf_init(strbuf *b, size_t limit);
void strbuf_free(strbuf *b);
/* 0 on success, -1 if the limit would be exceeded or memory is short. */
int strbuf_append(strbuf *b, const void *p, size_t n);
int strbuf_appendf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_clear(strbuf *b);
/* Removes the first n bytes. */
void strbuf_consume(strbuf *b, size_t n);

#endif
