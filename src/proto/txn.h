/*
 * txn.h - one mail transaction: reverse-path, MAIL parameters, accepted recipients, queue id and
 * the message's running size. Created at MAIL, freed as a unit at end of message, RSET, a new
 * HELO/EHLO or the end of the session.
 */
#ifndef POSTHORN_PROTO_TXN_H
#define POSTHORN_PROTO_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/addr.h"

typedef struct smtp_mail_params smtp_mail_params;

typedef struct smtp_txn {
    char *mail_from;         /* "" for the null path */
    bool smtputf8;
    int body;                /* smtp_body */
    uint64_t declared_size;  /* SIZE=, 0 if not given */
    char **rcpts;            /* accepted recipients, each owned */
    size_t rcpt_count;
    size_t rcpt_cap;
    char queue_id[32];       /* set by the driver at DATA start; "" before */
    uint64_t size;           /* message octets so far (after unstuffing) */
    bool data_started;       /* DATA/BDAT accepted: the message was begun */
    bool failed;             /* a chunk hook or BDAT error failed the message */
    unsigned data_errors;    /* DATA_ERR_* from the framer, or BDAT size */
} smtp_txn;

/* NULL on memory shortage. mail_from is copied. */
smtp_txn *smtp_txn_new(const char *mail_from, size_t len);
void smtp_txn_free(smtp_txn *t);
/* Adds a copy of the recipient. 0, or -1 on memory shortage. */
int smtp_txn_add_rcpt(smtp_txn *t, const char *rcpt, size_t len);

#endif
