/*
 * session.h - the SMTP server session state machine: the pure protocol core.
 *
 * Bytes in, replies and hook requests out. No sockets, clocks, files or globals: the driver
 * (src/server.c) feeds client bytes, executes what the core asks for (call a hook, send the
 * output, close) and reports timeouts and shutdown as events.
 *
 * Flow: smtp_session_feed() consumes input until it needs a decision from a hook (then
 * smtp_session_hook() describes it and feeding stops), until it wants to close, or until the
 * input runs out. The driver answers with smtp_session_resolve() - now or later - and feeds the
 * rest. Replies accumulate in an output buffer the driver drains; pipelined commands are
 * answered in order.
 */
#ifndef POSTHORN_PROTO_SESSION_H
#define POSTHORN_PROTO_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"
#include "proto/strbuf.h"
#include "proto/txn.h"

typedef struct smtp_session_config {
    const char *hostname;      /* borrowed; must outlive the session */
    const char *banner;        /* borrowed; text after "<host> ESMTP " */
    size_t max_line;           /* command line including CRLF */
    size_t max_data_line;      /* DATA line excluding CRLF */
    uint64_t max_message_size;
    unsigned max_recipients;
    unsigned max_errors;
    bool greeting_delayed;     /* the banner waits for smtp_session_greet() */
    bool starttls;             /* offer STARTTLS (RFC 3207) until TLS is on */
    bool require_tls;          /* MAIL needs TLS first: 530 5.7.0 */
    bool auth;                 /* offer AUTH (RFC 4954) under TLS ... */
    bool auth_insecure;        /* ... and also without TLS */
    bool require_auth;         /* MAIL needs AUTH first: 530 5.7.0 (submission) */
    /* Called for every refusal (code >= 400) the core sends, for logging: the verb it answered
     * ("DATA", "CONNECT"...) and the reply's first line without CRLF. May be NULL. */
    void (*on_refusal)(void *ctx, const char *verb, int code, const char *line);
    void *ctx;
} smtp_session_config;

typedef enum smtp_hook {
    HOOK_NONE = 0,
    HOOK_CONNECT,     /* before the banner */
    HOOK_HELO,        /* arg = name; ehlo flag in req */
    HOOK_MAIL,        /* path = reverse-path */
    HOOK_RCPT,        /* path = forward-path */
    HOOK_DATA_START,  /* DATA or first BDAT accepted by sequence checks */
    HOOK_DATA_CHUNK,  /* chunk/chunk_len: borrowed bytes of the message */
    HOOK_MESSAGE,     /* end of message, data complete and valid */
    HOOK_AUTH,        /* SASL credentials: mechanism, authzid, user, password */
} smtp_hook;

typedef struct smtp_hook_req {
    smtp_hook kind;
    const char *arg;         /* HELO name (NUL-terminated, owned by the session) */
    bool ehlo;
    const smtp_path *path;   /* MAIL/RCPT path (owned by the session) */
    const char *chunk;       /* DATA_CHUNK bytes: borrowed from the fed input */
    const char *mechanism;   /* AUTH: "PLAIN" or "LOGIN" */
    const char *authzid;     /* AUTH: "" if none; these three are wiped after the verdict */
    const char *user;
    const char *password;
    size_t chunk_len;
} smtp_hook_req;

typedef enum smtp_verdict_action {
    SV_ACCEPT = 0,
    SV_REJECT,
    SV_DISCONNECT,
} smtp_verdict_action;

typedef struct smtp_verdict {
    smtp_verdict_action action;
    int code;             /* 0 = default */
    const char *enhanced; /* NULL = default */
    const char *text;     /* NULL = default */
} smtp_verdict;

/* Things the core reports to the driver besides replies (see smtp_session_take_notes). */
#define SN_TXN_ABORTED  0x1 /* a transaction (MAIL accepted) ended without a stored message */
#define SN_MESSAGE_DONE 0x2 /* a message was accepted (HOOK_MESSAGE said yes) */
#define SN_RSET         0x4 /* the client sent RSET */

