/*
 * lmtp_proto.h - the LMTP client (RFC 2033): a thin wrapper over the SMTP/LMTP client of
 * proto/smtp_client.h in LMTP mode (one transaction per session, no TLS, no AUTH), kept so
 * that lmtp.c and its callers need no change. See smtp_client.h for the protocol, outcomes and
 * ownership; the only addition here is that the session QUITs after its one message.
 */
#ifndef POSTHORN_DELIVER_LMTP_PROTO_H
#define POSTHORN_DELIVER_LMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/dotstuff.h"
#include "proto/smtp_client.h"

#define PH_LMTP_LINE_MAX PH_CLIENT_LINE_MAX
#define PH_LMTP_REPLY_LINES_MAX PH_CLIENT_REPLY_LINES_MAX
#define PH_LMTP_PATH_MAX PH_SMTP_PATH_MAX
#define PH_LMTP_NAME_MAX PH_SMTP_NAME_MAX
#define PH_LMTP_OUT_MAX PH_SMTP_OUT_MAX

#define PH_LMTP_CAP_PIPELINING PH_SMTP_CAP_PIPELINING
#define PH_LMTP_CAP_8BITMIME PH_SMTP_CAP_8BITMIME
#define PH_LMTP_CAP_SMTPUTF8 PH_SMTP_CAP_SMTPUTF8
#define PH_LMTP_CAP_ENHANCEDSTATUSCODES PH_SMTP_CAP_ENHANCEDSTATUSCODES

#define PH_LMTP_WANT_WRITE PH_SMTP_WANT_WRITE
#define PH_LMTP_WANT_READ PH_SMTP_WANT_READ
#define PH_LMTP_WANT_MESSAGE PH_SMTP_WANT_MESSAGE

typedef ph_client_result ph_lmtp_result;

typedef struct ph_lmtp_params {
    const char *lhlo_name;
    const char *from;
    bool body_8bitmime;
    bool smtputf8;
    const char *const *rcpts;
    size_t nrcpts;
} ph_lmtp_params;

typedef struct ph_lmtp_client {
    unsigned caps; /* PH_LMTP_CAP_* announced in the LHLO reply */
    ph_smtp_client s;
} ph_lmtp_client;

int ph_lmtp_client_init(ph_lmtp_client *c, const ph_lmtp_params *p, ph_lmtp_result *results);
unsigned ph_lmtp_wants(const ph_lmtp_client *c);
const char *ph_lmtp_output(const ph_lmtp_client *c, size_t *len);
void ph_lmtp_output_done(ph_lmtp_client *c, size_t n);
void ph_lmtp_feed(ph_lmtp_client *c, const void *data, size_t len);
void ph_lmtp_closed(ph_lmtp_client *c);
void ph_lmtp_message_sent(ph_lmtp_client *c);
void ph_lmtp_fail(ph_lmtp_client *c, int code, const char *enh, const char *text);
const char *ph_lmtp_waiting_for(const ph_lmtp_client *c);

typedef ph_dotstuffer ph_lmtp_dotstuffer;
#define PH_LMTP_DOTSTUFF_BOUND(n) PH_DOTSTUFF_BOUND(n)
#define PH_LMTP_DOTSTUFF_END_MAX PH_DOTSTUFF_END_MAX
#define ph_lmtp_dotstuff_init ph_dotstuff_init
#define ph_lmtp_dotstuff ph_dotstuff
#define ph_lmtp_dotstuff_finish ph_dotstuff_finish

#endif
