/*
 * lmtp_proto.c - the LMTP client as a wrapper over proto/smtp_client.c (see lmtp_proto.h).
 * After every call that can move the session on, an idle machine is told to QUIT (LMTP
 * sessions here carry one message) and the capability bits are copied out. Owns nothing.
 */
#include "deliver/lmtp_proto.h"

#include <errno.h>

#define LMTP_CAPS (PH_LMTP_CAP_PIPELINING | PH_LMTP_CAP_8BITMIME | PH_LMTP_CAP_SMTPUTF8 | \
                   PH_LMTP_CAP_ENHANCEDSTATUSCODES)

static void settle(ph_lmtp_client *c)
{
    if (ph_smtp_client_wants(&c->s) == PH_SMTP_WANT_NEXT)
        ph_smtp_client_quit(&c->s);
    c->caps = c->s.caps & LMTP_CAPS;
}

int ph_lmtp_client_init(ph_lmtp_client *c, const ph_lmtp_params *p, ph_lmtp_result *results)
{
    if (!c || !p)
        return -EINVAL;
    ph_smtp_client_params sp = {.mode = PH_SMTP_MODE_LMTP, .helo_name = p->lhlo_name};
    ph_smtp_envelope env = {.from = p->from, .rcpts = p->rcpts, .nrcpts = p->nrcpts,
                            .body_8bitmime = p->body_8bitmime, .smtputf8 = p->smtputf8};
    int rc = ph_smtp_client_init(&c->s, &sp, &env, results);
    if (rc == 0)
        c->caps = 0;
    return rc;
}

unsigned ph_lmtp_wants(const ph_lmtp_client *c) { return ph_smtp_client_wants(&c->s); }

const char *ph_lmtp_output(const ph_lmtp_client *c, size_t *len)
{
    return ph_smtp_client_output(&c->s, len);
}

void ph_lmtp_output_done(ph_lmtp_client *c, size_t n)
{
    ph_smtp_client_output_done(&c->s, n);
    settle(c);
}

void ph_lmtp_feed(ph_lmtp_client *c, const void *data, size_t len)
{
    ph_smtp_client_feed(&c->s, data, len);
    settle(c);
}

void ph_lmtp_closed(ph_lmtp_client *c) { ph_smtp_client_closed(&c->s); }

void ph_lmtp_message_sent(ph_lmtp_client *c) { ph_smtp_client_message_sent(&c->s); }

void ph_lmtp_fail(ph_lmtp_client *c, int code, const char *enh, const char *text)
{
    ph_smtp_client_fail(&c->s, code, enh, text);
}

const char *ph_lmtp_waiting_for(const ph_lmtp_client *c)
{
    return ph_smtp_client_waiting_for(&c->s);
}