typedef enum smtp_phase {
    PH_CONNECT = 0, /* waiting for the connect verdict / greeting */
    PH_COMMAND,     /* reading commands */
    PH_DATA,        /* reading DATA lines */
    PH_BDAT,        /* reading a BDAT chunk */
    PH_AUTH,        /* reading SASL responses after a 334 */
    PH_CLOSED,      /* QUIT or disconnect: only output remains */
} smtp_phase;

typedef struct smtp_session smtp_session;

/* Allocates a session; cfg strings are borrowed. NULL on memory shortage. */
smtp_session *smtp_session_new(const smtp_session_config *cfg);
void smtp_session_free(smtp_session *s);

/* Asks for the connect hook (HOOK_CONNECT). Call once, right after creating the session. */
void smtp_session_start(smtp_session *s);
/* The greeting delay is over: send the banner if the connect verdict already arrived. */
void smtp_session_greet(smtp_session *s);

/*
 * Consumes client bytes. Returns how many were consumed; stops early when a hook is pending,
 * the session wants to close, or (in DATA) after a chunk was produced. Bytes not consumed must
 * be fed again later, in order.
 */
size_t smtp_session_feed(smtp_session *s, const char *p, size_t len);

/* The hook request pending, or NULL. */
const smtp_hook_req *smtp_session_hook(const smtp_session *s);

/* Answers the pending hook. Strings in v are copied. */
void smtp_session_resolve(smtp_session *s, const smtp_verdict *v);

/* The client closed or the driver ends the session: abort any transaction. */
void smtp_session_closed(smtp_session *s);
/* Timeouts and shutdown: send 421 (R_TIMEOUT / R_SHUTDOWN) and want close. */
void smtp_session_abort(smtp_session *s, smtp_reply_id why);

/* Output to send (replies), in order. The driver sends it and then clears it. */
strbuf *smtp_session_output(smtp_session *s);

bool smtp_session_want_close(const smtp_session *s);
/* True when no message is in flight and no hook waits: safe to close at shutdown. */
bool smtp_session_is_idle(const smtp_session *s);
smtp_phase smtp_session_phase(const smtp_session *s);
/* Returns and clears SN_* notes. */
unsigned smtp_session_take_notes(smtp_session *s);

/*
 * Bytes the driver puts in front of the message (the Received: header): call before resolving
 * HOOK_DATA_START with accept; the core then emits them as the first HOOK_DATA_CHUNK. Copied.
 */
int smtp_session_set_prefix(smtp_session *s, const char *p, size_t len);

/* Marks whether the session runs over TLS / is authenticated (for the protocol name). */
void smtp_session_set_tls(smtp_session *s, bool tls);

/*
 * STARTTLS was accepted (its 220 is in the output): the driver sends the output, discards every
 * byte the client sent after the STARTTLS line, and starts the handshake. Feeding stops.
 */
bool smtp_session_want_tls(const smtp_session *s);
/* The STARTTLS handshake succeeded: TLS is on and the session starts over (RFC 3207 4.2). */
void smtp_session_tls_started(smtp_session *s);
bool smtp_session_tls(const smtp_session *s);
/* The authenticated user, NULL before a successful AUTH. */
const char *smtp_session_auth_user(const smtp_session *s);

/* Getters: strings owned by the session. */
const char *smtp_session_helo(const smtp_session *s);     /* NULL before HELO/EHLO */
bool smtp_session_esmtp(const smtp_session *s);
const char *smtp_session_protocol(const smtp_session *s); /* "SMTP", "ESMTP", "ESMTPS"... */
const smtp_txn *smtp_session_txn(const smtp_session *s);  /* NULL outside a transaction */
smtp_txn *smtp_session_txn_mut(smtp_session *s);
unsigned smtp_session_error_count(const smtp_session *s);
/* Messages accepted, recipients accepted, commands seen (for the disconnect log line). */
unsigned smtp_session_messages(const smtp_session *s);
unsigned smtp_session_commands(const smtp_session *s);

#endif
