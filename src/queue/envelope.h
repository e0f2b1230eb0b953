/*
 * envelope.h - the queue's envelope file: everything Posthorn knows about one queued message
 * except its bytes (who sent it, from where, to whom, and each recipient's delivery state), and
 * its on-disk text format. Pure: serialize turns an envelope into bytes, parse turns bytes back
 * into an envelope; reading, writing, fsync and rename are the spool's job.
 *
 * Ownership: a ph_envelope owns every string and array it points to; ph_envelope_free releases
 * them all. Functions taking `const char *` borrow it (copying what they keep). Callers may read
 * every field directly and may assign scalar and string fields directly, provided strings they
 * store are malloc'd (the envelope takes them over) and the old value is freed;
 * ph_envelope_set_string does both. The params and rcpts arrays grow only through
 * ph_envelope_add_param and ph_envelope_add_rcpt.
 *
 * Errors: functions return 0 or a negative errno: -EINVAL (invalid input or an envelope that
 * cannot be written), -ENOMEM (memory short; nothing half-done is left behind).
 *
 * ---------------------------------------------------------------------------------------------
 * FORMAT, version 1
 *
 * UTF-8 text, one field per line, every line ending in a single LF (no CR, no blank lines, no
 * leading or trailing spaces), fields in exactly this order:
 *
 *   posthorn-envelope 1                        magic and format version
 *   id 5X5CR29M3ZM2P00                         queue id: 1-64 of [A-Za-z0-9_-]
 *   received 1795480000                        unix seconds
 *   client 127.0.0.1                           client address, "unix" for a Unix socket,
 *                                              "local" for messages Posthorn made itself
 *   helo client.example                        optional: the HELO/EHLO/LHLO argument
 *   protocol ESMTPSA                           SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, LMTP, local...
 *   auth alice                                 optional: the authenticated identity
 *   tls TLSv1.3 TLS_AES_256_GCM_SHA384         optional: protocol version and cipher
 *   from <alice@example.org>                   reverse path; <> is the null sender
 *   param BODY=8BITMIME                        0-32 MAIL parameters, KEYWORD or KEYWORD=VALUE,
 *   param SMTPUTF8                             in the order given, each keyword at most once
 *   size 4711                                  bytes of the message in its data file
 *   rcpt <bob@example.net> pending             1-100000 recipients, in the order given
 *   rcpt <carol@example.net> deferred next=1795480600 attempts=2 error=451 4.7.1 Greylisted
 *   rcpt <dave@example.net> delivered at=1795480100 attempts=1
 *   rcpt <erin@example.net> failed at=1795480100 attempts=1 error=550 5.1.1 No such user
 *   end 8c1f0e3bd3f28a6e                       FNV-1a 64 of every byte before this line,
 *                                              16 lowercase hex digits; the last line
 *
 * Recipient lines: `rcpt PATH STATE` then keys, each at most once and in this order:
 *   next=T      the next attempt (unix seconds): required for deferred, absent otherwise
 *   at=T        when delivery succeeded or failed for good: required for delivered and failed,
 *               absent otherwise
 *   attempts=N  delivery attempts so far (1..4294967295): absent when zero
 *   error=TEXT  the last reply or error, any state, optional; always last, it runs to the end of
 *               the line and may contain spaces
 *
 * Numbers are decimal without sign or leading zeros, at most 2^63-1.
 * Values are escaped so that no byte in them can end or split a line: a byte is written as %XX
 * (two uppercase hex digits) when it is a control byte (0x00-0x1F, 0x7F), '%', part of a C1
 * control (U+0080-U+009F) or of invalid UTF-8, and - in every value except error= - a space.
 * Valid UTF-8 is kept raw; nothing else is escaped. A value that decodes to a NUL byte is
 * invalid. Values other than error= and the null sender's <> are never empty.
 *
 * Exactly one encoding is valid for a given envelope (fixed order, canonical numbers and
 * escapes), so serialize(parse(x)) == x for every valid x. Anything else - no end line (a
 * truncated write), a checksum mismatch, an unknown version, an unknown, duplicate, misplaced or
 * missing field, a malformed value, a line over 8192 bytes, too many recipients - makes the whole
 * file invalid, and parse says why as "line N: reason: "excerpt"" so the spool can move the file
 * to corrupt/ and log the reason. The checksum catches truncation and bit rot (FNV-1a changes
 * with any single changed byte), not forgery.
 * ---------------------------------------------------------------------------------------------
 */
#ifndef POSTHORN_QUEUE_ENVELOPE_H
#define POSTHORN_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PH_ENVELOPE_VERSION 1
#define PH_ENVELOPE_LINE_MAX 8192    /* bytes per line, without its LF */
#define PH_ENVELOPE_RCPTS_MAX 100000 /* recipients per envelope */
#define PH_ENVELOPE_PARAMS_MAX 32    /* MAIL parameters per envelope */
#define PH_ENVELOPE_ID_MAX 64        /* bytes of a queue id */
#define PH_ENVELOPE_ERROR_MAX 1000   /* bytes of error text kept by ph_envelope_rcpt_set_state */

