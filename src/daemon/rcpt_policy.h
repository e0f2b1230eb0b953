/*
 * rcpt_policy.h - who may send to whom through `posthorn serve` with `delivery = queue`: local
 * recipients (the [domain] sections: users, aliases, catch-alls, plus-addresses) are accepted
 * from anyone; other domains only from authenticated clients or clients in relay_networks
 * (never an open relay); unknown local users are refused at RCPT (550 5.1.1). Also turns an
 * accepted recipient into the final addresses the queue stores (aliases expanded).
 *
 * Built once in the parent before the workers fork; read-only afterwards (any number of
 * processes and threads may use it). Owns the recipient table and the parsed networks.
 */
#ifndef POSTHORN_DAEMON_RCPT_POLICY_H
#define POSTHORN_DAEMON_RCPT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "deliver/recipients.h"
#include "posthorn/posthorn.h"

typedef struct relay_net {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;     /* bits */
} relay_net;

typedef struct rcpt_policy {
    ph_rcpt_table *table;   /* the local domains (NULL when there are none) */
    relay_net *nets;
    size_t nnets;
} rcpt_policy;

/* Loads the recipient table (every mailboxes/aliases file) and relay_networks. 0, or -errno
 * with a reason in err ("FILE:LINE: ..." for file errors). Warnings (aliases that point
 * nowhere, a domain without postmaster) go to warn(arg, text). */
int rcpt_policy_load(rcpt_policy *p, const ph_config *cfg, char *err, size_t errlen,
                     void (*warn)(void *arg, const char *text), void *arg);
void rcpt_policy_free(rcpt_policy *p);

/* The verdict for RCPT TO:<addr> in session s. */
posthorn_verdict rcpt_policy_check(const rcpt_policy *p, posthorn_session *s, const char *addr);

/* Whether the client address (text, as posthorn_session_client_ip gives it) is in
 * relay_networks. */
bool rcpt_policy_relay_client(const rcpt_policy *p, const char *ip);

/*
 * The final addresses for an accepted recipient, appended to *list (n entries, cap capacity,
 * malloc'd strings, duplicates of entries already there skipped). A non-local recipient is
 * itself. 0 or -ENOMEM / -EINVAL (the recipient no longer expands: a reload in between).
 */
int rcpt_policy_expand(const rcpt_policy *p, const char *addr, char ***list, size_t *n,
                       size_t *cap);

#endif
