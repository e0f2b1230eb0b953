/*
 * dotstuff.h - dot-stuffing (RFC 5321 4.5.2) of a message streamed in chunks, for the SMTP and
 * LMTP clients: the driver reads the queued message in pieces of any size, passes each through
 * ph_dotstuff into its own output buffer, and ends with ph_dotstuff_finish. Pure: no
 * allocation, no I/O; the caller owns both buffers and the small state struct.
 *
 * Rules: a '.' at the start of a line (the first byte of the message, or the byte after an
 * LF) is doubled, whatever the chunk boundaries. A lone LF counts as a line end here (so a
 * bare-LF line that starts with '.' is stuffed as well: the receiver may treat it as a line
 * end, and an unstuffed dot there could end the data early). Nothing else is changed: the
 * queue already stores CRLF text, and converting line ends is not this module's job.
 * ph_dotstuff_finish writes CRLF first when the message did not end with one (an empty message
 * gets none), then ".\r\n".
 *
 * Errors: none; the output size is bounded up front (PH_DOTSTUFF_BOUND, PH_DOTSTUFF_END_MAX).
 */
#ifndef POSTHORN_PROTO_DOTSTUFF_H
#define POSTHORN_PROTO_DOTSTUFF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ph_dotstuffer {
    bool line_start;       /* the next byte starts a line */
    bool any;              /* at least one byte seen */
    unsigned char tail[2]; /* the last two bytes seen (tail[1] is the last) */
} ph_dotstuffer;

/* Room ph_dotstuff may need for n input bytes: every added '.' but the first needs an LF
 * before it, so at most n / 2 + 1 dots are added. */
#define PH_DOTSTUFF_BOUND(n) ((n) + (n) / 2 + 1)
#define PH_DOTSTUFF_END_MAX 5 /* bytes ph_dotstuff_finish may write: "\r\n.\r\n" */

void ph_dotstuff_init(ph_dotstuffer *d);
/* Stuffs in[0..len) into out (room for PH_DOTSTUFF_BOUND(len)); returns the bytes written.
 * in may be NULL when len is 0. */
size_t ph_dotstuff(ph_dotstuffer *d, const void *in, size_t len, char *out);
/* Writes the end of the message into out (room for PH_DOTSTUFF_END_MAX); returns the bytes
 * written. d is spent afterwards (ph_dotstuff_init starts the next message). */
size_t ph_dotstuff_finish(ph_dotstuffer *d, char *out);

#endif
