/*
 * sasl.h - the server side of SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) as
 * SMTP AUTH (RFC 4954) carries them: a pure state machine the session core drives with the
 * AUTH command's initial response and each following client line. It decodes and checks what
 * the client sends and hands back the credentials; it never checks a password (the server or
 * an on_auth hook does that, off the event loop).
 *
 * Ownership: the caller owns the sasl_exchange (embed it; no allocation happens here). Input
 * lines are borrowed for the duration of one call only. Once a call returns SASL_DONE the
 * credentials sit in the exchange's buffers until the caller calls sasl_wipe - which it MUST
 * do as soon as it has copied or checked them, and also when the session ends mid-exchange.
 * Every other terminal result wipes the exchange itself. Secret scratch space is wiped after
 * each call.
 *
 * Replies (RFC 4954 4 and 6; sasl_result_reply gives the table id for each result):
 *   SASL_CONTINUE    334 <sasl_challenge(x)>
 *   SASL_DONE        the caller checks the credentials: 235 2.7.0, or 535 5.7.8
 *   SASL_CANCELLED   501 5.7.0  the client sent "*"
 *   SASL_BAD_BASE64  501 5.5.2  not strict base64 (RFC 4954: MUST reject with 501)
 *   SASL_BAD_SYNTAX  501 5.5.2  decoded fine but breaks the mechanism's grammar: PLAIN without
 *                               its two NULs, empty authcid or password, NUL inside a LOGIN
 *                               field, invalid UTF-8, control characters in a name. This is a
 *                               malformed exchange, not a wrong credential, so it is a 501
 *                               (syntax) rather than a 535: no password was ever checked.
 *   SASL_TOO_LONG    500 5.5.6  a line or a field is longer than this side accepts (RFC 4954 6
 *                               defines exactly this reply); fields are capped at 255 octets,
 *                               the length RFC 4616 requires servers to accept.
 *   SASL_BAD_STATE   503 5.5.1  caller bug: sasl_step without a pending challenge, or
 *                               sasl_begin with an unknown mechanism.
 */
#ifndef POSTHORN_PROTO_SASL_H
#define POSTHORN_PROTO_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/reply.h"

#define SASL_FIELD_MAX 255                        /* octets per authzid/authcid/password */
#define SASL_PLAIN_MAX (3 * SASL_FIELD_MAX + 2)   /* authzid NUL authcid NUL passwd */

typedef enum sasl_mech {
    SASL_PLAIN = 0,
    SASL_LOGIN = 1,
    SASL__MECH_COUNT
} sasl_mech;

typedef enum sasl_result {
    SASL_CONTINUE = 0,
    SASL_DONE,
    SASL_CANCELLED,
    SASL_BAD_BASE64,
    SASL_BAD_SYNTAX,
    SASL_TOO_LONG,
    SASL_BAD_STATE,
    SASL__RESULT_COUNT
} sasl_result;

/*
 * One exchange. Read authzid/user/password (and their lengths) only after SASL_DONE: each is
 * NUL-terminated, holds no NUL inside, is well-formed UTF-8, and is at most SASL_FIELD_MAX
 * octets. user is never empty; password is never empty; authzid is empty when the client did
 * not ask to act as someone else (always for LOGIN). A non-empty authzid, even one different
 * from user, is passed on: whether user may act as it is the server's decision.
 * The remaining members are private. All-zero bytes is the idle state.
 */
typedef struct sasl_exchange {
    int mech;      /* sasl_mech of the exchange in progress */
    int state;     /* private: what the next client line is */
    size_t authzid_len, user_len, password_len;
    char authzid[SASL_FIELD_MAX + 1];
    char user[SASL_FIELD_MAX + 1];
    char password[SASL_FIELD_MAX + 1];
    unsigned char scratch[SASL_PLAIN_MAX]; /* private: a decoded line, wiped after each call */
} sasl_exchange;

/* SASL_PLAIN or SASL_LOGIN for the mechanism name[0..len) (ASCII case-insensitive), else -1. */
int sasl_mech_from_name(const char *name, size_t len);

/* "PLAIN" or "LOGIN" (as advertised in EHLO), or NULL for an unknown mech. */
const char *sasl_mech_name(int mech);

/*
 * Starts an exchange for the AUTH command, wiping whatever x held. If has_initial, initial[0..
 * len) is the command's initial-response argument ("=" is an empty response, RFC 4954 4):
 * for PLAIN it is the whole message; for LOGIN it is the username, as Python's smtplib, Outlook
 * and others send it (and as Postfix and Cyrus accept). Without it, PLAIN answers with an
 * empty challenge and LOGIN asks for the username.
 */
sasl_result sasl_begin(sasl_exchange *x, int mech, const char *initial, size_t len,
                       bool has_initial);

/* Feeds the client's answer to the last challenge: line[0..len) without CRLF. "*" cancels. */
sasl_result sasl_step(sasl_exchange *x, const char *line, size_t len);

/*
 * The base64 challenge to send as "334 <challenge>" after SASL_CONTINUE: "" (PLAIN), then
 * "VXNlcm5hbWU6" ("Username:") and "UGFzc3dvcmQ6" ("Password:") for LOGIN. A static string;
 * "" when no challenge is pending.
 */
const char *sasl_challenge(const sasl_exchange *x);

/* The reply for a result, per the table above; R_NONE for SASL_DONE (the caller decides). */
smtp_reply_id sasl_result_reply(sasl_result r);

/* Wipes every byte of x (explicit_bzero, so the compiler cannot skip it); x is idle after. */
void sasl_wipe(sasl_exchange *x);

#endif
