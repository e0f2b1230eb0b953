/*
 * strbuf.c - growable byte buffer with an explicit cap (see strbuf.h).
 *
 * Owns b->data (heap); strbuf_free releases it. The content never exceeds b->limit bytes and
 * is always followed by a NUL once anything was allocated, so callers may treat it as a C
 * string. Failure (limit reached, size overflow, malloc failure) returns -1 and leaves the
 * buffer exactly as it was: a reply is either appended whole or not at all.
 */
#include "proto/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_MIN_CAP 64

void strbuf_init(strbuf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void strbuf_free(strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* Makes room for extra more content bytes plus the terminating NUL. */
static int strbuf_reserve(strbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len)
        return -1;
    size_t need = b->len + extra; /* content bytes */
    if (b->limit != 0 && need > b->limit)
        return -1;
    if (need < b->cap) /* room for the NUL too */
        return 0;
    /* Double to keep appends amortised O(1), but never allocate past limit + NUL. */
    size_t cap = b->cap < STRBUF_MIN_CAP ? STRBUF_MIN_CAP : b->cap;
    while (cap <= need)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    if (b->limit != 0 && b->limit < SIZE_MAX && cap > b->limit + 1)
        cap = b->limit + 1;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int strbuf_append(strbuf *b, const void *p, size_t n)
{
    if (strbuf_reserve(b, n) < 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int strbuf_appendf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    /* First try in the space already there; most appends are short and fit. */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto fail;
    if ((size_t)n < room) {
        /* Normally cap <= limit + 1 makes this hold already, but limit is a public field and
         * may have been lowered after the buffer grew. */
        if (b->limit != 0 && b->len + (size_t)n > b->limit)
            goto fail;
        b->len += (size_t)n;
        return 0;
    }
    if (strbuf_reserve(b, (size_t)n) < 0)
        goto fail;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
fail:
    /* vsnprintf may have scribbled past len: restore the terminator. */
    if (b->data != NULL)
        b->data[b->len] = '\0';
    return -1;
}

void strbuf_clear(strbuf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void strbuf_consume(strbuf *b, size_t n)
{
    if (n >= b->len) {
        strbuf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
