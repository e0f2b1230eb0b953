/*
 * smtp_client.h - the SMTP (RFC 5321) and LMTP (RFC 2033) client as a pure state machine:
 * server bytes in, command bytes out, one outcome per recipient. No sockets, clock, files or
 * allocation: a driver (blocking on a worker thread, or an event loop) moves the bytes, does
 * the TLS handshake, streams the message, and times out.
 *
 * The session:
 *   greeting (220) -> EHLO (LMTP: LHLO) -> [STARTTLS -> TLS -> EHLO again] -> [AUTH]
 *   -> transaction -> (next transaction | QUIT)
 *  - Greeting: a 4xx/5xx greeting fails every recipient with that reply (its class kept) and
 *    QUIT follows; a 421 ends the session at once (as everywhere).
 *  - EHLO: any 5xx (500/502 "unknown command" and servers that say 550/554 to EHLO alike) falls
 *    back to HELO, which has no extensions; a 4xx or a refused HELO fails every recipient.
 *    LMTP has no fallback: a refused LHLO fails every recipient.
 *  - Capabilities: PIPELINING, SIZE [n], 8BITMIME, SMTPUTF8, STARTTLS, ENHANCEDSTATUSCODES,
 *    AUTH <mechanisms> (also the old "AUTH=..." form), CHUNKING (recorded, not used). They are
 *    forgotten when EHLO is sent again after TLS (RFC 3207 4.2).
 *  - STARTTLS (policy per destination, ph_smtp_tls_policy): the machine sends "STARTTLS"; on
 *    220 it asks the driver for the handshake (PH_SMTP_WANT_TLS); the driver calls
 *    ph_smtp_client_tls_started and the machine sends EHLO again. Any server byte after that
 *    220 and before the handshake is a protocol error (plaintext injected into what would be
 *    read as the TLS session). NONE never uses it; OPPORTUNISTIC uses it when offered and goes
 *    on in clear when the server answers 4xx/5xx to STARTTLS; REQUIRED fails every recipient
 *    with 454 4.7.4 when it is not offered or refused. When the 220 came but the handshake
 *    fails, the driver calls ph_smtp_client_fail (the connection is unusable); for
 *    OPPORTUNISTIC it then reconnects with policy NONE (RFC 3207 leaves that to the client;
 *    the machine only reports).
 *  - AUTH (smarthosts; ph_smtp_client_params.auth_user/auth_pass): PLAIN when offered (initial
 *    response, authorization identity empty), else LOGIN. Credentials are sent only under TLS
 *    (STARTTLS done or implicit TLS) unless auth_insecure. The choices, all temporary so that
 *    a configuration or credentials problem defers mail instead of bouncing it:
 *      no TLS and not auth_insecure   -> 454 4.7.0 (local), nothing sent
 *      AUTH not offered / no PLAIN or LOGIN -> 454 4.7.0 (local)
 *      4xx to AUTH                     -> that reply (remote)
 *      5xx to AUTH (535 bad credentials, 534, 538, ...) -> 454 4.7.0 (local) whose text
 *                                         quotes the server's reply: the credentials are the
 *                                         operator's to fix, the message is not at fault
 *    In every case QUIT follows and the session is over.
 *  - The transaction: [RSET] MAIL FROM:<from> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8], RCPT TO:<r>
 *    per recipient (one reply each: partial acceptance), DATA only when a recipient was
 *    accepted, the message (streamed by the driver through ph_dotstuff), then the final reply:
 *    SMTP: one reply for every accepted recipient; LMTP: one reply per accepted recipient, in
 *    RCPT order (RFC 2033 4.2).
 *    With PIPELINING (RFC 2920) RSET, MAIL, the RCPTs and DATA go out together (as many as the
 *    output buffer holds, refilled as the driver writes) and replies are matched in order;
 *    without it one command at a time. A pipelined DATA that gets 354 although no recipient
 *    was accepted leaves the server reading message data: the session ends there (closing is
 *    the only clean way out).
 *    Before MAIL, without sending anything:
 *      SIZE announced with a limit and envelope.size above it -> every recipient 552 5.3.4
 *      an address needs SMTPUTF8 and the server lacks it        -> every recipient 550 5.6.7
 *    SIZE=n is sent whenever the server announces SIZE and the size is known. BODY=8BITMIME
 *    is sent when the message is 8-bit and the server offers 8BITMIME; when it does not, the
 *    message is sent as is (what Exim and qmail do; RFC 6152 would have us convert or bounce,
 *    and nearly every receiver takes 8-bit data anyway). SMTPUTF8 is sent only when it is
 *    needed: a non-ASCII byte in the reverse path or a forward path, or envelope.smtputf8.
 *  - Connection reuse: after the transaction the machine is idle (PH_SMTP_WANT_NEXT) and the
 *    driver either starts the next message to the same server (ph_smtp_client_next) or quits
 *    (ph_smtp_client_quit). RSET goes first when the previous transaction did not end with its
 *    final reply (refused MAIL, no accepted recipient, refused DATA); after a message's final
 *    reply the next MAIL follows directly.
 *
 * Outcomes (ph_client_result, client_reply.h): code 0 = still open. Each recipient ends with
 * a 2xx (delivered), 4xx (retry: the next exchanger, then later) or 5xx (permanent: bounce).
 *  - the server's reply to its RCPT, or to the end of data: as it is (remote);
 *  - a 4xx/5xx reply to the greeting, EHLO/HELO/LHLO, RSET, MAIL or DATA: every recipient still
 *    open gets it (remote), its text followed by " (in reply to MAIL FROM)" and so on;
 *  - a 421 at any point: every open recipient gets it (temporary) and the session ends, no
 *    QUIT; the same with " (in reply to ...)";
 *  - a reply that is not a valid reply (syntax, overlong line, mixed codes, a code that makes
 *    no sense for the command): 451 4.5.0 "SMTP protocol error: ..." (local);
 *  - the server closing early (ph_smtp_client_closed): 451 4.4.2 (local); the driver's own
 *    errors and timeouts through ph_smtp_client_fail with whatever code it picks (local).
 * result.stage says which step it was. In LMTP mode the texts say "LMTP" instead of "SMTP".
 *
 * Ownership: ph_smtp_client is a plain struct the caller allocates (about 12 KiB: fine on a
 * worker thread's stack, or inside a connection object). Every pointer in the params, the
 * envelope and the results array are borrowed: the params until the session is over, the
 * envelope and its results until the machine is idle again (or over). Nothing needs freeing.
 * Secrets: the base64 credentials pass through the output buffer; every byte the driver
 * reports as written is wiped there.
 *
 * Driving it:
 *   ph_smtp_client_init(&c, &params, &envelope, results);
 *   while ((w = ph_smtp_client_wants(&c)) != 0) {
 *       WANT_NEXT:    ph_smtp_client_next(&c, &env2, results2), or ph_smtp_client_quit(&c)
 *       WANT_TLS:     handshake; then ph_smtp_client_tls_started(&c); failure: _fail(...)
 *       WANT_MESSAGE: write the message through ph_dotstuff + _finish, then
 *                     ph_smtp_client_message_sent(&c) (on any error: _fail instead)
 *       WANT_WRITE:   write bytes from ph_smtp_client_output(), then _output_done(n)
 *       WANT_READ:    read and _feed() the bytes; end of file: _closed()
 *       (WRITE and READ may both be set: wait for either, and read whenever input is there,
 *        or a pipelining server that stops reading while its replies pile up deadlocks us)
 *       timeout or I/O error: ph_smtp_client_fail(&c, 451, "4.4.2", why);
 *   }
 * Once wants() is 0 the session is over: every recipient of the current envelope has an
 * outcome, and the driver closes the connection.
 */
