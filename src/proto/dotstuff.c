/*
 * dotstuff.c - the chunked dot-stuffer (see dotstuff.h). Works a line at a time with memchr,
 * so the cost per byte is one copy; owns nothing and cannot fail.
 */
#include "proto/dotstuff.h"

#include <string.h>

void ph_dotstuff_init(ph_dotstuffer *d)
{
    memset(d, 0, sizeof(*d));
    d->line_start = true;
}

/* Remembers the last two bytes seen, across chunks, for the finish's "ends in CRLF?" test. */
static void keep_tail(ph_dotstuffer *d, const char *p, size_t len)
{
    d->tail[0] = len >= 2 ? (unsigned char)p[len - 2] : d->tail[1];
    d->tail[1] = (unsigned char)p[len - 1];
    d->any = true;
}

size_t ph_dotstuff(ph_dotstuffer *d, const void *in, size_t len, char *out)
{
    const char *p = in;
    char *o = out;
    if (len == 0)
        return 0;
    keep_tail(d, p, len);
    while (len > 0) {
        if (d->line_start && *p == '.')
            *o++ = '.';
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) + 1 : len;
        memcpy(o, p, take);
        o += take;
        p += take;
        len -= take;
        d->line_start = nl != NULL;
    }
    return (size_t)(o - out);
}

size_t ph_dotstuff_finish(ph_dotstuffer *d, char *out)
{
    bool crlf = d->tail[0] == '\r' && d->tail[1] == '\n';
    if (d->any && !crlf) {
        memcpy(out, "\r\n.\r\n", 5);
        return 5;
    }
    memcpy(out, ".\r\n", 3);
    return 3;
}
