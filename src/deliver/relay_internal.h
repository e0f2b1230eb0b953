/*
 * relay_internal.h - what relay.c (requests, destinations, exchanger choice) and relay_conn.c
 * (one outbound connection: socket, TLS, the SMTP client machine, the message stream) share.
 * Not a public interface: see relay.h.
 *
 * A connection starts as an attempt (connecting, then reading the greeting with a reply reader
 * of its own), becomes a session once relay.c picks it (the greeting bytes are replayed into a
 * fresh SMTP client machine), runs transactions for requests one after another, sits idle
 * between them, and ends with QUIT or an error. relay.c learns of each step through the
 * relay_on_* callbacks below; after relay_on_gone the connection is freed by relay_conn.c.
 */
#ifndef POSTHORN_DELIVER_RELAY_INTERNAL_H
#define POSTHORN_DELIVER_RELAY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "deliver/relay.h"
#include "dns/rdata.h"
#include "proto/client_reply.h"
#include "proto/dotstuff.h"
#include "proto/smtp_client.h"

struct event;
typedef struct relay_dest relay_dest;
typedef struct relay_req relay_req;
typedef struct relay_conn relay_conn;

typedef enum relay_conn_state {
    CONN_CONNECTING, /* TCP connect in progress */
    CONN_GREETING,   /* connected (and TLS up if implicit), waiting for the whole greeting */
    CONN_GREETED,    /* greeting 220 read; waiting for relay.c to pick it or drop it */
    CONN_SESSION,    /* the client machine runs a transaction for c->req */
    CONN_IDLE,       /* between transactions, kept for reuse */
    CONN_QUITTING,   /* QUIT sent, waiting for the reply or the close */
} relay_conn_state;

struct relay_conn {
    ph_relay *relay;
    relay_dest *dest;
    relay_req *req;             /* the request it runs (or attempts) for; NULL when idle */
    relay_conn *next;           /* in a request's attempts (while connecting) */
    relay_conn *snext;          /* in the destination's sessions (once greeted) */
    relay_conn_state state;
    int fd;
    ph_tls *tls;
    bool tls_handshake;         /* a handshake is in progress (implicit or after STARTTLS) */
    bool tls_verify;            /* check the server's certificate and name */
    bool tls_read_wants_write;  /* SSL_read needs the socket writable first */
    bool tls_write_wants_read;  /* SSL_write needs the peer's bytes first */
    bool best;                  /* an exchanger of the best preference (may be kept idle) */
    struct event *rev, *wev, *timer;
    /* who */
    char host[256];
    ph_dns_addr addr;
    unsigned port;
    size_t cand;                /* index into the request's candidates it was started for */
    char exchanger[PH_RELAY_EXCHANGER_MAX];
    long long started_ms;
    ph_smtp_client_params params;
    /* greeting phase */
    ph_reply_reader rr;
    char greeting[2048];
    size_t greeting_len;
    /* output */
    char *wbuf;
    size_t wcap, woff, wlen;
    /* message stream */
    bool streaming;
    off_t msg_off;
    ph_dotstuffer ds;
    unsigned transactions;
    ph_smtp_client c;           /* last: large */
};

/* relay_conn.c. start: NULL with err when the socket cannot even be made (the attempt failed
 * at once); else the attempt reports through the callbacks. c->tls_verify may be set right
 * after. */
relay_conn *relay_conn_start(ph_relay *r, relay_req *q, size_t cand, const char *host,
                             const ph_dns_addr *addr, unsigned port,
                             const ph_smtp_client_params *params, char *err, size_t errlen);
/* The attempt won: run q's transaction on it (the greeting is replayed). */
void relay_conn_begin(relay_conn *c, relay_req *q, const ph_smtp_envelope *env,
                      ph_client_result *results);
/* Reuse an idle (or just finished) session for q. */
void relay_conn_next(relay_conn *c, relay_req *q, const ph_smtp_envelope *env,
                     ph_client_result *results);
/* Park an idle session (idle timer), or end it with QUIT. */
void relay_conn_idle(relay_conn *c, unsigned idle_ms);
void relay_conn_quit(relay_conn *c);
/* Closes at once and frees; no callback. */
void relay_conn_abort(relay_conn *c);
/* "host[addr]:port" */
void relay_format_exchanger(char *buf, size_t size, const char *host, const ph_dns_addr *a,
                            unsigned port);

/* relay.c, called by relay_conn.c on the loop */
void relay_on_greeted(relay_conn *c);
void relay_on_attempt_failed(relay_conn *c, int code, const char *enh, const char *why,
                             bool remote);
void relay_on_txn_done(relay_conn *c);
void relay_on_gone(relay_conn *c);
const ph_relay_options *relay_options(const ph_relay *r);
struct event_base *relay_base(const ph_relay *r);
ph_tls_ctx *relay_tls_ctx(const ph_relay *r, bool verify);
int relay_req_fd(const relay_req *q);
const char *relay_req_qid(const relay_req *q);
long long relay_now_ms(void);

#endif
