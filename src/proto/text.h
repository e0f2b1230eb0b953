/*
 * text.h - small byte-string helpers shared by the protocol core: a locale-independent ASCII
 * case-insensitive compare and a NUL-terminating copy. Pure; the copy is owned by the caller.
 */
#ifndef POSTHORN_PROTO_TEXT_H
#define POSTHORN_PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* a[0..n) equals b[0..n) ignoring ASCII case (the C library's compare depends on the locale). */
bool text_ascii_ieq(const char *a, const char *b, size_t n);

/* A malloc'd, NUL-terminated copy of p[0..n), or NULL on memory shortage. */
char *text_dup(const char *p, size_t n);

#endif