typedef enum ph_rcpt_state {
    PH_RCPT_PENDING,   /* not tried yet (or to be retried at once) */
    PH_RCPT_DEFERRED,  /* temporary failure: retry at next_try */
    PH_RCPT_DELIVERED, /* done: accepted by the mailbox or next hop at done_at */
    PH_RCPT_FAILED,    /* done: permanent failure at done_at (a bounce is due) */
} ph_rcpt_state;

typedef struct ph_rcpt {
    char *addr;          /* forward path without <>; never empty */
    ph_rcpt_state state;
    uint32_t attempts;   /* counted by the caller; set_state leaves it alone */
    int64_t next_try;    /* deferred only: unix seconds (not stored in other states) */
    int64_t done_at;     /* delivered/failed only: unix seconds (not stored otherwise) */
    char *last_error;    /* last reply or error text, or NULL */
} ph_rcpt;

typedef struct ph_envelope {
    char *id;            /* required */
    int64_t received;    /* unix seconds, >= 0 */
    char *client;        /* required */
    char *helo;          /* optional (NULL) */
    char *protocol;      /* required */
    char *auth;          /* optional (NULL) */
    char *tls_version;   /* optional; set together with tls_cipher or not at all */
    char *tls_cipher;
    char *from;          /* required; "" is the null sender */
    char **params;       /* nparams MAIL parameters, "KEYWORD" or "KEYWORD=VALUE" */
    size_t nparams;
    uint64_t size;       /* message bytes in the data file */
    ph_rcpt *rcpts;      /* nrcpts recipients (at least one to be written) */
    size_t nrcpts;
    size_t rcpts_cap;    /* allocated entries of rcpts */
} ph_envelope;

/* A new, empty envelope (all strings NULL, all numbers 0), or NULL if memory is short. */
ph_envelope *ph_envelope_new(void);
/* Frees e and everything it owns. NULL is fine. */
void ph_envelope_free(ph_envelope *e);

/* Replaces *slot (a string field of an envelope or recipient) by a copy of value, or by NULL
 * when value is NULL, freeing the old string. 0 or -ENOMEM (then *slot is unchanged). */
int ph_envelope_set_string(char **slot, const char *value);

/* Appends a MAIL parameter ("KEYWORD" or "KEYWORD=VALUE", copied). -EINVAL when the keyword is
 * not an ESMTP keyword, appears already, or there are PH_ENVELOPE_PARAMS_MAX parameters. */
int ph_envelope_add_param(ph_envelope *e, const char *param);
/* The value of parameter `keyword` (ASCII case-insensitive): "" for a bare keyword, NULL when
 * absent. Borrowed from e. */
const char *ph_envelope_param(const ph_envelope *e, const char *keyword);

/* Appends a pending recipient (addr without <>, copied); it is e->rcpts[e->nrcpts - 1].
 * -EINVAL for an empty address or when there are PH_ENVELOPE_RCPTS_MAX recipients. */
int ph_envelope_add_rcpt(ph_envelope *e, const char *addr);

/* Sets recipient i to state. `when` is next_try for DEFERRED and done_at for DELIVERED and
 * FAILED (unix seconds, >= 0); the other time is cleared; PENDING clears both. error (copied,
 * cut to PH_ENVELOPE_ERROR_MAX bytes at a character boundary; NULL clears) becomes last_error.
 * attempts is not touched. -EINVAL for a bad index, state or time; -ENOMEM. */
int ph_envelope_rcpt_set_state(ph_envelope *e, size_t i, ph_rcpt_state state, int64_t when,
                               const char *error);

/* True when no recipient is pending or deferred (also when there are none). */
bool ph_envelope_all_done(const ph_envelope *e);
/* When the next attempt is due: 0 if a recipient is pending, else the earliest next_try of the
 * deferred ones, or -1 when all are done. */
int64_t ph_envelope_next_due(const ph_envelope *e);
/* "pending", "deferred", "delivered", "failed"; "?" for anything else. */
const char *ph_rcpt_state_name(ph_rcpt_state s);

/* Writes e in the format above to a malloc'd buffer (*out, *len; the caller frees *out; it is
 * also NUL-terminated). -EINVAL when e cannot be written so that it parses back: a required
 * field missing, an empty value, a bad id, parameter or time, only one of the TLS fields, no or
 * too many recipients, a line over PH_ENVELOPE_LINE_MAX. On error *out is NULL. */
int ph_envelope_serialize(const ph_envelope *e, char **out, size_t *len);

/* Parses buf[0..len) (any bytes) into a new envelope (*out, freed with ph_envelope_free).
 * -EINVAL when the file is invalid: *out is NULL and err (errlen bytes, may be 0) receives
 * "line N: reason: "excerpt"" with the excerpt escaped. -ENOMEM when memory is short. */
int ph_envelope_parse(const char *buf, size_t len, ph_envelope **out, char *err, size_t errlen);

/* FNV-1a 64 of buf[0..len): the checksum on the end line. */
uint64_t ph_envelope_checksum(const void *buf, size_t len);

#endif
