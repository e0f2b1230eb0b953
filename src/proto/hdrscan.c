/*
 * hdrscan.c - streaming scanner of a message's header section: counts Received: fields for
 * loop detection (see hdrscan.h for what counts and why).
 *
 * One state per position inside a line, advanced one byte at a time, so a chunk boundary can fall
 * anywhere (inside a field name, between CR and LF) without changing the result. The only
 * multi-byte step is the jump over a field's value to its next CR. Pure; owns nothing.
 */
#include "proto/hdrscan.h"

#include <string.h>

enum {
    HS_LINE_START, /* at the first byte of a line */
    HS_NAME,       /* inside a field name */
    HS_NAME_WSP,   /* spaces/tabs after a field name, before its colon */
    HS_VALUE,      /* after the colon (or in a continuation line), until CR */
    HS_CR,         /* a CR inside a line: CRLF ends the line */
    HS_CR_START,   /* a CR as a line's first byte: CRLF here is the empty line */
    HS_DONE,
};

static const char RECEIVED[] = "received"; /* lowercase: compared ASCII case-insensitively */
#define RECEIVED_LEN (sizeof(RECEIVED) - 1)

void ph_hdrscan_init(ph_hdrscan *s)
{
    memset(s, 0, sizeof(*s));
    s->state = HS_LINE_START;
}

bool ph_hdrscan_done(const ph_hdrscan *s)
{
    return s->done;
}

/* RFC 5322 3.6.8: ftext = %d33-57 / %d59-126 (printable ASCII except ':'). */
static bool is_ftext(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The header section ends at offset end (the body starts there). */
static void finish(ph_hdrscan *s, uint64_t end)
{
    s->state = HS_DONE;
    s->done = true;
    s->header_bytes = end;
}

/* Advances the name match by one ftext byte: it survives only while the prefix still fits. */
static void match_name(ph_hdrscan *s, unsigned char c)
{
    if (s->name_match >= 0 && (size_t)s->name_match < RECEIVED_LEN &&
        ascii_lower(c) == (unsigned char)RECEIVED[s->name_match])
        s->name_match++;
    else
        s->name_match = -1;
}

/* A colon after a field name: one more field, maybe a Received: one. */
static void field_complete(ph_hdrscan *s)
{
    s->fields++;
    if (s->name_match == (int)RECEIVED_LEN)
        s->received++;
    s->state = HS_VALUE;
}

/* The first byte of a line, at offset pos. */
static void line_start(ph_hdrscan *s, unsigned char c, uint64_t pos)
{
    s->line_start = pos;
    if (c == '\r') {
        s->state = HS_CR_START;
    } else if (is_wsp(c)) {
        if (s->fields == 0) /* a continuation of nothing: not a header section at all */
            finish(s, pos);
        else
            s->state = HS_VALUE;
    } else if (is_ftext(c)) {
        s->name_match = 0;
        match_name(s, c);
        s->state = HS_NAME;
    } else {
        finish(s, pos); /* ':' first, a control byte or non-ASCII: not a field */
    }
}

/* One byte at offset pos in any state but HS_VALUE's fast path and HS_DONE. */
static void step(ph_hdrscan *s, unsigned char c, uint64_t pos)
{
    switch (s->state) {
    case HS_LINE_START:
        line_start(s, c, pos);
        break;
    case HS_NAME:
        if (is_ftext(c))
            match_name(s, c);
        else if (c == ':')
            field_complete(s);
        else if (is_wsp(c))
            s->state = HS_NAME_WSP;
        else
            finish(s, s->line_start); /* a line that is not a field starts the body */
        break;
    case HS_NAME_WSP:
        if (c == ':')
            field_complete(s);
        else if (!is_wsp(c))
            finish(s, s->line_start);
        break;
    case HS_CR:
        if (c == '\n')
            s->state = HS_LINE_START;
        else if (c != '\r')
            s->state = HS_VALUE; /* a bare CR inside the value: keep looking for CRLF */
        break;
    case HS_CR_START:
        if (c == '\n')
            finish(s, pos + 1); /* the empty line belongs to the header section */
        else
            finish(s, s->line_start); /* a line starting with a bare CR is not a field */
        break;
    default:
        break;
    }
}

bool ph_hdrscan_feed(ph_hdrscan *s, const void *data, size_t len)
{
    if (s->done)
        return true;
    const unsigned char *p = data;
    size_t i = 0;
    while (i < len && !s->done) {
        if (s->state == HS_VALUE) {
            /* The value's bytes never matter: jump to its next CR, if this chunk has one. */
            const unsigned char *cr = memchr(p + i, '\r', len - i);
            if (cr == NULL) {
                i = len;
                break;
            }
            i = (size_t)(cr - p) + 1;
            s->state = HS_CR;
            continue;
        }
        step(s, p[i], s->fed + i);
        i++;
    }
    s->fed += i;
    if (!s->done)
        s->header_bytes = s->fed;
    return s->done;
}
