/*
 * lmtp_proto.h - the LMTP client (RFC 2033) as a pure state machine: server bytes in, command
 * bytes out, one outcome per recipient. No sockets, clock, files or allocation: a driver (the
 * blocking one in lmtp.c, or an event loop) moves the bytes, waits, and times out.
 *
 * The session: greeting, LHLO, MAIL FROM:<from> [BODY=8BITMIME] [SMTPUTF8], RCPT TO:<r> for
 * every recipient, DATA, the message (streamed by the driver through ph_lmtp_dotstuff), then
 * one reply per recipient accepted at RCPT, in RCPT order (RFC 2033 4.2), and QUIT.
 *  - PIPELINING advertised: MAIL, the RCPTs and DATA go out together (as many as the output
 *    buffer holds, refilled as the driver writes), replies are matched in order. Otherwise one
 *    command at a time, and DATA is not sent when no recipient was accepted.
 *  - BODY=8BITMIME is sent when the message has it and the server offers 8BITMIME, and simply
 *    left out otherwise. SMTPUTF8 is sent when the message needs it and the server offers it;
 *    when the server does not, every recipient fails permanently (550 5.6.7) and no
 *    transaction is started.
 *  - Replies: multi-line replies (same code on every line, at most PH_LMTP_REPLY_LINES_MAX
 *    lines) of lines up to PH_LMTP_LINE_MAX bytes (CRLF or a lone LF ends a line); an enhanced
 *    status code (RFC 2034: class.subject.detail, class = the reply's first digit) is taken
 *    from the start of the first line whenever present and removed from the text, so it works
 *    whether or not ENHANCEDSTATUSCODES was announced.
 *
 * Outcomes (ph_lmtp_result): code 0 = still open. Each recipient ends with a 2xx (delivered),
 * 4xx (retry later) or 5xx (permanent) and the server's text, or one of these made here:
 *  - a 4xx/5xx reply to the greeting, LHLO, MAIL or DATA: every still-open recipient gets that
 *    reply, its text followed by " (in reply to MAIL FROM)" and so on;
 *  - a 421 at any point: every still-open recipient gets it (temporary), the session ends;
 *  - a reply that is not a valid reply (syntax, overlong line, mixed codes, unexpected code for
 *    the command): 451 4.5.0 "LMTP protocol error: ..." for every open recipient;
 *  - the server closing early (ph_lmtp_closed): 451 4.4.2; the driver's own errors and timeouts
 *    through ph_lmtp_fail with whatever code it picks.
 * Once ph_lmtp_wants() returns 0 every recipient has an outcome and the driver closes the
 * connection (also after a failure: the state machine never needs another byte).
 * Texts are cut to fit (at a UTF-8 character boundary) and control bytes become '?', so an
 * outcome can go into a log line or an envelope as it is.
 *
 * Ownership: ph_lmtp_client is a plain struct the caller allocates (about 11 KiB; fine on a
 * worker thread's stack). Every pointer in ph_lmtp_params and the results array are borrowed:
 * they must stay valid and unchanged until the session is over. Nothing needs freeing.
 *
 * Driving it (blocking or event-driven alike):
 *   ph_lmtp_client_init(&c, &params, results);
 *   while ((w = ph_lmtp_wants(&c)) != 0) {
 *       WANT_MESSAGE: write the message through ph_lmtp_dotstuff + _finish, then
 *                     ph_lmtp_message_sent(&c) (on any error: ph_lmtp_fail instead);
 *       WANT_WRITE:   write bytes from ph_lmtp_output(), then ph_lmtp_output_done(n);
 *       WANT_READ:    read and ph_lmtp_feed() the bytes; end of file: ph_lmtp_closed();
 *       (WRITE and READ may both be set: wait for either; read whenever there is input)
 *       timeout or I/O error: ph_lmtp_fail(&c, 451, "4.4.2", why);
 *   }
 */
#ifndef POSTHORN_DELIVER_LMTP_PROTO_H
#define POSTHORN_DELIVER_LMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PH_LMTP_LINE_MAX 2048          /* bytes of one reply line without its CRLF */
#define PH_LMTP_REPLY_LINES_MAX 256    /* lines of one multi-line reply */
#define PH_LMTP_PATH_MAX 512           /* bytes of a reverse or forward path without <> */
#define PH_LMTP_NAME_MAX 255           /* bytes of the LHLO name */
#define PH_LMTP_OUT_MAX 8192           /* command bytes buffered for the driver */

/* Capabilities from the LHLO reply (ph_lmtp_client.caps). */
#define PH_LMTP_CAP_PIPELINING 0x1u
#define PH_LMTP_CAP_8BITMIME 0x2u
#define PH_LMTP_CAP_SMTPUTF8 0x4u
#define PH_LMTP_CAP_ENHANCEDSTATUSCODES 0x8u

/* What the driver should do next (ph_lmtp_wants); 0 = the session is over. */
#define PH_LMTP_WANT_WRITE 0x1u   /* ph_lmtp_output() has bytes to send */
#define PH_LMTP_WANT_READ 0x2u    /* replies are awaited: feed what arrives */
#define PH_LMTP_WANT_MESSAGE 0x4u /* the server said 354: stream the message now */

