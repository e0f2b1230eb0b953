/*
 * delivery_queue.c - `delivery = queue`: each message streams into the durable spool and is
 * acknowledged only when its group commit says it is on disk (data + envelope fsync'd,
 * renamed into queue/, directory fsync'd). ENOSPC answers 452 4.3.1, any other failure
 * 451 4.3.0; nothing is left behind either way. Delivery from the queue comes with issue 4's
 * scheduler.
 *
 * Owns the worker process's spool (opened on first use, on that process's event loop) and one
 * spool message per session in DATA (the session's user pointer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/delivery.h"
#include "daemon/logbuf.h"
#include "queue/envelope.h"
#include "queue/spool.h"

static ph_spool *process_spool; /* one per worker process (each has its own event loop) */

static int offload(void *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
    return posthorn_server_offload(ctx, work, done, arg);
}

static ph_spool *spool_for(posthorn_server *srv, const msg_store *ms)
{
    if (process_spool)
        return process_spool;
    char err[512];
    /* recovery (purging incoming/) ran once in the parent: workers must not purge each other */
    int r = ph_spool_open(ms->queue_dir, posthorn_server_base(srv), offload, srv, false,
                          &process_spool, err, sizeof(err));
    if (r < 0)
        logbuf_now(POSTHORN_LOG_ERROR, "event=queue_error what=open error=\"%s\"", err);
    return process_spool;
}

static posthorn_verdict temp_failure(int err)
{
    if (err == -ENOSPC)
        return posthorn_reject(452, "4.3.1", "Insufficient system storage, try again later");
    return posthorn_reject(451, "4.3.0", "Error: could not queue the message, try again later");
}

static posthorn_verdict q_data_start(posthorn_session *s, void *user)
{
    ph_spool *sp = spool_for(posthorn_session_server(s), user);
    ph_spool_msg *m = sp ? ph_spool_begin(sp, posthorn_session_queue_id(s)) : NULL;
    if (!m)
        return temp_failure(-errno);
    posthorn_session_set_user(s, m);
    return posthorn_accept();
}

static posthorn_verdict q_data_chunk(posthorn_session *s, const void *data, size_t len,
                                     void *user)
{
    (void)user;
    ph_spool_msg *m = posthorn_session_user(s);
    int r = m ? ph_spool_append(m, data, len) : -EIO;
    return r < 0 ? temp_failure(r) : posthorn_accept();
}

/* The envelope of the session's current transaction, serialized. */
static int build_envelope(posthorn_session *s, char **out, size_t *len)
{
    ph_envelope *e = ph_envelope_new();
    if (!e)
        return -ENOMEM;
    const char *ip = posthorn_session_client_ip(s);
    int r = ph_envelope_set_string(&e->id, posthorn_session_queue_id(s));
    r |= ph_envelope_set_string(&e->client, ip[0] ? ip : "unix");
    r |= ph_envelope_set_string(&e->helo, posthorn_session_helo(s));
    r |= ph_envelope_set_string(&e->protocol, posthorn_session_protocol(s));
    r |= ph_envelope_set_string(&e->auth, posthorn_session_auth_user(s));
    r |= ph_envelope_set_string(&e->tls_version, posthorn_session_tls_version(s));
    r |= ph_envelope_set_string(&e->tls_cipher, posthorn_session_tls_cipher(s));
    r |= ph_envelope_set_string(&e->from, posthorn_session_mail_from(s));
    e->received = time(NULL);
    e->size = posthorn_session_message_size(s);
    const char *body = posthorn_session_body_type(s);
    char param[32];
    if (body && snprintf(param, sizeof(param), "BODY=%s", body) > 0)
        r |= ph_envelope_add_param(e, param);
    if (posthorn_session_smtputf8(s))
        r |= ph_envelope_add_param(e, "SMTPUTF8");
    for (size_t i = 0; i < posthorn_session_rcpt_count(s); i++)
        r |= ph_envelope_add_rcpt(e, posthorn_session_rcpt(s, i));
    if (r == 0)
        r = ph_envelope_serialize(e, out, len);
    ph_envelope_free(e);
    return r < 0 ? r : 0;
}

typedef struct commit_wait {
    posthorn_server *srv;
    uint64_t sid; /* the client may be gone by the time the disk says yes */
} commit_wait;

static void committed(void *arg, int result)
{
    commit_wait *w = arg;
    posthorn_verdict v = result == 0 ? posthorn_accept() : temp_failure(result);
    if (result < 0)
        logbuf_now(POSTHORN_LOG_ERROR, "event=queue_error what=commit error=\"%s\"",
                   strerror(-result));
    posthorn_server_resume(w->srv, w->sid, v);
    free(w);
}

static posthorn_verdict q_message(posthorn_session *s, void *user)
{
    (void)user;
    ph_spool_msg *m = posthorn_session_user(s);
    posthorn_session_set_user(s, NULL); /* the spool owns it from here on */
    char *env = NULL;
    size_t len = 0;
    int r = m ? build_envelope(s, &env, &len) : -EIO;
    commit_wait *w = r == 0 ? malloc(sizeof(*w)) : NULL;
    if (!w) {
        ph_spool_abort(m);
        free(env);
        return temp_failure(r < 0 ? r : -ENOMEM);
    }
    *w = (commit_wait){posthorn_session_server(s), posthorn_session_id(s)};
    r = ph_spool_commit(m, env, len, committed, w);
    free(env);
    if (r < 0) {
        free(w);
        return temp_failure(r);
    }
    return posthorn_pending(); /* the 250 waits for the group commit */
}

static void q_abort(posthorn_session *s, void *user)
{
    (void)user;
    ph_spool_abort(posthorn_session_user(s));
    posthorn_session_set_user(s, NULL);
}

void msg_queue_hooks(posthorn_hooks *h)
{
    h->on_data_start = q_data_start;
    h->on_data_chunk = q_data_chunk;
    h->on_message = q_message;
    h->on_abort = q_abort;
    h->on_disconnect = q_abort;
}

int msg_queue_recover(const char *dir, char *err, size_t errlen)
{
    ph_spool *sp = NULL;
    /* no event loop is needed just to scan and purge */
    int r = ph_spool_open(dir, NULL, NULL, NULL, true, &sp, err, errlen);
    if (r == 0)
        logbuf_now(POSTHORN_LOG_INFO, "event=queue_open dir=%s queued=%ld", dir,
                   ph_spool_count(sp));
    ph_spool_close(sp);
    return r;
}
