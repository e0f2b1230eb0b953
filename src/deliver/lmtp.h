/*
 * lmtp.h - blocking LMTP delivery (RFC 2033) of one queued message to a local mail store such
 * as Dovecot: connect, run the session of lmtp_proto.h, stream the message from its queue file,
 * and report one outcome per recipient. Meant for a worker thread of the queue manager: it
 * blocks that thread only, every wait is bounded by the job's timeout, it never raises SIGPIPE
 * (send with MSG_NOSIGNAL) and retries on EINTR. No global state: any number of deliveries may
 * run at once on different threads.
 *
 * Destinations: "unix:/path/to/socket", "host:port", "[v6 address]:port" (names are resolved
 * with getaddrinfo; every address is tried in turn).
 *
 * Ownership: everything in the job is borrowed for the duration of the call; msg_fd is read
 * with pread (its file offset is not used or moved) and stays open. results is the caller's
 * array of job->nrcpts entries.
 *
 * Errors: 0 when a session ran: results[i] is recipient i's outcome (2xx delivered, 4xx retry,
 * 5xx permanent); a session that broke off midway (timeout, server gone, unreadable queue file)
 * is still 0, with 4xx outcomes for everyone not yet answered. A negative errno when nothing
 * was delivered because no session could start: -EINVAL (bad job or destination), the
 * connect error (-ENOENT, -ECONNREFUSED, -ETIMEDOUT, ...) or a resolver failure (-EHOSTUNREACH);
 * err then says why, and every results[i] holds 451 4.4.1 with that text, so the caller can
 * defer every recipient either way.
 */
#ifndef POSTHORN_DELIVER_LMTP_H
#define POSTHORN_DELIVER_LMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/lmtp_proto.h" /* ph_lmtp_result { int code; char enh[16]; char text[512]; } */

#define PH_LMTP_IO_CHUNK (64 * 1024) /* message bytes read from the queue file at a time */

typedef struct ph_lmtp_job {
    const char *dest;         /* "unix:/path" or "host:port" or "[v6]:port" */
    const char *lhlo_name;    /* our host name */
    const char *from;         /* reverse path without <>, "" = null sender */
    bool body_8bitmime;       /* the message was received with BODY=8BITMIME */
    bool smtputf8;            /* ... with SMTPUTF8 */
    const char *const *rcpts; /* forward paths without <> */
    size_t nrcpts;
    int msg_fd;               /* the queued message, CRLF, read with pread from offset 0 */
    uint64_t size;
    int timeout_ms;           /* per read/write/connect; <= 0 means 30000 */
} ph_lmtp_job;

/* Delivers job's message to job->dest (see above for results and errors). err (errlen bytes,
 * may be 0) receives the reason of a negative return; it is "" after a session ran. */
int ph_lmtp_deliver(const ph_lmtp_job *job, ph_lmtp_result *results, char *err, size_t errlen);

#endif
