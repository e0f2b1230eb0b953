/*
 * qmgr_dest.h - the queue manager's per-destination bookkeeping, so that one slow destination
 * cannot take every message slot: how many messages are in flight (waiting for the relay) per
 * destination (a remote domain), and the messages parked because their destination already
 * has its share in flight. The queue manager learns a message's destination when its job
 * first waits for the relay; parked messages go back to the ready line one by one as messages
 * of their destination finish.
 *
 * A destination exists while it has messages in flight or parked (or references from index
 * entries: qdest_ref/qdest_unref); its name is copied. Parked nodes are embedded in the
 * caller's objects (qdest_node) and borrowed while parked. Loop thread only.
 */
#ifndef POSTHORN_DELIVER_QMGR_DEST_H
#define POSTHORN_DELIVER_QMGR_DEST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct qdest qdest;
typedef struct qdest_table qdest_table;

typedef struct qdest_node {
    struct qdest_node *next;
    qdest *parked_at;          /* NULL: not parked */
} qdest_node;

/* cap: messages in flight per destination (0: no cap). NULL if memory is short. */
qdest_table *qdest_table_new(unsigned cap);
void qdest_table_free(qdest_table *t); /* NULL is fine; nothing may be parked */

/* The destination called name (ASCII case-insensitive), created if needed, with one more
 * reference; NULL if memory is short. */
qdest *qdest_ref(qdest_table *t, const char *name);
/* Drops a reference; the destination goes when nothing refers to it. NULL is fine. */
void qdest_unref(qdest_table *t, qdest *d);

/* Whether d has its cap of messages in flight. */
bool qdest_full(const qdest_table *t, const qdest *d);
void qdest_enter(qdest *d);   /* a message of d is in flight */
void qdest_leave(qdest *d);   /* it finished */

void qdest_park(qdest *d, qdest_node *n);
/* The first parked node if d has room now (its park ended), else NULL. */
qdest_node *qdest_release(const qdest_table *t, qdest *d);
/* Takes n out of its destination's park, wherever it is. */
void qdest_unpark(qdest_node *n);
size_t qdest_parked(const qdest *d);

#endif
