/*
 * session_internal.h - what the files of the SMTP state machine share: session.c (lifecycle,
 * the command table and most commands, line assembly, DATA, hook verdicts, accessors: the
 * public API of session.h), session_auth.c (AUTH, the SASL exchange of RFC 4954) and
 * session_bdat.c (BDAT, RFC 3030 chunking).
 *
 * Internal to those three files: no other module includes it; drivers and tests use session.h
 * (smtp_session stays opaque to them). Like session.c, pure: no I/O, clocks or globals.
 * Functions act on the session and report through it (replies appended to s->out, a hook
 * requested in s->hook, s->want_close); memory shortage turns into session_fail_memory()'s 421
 * and a close, never a crash.
 */
#ifndef POSTHORN_PROTO_SESSION_INTERNAL_H
#define POSTHORN_PROTO_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/data.h"
#include "proto/parse.h"
#include "proto/reply.h"
#include "proto/sasl.h"
#include "proto/session.h"

typedef enum line_state {
    LS_NORMAL = 0,
    LS_OVERFLOW, /* over max_line: 500 5.5.6 at the CRLF */
    LS_BARE_LF,  /* a bare LF was answered: drop the rest silently up to the CRLF */
} line_state;

/* The session behind session.h's opaque smtp_session. */
struct smtp_session {
    smtp_session_config cfg;
    smtp_phase phase;
    strbuf out;
    strbuf line;              /* a command line split across feeds */
    line_state line_state;    /* discarding the rest of a bad line? */
    bool last_was_cr;         /* the last command byte consumed was CR */
    char *helo;
    bool esmtp, tls, auth;      /* auth: AUTH succeeded */
    bool connect_ok, greet_ok, early_talker, want_close, want_tls;
    smtp_txn *txn;
    smtp_hook_req hook;
    smtp_verb hook_verb;      /* the command whose hook is pending */
    char *hook_arg;           /* HELO name under its hook */
    smtp_path path;           /* MAIL/RCPT path under its hook */
    smtp_mail_params mail;    /* MAIL parameters under its hook */
    smtp_data_framer framer;
    bool data_done;           /* the end marker was seen; finish after the pending chunk */
    bool bdat_used;           /* this transaction uses BDAT */
    bool bdat_last;
    uint64_t bdat_left;       /* octets of the current chunk still to read */
    uint64_t bdat_chunk;      /* size of the current chunk */
    smtp_reply_id bdat_error; /* reply owed after a discarded chunk, R_NONE if none */
    bool bdat_silent;         /* discarding a chunk whose refusal was already sent */
    char *prefix;             /* Received: header to emit first */
    size_t prefix_len;
    bool prefix_pending;
    /* a refusal from a chunk hook, sent when the data ends */
    int fail_code;
    char *fail_enh, *fail_text;
    sasl_exchange *sasl;      /* AUTH in progress (secrets wiped when it ends) */
    char *auth_user;          /* after a successful AUTH */
    unsigned errors, messages, commands, notes;
};

/* Longest SASL response line accepted (a PLAIN response of 3 x 255 octets in base64 + CRLF). */
#define AUTH_LINE_MAX 1100

/* ---- session.c ---------------------------------------------------------------------------- */

/* Replaces the output with a 421 and closes: what every memory shortage comes to. */
void session_fail_memory(smtp_session *s);
/* Appends the reply from the table (arg fills its %s, if any) and reports a refusal to
 * cfg.on_refusal. */
void session_reply_id(smtp_session *s, smtp_reply_id id, const char *arg);
/* Ends the transaction; a transaction that did not end in a stored message is noted. */
void session_txn_end(smtp_session *s, bool stored);
/* A protocol error: reply, count it, and close when the budget is spent. */
void session_protocol_error(smtp_session *s, smtp_reply_id id);
/* Asks the driver for a hook of this kind (the request's other fields cleared). */
void session_want_hook(smtp_session *s, smtp_hook kind);
/* The data is complete: refuse it for framing errors, else ask the message hook. */
void session_data_complete(smtp_session *s, unsigned errors);

/* ---- session_auth.c ----------------------------------------------------------------------- */

/* AUTH command: starts the SASL exchange (or refuses it out of sequence or without TLS). */
void session_cmd_auth(smtp_session *s, const smtp_command *c);
/* A SASL response line in PH_AUTH (CRLF removed). */
void session_auth_line(smtp_session *s, const char *line, size_t len);
/* Ends any exchange: secrets wiped, the command line limit restored, back to PH_COMMAND. */
void session_auth_end(smtp_session *s);
/* HOOK_AUTH verdicts: the user is authenticated (235) / the refusal is sent already. */
void session_auth_accepted(smtp_session *s);
void session_auth_refused(smtp_session *s);

/* ---- session_bdat.c ----------------------------------------------------------------------- */

/* BDAT command: checks sequence and size, then asks HOOK_DATA_START for the first chunk. */
void session_cmd_bdat(smtp_session *s, const smtp_command *c);
/* Reads the chunk announced by BDAT (a zero-length chunk is complete at once). */
void session_bdat_begin(smtp_session *s);
/* A BDAT chunk has been read completely: reply for it, or end the message after LAST. */
void session_bdat_chunk_done(smtp_session *s);
/* Consumes chunk octets in PH_BDAT, handing them to HOOK_DATA_CHUNK; returns how many. */
size_t session_feed_bdat(smtp_session *s, const char *p, size_t len);

#endif
