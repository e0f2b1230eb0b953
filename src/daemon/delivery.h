/*
 * delivery.h - the daemon's message and login hooks (see delivery.c), shared by the sink and
 * serve commands. The hooks' user pointer is a msg_store.
 */
#ifndef POSTHORN_DAEMON_DELIVERY_H
#define POSTHORN_DAEMON_DELIVERY_H

#include <stdbool.h>

#include "daemon/passwd.h"
#include "posthorn/posthorn.h"

typedef struct msg_store {
    const char *store_dir;    /* store each message here durably; NULL = do not store */
    bool quiet;               /* do not print messages to stdout */
    bool auth_any;            /* every AUTH credential is good (development sinks) */
    passwd_db *passwords;     /* AUTH checked against these; NULL = AUTH always fails */
    const char *queue_dir;    /* delivery = queue: the durable spool */
    const struct rcpt_policy *policy; /* delivery = queue: local domains and relay rules */
    unsigned max_received;    /* delivery = queue: more Received: fields are a loop (0 = no limit) */
} msg_store;

/* Sets the data, message, abort, disconnect and AUTH hooks of h (the others are untouched). */
void msg_store_hooks(posthorn_hooks *h);

/* delivery = queue (delivery_queue.c): data, message, abort and disconnect hooks that commit
 * each message to the durable spool in ms->queue_dir before the 250. */
void msg_queue_hooks(posthorn_hooks *h);
/* Once at start, before workers: creates the spool and purges what was never acknowledged. */
int msg_queue_recover(const char *dir, char *err, size_t errlen);

#endif
