/*
 * server_internal.h - the structures behind the opaque posthorn_server and posthorn_session,
 * shared by server.c (lifecycle, registry, resume), hooks.c (core hook requests -> user hooks),
 * io/connection.c (bytes <-> core) and io/listener.c (sockets). Not installed.
 */
#ifndef POSTHORN_SERVER_INTERNAL_H
#define POSTHORN_SERVER_INTERNAL_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdint.h>
#include <sys/types.h>

#include "io/ipcount.h"
#include "io/tls.h"
#include "io/workpool.h"
#include "posthorn/posthorn.h"
#include "proto/session.h"

/* Size of the shared read buffer: one read() takes at most this much. */
#define PH_READ_BUFFER (64 * 1024)

typedef struct ph_listener {
    posthorn_server *srv;
    struct evconnlistener *evl;
    int port;                    /* local port, 0 for Unix sockets */
    char *unix_path;             /* owned; unlinked at close */
    posthorn_listener_options opts; /* deep copy: every string and the SNI array owned */
    posthorn_limits limits;      /* effective limits for its sessions */
    const struct timeval *idle_tv; /* common timeout for its sessions' reads */
    ph_tls_ctx *tls;             /* NULL without TLS; sessions hold their own reference */
} ph_listener;

struct posthorn_session {
    posthorn_server *srv;
    uint64_t id;
    smtp_session *core;
    int fd;
    const posthorn_limits *limits; /* the listener's (valid while the server lives) */
    const struct timeval *idle_tv;
    ph_tls_ctx *tls_ctx;         /* referenced when the listener offers TLS */
    ph_tls *tls;                 /* the TLS layer once STARTTLS or implicit TLS began */
    bool handshaking, write_wants_read, tls_after_flush;
    unsigned handshake_timeout_ms;
    struct event *tls_timer;     /* handshake deadline */
    struct event *read_ev;       /* persistent; its timeout is the idle timeout */
    struct event *write_ev;      /* only pending while replies wait for the socket */
    struct event *greet_timer;   /* greeting delay, lazily created */
    strbuf inq;                  /* input read but not yet consumed (a hook was pending) */
    void *user;
    char client_ip[64];
    int client_port;
    uint64_t started_ms;
    bool user_pending;           /* a user hook returned PENDING */
    bool auth_checked;           /* the AUTH verdict went through the throttle */
    struct event *auth_timer;    /* holds a failed AUTH's reply */
    bool have_verdict;           /* posthorn_server_resume stored a verdict */
    smtp_verdict verdict;        /* its strings are owned below */
    char *verdict_enh, *verdict_text;
    bool in_drive, closing, eof, dead, reading, counted_ip;
    size_t to_drain;             /* input bytes the core consumed, dropped after the hooks */
    unsigned rcpts_total;
    posthorn_session *next, *prev;     /* all sessions of the server */
    posthorn_session *hash_next;       /* id registry chain */
    posthorn_session *dead_next;       /* deferred free list */
};

struct posthorn_server {
    struct event_base *base;
    bool own_base;
    posthorn_hooks hooks;
    void *user;
    posthorn_limits limits;
    char *hostname, *banner;
    ph_listener **listeners;     /* each allocated alone: sessions and callbacks point at them */
    unsigned nlisteners;
    posthorn_log_fn log_fn;
    void *log_user;
    posthorn_log_level log_min;
    posthorn_session *sessions;  /* doubly linked list */
    unsigned nsessions;
    posthorn_session **hash;     /* id -> session */
    size_t hash_size;
    ph_ipcount ipcount;
    ph_workpool *pool;           /* blocking jobs (posthorn_server_offload), lazily made */
    ph_ipcount auth_failures;    /* failed AUTHs per client address in this window */
    uint64_t auth_fail_epoch_ms;
    uint64_t next_id;
    uint32_t qid_counter;
    posthorn_session *dead;      /* sessions awaiting free */
    struct event *reaper;        /* frees dead sessions outside callbacks */
    struct event *sweeper;       /* 1 s: session timeouts, shutdown deadline */
    char *rbuf;                  /* shared read buffer: input is fed from here, zero-copy */
    pid_t pid;
    bool shutting_down;
    bool draining;               /* shutting down without closing sessions */
    uint64_t shutdown_deadline_ms;
    void (*shutdown_done)(posthorn_server *, void *);
    void *shutdown_arg;
};

/* server.c */
uint64_t ph_now_ms(void);
void ph_log(posthorn_server *srv, posthorn_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Escapes a client-supplied log value (see server.c); returns in itself when it is safe. */
#define PH_LOG_VALUE_MAX 1100
const char *ph_log_value(const char *in, char *out, size_t cap);
void ph_session_register(posthorn_server *srv, posthorn_session *s);
void ph_session_unregister(posthorn_server *srv, posthorn_session *s);
void ph_check_shutdown_done(posthorn_server *srv);

/* io/connection.c */
void ph_connection_accept(ph_listener *l, int fd, const struct sockaddr *sa, int salen);
void ph_connection_drive(posthorn_session *s);
void ph_connection_close(posthorn_session *s);
/* Marks the session dead (disconnect hook, unregister) and queues the free. */
void ph_connection_free_later(posthorn_session *s);
void ph_connection_free(posthorn_session *s);

/* io/listener.c */
int ph_listener_open(posthorn_server *srv, const char *address,
                     const posthorn_listener_options *opts);
/* Takes ownership of fd, also on failure. */
int ph_listener_adopt(posthorn_server *srv, int fd, const posthorn_listener_options *opts);
void ph_listeners_close(posthorn_server *srv);
/* Stops accepting (closes the sockets) but keeps the listeners' settings for live sessions. */
void ph_listeners_stop(posthorn_server *srv);
int ph_listeners_reload_tls(posthorn_server *srv);
/* Creates a bound, listening socket for address (for pre-fork workers): fd or -errno. */
int ph_listener_bind(const char *address, int *port_out);

/* hooks.c */
/* Calls the user hook for the core's pending request; returns its verdict. */
posthorn_verdict ph_hooks_call(posthorn_session *s, const smtp_hook_req *req);
void ph_hooks_abort(posthorn_session *s);
/*
 * Throttles AUTH per client address: logs the outcome, counts failures (a success clears
 * them), turns the verdict into 421 4.7.0 and close at the limit, and returns how long to hold
 * a failure's reply (ms), growing with each failure.
 */
unsigned ph_hooks_auth_result(posthorn_session *s, const char *user, smtp_verdict *v);
void ph_hooks_rset(posthorn_session *s);
void ph_hooks_disconnect(posthorn_session *s);
/* Logs a refusal the core sent (the session config's on_refusal). */
void ph_hooks_on_refusal(void *ctx, const char *verb, int code, const char *line);

#endif
