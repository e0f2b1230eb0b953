/*
 * reply.h - every SMTP reply Posthorn sends: code, RFC 3463 enhanced code and text, from one
 * table, plus the formatter for single- and multi-line replies (RFC 5321 4.2, RFC 2034).
 * Pure: no I/O, no allocation except through the caller's strbuf.
 */
#ifndef POSTHORN_PROTO_REPLY_H
#define POSTHORN_PROTO_REPLY_H

#include "proto/strbuf.h"

typedef enum smtp_reply_id {
    R_NONE = 0,
    R_GREETING,          /* 220 (no enhanced code): "<host> ESMTP <banner>" */
    R_BYE,               /* 221 2.0.0 Bye */
    R_HELO_OK,           /* 250 <host> */
    R_ACTION_OK,                /* 250 2.0.0 Ok */
    R_SENDER_OK,         /* 250 2.1.0 Ok */
    R_RCPT_OK,           /* 250 2.1.5 Ok */
    R_QUEUED,            /* 250 2.0.0 Ok: queued as %s */
    R_BDAT_OK,           /* 250 2.0.0 Ok: %s octets received */
    R_VRFY,              /* 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery */
    R_HELP,              /* 214 2.0.0 ... */
    R_DATA_GO,           /* 354 End data with <CR><LF>.<CR><LF> */
    R_SHUTDOWN,          /* 421 4.3.2 Service shutting down, closing transmission channel */
    R_TIMEOUT,           /* 421 4.4.2 Timeout exceeded, closing transmission channel */
    R_TOO_MANY_ERRORS,   /* 421 4.7.0 Too many errors, closing transmission channel */
    R_TOO_MANY_CONNS,    /* 421 4.7.0 Too many connections, try again later */
    R_TOO_MANY_FROM_IP,  /* 421 4.7.0 Too many connections from your address, try again later */
    R_DISCONNECT,        /* 421 4.7.0 Closing transmission channel (hook default) */
    R_STORE_FAILED,      /* 451 4.3.0 Error: could not store the message, try again later */
    R_TEMP_REJECT,       /* 451 4.3.0 Temporary failure, try again later (hook default 4xx) */
    R_TOO_MANY_RCPTS,    /* 452 4.5.3 Too many recipients */
    R_LINE_TOO_LONG,     /* 500 5.5.6 Line too long */
    R_BARE_LF,           /* 500 5.5.2 Bare LF or CR received: lines must end with CRLF */
    R_UNKNOWN_CMD,       /* 500 5.5.2 Command unrecognized */
    R_SYNTAX,            /* 501 5.5.2 Syntax error */
    R_SYNTAX_HELO,       /* 501 5.5.2 Syntax: EHLO hostname */
    R_SYNTAX_MAIL,       /* 501 5.5.2 Syntax: MAIL FROM:<address> */
    R_SYNTAX_RCPT,       /* 501 5.5.2 Syntax: RCPT TO:<address> */
    R_SYNTAX_BDAT,       /* 501 5.5.4 Syntax: BDAT size [LAST] */
    R_NO_ARGS,           /* 501 5.5.4 No parameters allowed */
    R_BAD_SENDER,        /* 501 5.1.7 Bad sender address syntax */
    R_BAD_RCPT,          /* 501 5.1.3 Bad recipient address syntax */
    R_BAD_PARAM,         /* 501 5.5.4 Invalid parameter value */
    R_NOT_IMPLEMENTED,   /* 502 5.5.1 Command not implemented */
    R_NEED_HELO,         /* 503 5.5.1 Send HELO/EHLO first */
    R_NESTED_MAIL,       /* 503 5.5.1 Sender already specified */
    R_NEED_MAIL,         /* 503 5.5.1 Need MAIL command first */
    R_NEED_RCPT,         /* 503 5.5.1 Need RCPT command first */
    R_BAD_SEQUENCE,      /* 503 5.5.1 Bad sequence of commands */
    R_DATA_AFTER_BDAT,   /* 503 5.5.1 DATA not allowed after BDAT */
    R_PARAM_UNKNOWN,     /* 555 5.5.4 Unsupported parameter */
    R_SIZE_EXCEEDED,     /* 552 5.3.4 Message size exceeds fixed limit */
    R_NEED_SMTPUTF8,     /* 553 5.6.7 Non-ASCII address requires SMTPUTF8 */
    R_EARLY_TALKER,      /* 554 5.5.0 Protocol error: client sent data before the greeting */
    R_DATA_BARE_LF,      /* 550 5.6.0 Message contains bare LF or CR: lines must end with CRLF */
    R_DATA_LINE_LONG,    /* 550 5.6.0 Message line longer than 998 octets */
    R_REJECTED,          /* 550 5.7.1 Rejected (hook default 5xx) */
    R_BODY_8BIT,         /* 554 5.6.0 8-bit data needs BODY=8BITMIME */
    R_TLS_READY,         /* 220 2.0.0 Ready to start TLS */
    R_NEED_STARTTLS,     /* 530 5.7.0 Must issue a STARTTLS command first */
    R_AUTH_REQUIRED,     /* 530 5.7.0 Authentication required */
    R_AUTH_OK,           /* 235 2.7.0 Authentication successful */
    R_AUTH_CHALLENGE,    /* 334 (no enhanced code): "%s", the base64 challenge (RFC 4954 4) */
    R_AUTH_CANCELLED,    /* 501 5.7.0 Authentication cancelled */
    R_AUTH_BAD_BASE64,   /* 501 5.5.2 Invalid base64 data */
    R_AUTH_BAD_MESSAGE,  /* 501 5.5.2 Malformed authentication response */
    R_AUTH_TOO_LONG,     /* 500 5.5.6 Authentication Exchange line is too long (RFC 4954 6) */
    R_AUTH_UNKNOWN_MECH, /* 504 5.5.4 Unrecognized authentication mechanism */
    R_AUTH_FAILED,       /* 535 5.7.8 Authentication credentials invalid */
    R_AUTH_TEMP_FAIL,    /* 454 4.7.0 Temporary authentication failure */
    R_AUTH_NEED_TLS,     /* 538 5.7.11 Encryption required for requested authentication mechanism */
    R_AUTH_ALREADY,      /* 503 5.5.1 Already authenticated */
    R_TLS_UNAVAILABLE,   /* 454 4.7.0 TLS not available due to temporary reason */
    R_AUTH_TOO_MANY,     /* 421 4.7.0 Too many failed authentication attempts */
    R__COUNT
} smtp_reply_id;

typedef struct smtp_reply_def {
    int code;
    const char *enhanced; /* NULL for 220 and the EHLO/HELO greeting */
    const char *text;     /* may contain one %s filled by smtp_reply_append */
} smtp_reply_def;

const smtp_reply_def *smtp_reply_get(smtp_reply_id id);

/*
 * Appends a complete reply to out. text may hold several lines separated by '\n': they become a
 * multi-line reply ("250-..." then "250 ..."), each line carrying the enhanced code if given.
 * enhanced may be NULL. CR, LF and other control bytes inside a line are replaced by '?' so a
 * hook text can never inject a reply. Returns 0, or -1 if out could not grow.
 */
int smtp_reply_append(strbuf *out, int code, const char *enhanced, const char *text);

/* Appends the table reply id, with arg substituted for a %s in its text (arg may be NULL). */
int smtp_reply_append_id(strbuf *out, smtp_reply_id id, const char *arg);

/* True if enhanced is "c.x.y" with class c matching the first digit of code (2, 4 or 5), and
 * x, y numbers of at most 3 digits (RFC 3463 2). */
int smtp_enhanced_valid(int code, const char *enhanced);

#endif
