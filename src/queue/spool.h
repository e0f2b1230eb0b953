/*
 * spool.h - the durable queue's storage: a message is streamed into incoming/, and committed
 * into queue/ only after its data and envelope files are fsync'd, closed without error and
 * renamed, and the directory fsync'd. Commits of messages that finish close together share
 * one batch on a worker thread (group commit), so durable throughput grows with concurrency
 * while no 250 is ever sent for a message that is not on disk.
 *
 * Layout under the spool directory:
 *   incoming/<qid>.msg, incoming/<qid>.env   being received (purged at start: never acked)
 *   queue/<qid>.msg, queue/<qid>.env         committed; the .env is renamed last and marks it
 *   corrupt/                                  files that failed validation, kept for people
 *
 * Threads: begin/append/finish/abort run on the event loop; the batch's fsync and renames run
 * through the offload function (a worker thread); done callbacks run on the loop again.
 * Errors are negative errnos (-ENOSPC is kept apart so the caller can answer 452 4.3.1).
 */
#ifndef POSTHORN_QUEUE_SPOOL_H
#define POSTHORN_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct ph_spool ph_spool;
typedef struct ph_spool_msg ph_spool_msg;

/* Runs work(arg) off the loop, then done(arg) on it; 0 or a negative errno. */
typedef int (*ph_spool_offload_fn)(void *ctx, void (*work)(void *), void (*done)(void *),
                                   void *arg);

/* result: 0 when the message is durable in queue/, else a negative errno (nothing left). */
typedef void (*ph_spool_done_fn)(void *arg, int result);

typedef struct ph_spool_stats {
    unsigned long long committed;  /* messages made durable */
    unsigned long long batches;    /* group commits (directory fsyncs) */
    unsigned long long fsyncs;     /* all fsync/fdatasync calls */
    unsigned long long failed;
} ph_spool_stats;

/*
 * Opens (creating it and its subdirectories if needed) the spool at dir. recover: purge
 * incoming/ (messages there were never acknowledged) and orphaned data files - once per start,
 * before any worker opens it. base may be NULL for a spool that only recovers and counts.
 * Returns 0 or a negative errno with a reason in err.
 */
int ph_spool_open(const char *dir, struct event_base *base, ph_spool_offload_fn offload,
                  void *offload_ctx, bool recover, ph_spool **out, char *err, size_t errlen);
/* Waits for commits in flight, then frees. NULL is allowed. */
void ph_spool_close(ph_spool *sp);

/* Starts a message file incoming/<qid>.msg. NULL with errno set on failure. */
ph_spool_msg *ph_spool_begin(ph_spool *sp, const char *qid);
/* Appends message bytes (buffered). 0 or a negative errno; after an error only abort. */
int ph_spool_append(ph_spool_msg *m, const void *data, size_t len);
/* Drops a message that will not be acknowledged: files removed, m freed. */
void ph_spool_abort(ph_spool_msg *m);

/*
 * Writes the envelope and queues the message for the next group commit; done runs on the
 * loop when it is durable (0) or failed (negative errno, files removed). m belongs to the
 * spool from here on. Returns 0, or a negative errno if it could not even be queued (then
 * done is not called and m is freed).
 */
int ph_spool_commit(ph_spool_msg *m, const char *envelope, size_t len, ph_spool_done_fn done,
                    void *arg);

/*
 * Stores a whole message made by Posthorn itself (a bounce) at once: incoming/ files written,
 * fdatasync'd, closed, renamed into queue/ (envelope last), queue/ fsync'd. Blocking; safe on
 * any thread (also with base NULL at open). 0, or a negative errno with nothing left behind.
 */
int ph_spool_store(ph_spool *sp, const char *qid, const char *msg, size_t msglen,
                   const char *envelope, size_t envlen);
/* Files stored from now on get this owner before they are published (a root `posthorn
 * sendmail` writing for a daemon that runs as another user). */
void ph_spool_set_owner(ph_spool *sp, unsigned uid, unsigned gid);

ph_spool_stats ph_spool_get_stats(const ph_spool *sp);
/* Number of committed messages in queue/ (a directory scan; for tools and tests). */
long ph_spool_count(const ph_spool *sp);

#endif
