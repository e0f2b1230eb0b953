/*
 * posthorn.h - the public API of libposthorn, an embeddable SMTP server.
 *
 * A server owns listeners and sessions and runs on a libevent event_base (the caller's or
 * its own). Every SMTP stage calls an optional hook; a hook answers with a verdict: accept,
 * reject with a chosen reply, disconnect, or PENDING (answer later with
 * posthorn_server_resume()). The message body reaches the data hooks as a stream.
 *
 * Conventions:
 *  - All structs are opaque; functions returning int give 0 or a negative errno.
 *  - Pointers passed to hooks are BORROWED: valid only for the duration of the call unless the
 *    comment says otherwise. Strings given to the library (verdict texts, config strings) are
 *    copied before the call returns.
 *  - There is no global state; several servers may live in one process.
 */
#ifndef POSTHORN_POSTHORN_H
#define POSTHORN_POSTHORN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTHORN_VERSION "0.1.0"

struct event_base;
typedef struct posthorn_server posthorn_server;
typedef struct posthorn_session posthorn_session;

/* ---- verdicts ------------------------------------------------------------------------ */

typedef enum posthorn_action {
    POSTHORN_ACCEPT = 0,     /* go on; code/text override the default positive reply if set */
    POSTHORN_REJECT = 1,     /* refuse this command: code 4xx/5xx (default 550 5.7.1) */
    POSTHORN_DISCONNECT = 2, /* send the reply (default 421 4.7.0) and close the session */
    POSTHORN_PENDING = 3,    /* answer later with posthorn_server_resume() */
} posthorn_action;

typedef struct posthorn_verdict {
    posthorn_action action;
    int code;             /* SMTP reply code, 0 = the default for the action and stage */
    const char *enhanced; /* RFC 3463 code such as "5.7.1", NULL = default */
    const char *text;     /* reply text, NULL = default; copied by the library */
} posthorn_verdict;

static inline posthorn_verdict posthorn_accept(void)
{
    posthorn_verdict v = {POSTHORN_ACCEPT, 0, NULL, NULL};
    return v;
}
static inline posthorn_verdict posthorn_reject(int code, const char *enhanced, const char *text)
{
    posthorn_verdict v = {POSTHORN_REJECT, code, enhanced, text};
    return v;
}
static inline posthorn_verdict posthorn_disconnect(int code, const char *enhanced, const char *text)
{
    posthorn_verdict v = {POSTHORN_DISCONNECT, code, enhanced, text};
    return v;
}
static inline posthorn_verdict posthorn_pending(void)
{
    posthorn_verdict v = {POSTHORN_PENDING, 0, NULL, NULL};
    return v;
}

/* ---- hooks ------------------------------------------------------------------------- */

/*
 * Every hook is optional (NULL = accept). `user` is the server's user pointer. A hook must not
 * free the session; it may call the posthorn_session_* getters. A hook that returns PENDING must
 * later call posthorn_server_resume() with the session id (never keep the session pointer across
 * the wait: the client may have gone). While a verdict is pending the session reads no input.
 */
