/*
 * relay.h - delivery to other mail servers (RFC 5321): the MX relay and smarthosts, run on the
 * queue manager's event loop.
 *
 * A delivery job (job.c) hands over the remote recipients of one message, one request per
 * destination (a recipient domain, or a [relay] smarthost), with ph_relay_submit on the loop
 * (the job is suspended meanwhile and holds no thread: qmgr.h), or ph_relay_deliver from any
 * other thread, which waits. All network work happens on the loop: the MX lookup
 * (dns/mx.h), connection attempts, TLS, the SMTP client state machine
 * (proto/smtp_client.h), the message stream; sessions are shared between messages.
 *
 * Per request:
 *   MX lookup (smarthost: its address) -> permanent DNS verdict: every recipient fails with it
 *   (null MX 556 5.1.10, NXDOMAIN 550 5.1.2); temporary: every recipient deferred (4.4.3).
 *   Exchangers whose name is our own host name, and every one of equal or worse preference,
 *   are dropped (RFC 5321 5.1); none left: 554 5.4.6 "mail loops back to myself". A server
 *   that greets with our own host name is the same loop (554 5.4.6 for that attempt).
 *   -> a free session of this destination (idle, kept from an earlier message) is reused
 *   (RSET between messages as the client core decides); else, below destination_concurrency,
 *   a new one is opened; else the request waits for a session of the destination to finish
 *   its transaction and takes it over.
 *   -> opening: the candidate addresses of the best preference group are tried Happy Eyeballs
 *   style (RFC 8305): one attempt, and every `stagger` ms without a greeting the next
 *   candidate of the same preference; a refused or failed attempt starts the next at once.
 *   The first attempt whose server greets with 220 wins; the others are closed. A group
 *   exhausted moves on to the next preference; a worse preference is never used while a
 *   better one answers. Candidates within a group are ordered by what the host memory knows:
 *   known fast hosts first, unknown next, recently failed last.
 *   -> after the transaction: 2xx delivered, 5xx failed (bounce), 4xx or a broken session:
 *   those recipients go on to the next exchanger not tried yet (at most PH_RELAY_HOSTS_MAX
 *   hosts per request), then stay deferred with the last reply.
 * Every attempt is logged (qid, host, address, latency or error) through the log callback.
 *
 * Threads: ph_relay_new/_submit/_shutdown/_free on the loop thread; ph_relay_deliver on any
 * other thread (never on the loop's: it waits for the loop). After ph_relay_shutdown every waiting
 * and later call returns with each open recipient deferred ("451 4.3.2 shutting down").
 *
 * Ownership: the relay owns its sessions, destinations and host memory. Options strings and
 * the resolver and TLS context are borrowed and must outlive the relay. A request and
 * everything it points to are borrowed until ph_relay_deliver returns.
 */
#ifndef POSTHORN_DELIVER_RELAY_H
#define POSTHORN_DELIVER_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/resolver.h"
#include "io/tls.h"
#include "proto/smtp_client.h"

#define PH_RELAY_HOSTS_MAX 5        /* exchangers tried per request and attempt */
#define PH_RELAY_EXCHANGER_MAX 320  /* "host[address]:port" */
#define PH_RELAY_IDLE_MS 5000       /* an idle session is kept this long for reuse */

struct event_base;

/* Where a request goes. */
typedef struct ph_relay_route {
    bool smarthost;             /* host:port below; else the domain's MX hosts on mx_port */
    const char *name;           /* the [relay] name (logs, destination key), or NULL */
    const char *host;           /* smarthost: host name or IP address (no brackets) */
    unsigned port;              /* smarthost port */
    ph_smtp_tls_policy tls;     /* STARTTLS policy */
    bool implicit_tls;          /* TLS from the first byte (port 465) */
    bool tls_verify;            /* check the certificate (needs tls_ctx_verify) */
    const char *auth_user;      /* NULL: no AUTH */
    const char *auth_pass;
    bool auth_insecure;
} ph_relay_route;

/* The recipients of one message for one destination. */
typedef struct ph_relay_request {
    const char *qid;
    const char *domain;              /* the recipient domain (as in the addresses) */
    ph_relay_route route;
    ph_smtp_envelope env;            /* from, rcpts (all of this domain), size, 8BITMIME */
    int msg_fd;                      /* the queued message (read with pread, never moved) */
    /* out: one per recipient */
    ph_client_result *results;
    char (*exchanger)[PH_RELAY_EXCHANGER_MAX]; /* who said it; "" when no server did */
    bool untried;                    /* not attempted (the relay shut down before it was done:
                                        its open recipients say 451 4.3.2): do not count an
                                        attempt */
} ph_relay_request;

typedef void (*ph_relay_log_fn)(void *ctx, int level, const char *line);

typedef struct ph_relay_options {
    ph_resolver *resolver;           /* on the same event_base */
    ph_tls_ctx *tls_ctx;             /* client context without verification (may be NULL: no
                                        TLS at all) */
    ph_tls_ctx *tls_ctx_verify;      /* client context that verifies (may be NULL) */
    const char *helo_name;
    unsigned mx_port;                /* 25; tests use another one */
    ph_smtp_tls_policy mx_tls;       /* towards MX hosts */
    bool mx_tls_verify;
    unsigned connect_timeout_ms;
    unsigned command_timeout_ms;
    unsigned data_timeout_ms;
    unsigned stagger_ms;             /* 0: the next candidate only after a failure */
    unsigned host_memory_ms;         /* 0: no memory */
    unsigned dest_concurrency;       /* sessions per destination, >= 1 */
    unsigned dest_rate;              /* new sessions per second per destination; 0 = any */
    unsigned idle_ms;                /* 0: PH_RELAY_IDLE_MS */
    ph_relay_log_fn log;
    void *log_ctx;
} ph_relay_options;

typedef struct ph_relay ph_relay;

/* NULL with errno set (ENOMEM, or EINVAL for missing options). */
ph_relay *ph_relay_new(struct event_base *base, const ph_relay_options *o);
/* Ends every session and request (see above); the relay stays until ph_relay_free. */
void ph_relay_shutdown(ph_relay *r);
/* Shuts down if not done yet, then frees. Only once no thread is inside ph_relay_deliver. */
void ph_relay_free(ph_relay *r);

/* Delivers n requests (each to its destination, all at once) and returns when every
 * recipient of every request has a result (2xx, 4xx or 5xx). Never on the loop's thread. */
void ph_relay_deliver(ph_relay *r, ph_relay_request *const *reqs, size_t n);

/* The same without waiting, on the loop's thread: done(arg) is called on the loop once every
 * recipient has a result - possibly before ph_relay_submit returns (after a shutdown, or when
 * nothing could start). */
typedef void (*ph_relay_done_fn)(void *arg);
void ph_relay_submit(ph_relay *r, ph_relay_request *const *reqs, size_t n,
                     ph_relay_done_fn done, void *arg);

#endif
