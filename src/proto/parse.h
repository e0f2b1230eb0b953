/*
 * parse.h - RFC 5321 command line parsing: the verb, and the arguments of MAIL, RCPT, BDAT and
 * EHLO/HELO with their ESMTP parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8).
 * Pure functions over a borrowed line (without its CRLF); they never allocate. Errors are reply
 * ids from reply.h so the session can answer with the precise code.
 */
#ifndef POSTHORN_PROTO_PARSE_H
#define POSTHORN_PROTO_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/addr.h"
#include "proto/reply.h"

typedef enum smtp_verb {
    V_UNKNOWN = 0,
    V_HELO,
    V_EHLO,
    V_MAIL,
    V_RCPT,
    V_DATA,
    V_BDAT,
    V_RSET,
    V_NOOP,
    V_QUIT,
    V_VRFY,
    V_EXPN,
    V_HELP,
    V_STARTTLS,
    V_AUTH,
    V__COUNT
} smtp_verb;

typedef struct smtp_command {
    smtp_verb verb;
    const char *arg; /* after the verb and one or more spaces; points into the line */
    size_t arg_len;  /* trailing spaces removed */
} smtp_command;

/*
 * Splits a command line (CRLF already removed) into verb and argument. The verb is matched
 * case-insensitively and must be followed by a space or the end of the line.
 * Unknown verbs give V_UNKNOWN (reply 500 5.5.2).
 */
void smtp_parse_command(const char *line, size_t len, smtp_command *out);

/* Name of a verb, upper case ("MAIL"); "UNKNOWN" for V_UNKNOWN. */
const char *smtp_verb_name(smtp_verb v);

typedef enum smtp_body {
    BODY_UNSPEC = 0,
    BODY_7BIT,
    BODY_8BITMIME,
} smtp_body;

typedef struct smtp_mail_params {
    bool has_size;
    uint64_t size;   /* SIZE=n (RFC 1870) */
    smtp_body body;  /* BODY=7BIT|8BITMIME (RFC 6152); BINARYMIME is not offered */
    bool smtputf8;   /* SMTPUTF8 (RFC 6531) */
} smtp_mail_params;

/*
 * Parses the argument of MAIL: "FROM:<path> [params]". One optional space after the colon is
 * tolerated (common client behaviour). Returns R_NONE on success, otherwise:
 *   R_SYNTAX_MAIL (no FROM:), R_BAD_SENDER (path syntax), R_PARAM_UNKNOWN (unknown keyword),
 *   R_BAD_PARAM (bad value or duplicate keyword), R_NEED_SMTPUTF8 (non-ASCII address without
 *   the SMTPUTF8 parameter).
 */
smtp_reply_id smtp_parse_mail(const char *arg, size_t len, smtp_path *path, smtp_mail_params *p);

/*
 * Parses the argument of RCPT: "TO:<path> [params]". No RCPT parameters are supported yet (any
 * is R_PARAM_UNKNOWN). utf8_ok: the transaction used SMTPUTF8. Errors: R_SYNTAX_RCPT,
 * R_BAD_RCPT, R_PARAM_UNKNOWN, R_NEED_SMTPUTF8. The null path <> is R_BAD_RCPT; the bare
 * <Postmaster> (any case) is accepted (RFC 5321 4.5.1).
 */
smtp_reply_id smtp_parse_rcpt(const char *arg, size_t len, bool utf8_ok, smtp_path *path);

/*
 * Parses the argument of BDAT: "size [LAST]" (RFC 3030). size is decimal, at most 18 digits.
 * Errors: R_SYNTAX_BDAT.
 */
smtp_reply_id smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last);

/*
 * Checks the argument of HELO/EHLO: a domain (letters, digits, '-', '_' tolerated, dots; up to
 * 255 octets; UTF-8 labels tolerated) or an address literal ("[1.2.3.4]", "[IPv6:...]").
 * Returns R_NONE or R_SYNTAX_HELO.
 */
smtp_reply_id smtp_parse_helo(const char *arg, size_t len);

#endif
