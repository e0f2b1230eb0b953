/*
 * bounce.h - builds a delivery status notification (a "bounce", RFC 3464 inside an RFC 6522
 * multipart/report) telling a message's envelope sender which recipients failed for good and why.
 * The queue manager calls it when recipients fail permanently or the queue lifetime runs out,
 * and queues the result with the null reverse path (RFC 5321 4.5.5), so a bounce never bounces.
 *
 * Pure: no clock (every date comes in), no files but the original message read through the
 * given descriptor with pread (its offset is left alone), no global state.
 *
 * The message built:
 *   Date (from `now`, UTC), From: Mail Delivery System <MAILER-DAEMON@reporting_mta>,
 *   To: <sender>, Subject: Undelivered Mail Returned to Sender,
 *   Message-ID: <bounce.SEED@reporting_mta>, Auto-Submitted: auto-replied (RFC 3834),
 *   MIME-Version: 1.0, Content-Type: multipart/report; report-type=delivery-status; boundary=...
 *   1. text/plain: a human explanation listing each failed recipient and its diagnostic;
 *      charset us-ascii (7bit), or utf-8 in base64 when an address or diagnostic carries valid
 *      UTF-8 (so the bounce itself is always 7-bit clean in this part).
 *   2. message/delivery-status: Reporting-MTA, X-Posthorn-Queue-ID, Arrival-Date; then per
 *      recipient Final-Recipient, Action: failed, Status, Remote-MTA, Diagnostic-Code,
 *      Last-Attempt-Date.
 *   3. text/rfc822-headers: the original header section, read from msg_fd (omitted if
 *      msg_fd < 0); see PH_BOUNCE_HEADERS_MAX.
 *
 * Output guarantees, whatever the input strings hold: every line ends in CRLF and has at most
 * 998 bytes before it (header fields are folded at spaces near 78 columns, and anything longer
 * than a line is cut into continuation lines); no NUL, bare CR or bare LF anywhere; parts 1 and 2
 * are pure US-ASCII. Peer-controlled text can never start a header field or a MIME part:
 *   - diagnostics and remote host names: CR, LF, TAB and other controls become spaces (runs of
 *     spaces collapse), every non-ASCII byte becomes '?', at most PH_BOUNCE_DIAG_MAX bytes kept;
 *   - recipient addresses: printable ASCII without spaces is written as `rfc822; ADDR`; anything
 *     else as `utf-8; ADDR` in RFC 6533 utf-8-addr-xtext (each character that is not printable
 *     ASCII, and SP, '\', '+', '=', written \x{HEX} by code point; control bytes and invalid
 *     UTF-8 as \x{FFFD});
 *   - the original headers are copied as they are, except that a bare CR or LF becomes CRLF, a
 *     NUL becomes a space and a line over 998 bytes is cut with CRLF TAB (a continuation). The
 *     part says Content-Transfer-Encoding: 8bit when it holds non-ASCII bytes.
 *   - the MIME boundary is made from boundary_seed and a hash of the parts, and checked against
 *     the content of every part; if it occurs there, another one is tried.
 *
 * Ownership: everything in ph_bounce_info is borrowed for the call. *out is a malloc'd,
 * NUL-terminated buffer of *len bytes that the caller frees with free().
 *
 * Errors (nothing is allocated or left in *out or *len on error):
 *   -EINVAL  in/out/len NULL; null or empty sender ("" or "<>"); a sender with control bytes,
 *            invalid UTF-8 or over PH_BOUNCE_ADDR_MAX bytes (it cannot be addressed); no
 *            recipients; a recipient with an empty address; a status that is not an RFC 3463
 *            code of class 4 or 5 ("5.1.1"; 4.x.x for a message that expired while deferred);
 *            a reporting_mta that is empty or not [A-Za-z0-9.-_]; a queue_id or diagnostic_type
 *            that is not [A-Za-z0-9_-]; a date before 1970 or after 9999.
 *   -ENOMEM  memory short.
 *   -EIO or another negative errno from pread on msg_fd; -EIO also if 64 boundaries in a row
 *            all occurred in the content (the hash makes this practically impossible).
 */
#ifndef POSTHORN_DELIVER_BOUNCE_H
#define POSTHORN_DELIVER_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#define PH_BOUNCE_HEADERS_MAX (64 * 1024) /* bytes of original headers quoted; cut at a line end */
#define PH_BOUNCE_DIAG_MAX 2000           /* bytes of one diagnostic text kept */
#define PH_BOUNCE_ADDR_MAX 900            /* bytes of the sender address (To: fits one line) */

typedef struct ph_bounce_rcpt {
    const char *addr;            /* final recipient, without <>; required */
    const char *status;          /* RFC 3463 code, e.g. "5.1.1"; required */
    const char *diagnostic;      /* remote or local reply text, e.g. "550 5.1.1 No such user";
                                    may be NULL (then the DSN has no Diagnostic-Code) */
    const char *diagnostic_type; /* "smtp" (the default when NULL), "x-unix", ... */
    const char *remote_mta;      /* host name of the MTA that gave the diagnostic, or NULL */
    int64_t last_attempt;        /* unix seconds; 0 = unknown (no Last-Attempt-Date) */
} ph_bounce_rcpt;

typedef struct ph_bounce_info {
    const char *reporting_mta;   /* our host name; required */
    const char *queue_id;        /* the original message's queue id, or NULL */
    const char *sender;          /* original envelope sender without <>: the bounce goes there */
    int64_t arrival;             /* when the original arrived (unix seconds); 0 = unknown */
    int64_t now;                 /* the bounce's Date: (unix seconds) */
    const ph_bounce_rcpt *rcpts; /* the failed recipients, at least one */
    size_t nrcpts;
    int msg_fd;                  /* the original message (CRLF), read with pread from offset 0;
                                    -1: no part 3 */
    uint64_t msg_size;           /* bytes of the message in msg_fd (reads stop there);
                                    0 = read until end of file */
    const char *boundary_seed;   /* unique per bounce, e.g. the bounce's own queue id: makes the
                                    MIME boundary and Message-ID unique. NULL: queue_id is used */
} ph_bounce_info;

/*
 * Builds the bounce for in (see above). Returns 0 with the message in *out (malloc'd, owned by
 * the caller) and its length in *len, or a negative errno.
 */
int ph_bounce_build(const ph_bounce_info *in, char **out, size_t *len);

#endif