#ifndef POSTHORN_PROTO_SMTP_CLIENT_H
#define POSTHORN_PROTO_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/client_reply.h"
#include "proto/dotstuff.h"

#define PH_SMTP_PATH_MAX 512  /* bytes of a reverse or forward path without <> */
#define PH_SMTP_NAME_MAX 255  /* bytes of the EHLO/LHLO name */
#define PH_SMTP_CRED_MAX 255  /* bytes of the AUTH user name and of the password */
#define PH_SMTP_OUT_MAX 8192  /* command bytes buffered for the driver */

/* Capabilities from the EHLO/LHLO reply (ph_smtp_client.caps). The first four have the values
 * the LMTP client's PH_LMTP_CAP_* have. */
#define PH_SMTP_CAP_PIPELINING 0x01u
#define PH_SMTP_CAP_8BITMIME 0x02u
#define PH_SMTP_CAP_SMTPUTF8 0x04u
#define PH_SMTP_CAP_ENHANCEDSTATUSCODES 0x08u
#define PH_SMTP_CAP_SIZE 0x10u       /* limit in ph_smtp_client.size_max (0 = none given) */
#define PH_SMTP_CAP_STARTTLS 0x20u
#define PH_SMTP_CAP_AUTH 0x40u       /* mechanisms in ph_smtp_client.auth_mechs */
#define PH_SMTP_CAP_CHUNKING 0x80u

