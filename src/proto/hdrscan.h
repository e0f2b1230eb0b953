/*
 * hdrscan.h - a streaming scanner of a message's header section, for mail-loop detection: it
 * counts the `Received:` trace fields (RFC 5321 6.3: a message with too many of them is looping
 * and gets 554 5.4.6) while the message streams to the queue in chunks of any size.
 *
 * Input: the message as stored - CRLF lines, already dot-unstuffed, starting with the
 * Received: field Posthorn prepends - fed in chunks split anywhere (inside a field name, between
 * CR and LF). The scanner is a byte-at-a-time state machine, so the result never depends on where
 * the chunks are cut: feeding the bytes in any split gives exactly what one call with all of them
 * gives.
 *
 * What counts:
 *   - A header field starts at the beginning of a line with a field name (RFC 5322 ftext:
 *     printable ASCII except ':') followed by ':'; spaces or tabs between name and colon are
 *     allowed (RFC 5322 4.5 obsolete syntax, which some MTAs still write). `received` counts the
 *     fields whose name is "Received" compared ASCII case-insensitively: "Received-SPF:" and
 *     "X-Received:" are other fields.
 *   - A line starting with a space or tab continues the previous field (folding): never a field.
 *   - Only CRLF ends a line (as everywhere in Posthorn): a bare CR or LF is an ordinary byte.
 *   - The header section ends at the first empty line; or at the first line that is neither a
 *     field nor a continuation (RFC 5322 has no such line in a header section: a message without
 *     a separator starts its body there, as Postfix and Python's email package read it). A
 *     message with no body at all simply never ends its header section: the counts are then
 *     those of the whole message.
 * After the end, feeding costs O(1) per call: nothing after the header section is looked at, so
 * a "Received:" line in the body never counts. Inside a field's value the scanner jumps to the
 * next CR with memchr.
 *
 * Pure: no allocation, no I/O, no global state; the caller owns the ph_hdrscan (e.g. embedded in
 * its transaction) and may read its fields at any time. Nothing can fail.
 */
#ifndef POSTHORN_PROTO_HDRSCAN_H
#define POSTHORN_PROTO_HDRSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ph_hdrscan {
    /* results, valid at any time */
    uint64_t received;     /* Received: fields seen */
    uint64_t fields;       /* header fields seen (of any name, Received: included) */
    uint64_t header_bytes; /* bytes of the header section: once done, up to and including the
                              empty line that ended it (a non-field line that ended it belongs
                              to the body and is not counted); before that, every byte fed */
    bool done;             /* the header section has ended; further input is ignored */

    /* private state */
    int state;
    int name_match;        /* bytes of "received" matched so far, -1 once it cannot match */
    uint64_t fed;          /* bytes fed before done */
    uint64_t line_start;   /* offset of the current line */
} ph_hdrscan;

/* Starts a scan of a new message. */
void ph_hdrscan_init(ph_hdrscan *s);

/*
 * Scans the next len bytes of the message (data may be NULL when len is 0). Returns s->done:
 * true once the header section has ended, after which calls return at once without looking at
 * data.
 */
bool ph_hdrscan_feed(ph_hdrscan *s, const void *data, size_t len);

/* true once the header section has ended (the same as s->done). */
bool ph_hdrscan_done(const ph_hdrscan *s);

#endif