typedef struct posthorn_hooks {
    posthorn_verdict (*on_connect)(posthorn_session *s, void *user);
    /* name: the HELO/EHLO argument; ehlo: true for EHLO */
    posthorn_verdict (*on_helo)(posthorn_session *s, const char *name, bool ehlo, void *user);
    /* address without angle brackets, "" for the null reverse-path <> */
    posthorn_verdict (*on_mail)(posthorn_session *s, const char *address, void *user);
    posthorn_verdict (*on_rcpt)(posthorn_session *s, const char *address, void *user);
    /* DATA or the first BDAT: posthorn_session_queue_id() is set from here on */
    posthorn_verdict (*on_data_start)(posthorn_session *s, void *user);
    /* A piece of the message (dot-unstuffed; the first piece is the Received: header).
     * REJECT here fails the message (the reply is sent after the end of the data) and
     * PENDING pauses reading until resumed: that is the backpressure. */
    posthorn_verdict (*on_data_chunk)(posthorn_session *s, const void *data, size_t len,
                                      void *user);
    /* The whole message was received. ACCEPT means "it is stored": the library then replies
     * 250 naming the queue id. */
    posthorn_verdict (*on_message)(posthorn_session *s, void *user);
    /* The transaction ended without a message (RSET, new EHLO, QUIT, failed DATA, close). */
    void (*on_abort)(posthorn_session *s, void *user);
    /* The client sent RSET (after on_abort if a transaction was open). */
    void (*on_rset)(posthorn_session *s, void *user);
    void (*on_disconnect)(posthorn_session *s, void *user);
    /*
     * AUTH (RFC 4954, SASL PLAIN or LOGIN): check the credentials. ACCEPT authenticates the
     * session (235 2.7.0); REJECT gives 535 5.7.8 (4xx: 454 4.7.0). password is wiped after the
     * call: copy it if the check runs later (PENDING; e.g. hash it on a worker thread). Without
     * this hook every AUTH fails. Failures are throttled per client address (limits).
     */
    posthorn_verdict (*on_auth)(posthorn_session *s, const char *mechanism, const char *authzid,
                                const char *username, const char *password, void *user);
} posthorn_hooks;

/* ---- limits and options -------------------------------------------------------------- */

typedef struct posthorn_limits {
    size_t max_line;             /* command line incl. CRLF; default 512 (500 5.5.6) */
    size_t max_data_line;        /* DATA text line excl. CRLF; default 998 (550 5.6.0) */
    uint64_t max_message_size;   /* bytes; default 32 MiB (552 5.3.4) */
    unsigned max_recipients;     /* per message; default 1000 (452 4.5.3) */
    unsigned max_errors;         /* per session; default 20 (421 4.7.0 and close) */
    unsigned max_connections;    /* per server (per worker); default 10000 (421 4.7.0) */
    unsigned max_per_ip;         /* per client address; default 100 (421 4.7.0) */
    unsigned idle_timeout_ms;    /* between client bytes; default 300000 (421 4.4.2) */
    unsigned session_timeout_ms; /* whole session; default 3600000 (421 4.4.2) */
    unsigned greeting_delay_ms;  /* wait before the banner; input in this time is an early
                                    talker (554 5.5.0 and close); default 0 */
    unsigned shutdown_grace_ms;  /* how long in-flight DATA may go on at shutdown; 30000 */
    unsigned auth_fail_limit;    /* failed AUTHs per client address before 421 4.7.0; 5 */
    unsigned auth_fail_delay_ms; /* delay of the first failure's reply, doubling; 1000 */
} posthorn_limits;

/* Fills *l with the defaults documented above. */
void posthorn_limits_default(posthorn_limits *l);

/* ---- listeners: TLS and AUTH policy ---------------------------------------------------- */

typedef enum posthorn_tls_mode {
    POSTHORN_TLS_NONE = 0,     /* plain SMTP, STARTTLS not offered */
    POSTHORN_TLS_STARTTLS = 1, /* STARTTLS offered (RFC 3207) */
    POSTHORN_TLS_IMPLICIT = 2, /* TLS from the first byte (RFC 8314, port 465 style) */
} posthorn_tls_mode;

typedef enum posthorn_auth_mode {
    POSTHORN_AUTH_NONE = 0,     /* AUTH not offered */
    POSTHORN_AUTH_TLS = 1,      /* AUTH offered only once the session is encrypted */
    POSTHORN_AUTH_INSECURE = 2, /* AUTH offered on plain sessions too (tests, trusted links) */
} posthorn_auth_mode;

typedef struct posthorn_tls_sni {
    const char *name;      /* server name (SNI) this certificate is for */
    const char *cert_file; /* PEM certificate chain */
    const char *key_file;  /* PEM private key */
} posthorn_tls_sni;

