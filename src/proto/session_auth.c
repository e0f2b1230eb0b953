/*
 * session_auth.c - AUTH (RFC 4954) in the SMTP state machine: when AUTH may start, the SASL
 * exchange (challenges in 334 replies, response lines read in PH_AUTH under their own length
 * limit), the credentials handed to HOOK_AUTH, and the verdict. The mechanisms themselves
 * (PLAIN, LOGIN, base64) are in sasl.c.
 *
 * Separate from session.c because the exchange is a small state machine of its own with its own
 * hazard: secrets. It owns s->sasl while an exchange runs and wipes it (and the line buffer the
 * base64 passwords passed through) whenever the exchange ends, however it ends. Pure like the
 * rest of the core (session_internal.h): no I/O.
 */
#include "proto/session_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proto/text.h"

void session_auth_end(smtp_session *s)
{
    if (s->sasl) {
        sasl_wipe(s->sasl);
        free(s->sasl);
        s->sasl = NULL;
    }
    if (s->line.data)
        explicit_bzero(s->line.data, s->line.len); /* base64 passwords passed through here */
    s->line.limit = s->cfg.max_line ? s->cfg.max_line + 1 : 0;
    if (s->phase == PH_AUTH)
        s->phase = PH_COMMAND;
}

/* Acts on what the SASL exchange says: another challenge, the credentials, or a refusal. */
static void auth_progress(smtp_session *s, sasl_result r)
{
    if (r == SASL_CONTINUE) {
        s->phase = PH_AUTH;
        s->line.limit = AUTH_LINE_MAX;
        return session_reply_id(s, R_AUTH_CHALLENGE, sasl_challenge(s->sasl));
    }
    if (r == SASL_DONE) {
        session_want_hook(s, HOOK_AUTH);
        s->hook.mechanism = sasl_mech_name(s->sasl->mech);
        s->hook.authzid = s->sasl->authzid;
        s->hook.user = s->sasl->user;
        s->hook.password = s->sasl->password;
        return;
    }
    session_auth_end(s);
    session_protocol_error(s, sasl_result_reply(r));
}

static smtp_reply_id auth_refusal(const smtp_session *s)
{
    if (!s->cfg.auth)
        return R_NOT_IMPLEMENTED;
    if (!s->esmtp || s->txn)
        return R_BAD_SEQUENCE; /* RFC 4954 4: after EHLO, never inside a transaction */
    if (s->auth)
        return R_AUTH_ALREADY;
    if (!s->tls && !s->cfg.auth_insecure)
        return R_AUTH_NEED_TLS;
    return R_NONE;
}

void session_cmd_auth(smtp_session *s, const smtp_command *c)
{
    smtp_reply_id why = auth_refusal(s);
    if (why != R_NONE)
        return session_protocol_error(s, why);
    size_t mlen = 0;
    while (mlen < c->arg_len && c->arg[mlen] != ' ')
        mlen++;
    int mech = sasl_mech_from_name(c->arg, mlen);
    if (mech < 0)
        return session_protocol_error(s, mlen ? R_AUTH_UNKNOWN_MECH : R_SYNTAX);
    const char *initial = c->arg + mlen;
    size_t ilen = c->arg_len - mlen;
    while (ilen && *initial == ' ')
        initial++, ilen--;
    s->sasl = calloc(1, sizeof(*s->sasl));
    if (!s->sasl)
        return session_fail_memory(s);
    auth_progress(s, sasl_begin(s->sasl, mech, initial, ilen, ilen > 0));
}

/* A SASL response line in PH_AUTH (CRLF removed). */
void session_auth_line(smtp_session *s, const char *line, size_t len)
{
    s->hook_verb = V_AUTH;
    auth_progress(s, sasl_step(s->sasl, line, len));
}

void session_auth_accepted(smtp_session *s)
{
    free(s->auth_user);
    s->auth_user = text_dup(s->sasl->user, s->sasl->user_len);
    s->auth = s->auth_user != NULL;
    session_auth_end(s);
    session_reply_id(s, R_AUTH_OK, NULL);
}

void session_auth_refused(smtp_session *s)
{
    session_auth_end(s);
}
