/*
 * submit.h - a message handed to `posthorn sendmail` / `posthorn send` on standard input, made
 * ready for the queue: line ends made CRLF, the end of input found (a lone "." line ends it
 * unless -i), recipients taken from To:/Cc:/Bcc: with -t, Bcc: removed, From:/Date:/Message-ID:
 * added when missing, and a Received: line on top. Pure apart from allocation: the caller
 * supplies the time, ids and names.
 *
 * Ownership: ph_submission owns its data and recipient strings (ph_submission_free).
 */
#ifndef POSTHORN_QUEUE_SUBMIT_H
#define POSTHORN_QUEUE_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ph_submit_opts {
    bool extract_rcpts;      /* -t: recipients from To:, Cc:, Bcc: (added to rcpts[]) */
    bool dot_ends;           /* a line with a single "." ends the message (no -i) */
    const char *sender;      /* envelope sender ("" = null sender) */
    const char *full_name;   /* -F, for a From: that has to be added; may be NULL */
    const char *hostname;    /* qualifies bare local names; Message-ID's right side */
    const char *qid;         /* the queue id (Received:, Message-ID:) */
    const char *login;       /* who submits (Received: "from userid") */
    unsigned uid;
    int64_t now;             /* unix seconds */
    const char *const *rcpts;/* from the command line */
    size_t nrcpts;
    size_t max_size;         /* bytes of message; larger input is refused (-EFBIG) */
} ph_submit_opts;

typedef struct ph_submission {
    char *data;              /* the message, CRLF lines */
    size_t len;
    char **rcpts;            /* without duplicates, bare names qualified with @hostname */
    size_t nrcpts;
    bool eightbit;           /* a byte >= 0x80 somewhere: BODY=8BITMIME */
} ph_submission;

/*
 * Prepares in[0..inlen) as described. 0; -EINVAL with a reason in err (no recipients at all, a
 * recipient or sender that is not an address, a header section that is not one); -EFBIG;
 * -ENOMEM. On error *out is left empty.
 */
int ph_submit_prepare(const char *in, size_t inlen, const ph_submit_opts *o, ph_submission *out,
                      char *err, size_t errlen);
void ph_submission_free(ph_submission *s);

#endif