/* Per-listener options; strings and arrays are copied. Zero-initialise, then set fields. */
typedef struct posthorn_listener_options {
    posthorn_tls_mode tls;
    const char *cert_file, *key_file;  /* needed for STARTTLS and implicit TLS */
    const posthorn_tls_sni *sni;       /* more certificates, chosen by the client's SNI */
    size_t nsni;
    const char *tls_min_version;       /* "TLSv1.2" (default) or "TLSv1.3" */
    const char *tls_ciphers;           /* TLS <= 1.2 cipher list; NULL = OpenSSL default */
    const char *tls_ciphersuites;      /* TLS 1.3 suites; NULL = OpenSSL default */
    bool no_session_tickets;           /* some Microsoft clients fail with tickets */
    unsigned handshake_timeout_ms;     /* 0 = 30000 */
    bool require_tls;                  /* MAIL before STARTTLS: 530 5.7.0 */
    posthorn_auth_mode auth;
    bool require_auth;                 /* MAIL before AUTH: 530 5.7.0 (submission) */
    const posthorn_limits *limits;     /* NULL = the server's limits */
} posthorn_listener_options;

typedef struct posthorn_options {
    const char *hostname;   /* name in the banner, EHLO reply and Received:; default gethostname */
    const char *banner;     /* text after "220 hostname ESMTP"; default "Posthorn" */
    posthorn_limits limits; /* start from posthorn_limits_default() */
    const char *log_prefix; /* reserved, may be NULL */
} posthorn_options;

/* ---- logging ------------------------------------------------------------------------ */

typedef enum posthorn_log_level {
    POSTHORN_LOG_ERROR = 0,
    POSTHORN_LOG_WARN = 1,
    POSTHORN_LOG_INFO = 2,
    POSTHORN_LOG_DEBUG = 3,
} posthorn_log_level;

/* line: one key=value record without a newline, e.g. "event=connect sid=... client=..." */
typedef void (*posthorn_log_fn)(posthorn_log_level level, const char *line, void *user);

/*
 * Writes a fresh self-signed certificate (EC P-256, valid one year, for hostname, localhost,
 * 127.0.0.1 and ::1) and its private key (mode 0600) as PEM files: for development servers
 * whose clients should be able to try TLS at once. 0 or -EIO.
 */
int posthorn_tls_make_self_signed(const char *hostname, const char *cert_file,
                                  const char *key_file);

/* ---- server ------------------------------------------------------------------------ */

/*
 * Creates a server. base: the caller's event_base, or NULL for one the server owns (then run
 * it with posthorn_server_run()). hooks is copied. opts may be NULL for the defaults.
 * Returns NULL on failure with errno set.
 */
posthorn_server *posthorn_server_new(struct event_base *base, const posthorn_hooks *hooks,
                                     const posthorn_options *opts, void *user);

/* Closes every session and listener and frees the server. NULL is allowed. */
void posthorn_server_free(posthorn_server *srv);

/* The event_base the server runs on (borrowed). */
struct event_base *posthorn_server_base(posthorn_server *srv);
void *posthorn_server_user(posthorn_server *srv);

/* Sets the log callback (default: lines at INFO and above to stderr) and minimum level. */
void posthorn_server_set_log(posthorn_server *srv, posthorn_log_fn fn, posthorn_log_level min,
                             void *user);

/*
 * Adds a listener: "127.0.0.1:2525", "[::1]:2525", "*:25", or "unix:/path/sock".
 * Port 0 picks a free port (see posthorn_server_listener_port).
 */
int posthorn_server_listen(posthorn_server *srv, const char *address);

/* Adopts an already bound, listening socket (for pre-fork workers). Takes ownership of fd. */
int posthorn_server_listen_fd(posthorn_server *srv, int fd);

/*
 * Like posthorn_server_listen / _listen_fd with TLS, AUTH and limit options (opts may be NULL).
 * Certificates are loaded now: a bad certificate or key is -EINVAL (the reason is logged).
 * listen_fd_opts takes ownership of fd, also on failure.
 */
int posthorn_server_listen_opts(posthorn_server *srv, const char *address,
                                const posthorn_listener_options *opts);
int posthorn_server_listen_fd_opts(posthorn_server *srv, int fd,
                                   const posthorn_listener_options *opts);

/*
 * Reloads every listener's certificates and keys from their files (e.g. on SIGHUP). Sessions in
 * progress keep what they negotiated; new handshakes use the new certificates. If any file
 * fails to load, nothing changes and a negative errno is returned.
 */