/* SASL mechanisms the client can use (ph_smtp_client.auth_mechs). */
#define PH_SMTP_AUTH_PLAIN 0x1u
#define PH_SMTP_AUTH_LOGIN 0x2u

/* What the driver should do next (ph_smtp_client_wants); 0 = the session is over. */
#define PH_SMTP_WANT_WRITE 0x01u   /* ph_smtp_client_output() has bytes to send */
#define PH_SMTP_WANT_READ 0x02u    /* replies are awaited: feed what arrives */
#define PH_SMTP_WANT_MESSAGE 0x04u /* the server said 354: stream the message now */
#define PH_SMTP_WANT_TLS 0x08u     /* the server said 220 to STARTTLS: do the handshake */
#define PH_SMTP_WANT_NEXT 0x10u    /* idle: _next() with another message, or _quit() */
/* MESSAGE, TLS and NEXT come alone, and only once every command byte was written: a server
 * that answers ahead (a 354 before DATA left us) cannot make the message, the handshake or
 * the next envelope overtake a command. */

typedef enum ph_smtp_mode {
    PH_SMTP_MODE_SMTP = 0,
    PH_SMTP_MODE_LMTP,
} ph_smtp_mode;

typedef enum ph_smtp_tls_policy {
    PH_SMTP_TLS_NONE = 0,      /* never STARTTLS */
    PH_SMTP_TLS_OPPORTUNISTIC, /* STARTTLS when offered; refused -> go on in clear */
    PH_SMTP_TLS_REQUIRED,      /* no TLS -> every recipient 454 4.7.4 */
} ph_smtp_tls_policy;

/* The session: fixed for the whole connection. */
typedef struct ph_smtp_client_params {
    ph_smtp_mode mode;
    const char *helo_name;     /* our host name: 1..PH_SMTP_NAME_MAX bytes, no space */
    ph_smtp_tls_policy tls;
    bool tls_active;           /* the connection is already TLS (implicit TLS, port 465):
                                * STARTTLS is never sent, the policy is met, AUTH may go */
    const char *auth_user;     /* NULL: no AUTH. Else 1..PH_SMTP_CRED_MAX bytes, no NUL */
    const char *auth_pass;     /* with auth_user: 0..PH_SMTP_CRED_MAX bytes */
    bool auth_insecure;        /* allow credentials over a connection without TLS */
} ph_smtp_client_params;

/* One message (transaction). */
typedef struct ph_smtp_envelope {
    const char *from;          /* reverse path without <>: "" is the null sender */
    const char *const *rcpts;  /* forward paths without <>, each 1..PH_SMTP_PATH_MAX bytes */
    size_t nrcpts;             /* at least 1 */
    uint64_t size;             /* bytes of the message as stored (CRLF); 0 = unknown */
    bool body_8bitmime;        /* the message is 8-bit (received with BODY=8BITMIME) */
    bool smtputf8;             /* needs SMTPUTF8 even if every address is ASCII (the relay
                                * leaves this false: only addresses decide, as in Postfix) */
} ph_smtp_envelope;

