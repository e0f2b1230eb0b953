/*
 * delivery_queue.c - `delivery = queue`: each message streams into the durable spool and is
 * acknowledged only when its group commit says it is on disk (data + envelope fsync'd,
 * renamed into queue/, directory fsync'd). ENOSPC answers 452 4.3.1, any other failure
 * 451 4.3.0; nothing is left behind either way. The queue manager process (qmgr_main.c)
 * delivers from the queue.
 *
 * Recipients: local ones (the [domain] sections) are accepted from anyone, others only when
 * the client may relay (rcpt_policy.h); the envelope stores the final addresses (aliases
 * expanded). A message with more Received: fields than max_received_headers is a mail loop:
 * 554 5.4.6.
 *
 * Owns the worker process's spool (opened on first use, on that process's event loop) and one
 * incoming message per session in DATA (the session's user pointer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/delivery.h"
#include "daemon/logbuf.h"
#include "daemon/rcpt_policy.h"
#include "proto/hdrscan.h"
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

/* A message being received: its spool file and the loop check of its header. */
typedef struct incoming {
    ph_spool_msg *m;
    ph_hdrscan scan;
} incoming;

static void incoming_abort(incoming *in)
{
    if (!in)
        return;
    ph_spool_abort(in->m);
    free(in);
}

static posthorn_verdict q_rcpt(posthorn_session *s, const char *address, void *user)
{
    const msg_store *ms = user;
    return rcpt_policy_check(ms->policy, s, address);
}

static posthorn_verdict q_data_start(posthorn_session *s, void *user)
{
    ph_spool *sp = spool_for(posthorn_session_server(s), user);
    incoming *in = sp ? calloc(1, sizeof(*in)) : NULL;
    if (in && !(in->m = ph_spool_begin(sp, posthorn_session_queue_id(s)))) {
        int e = errno;
        free(in);
        in = NULL;
        errno = e;
    }
    if (!in)
        return temp_failure(-errno);
    ph_hdrscan_init(&in->scan);
    posthorn_session_set_user(s, in);
    return posthorn_accept();
}

static posthorn_verdict q_data_chunk(posthorn_session *s, const void *data, size_t len,
                                     void *user)
{
    (void)user;
    incoming *in = posthorn_session_user(s);
    if (in && !in->scan.done)
        ph_hdrscan_feed(&in->scan, data, len);
    int r = in ? ph_spool_append(in->m, data, len) : -EIO;
    return r < 0 ? temp_failure(r) : posthorn_accept();
}

/* The final addresses of the transaction's recipients, in order, without duplicates. */
static int add_recipients(ph_envelope *e, posthorn_session *s, const rcpt_policy *policy)
{
    char **list = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    for (size_t i = 0; i < posthorn_session_rcpt_count(s) && r == 0; i++)
        r = rcpt_policy_expand(policy, posthorn_session_rcpt(s, i), &list, &n, &cap);
    for (size_t i = 0; i < n; i++) {
        if (r == 0)
            r = ph_envelope_add_rcpt(e, list[i]);
        free(list[i]);
    }
    free(list);
    return r;
}

/* The envelope of the session's current transaction, serialized. */
static int build_envelope(posthorn_session *s, const rcpt_policy *policy, char **out,
                          size_t *len)
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
    if (r == 0)
        r = add_recipients(e, s, policy);
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
    const msg_store *ms = user;
    incoming *in = posthorn_session_user(s);
    posthorn_session_set_user(s, NULL);
    if (in && ms->max_received && in->scan.received > ms->max_received) {
        logbuf_now(POSTHORN_LOG_INFO, "event=loop qid=%s received_headers=%llu",
                   posthorn_session_queue_id(s), (unsigned long long)in->scan.received);
        incoming_abort(in);
        return posthorn_reject(554, "5.4.6", "Too many Received headers: mail loop detected");
    }
    ph_spool_msg *m = in ? in->m : NULL; /* the spool owns it from here on */
    free(in);
    char *env = NULL;
    size_t len = 0;
    int r = m ? build_envelope(s, ms->policy, &env, &len) : -EIO;
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
    incoming_abort(posthorn_session_user(s));
    posthorn_session_set_user(s, NULL);
}

void msg_queue_hooks(posthorn_hooks *h)
{
    h->on_rcpt = q_rcpt;
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