/* One recipient's outcome, and the shape of every reply the client keeps. */
typedef struct ph_lmtp_result {
    int code;      /* 0 while open; else 2xx delivered, 4xx retry, 5xx permanent */
    char enh[16];  /* enhanced status code "5.1.1", or "" */
    char text[512];/* the server's text (or ours), NUL-terminated */
} ph_lmtp_result;

typedef struct ph_lmtp_params {
    const char *lhlo_name;    /* our host name: 1..PH_LMTP_NAME_MAX bytes */
    const char *from;         /* reverse path without <>; "" is the null sender */
    bool body_8bitmime;       /* the message was received with BODY=8BITMIME */
    bool smtputf8;            /* the message needs SMTPUTF8 */
    const char *const *rcpts; /* forward paths without <>, each 1..PH_LMTP_PATH_MAX bytes */
    size_t nrcpts;            /* at least 1 */
} ph_lmtp_params;

typedef struct ph_lmtp_client {
    /* borrowed from ph_lmtp_client_init */
    ph_lmtp_params p;
    ph_lmtp_result *results;
    /* read-only for callers */
    unsigned caps;            /* PH_LMTP_CAP_* announced in the LHLO reply */
    /* internal */
    int state;
    size_t next_cmd;          /* transaction command to emit: 0 MAIL, 1..n RCPT, n+1 DATA */
    size_t next_reply;        /* transaction command whose reply comes next */
    size_t naccepted;         /* recipients accepted at RCPT */
    size_t data_cursor;       /* where to look for the next open recipient after DATA */
    bool txn_failed;          /* MAIL refused: remaining replies are only drained */
    ph_lmtp_result reply;     /* the reply being assembled */
    size_t reply_lines;
    size_t line_len;
    bool line_overlong;
    size_t out_start, out_len;
    char line[PH_LMTP_LINE_MAX + 1];
    char out[PH_LMTP_OUT_MAX];
} ph_lmtp_client;

/*
 * Starts a session: results[0..p->nrcpts) are cleared (all open) and the client waits for the
 * greeting. -EINVAL (nothing touched) when a name or path is missing or too long, holds a
 * control byte (CR or LF would inject a command), or there is no recipient. Paths are sent as
 * given (a quoted local part may hold spaces); the LHLO name must not hold a space.
 */
int ph_lmtp_client_init(ph_lmtp_client *c, const ph_lmtp_params *p, ph_lmtp_result *results);

/* PH_LMTP_WANT_* bits, or 0 when the session is over and every recipient has its outcome. */
unsigned ph_lmtp_wants(const ph_lmtp_client *c);

/* The command bytes to send (*len of them; NULL and 0 when none). Valid until the next call
 * that changes c. */
const char *ph_lmtp_output(const ph_lmtp_client *c, size_t *len);
/* n bytes of the output were sent (n <= the length ph_lmtp_output gave). */
void ph_lmtp_output_done(ph_lmtp_client *c, size_t n);

/* Server bytes, split anywhere: every byte is consumed (bytes after the session ended are
 * ignored). */
void ph_lmtp_feed(ph_lmtp_client *c, const void *data, size_t len);
/* The server closed the connection (end of file). */
void ph_lmtp_closed(ph_lmtp_client *c);
/* The driver wrote the whole dot-stuffed message and its terminator. */
void ph_lmtp_message_sent(ph_lmtp_client *c);
/* Ends the session: every open recipient gets code/enh/text (a timeout, an I/O error, a
 * message file that cannot be read). enh may be NULL. */
void ph_lmtp_fail(ph_lmtp_client *c, int code, const char *enh, const char *text);

/* What the client waits for, for log and error texts: "greeting", "LHLO", "MAIL FROM",
 * "RCPT TO", "DATA", "message data" (WANT_MESSAGE), "end of data", "QUIT" or "nothing". */
const char *ph_lmtp_waiting_for(const ph_lmtp_client *c);

/*
 * Dot-stuffing (RFC 5321 4.5.2) for a message streamed in chunks: a '.' at the start of a line
 * (the first byte of the message or the byte after an LF) is doubled, whatever the chunk
 * boundaries. ph_lmtp_dotstuff_finish then ends the message: CRLF first when the message did
 * not end with one (an empty message gets none), then ".\r\n".
 */
typedef struct ph_lmtp_dotstuffer {
    bool line_start;    /* the next byte starts a line */
    bool any;           /* at least one byte seen */
    unsigned char tail[2]; /* the last two bytes seen (tail[1] is the last) */
} ph_lmtp_dotstuffer;

/* Room ph_lmtp_dotstuff may need for n input bytes: every added '.' needs an LF before it. */
#define PH_LMTP_DOTSTUFF_BOUND(n) ((n) + (n) / 2 + 1)
#define PH_LMTP_DOTSTUFF_END_MAX 5 /* bytes ph_lmtp_dotstuff_finish may write */

void ph_lmtp_dotstuff_init(ph_lmtp_dotstuffer *d);
/* Stuffs in[0..len) into out (room for PH_LMTP_DOTSTUFF_BOUND(len)); returns bytes written. */
size_t ph_lmtp_dotstuff(ph_lmtp_dotstuffer *d, const void *in, size_t len, char *out);
/* Writes the end of the message into out (room for PH_LMTP_DOTSTUFF_END_MAX); returns bytes. */
size_t ph_lmtp_dotstuff_finish(ph_lmtp_dotstuffer *d, char *out);

#endif
