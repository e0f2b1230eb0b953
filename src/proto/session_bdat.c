/*
 * session_bdat.c - BDAT (RFC 3030 CHUNKING) in the SMTP state machine: the command's checks,
 * reading each announced chunk in PH_BDAT and handing its octets to HOOK_DATA_CHUNK, and the
 * reply per chunk or the end of the message after BDAT LAST.
 *
 * Separate from session.c because BDAT's framing is by count, not by lines: every chunk's
 * octets must be read even when the command is refused (a refusal only changes what is owed:
 * s->bdat_error or nothing, s->bdat_silent), which DATA never needs. Pure like the rest of the
 * core (session_internal.h): no I/O; the octets are borrowed from the fed input.
 */
#include "proto/session_internal.h"

#include <stdio.h>

/* Reads the chunk announced by BDAT (a zero-length chunk is complete at once). */
void session_bdat_begin(smtp_session *s)
{
    s->phase = PH_BDAT;
    if (s->bdat_left == 0 && s->hook.kind == HOOK_NONE)
        session_bdat_chunk_done(s);
}

/* BDAT must always consume its octets, even when refused (RFC 3030 2). */
static void bdat_discard(smtp_session *s, smtp_reply_id why)
{
    s->bdat_error = why;
    session_bdat_begin(s);
}

void session_cmd_bdat(smtp_session *s, const smtp_command *c)
{
    uint64_t size;
    bool last;
    if (smtp_parse_bdat(c->arg, c->arg_len, &size, &last) != R_NONE)
        return session_protocol_error(s, R_SYNTAX_BDAT);
    s->bdat_left = s->bdat_chunk = size;
    s->bdat_last = last;
    s->bdat_error = R_NONE;
    if (!s->txn)
        return bdat_discard(s, R_NEED_MAIL);
    if (!s->txn->rcpt_count)
        return bdat_discard(s, R_NEED_RCPT);
    if (s->cfg.max_message_size && s->txn->size + size > s->cfg.max_message_size + s->prefix_len) {
        session_txn_end(s, false); /* the message cannot succeed any more */
        return bdat_discard(s, R_SIZE_EXCEEDED);
    }
    if (s->bdat_used)
        return session_bdat_begin(s);
    session_want_hook(s, HOOK_DATA_START);
}

/* A BDAT chunk has been read completely: reply for it, or end the message after LAST. */
void session_bdat_chunk_done(smtp_session *s)
{
    s->phase = PH_COMMAND;
    s->hook_verb = V_BDAT;
    if (s->bdat_silent) {
        s->bdat_silent = false;
        return;
    }
    if (s->bdat_error != R_NONE) {
        smtp_reply_id why = s->bdat_error;
        s->bdat_error = R_NONE;
        if (why == R_SIZE_EXCEEDED)
            return session_reply_id(s, why, NULL);
        return session_protocol_error(s, why);
    }
    if (!s->txn)
        return;
    if (s->fail_code || s->bdat_last)
        return session_data_complete(s, 0);
    char n[24];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)s->bdat_chunk);
    session_reply_id(s, R_BDAT_OK, n);
}

size_t session_feed_bdat(smtp_session *s, const char *p, size_t len)
{
    size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;
    s->bdat_left -= n;
    bool deliver = s->bdat_error == R_NONE && !s->bdat_silent && s->txn && !s->fail_code;
    if (deliver && n) {
        s->txn->size += n;
        session_want_hook(s, HOOK_DATA_CHUNK);
        s->hook.chunk = p;
        s->hook.chunk_len = n;
    }
    if (s->bdat_left == 0 && s->hook.kind == HOOK_NONE)
        session_bdat_chunk_done(s);
    return n;
}
