/*
 * client_reply.h - the client side of SMTP/LMTP replies: reading a server's replies out of a
 * byte stream, and the outcome record the clients keep per recipient. Shared by the SMTP/LMTP
 * client (smtp_client.h) and anything else that talks to a mail server. Pure: no I/O, no
 * allocation; the caller owns every struct.
 *
 * Reading replies (RFC 5321 4.2): a reply is one or more lines "ddd-text" ... "ddd text" with
 * the same code on every line. A line ends at LF (CRLF or a lone LF: servers that send bare
 * LFs exist, and a reply is never message data, so being lenient here smuggles nothing).
 * Limits: PH_CLIENT_LINE_MAX bytes per line (without its line end) and PH_CLIENT_REPLY_LINES_MAX
 * lines per reply; anything over them, a line that does not start with a valid code (first
 * digit 2-5, second 0-5, then a space, '-' or the end), or a multi-line reply whose codes
 * differ is a protocol error. An RFC 3463 enhanced status code ("c.sss.ddd" whose class c is the
 * reply's first digit) at the start of a line is taken from the first line and removed from
 * every line's text, whether or not ENHANCEDSTATUSCODES was announced.
 *
 * The reader is fed bytes and stops after every line, so a caller can look at each line of a
 * multi-line reply (EHLO capabilities) as well as at the whole reply:
 *
 *   while (len > 0) {
 *       ev = ph_reply_reader_feed(&r, p, len, &used);  p += used; len -= used;
 *       PH_REPLY_LINE:  r.line_text[0..r.line_text_len) is this line's text; more lines follow
 *       PH_REPLY_DONE:  the same for the last line, and r.reply is the whole reply
 *       PH_REPLY_ERROR: r.error says why; the reader stays in error until re-initialised
 *       PH_REPLY_NEED_MORE: every byte was consumed (a partial line is kept)
 *   }
 *
 * Outcomes (ph_client_result): code, enhanced code, text, the stage that produced it and
 * whether the words are the server's. Texts are NUL-terminated, cut to fit at a UTF-8 character
 * boundary, and control bytes become '?', so a result can go into a log line, an envelope's
 * error= field or a DSN's Diagnostic-Code as it is.
 */
#ifndef POSTHORN_PROTO_CLIENT_REPLY_H
#define POSTHORN_PROTO_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define PH_CLIENT_LINE_MAX 2048       /* bytes of one reply line without its line end */
#define PH_CLIENT_REPLY_LINES_MAX 256 /* lines of one multi-line reply */
#define PH_CLIENT_TEXT_MAX 512        /* bytes of a result's text, with its NUL */
#define PH_CLIENT_ENH_MAX 16          /* bytes of an enhanced code "5.123.456", with its NUL */

/* The step of a session that produced an outcome (for logs and DSNs). */
typedef enum ph_client_stage {
    PH_STAGE_NONE = 0,    /* still open */
    PH_STAGE_CONNECT,     /* set by drivers: no connection could be made */
    PH_STAGE_GREETING,
    PH_STAGE_EHLO,
    PH_STAGE_HELO,
    PH_STAGE_LHLO,
    PH_STAGE_STARTTLS,
    PH_STAGE_TLS,         /* the driver's TLS handshake */
    PH_STAGE_AUTH,
    PH_STAGE_RSET,
    PH_STAGE_MAIL,        /* also the checks made before MAIL: SIZE, SMTPUTF8 */
    PH_STAGE_RCPT,
    PH_STAGE_DATA,        /* the reply to the DATA command */
    PH_STAGE_MESSAGE,     /* while the driver streamed the message */
    PH_STAGE_END_OF_DATA, /* the reply after the final "." */
} ph_client_stage;

/* "connect", "greeting", "EHLO", "HELO", "LHLO", "STARTTLS", "TLS handshake", "AUTH", "RSET",
 * "MAIL FROM", "RCPT TO", "DATA", "message data", "end of data"; "none" for PH_STAGE_NONE and
 * anything unknown. A static string. */
const char *ph_client_stage_name(ph_client_stage stage);

/* One recipient's outcome. The first three fields are what the LMTP client's ph_lmtp_result
 * has always had, in the same order. */
typedef struct ph_client_result {
    int code;                     /* 0 while open; else 2xx delivered, 4xx retry, 5xx permanent */
    char enh[PH_CLIENT_ENH_MAX];  /* enhanced status code "5.1.1", or "" */
    char text[PH_CLIENT_TEXT_MAX];/* the server's text (or ours), NUL-terminated, scrubbed */
    ph_client_stage stage;        /* what produced it */
    bool remote;                  /* code, enh and text come from the server's reply (a DSN's
                                   * "Diagnostic-Code: smtp; ..."); false: made by Posthorn */
} ph_client_result;

/* Sets r: code, enh (NULL = ""; cut to fit), text (NULL = ""; scrubbed and cut), stage, remote. */
void ph_client_result_set(ph_client_result *r, ph_client_stage stage, bool remote, int code,
                          const char *enh, const char *text);

/* Appends src[0..len) to the NUL-terminated text in dst (cap bytes with the NUL): control
 * bytes (0x00-0x1F, 0x7F) become '?'; a cut never splits a UTF-8 sequence. */
void ph_client_text_append(char *dst, size_t cap, const char *src, size_t len);

typedef enum ph_reply_event {
    PH_REPLY_NEED_MORE = 0, /* all bytes consumed, no complete line */
    PH_REPLY_LINE,          /* a line of a multi-line reply; more lines follow */
    PH_REPLY_DONE,          /* the last line: r->reply holds the whole reply */
    PH_REPLY_ERROR,         /* not a valid reply: r->error says why (sticky) */
} ph_reply_event;

typedef struct ph_reply_reader {
    /* read-only for callers */
    ph_client_result reply;  /* code, enh, text so far (lines joined by one space); stage
                              * PH_STAGE_NONE and remote true */
    size_t lines;            /* lines of the current reply so far */
    const char *line_text;   /* text of the line just returned (after the code, the separator
                              * and any enhanced code; raw bytes, not NUL-terminated), valid
                              * until the next call */
    size_t line_text_len;
    const char *error;       /* after PH_REPLY_ERROR: "malformed reply line", ... (static) */
    /* internal */
    bool complete;           /* the last event was DONE: the next line starts a new reply */
    bool failed;
    bool overlong;
    size_t line_len;
    char line[PH_CLIENT_LINE_MAX + 2]; /* room for the CR */
} ph_reply_reader;

void ph_reply_reader_init(ph_reply_reader *r);

/*
 * Consumes data[0..len) up to and including the end of one line (*used says how much; all of
 * it for PH_REPLY_NEED_MORE) and reports what that line was. After PH_REPLY_ERROR nothing more
 * is consumed (*used is 0 on later calls).
 */
ph_reply_event ph_reply_reader_feed(ph_reply_reader *r, const char *data, size_t len,
                                    size_t *used);

#endif
