/*
 * data.h - the DATA framer (RFC 5321 4.1.1.4, 4.5.2): finds the end-of-data marker CRLF.CRLF,
 * removes dot-stuffing, enforces the size cap and text line length, and applies the strict
 * line-ending policy: a bare LF or bare CR is never a line end and can never end the data
 * (closing the SMTP smuggling family, CVE-2023-51764..51766); the message is then refused.
 *
 * Zero-copy: the framer reports spans of the caller's input that form the unstuffed message.
 * It keeps only a few bytes of state between calls, so input may be split anywhere.
 */
#ifndef POSTHORN_PROTO_DATA_H
#define POSTHORN_PROTO_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors found while framing (bit set; the data is still read to its end). */
#define DATA_ERR_SIZE     0x1 /* more than max_size octets: 552 5.3.4 */
#define DATA_ERR_BARE_LF  0x2 /* bare LF or bare CR seen: 550 5.6.0 */
#define DATA_ERR_LINE     0x4 /* a line longer than max_line octets: 550 5.6.0 */

typedef struct smtp_data_framer {
    uint64_t max_size;  /* octets of unstuffed message allowed (0 = unlimited) */
    size_t max_line;    /* octets per line excluding CRLF (0 = unlimited) */
    uint64_t size;      /* unstuffed octets seen so far (counted even past the cap) */
    size_t line_len;    /* octets in the current line so far */
    unsigned errors;    /* DATA_ERR_* */
    int state;          /* internal */
} smtp_data_framer;

typedef struct smtp_data_out {
    const char *span;   /* message bytes to pass on (points into the input), or NULL */
    size_t span_len;
    bool done;          /* the terminating CRLF.CRLF has been consumed */
} smtp_data_out;

/* Starts framing a new message. The framer is at the start of a line. */
void smtp_data_init(smtp_data_framer *f, uint64_t max_size, size_t max_line);

/*
 * Consumes input up to the end of one span of message bytes, the end marker, or the end of the
 * input, whichever comes first, and returns how many bytes were consumed (always > 0 if len > 0).
 * out->span, when set, lies inside the consumed bytes. Once an error bit is set no more spans
 * are produced, but input is still consumed until the end marker. Call again with the rest.
 * The message's last line break (the CRLF before ".CRLF") belongs to the message.
 */
size_t smtp_data_feed(smtp_data_framer *f, const char *p, size_t len, smtp_data_out *out);

#endif