int posthorn_server_reload_tls(posthorn_server *srv);

/*
 * Creates a bound, listening, non-blocking socket for address (same forms as
 * posthorn_server_listen) without a server, so a pre-fork daemon can bind once and share the
 * socket with its workers through posthorn_server_listen_fd(). Returns the fd (owned by the
 * caller) or a negative errno; *port receives the local port (0 for Unix sockets).
 */
int posthorn_listen_socket(const char *address, int *port);

/* Local port of listener number i (in the order added), or a negative errno. */
int posthorn_server_listener_port(posthorn_server *srv, unsigned i);

/* Runs the server's own event_base until posthorn_server_shutdown() completes. */
int posthorn_server_run(posthorn_server *srv);

/*
 * Graceful shutdown: stop accepting, answer 421 4.3.2 to idle sessions and close them, let
 * sessions in DATA finish within limits.shutdown_grace_ms, then close the rest. done (may be
 * NULL) is called once when the last session is gone.
 */
void posthorn_server_shutdown(posthorn_server *srv, void (*done)(posthorn_server *, void *),
                              void *arg);

/*
 * Like posthorn_server_shutdown, but sessions are not cut short: every session goes on until
 * the client ends it or a timeout does (for replacing a worker without dropping anyone).
 */
void posthorn_server_drain(posthorn_server *srv, void (*done)(posthorn_server *, void *),
                           void *arg);

/* Current number of open sessions. */
unsigned posthorn_server_session_count(posthorn_server *srv);

/*
 * Delivers the verdict for a hook that returned PENDING. Returns -ENOENT if the session is gone
 * (the verdict is then dropped), -EINVAL if it has no pending hook.
 */
int posthorn_server_resume(posthorn_server *srv, uint64_t session_id, posthorn_verdict verdict);

/*
 * Runs work(arg) on one of the server's worker threads (started on first use) and then
 * done(arg) on the event loop, for blocking jobs such as password hashing or a database
 * lookup inside a hook that returned PENDING. work must not touch the server or sessions;
 * done may call posthorn_server_resume(). Returns 0, -EAGAIN when the queue is full, -ENOMEM.
 * At posthorn_server_free() queued jobs still run and their done is called.
 */
int posthorn_server_offload(posthorn_server *srv, void (*work)(void *arg),
                            void (*done)(void *arg), void *arg);

/* ---- session getters (valid while the session lives; strings borrowed) ------------ */

uint64_t posthorn_session_id(const posthorn_session *s);
posthorn_server *posthorn_session_server(const posthorn_session *s);
void *posthorn_session_user(const posthorn_session *s);
void posthorn_session_set_user(posthorn_session *s, void *user);
const char *posthorn_session_client_ip(const posthorn_session *s);    /* "" for Unix sockets */
int posthorn_session_client_port(const posthorn_session *s);
const char *posthorn_session_helo(const posthorn_session *s);         /* NULL before HELO */
const char *posthorn_session_protocol(const posthorn_session *s);     /* SMTP, ESMTP, ESMTPS.. */
const char *posthorn_session_mail_from(const posthorn_session *s);    /* NULL outside a txn */
size_t posthorn_session_rcpt_count(const posthorn_session *s);
const char *posthorn_session_rcpt(const posthorn_session *s, size_t i);
const char *posthorn_session_queue_id(const posthorn_session *s);     /* NULL before DATA */
uint64_t posthorn_session_message_size(const posthorn_session *s);    /* bytes so far */
bool posthorn_session_tls(const posthorn_session *s);
const char *posthorn_session_tls_version(const posthorn_session *s); /* NULL without TLS */
const char *posthorn_session_tls_cipher(const posthorn_session *s);  /* NULL without TLS */
const char *posthorn_session_auth_user(const posthorn_session *s);    /* NULL if none */
uint64_t posthorn_session_declared_size(const posthorn_session *s);   /* MAIL SIZE=, or 0 */
const char *posthorn_session_body_type(const posthorn_session *s);    /* 7BIT, 8BITMIME or NULL */
bool posthorn_session_smtputf8(const posthorn_session *s);

#ifdef __cplusplus
}
#endif
#endif
