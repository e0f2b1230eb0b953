/*
 * delivery.c - what the daemon does with a message and a login: the hooks shared by
 * `posthorn sink` and `posthorn serve`. Each message is collected per session, then printed
 * (sink) and/or stored durably as DIR/<qid>.eml + DIR/<qid>.json before the 250, or dropped
 * (discard). AUTH checks run on the server's worker threads against the password file.
 *
 * Owns one message buffer per session (the session's user pointer), freed at disconnect.
 * A failed store answers 451 4.3.0; memory shortage 451 4.3.0; nothing here exits.
 */
#include "daemon/delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/envelope.h"
#include "daemon/logbuf.h"

#define KEEP_BUFFER_MAX (1u << 20) /* give back bigger buffers after each message */

typedef struct stored_msg {
    char *data;
    size_t len, cap;
} stored_msg;

static bool store_buffers(const msg_store *sc)
{
    return sc->store_dir || !sc->quiet;
}

static posthorn_verdict on_data_start(posthorn_session *s, void *user)
{
    if (!store_buffers(user))
        return posthorn_accept();
    stored_msg *m = posthorn_session_user(s);
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return posthorn_reject(451, "4.3.0", "Out of memory, try again later");
        posthorn_session_set_user(s, m);
    }
    m->len = 0;
    return posthorn_accept();
}

static posthorn_verdict on_data_chunk(posthorn_session *s, const void *data, size_t len,
                                      void *user)
{
    stored_msg *m = posthorn_session_user(s);
    if (!store_buffers(user) || !m)
        return posthorn_accept();
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 8192;
        while (cap < m->len + len)
            cap *= 2;
        char *d = realloc(m->data, cap);
        if (!d)
            return posthorn_reject(451, "4.3.0", "Out of memory, try again later");
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return posthorn_accept();
}

static void release_big_buffer(stored_msg *m)
{
    m->len = 0;
    if (m->cap > KEEP_BUFFER_MAX) {
        free(m->data);
        m->data = NULL;
        m->cap = 0;
    }
}

static posthorn_verdict on_message(posthorn_session *s, void *user)
{
    const msg_store *sc = user;
    stored_msg *m = posthorn_session_user(s);
    if (!store_buffers(sc) || !m)
        return posthorn_accept();
    size_t n = posthorn_session_rcpt_count(s);
    const char **rcpts = malloc((n ? n : 1) * sizeof(*rcpts));
    if (!rcpts)
        return posthorn_reject(451, "4.3.0", "Out of memory, try again later");
    for (size_t i = 0; i < n; i++)
        rcpts[i] = posthorn_session_rcpt(s, i);
    sink_envelope env = {
        .qid = posthorn_session_queue_id(s), .client_ip = posthorn_session_client_ip(s),
        .client_port = posthorn_session_client_port(s), .helo = posthorn_session_helo(s),
        .mail_from = posthorn_session_mail_from(s), .rcpts = rcpts, .nrcpts = n,
        .size = m->len, .tls = posthorn_session_tls(s), .auth = posthorn_session_auth_user(s),
        .tls_version = posthorn_session_tls_version(s),
        .tls_cipher = posthorn_session_tls_cipher(s),
        .received_at = time(NULL),
    };
    int r = sc->store_dir ? envelope_store(sc->store_dir, &env, m->data, m->len) : 0;
    if (r == 0 && !sc->quiet)
        envelope_print(stdout, &env, m->data, m->len);
    free(rcpts);
    release_big_buffer(m);
    if (r < 0) {
        logbuf_now(POSTHORN_LOG_ERROR, "event=store_failed qid=%s error=\"%s\"", env.qid,
                   strerror(-r));
        return posthorn_reject(451, "4.3.0", "Error: could not store the message, try again later");
    }
    return posthorn_accept();
}

static void on_abort(posthorn_session *s, void *user)
{
    (void)user;
    stored_msg *m = posthorn_session_user(s);
    if (m)
        release_big_buffer(m);
}

static void on_disconnect(posthorn_session *s, void *user)
{
    (void)user;
    stored_msg *m = posthorn_session_user(s);
    if (m) {
        free(m->data);
        free(m);
        posthorn_session_set_user(s, NULL);
    }
}

/* ---- AUTH -------------------------------------------------------------------------------- */

typedef struct auth_job {
    posthorn_server *srv;
    uint64_t sid; /* the session may be gone when the hash is done */
    const passwd_db *db;
    bool ok;
    char user[256], password[256];
} auth_job;

static void auth_work(void *arg) /* on a worker thread: crypt(3) takes tens of ms */
{
    auth_job *j = arg;
    j->ok = passwd_db_verify(j->db, j->user, j->password);
    explicit_bzero(j->password, sizeof(j->password));
}

static void auth_done(void *arg) /* back on the event loop */
{
    auth_job *j = arg;
    posthorn_server_resume(j->srv, j->sid,
                           j->ok ? posthorn_accept() : posthorn_reject(535, "5.7.8", NULL));
    free(j);
}

static posthorn_verdict on_auth(posthorn_session *s, const char *mech, const char *authzid,
                                const char *user, const char *password, void *arg)
{
    (void)mech;
    const msg_store *sc = arg;
    if (sc->auth_any)
        return posthorn_accept();
    if (!sc->passwords || (authzid[0] && strcmp(authzid, user) != 0))
        return posthorn_reject(535, "5.7.8", NULL); /* no acting as someone else */
    auth_job *j = calloc(1, sizeof(*j));
    if (!j)
        return posthorn_reject(454, "4.7.0", NULL);
    j->srv = posthorn_session_server(s);
    j->sid = posthorn_session_id(s);
    j->db = sc->passwords;
    snprintf(j->user, sizeof(j->user), "%s", user);
    snprintf(j->password, sizeof(j->password), "%s", password);
    if (posthorn_server_offload(j->srv, auth_work, auth_done, j) < 0) {
        explicit_bzero(j->password, sizeof(j->password));
        free(j);
        return posthorn_reject(454, "4.7.0", NULL);
    }
    return posthorn_pending();
}

void msg_store_hooks(posthorn_hooks *h)
{
    h->on_data_start = on_data_start;
    h->on_data_chunk = on_data_chunk;
    h->on_message = on_message;
    h->on_abort = on_abort;
    h->on_disconnect = on_disconnect;
    h->on_auth = on_auth;
}
