/*
 * qstore.h - the queue manager's access to committed messages in <spool>/queue: listing them,
 * reading and atomically rewriting envelopes (delivery state), hold markers, and removal.
 * The receiving side (spool.h) only ever adds files; this side changes and removes them.
 *
 * Files per message in queue/: <qid>.msg (the bytes), <qid>.env (the envelope, present = the
 * message is committed), optionally <qid>.hold (empty: the scheduler leaves the message alone)
 * and, only during an update, <qid>.tmp (the next envelope; a leftover is removed at start).
 *
 * Durability: an envelope update is written to <qid>.tmp, fdatasync'd and renamed over
 * <qid>.env. Without a directory fsync a crash may bring the previous envelope back: that costs
 * at most a repeated delivery attempt, never a lost recipient. Removal unlinks the .env first
 * (the message stops existing) and then the .msg.
 *
 * Blocking calls; safe from any thread as long as one message is handled by one thread at a
 * time (the queue manager guarantees that). Errors are negative errnos.
 */
#ifndef POSTHORN_QUEUE_QSTORE_H
#define POSTHORN_QUEUE_QSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/envelope.h"

typedef struct ph_qstore ph_qstore;

/* Opens <dir>/queue and <dir>/corrupt (created if missing). 0 or -errno (reason in err). */
int ph_qstore_open(const char *dir, ph_qstore **out, char *err, size_t errlen);
void ph_qstore_close(ph_qstore *qs); /* NULL is fine */

/* Calls fn(qid, arg) for every committed message (a .env in queue/), in directory order; also
 * removes leftover .tmp files when clean_tmp. Returns the number of messages or -errno. */
long ph_qstore_scan(ph_qstore *qs, bool clean_tmp, void (*fn)(const char *qid, void *arg),
                    void *arg);

/*
 * Reads and parses queue/<qid>.env. -ENOENT when the message is gone (delivered or deleted);
 * -EBADMSG when the envelope is invalid: the message's files are then moved to corrupt/ and
 * err says why ("line N: reason"). 0 with *out (the caller frees it).
 */
int ph_qstore_load(ph_qstore *qs, const char *qid, ph_envelope **out, char *err, size_t errlen);

/* Writes e as the new queue/<e->id>.env (tmp, fdatasync, rename). */
int ph_qstore_save(ph_qstore *qs, const ph_envelope *e);

/* Removes the message (envelope first, then data and any hold marker). */
int ph_qstore_remove(ph_qstore *qs, const char *qid);

/* The message data, opened read-only (a descriptor the caller closes), or -errno. */
int ph_qstore_open_data(ph_qstore *qs, const char *qid);
/* Size in bytes of the data file, or -errno. */
long long ph_qstore_data_size(ph_qstore *qs, const char *qid);

/* Hold markers: the scheduler skips held messages until released. */
int ph_qstore_hold(ph_qstore *qs, const char *qid);
int ph_qstore_release(ph_qstore *qs, const char *qid);
bool ph_qstore_is_held(ph_qstore *qs, const char *qid);

/* Whether qid looks like a queue id (1-64 of [A-Za-z0-9_-]): anything else is never a file. */
bool ph_qstore_valid_id(const char *qid);

#endif