typedef struct ph_smtp_client {
    /* borrowed */
    ph_smtp_client_params p;
    ph_smtp_envelope env;
    ph_client_result *results;
    /* read-only for callers */
    unsigned caps;             /* PH_SMTP_CAP_* of the last EHLO/LHLO reply */
    unsigned auth_mechs;       /* PH_SMTP_AUTH_* announced */
    uint64_t size_max;         /* the SIZE limit announced; 0 = none */
    bool esmtp;                /* EHLO (or LHLO) was accepted; false after the HELO fallback */
    bool tls_active;           /* TLS is on (implicit, or STARTTLS done) */
    bool authenticated;
    unsigned transactions;     /* transactions started on this session */
    /* internal */
    int state;
    int auth_step;
    bool starttls_refused;     /* opportunistic STARTTLS got 4xx/5xx: stay in clear */
    bool dirty;                /* the server may hold a transaction: RSET before MAIL */
    bool needs_utf8;           /* this envelope needs SMTPUTF8 */
    bool txn_failed;           /* RSET or MAIL refused: the remaining replies are drained */
    bool quit_after_txn;       /* RSET refused: the session is not usable any more */
    size_t first_cmd;          /* transaction commands: 0 RSET, 1 MAIL, 2..n+1 RCPT, n+2 DATA */
    size_t next_cmd;           /* the next one to emit */
    size_t next_reply;         /* the one whose reply comes next */
    size_t naccepted;          /* recipients accepted at RCPT */
    size_t data_cursor;        /* LMTP: where the next end-of-data reply goes */
    ph_reply_reader rr;
    size_t out_start, out_len;
    char out[PH_SMTP_OUT_MAX];
} ph_smtp_client;

/*
 * Starts a session for the first message: results[0..env->nrcpts) are cleared (all open) and
 * the client waits for the greeting. -EINVAL (nothing touched) when a name, path or credential
 * is missing or too long or holds a control byte (CR or LF would inject a command), the HELO
 * name holds a space, or there is no recipient. Paths are sent as given (a quoted local part
 * may hold spaces).
 */
int ph_smtp_client_init(ph_smtp_client *c, const ph_smtp_client_params *p,
                        const ph_smtp_envelope *env, ph_client_result *results);

/* The next message on the same session: only when wants() is PH_SMTP_WANT_NEXT. 0, or
 * -EINVAL (invalid envelope, or not idle; nothing changed). */
int ph_smtp_client_next(ph_smtp_client *c, const ph_smtp_envelope *env,
                        ph_client_result *results);
/* Ends an idle session with QUIT. 0, or -EINVAL when not idle. */
int ph_smtp_client_quit(ph_smtp_client *c);

/* PH_SMTP_WANT_* bits, or 0 when the session is over. */
unsigned ph_smtp_client_wants(const ph_smtp_client *c);

/* The command bytes to send (*len of them; NULL and 0 when none). Valid until the next call
 * that changes c. */
const char *ph_smtp_client_output(const ph_smtp_client *c, size_t *len);
/* n bytes of the output were sent (n <= the length _output gave; more is clamped). */
void ph_smtp_client_output_done(ph_smtp_client *c, size_t n);

/* Server bytes, split anywhere: every byte is consumed (bytes after the session ended, or
 * after a protocol error, are ignored). */
void ph_smtp_client_feed(ph_smtp_client *c, const void *data, size_t len);
/* The server closed the connection (end of file). */
void ph_smtp_client_closed(ph_smtp_client *c);
/* The TLS handshake after STARTTLS succeeded: EHLO goes out again. 0, or -EINVAL when the
 * machine was not waiting for it. */
int ph_smtp_client_tls_started(ph_smtp_client *c);
/* The driver wrote the whole dot-stuffed message and its terminator. */
void ph_smtp_client_message_sent(ph_smtp_client *c);
/* Ends the session: every open recipient gets code/enh/text with the current stage (a
 * timeout, an I/O error, a failed TLS handshake, an unreadable message file). enh and text
 * may be NULL. */
void ph_smtp_client_fail(ph_smtp_client *c, int code, const char *enh, const char *text);

/* The stage the client is in (what a failure now would be blamed on). */
ph_client_stage ph_smtp_client_stage(const ph_smtp_client *c);
/* What the client waits for, for logs: ph_client_stage_name of the stage, or "QUIT",
 * "next message" (idle) or "nothing" (over). */
const char *ph_smtp_client_waiting_for(const ph_smtp_client *c);

#endif
