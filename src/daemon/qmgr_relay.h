/*
 * qmgr_relay.h - the queue manager's outbound side built from the configuration: the resolver
 * (dns_forwarders or DNSSEC-validating recursion), the TLS client contexts, the relay
 * (deliver/relay.h) with the smtp_* parameters, and the route of each remote domain (a [relay]
 * smarthost with its password read once at start, or the domain's MX hosts).
 *
 * Created in the queue manager process after the fork (libunbound's thread must live there).
 * Owns all of the above; the config is borrowed and must outlive it.
 */
#ifndef POSTHORN_DAEMON_QMGR_RELAY_H
#define POSTHORN_DAEMON_QMGR_RELAY_H

#include <stddef.h>

#include "daemon/config.h"
#include "deliver/relay.h"

struct event_base;
typedef struct qmgr_relay qmgr_relay;

/* NULL with a reason in err. log/log_ctx receive the relay's lines. */
qmgr_relay *qmgr_relay_new(struct event_base *base, const ph_config *cfg, const char *hostname,
                           ph_relay_log_fn log, void *log_ctx, char *err, size_t errlen);
/* Ends every session and wakes every waiting job (before the delivery threads are joined). */
void qmgr_relay_shutdown(qmgr_relay *q);
void qmgr_relay_free(qmgr_relay *q); /* NULL is fine */

ph_relay *qmgr_relay_engine(qmgr_relay *q);
/* ph_job_route_fn: ctx is the qmgr_relay. Thread-safe (reads only). */
void qmgr_relay_route(void *ctx, const char *domain, ph_relay_route *route);

#endif
