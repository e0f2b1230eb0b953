/*
 * qmgr.c - the queue manager's scheduling (see qmgr.h).
 *
 * Index: a hash table of every known message (queue id -> due time and flags). A message is
 * "ready" when it is due and neither running nor held; ready ones wait in a FIFO for a free
 * job slot, so a burst of new mail is taken in arrival order. Deferred messages become ready
 * through a once-a-second sweep of the index (O(messages) per second, a few microseconds per
 * thousand), which keeps the structure simple and the next-due bookkeeping in one place.
 */
#include "deliver/qmgr.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "deliver/logline.h"
#include "deliver/qmgr_dest.h"
#include "io/workpool.h"
#include "queue/envelope.h"
#include "queue/qstore.h"

#define SWEEP_MS 1000
/* Jobs waiting for the loop (remote delivery) hold a message file and an envelope each: at
 * most this many times `concurrency` messages are in flight, waiting or running. */
#define IN_FLIGHT_FACTOR 10
#define INITIAL_BUCKETS 1024

/* A log line through the object's log hook (o.log, o.log_ctx). */
#define logf_(obj, level, ...) ph_logline((obj)->o.log, (obj)->o.log_ctx, (level), __VA_ARGS__)

typedef struct entry {
    struct entry *next;       /* hash chain */
    struct entry *ready_next; /* FIFO of ready messages */
    int64_t due;              /* unix seconds; 0 = now */
    bool active, held, in_ready;
    bool kick;                /* a command arrived while the job ran: run again at once */
    bool deleted;             /* delete after the running job */
    ph_job_mode mode;         /* for the next job */
    qdest *dest;              /* the destination it last waited for (a reference), or NULL */
    bool counted;             /* in flight for dest now */
    qdest_node park;          /* parked at dest: ready, but dest has its share in flight */
    char qid[PH_ENVELOPE_ID_MAX + 1];
} entry;

typedef struct job {
    ph_qmgr *q;
    entry *e;
    ph_job_mode mode;
    ph_job_result res;
    bool finishing;           /* resumed after a wait: run finish instead of run */
    bool held_back;           /* its destination was full: cancelled, not waited for */
    void (*finish)(void *wait_arg, ph_job_result *out);
    void *wait_arg;
} job;

struct ph_qmgr {
    ph_qmgr_options o;
    struct event_base *base;
    ph_qstore *store;
    ph_workpool *pool;
    entry **buckets;
    size_t nbuckets, count;
    entry *ready_head, **ready_tail;
    unsigned long nready, active, waiting;
    bool stopping;            /* ph_qmgr_free: the pool takes no new work */
    qdest_table *dests;
    unsigned long max_in_flight; /* running + waiting jobs */
    unsigned long long jobs;
    int inotify_fd;
    struct event *inotify_ev, *sweep_ev;
};


/* ---- the index ------------------------------------------------------------------------- */

static size_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static entry *find(ph_qmgr *q, const char *qid)
{
    for (entry *e = q->buckets[hash_of(qid) & (q->nbuckets - 1)]; e; e = e->next)
        if (strcmp(e->qid, qid) == 0)
            return e;
    return NULL;
}

static void grow(ph_qmgr *q)
{
    size_t n = q->nbuckets * 2;
    entry **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < q->nbuckets; i++)
        for (entry *e = q->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t k = hash_of(e->qid) & (n - 1);
            e->next = b[k];
            b[k] = e;
        }
    free(q->buckets);
    q->buckets = b;
    q->nbuckets = n;
}

static entry *add(ph_qmgr *q, const char *qid)
{
    if (!ph_qstore_valid_id(qid))
        return NULL;
    entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->qid, sizeof(e->qid), "%s", qid);
    if (q->count >= q->nbuckets)
        grow(q);
    size_t k = hash_of(qid) & (q->nbuckets - 1);
    e->next = q->buckets[k];
    q->buckets[k] = e;
    q->count++;
    return e;
}

/* Takes e out of the ready FIFO (or its destination's park) if it is there. */
static void unready(ph_qmgr *q, entry *e)
{
    qdest_unpark(&e->park);
    if (!e->in_ready)
        return;
    e->in_ready = false;
    entry **rp = &q->ready_head;
    while (*rp != e)
        rp = &(*rp)->ready_next;
    *rp = e->ready_next;
    if (q->ready_tail == &e->ready_next)
        q->ready_tail = rp;
    q->nready--;
}

static void forget(ph_qmgr *q, entry *e)
{
    entry **pp = &q->buckets[hash_of(e->qid) & (q->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    q->count--;
    unready(q, e);
    qdest_unref(q->dests, e->dest);
    free(e);
}

static void make_ready(ph_qmgr *q, entry *e)
{
    if (e->in_ready || e->active || e->held || e->park.parked_at)
        return;
    e->in_ready = true;
    e->ready_next = NULL;
    *q->ready_tail = e;
    q->ready_tail = &e->ready_next;
    q->nready++;
}

static entry *pop_ready(ph_qmgr *q)
{
    entry *e = q->ready_head;
    if (!e)
        return NULL;
    q->ready_head = e->ready_next;
    if (!q->ready_head)
        q->ready_tail = &q->ready_head;
    e->in_ready = false;
    q->nready--;
    return e;
}

/* ---- jobs -------------------------------------------------------------------------------- */

static void dispatch(ph_qmgr *q);
static void job_done(void *arg);

static void job_work(void *arg)
{
    job *j = arg;
    j->res = (ph_job_result){.next_due = -1};
    if (j->finishing)
        j->finish(j->wait_arg, &j->res);
    else
        j->q->o.run(j->q->o.run_ctx, j->e->qid, j->mode, &j->res);
}

/* Remembers the destination e waits for (a reference kept across attempts). */
static void set_dest(ph_qmgr *q, entry *e, const char *name)
{
    if (!name || !q->dests)
        return;
    qdest *d = qdest_ref(q->dests, name);
    qdest_unref(q->dests, e->dest);
    e->dest = d;
}

/* The job waits for loop work: no thread, no slot, until ph_qmgr_resume. When its
 * destination already has its share in flight it does not wait at all: cancel, finish now
 * (no attempt counted), and the message is parked at its next turn. */
static void job_suspend(ph_qmgr *q, job *j)
{
    void (*wait)(void *, ph_qmgr *, void *) = j->res.wait;
    void (*cancel)(void *) = j->res.cancel;
    entry *e = j->e;
    j->finish = j->res.finish;
    j->wait_arg = j->res.wait_arg;
    j->res.wait = NULL;
    set_dest(q, e, j->res.wait_dest);
    q->waiting++;
    if (e->dest && cancel && qdest_full(q->dests, e->dest)) {
        j->held_back = true;
        cancel(j->wait_arg);
        ph_qmgr_resume(q, j);
        return;
    }
    if (e->dest) {
        qdest_enter(e->dest);
        e->counted = true;
    }
    dispatch(q);
    wait(j->wait_arg, q, j); /* may resume (and finish) j before it returns */
}

/* A message of d finished: the next parked one of d gets its turn. */
static void dest_done(ph_qmgr *q, entry *e)
{
    if (!e->counted)
        return;
    e->counted = false;
    qdest_leave(e->dest);
    qdest_node *n = qdest_release(q->dests, e->dest);
    if (n)
        make_ready(q, (entry *)((char *)n - offsetof(entry, park)));
}

void ph_qmgr_resume(ph_qmgr *q, void *token)
{
    job *j = token;
    q->waiting--;
    q->active++;
    j->finishing = true;
    /* over the concurrency for a moment rather than letting finished work wait */
    if (q->stopping || ph_workpool_submit(q->pool, job_work, job_done, j) < 0) {
        job_work(j); /* the pool is full or shutting down: finish here, on the loop */
        job_done(j);
    }
}

static void emit_log(ph_qmgr *q, char *lines)
{
    for (char *line = lines, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (q->o.log && *line)
            q->o.log(q->o.log_ctx, 2, line);
    }
}

static void job_done(void *arg)
{
    job *j = arg;
    ph_qmgr *q = j->q;
    entry *e = j->e;
    emit_log(q, j->res.log);
    free(j->res.log);
    j->res.log = NULL;
    q->active--;
    if (j->res.wait && !j->finishing)
        return job_suspend(q, j);
    q->jobs++;
    e->active = false;
    dest_done(q, e);
    if (!j->finishing) { /* this attempt did not use the relay: no destination to wait for */
        qdest_unref(q->dests, e->dest);
        e->dest = NULL;
    }
    if (e->deleted) {
        ph_qstore_remove(q->store, e->qid);
        logf_(q, 2, "event=queue_deleted qid=%s", e->qid);
        forget(q, e);
    } else if (j->res.next_due < 0) {
        forget(q, e);
    } else {
        e->held = j->res.held;
        e->due = j->res.next_due;
        if (j->held_back && !e->kick)
            e->mode = j->mode; /* a flush stays a flush when its turn comes */
        if (e->kick || j->held_back) {
            e->kick = false;
            e->due = 0; /* held back: due as soon as its destination has room */
        }
        if (j->held_back && !e->held && e->dest && qdest_full(q->dests, e->dest))
            qdest_park(e->dest, &e->park);
        else if (e->due <= (int64_t)time(NULL))
            make_ready(q, e);
    }
    free(j);
    dispatch(q);
}

static void dispatch(ph_qmgr *q)
{
    while (q->active < q->o.concurrency && q->active + q->waiting < q->max_in_flight &&
           q->ready_head) {
        entry *e = pop_ready(q);
        if (e->dest && qdest_full(q->dests, e->dest)) {
            qdest_park(e->dest, &e->park); /* its turn comes when one of dest finishes */
            continue;
        }
        job *j = calloc(1, sizeof(*j));
        if (j)
            *j = (job){.q = q, .e = e, .mode = e->mode};
        if (!j || ph_workpool_submit(q->pool, job_work, job_done, j) < 0) {
            free(j);
            make_ready(q, e); /* try again at the next sweep */
            return;
        }
        e->mode = PH_JOB_DELIVER;
        e->active = true;
        q->active++;
    }
}

/* ---- noticing messages ------------------------------------------------------------------- */

static void noticed(const char *qid, void *arg)
{
    ph_qmgr *q = arg;
    entry *e = find(q, qid);
    if (e)
        return; /* known: a state update of its own, or already scheduled */
    if (!(e = add(q, qid)))
        return;
    e->due = 0; /* look at it now: its due times are in the envelope */
    make_ready(q, e);
}

static void rescan(ph_qmgr *q, bool clean_tmp)
{
    long n = ph_qstore_scan(q->store, clean_tmp, noticed, q);
    if (n < 0)
        logf_(q, 0, "event=queue_error what=scan error=\"%s\"", strerror((int)-n));
}

static void inotify_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    ph_qmgr *q = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool overflow = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                overflow = true;
                continue;
            }
            size_t len = ev->len ? strlen(ev->name) : 0;
            if (len > 4 && len - 4 <= PH_ENVELOPE_ID_MAX && strcmp(ev->name + len - 4, ".env") == 0) {
                char qid[PH_ENVELOPE_ID_MAX + 1];
                memcpy(qid, ev->name, len - 4);
                qid[len - 4] = '\0';
                noticed(qid, q);
            }
        }
    }
    if (overflow)
        rescan(q, false);
    dispatch(q);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ph_qmgr *q = arg;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < q->nbuckets; i++)
        for (entry *e = q->buckets[i]; e; e = e->next)
            if (!e->active && !e->held && !e->in_ready && e->due <= now)
                make_ready(q, e);
    dispatch(q);
}

static int start_watching(ph_qmgr *q, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/queue", q->o.spool_dir);
    q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (q->inotify_fd < 0 || inotify_add_watch(q->inotify_fd, path, IN_MOVED_TO) < 0) {
        snprintf(err, errlen, "inotify on %s: %s", path, strerror(errno));
        return -1;
    }
    q->inotify_ev = event_new(q->base, q->inotify_fd, EV_READ | EV_PERSIST, inotify_cb, q);
    q->sweep_ev = event_new(q->base, -1, EV_PERSIST, sweep_cb, q);
    struct timeval tv = {SWEEP_MS / 1000, (SWEEP_MS % 1000) * 1000};
    if (!q->inotify_ev || !q->sweep_ev || event_add(q->inotify_ev, NULL) < 0 ||
        event_add(q->sweep_ev, &tv) < 0) {
        snprintf(err, errlen, "cannot set up queue events");
        return -1;
    }
    return 0;
}

/* Each message in flight holds its data file open while it waits, and its relay sessions
 * need descriptors too: a quarter of the descriptor limit at most. */
static unsigned long in_flight_limit(unsigned concurrency)
{
    unsigned long n = (unsigned long)concurrency * IN_FLIGHT_FACTOR;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        n > rl.rlim_cur / 4)
        n = rl.rlim_cur / 4 > concurrency ? rl.rlim_cur / 4 : concurrency;
    return n;
}

ph_qmgr *ph_qmgr_new(struct event_base *base, const ph_qmgr_options *o, char *err,
                     size_t errlen)
{
    ph_qmgr *q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->o = *o;
    if (q->o.concurrency == 0)
        q->o.concurrency = 1;
    q->max_in_flight = in_flight_limit(q->o.concurrency);
    /* one destination may hold half of the messages in flight: the other half stays free
     * for the rest of the mail however slow that destination is */
    q->dests = qdest_table_new(q->o.dest_in_flight ? q->o.dest_in_flight
                                                   : (unsigned)(q->max_in_flight / 2 + 1));
    q->base = base;
    q->inotify_fd = -1;
    q->ready_tail = &q->ready_head;
    q->nbuckets = INITIAL_BUCKETS;
    q->buckets = calloc(q->nbuckets, sizeof(*q->buckets));
    unsigned threads = q->o.concurrency < PH_WORKPOOL_THREADS_MAX ? q->o.concurrency
                                                                   : PH_WORKPOOL_THREADS_MAX;
    if (!q->buckets || !q->dests || ph_qstore_open(o->spool_dir, &q->store, err, errlen) < 0) {
        if (!q->buckets || !q->dests)
            snprintf(err, errlen, "out of memory");
        ph_qmgr_free(q);
        return NULL;
    }
    /* watch first, then scan: a message committed in between is seen twice, never missed */
    if (start_watching(q, err, errlen) < 0 ||
        !(q->pool = ph_workpool_new_bounded(base, threads,
                                            q->o.concurrency * (IN_FLIGHT_FACTOR + 1)))) {
        if (!q->pool && !err[0])
            snprintf(err, errlen, "cannot start delivery threads: %s", strerror(errno));
        ph_qmgr_free(q);
        return NULL;
    }
    rescan(q, true);
    logf_(q, 2, "event=qmgr_start pid=%d queued=%lu concurrency=%u", (int)getpid(),
          (unsigned long)q->count, q->o.concurrency);
    dispatch(q);
    return q;
}

void ph_qmgr_free(ph_qmgr *q)
{
    if (!q)
        return;
    if (q->inotify_ev)
        event_free(q->inotify_ev);
    if (q->sweep_ev)
        event_free(q->sweep_ev);
    q->o.concurrency = 0; /* done callbacks from the pool's shutdown start nothing new */
    q->stopping = true;
    ph_workpool_free(q->pool);
    if (q->waiting) /* a wait that never resumed: its job (and message) is lost for this run */
        logf_(q, 0, "event=queue_error what=shutdown waiting_jobs=%lu", q->waiting);
    if (q->inotify_fd >= 0)
        close(q->inotify_fd);
    for (size_t i = 0; q->buckets && i < q->nbuckets; i++)
        for (entry *e = q->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(q->buckets);
    qdest_table_free(q->dests);
    ph_qstore_close(q->store);
    free(q);
}

/* ---- operator commands -------------------------------------------------------------------- */

/* The entry for qid, adding it when the message exists on disk but is not indexed yet. */
static int lookup(ph_qmgr *q, const char *qid, entry **out)
{
    if (!ph_qstore_valid_id(qid))
        return -EINVAL;
    entry *e = find(q, qid);
    if (!e) {
        ph_envelope *env = NULL;
        char err[256];
        int r = ph_qstore_load(q->store, qid, &env, err, sizeof(err));
        ph_envelope_free(env);
        if (r < 0)
            return r == -EBADMSG ? -ENOENT : r;
        if (!(e = add(q, qid)))
            return -ENOMEM;
        e->due = 0;
    }
    *out = e;
    return 0;
}

/* Marks the message to run now in the given mode (after the running job, if one runs). */
static void schedule_now(ph_qmgr *q, entry *e, ph_job_mode mode)
{
    e->mode = mode;
    e->due = 0;
    if (e->active)
        e->kick = true;
    else
        make_ready(q, e);
}

static void run_now(ph_qmgr *q, entry *e, ph_job_mode mode)
{
    schedule_now(q, e, mode);
    dispatch(q);
}

int ph_qmgr_flush(ph_qmgr *q, const char *qid)
{
    if (qid) {
        entry *e;
        int r = lookup(q, qid, &e);
        if (r == 0 && !e->held)
            run_now(q, e, PH_JOB_FLUSH);
        return r;
    }
    for (size_t i = 0; i < q->nbuckets; i++)
        for (entry *e = q->buckets[i]; e; e = e->next)
            if (!e->held)
                schedule_now(q, e, PH_JOB_FLUSH);
    dispatch(q);
    return 0;
}

int ph_qmgr_hold(ph_qmgr *q, const char *qid)
{
    entry *e;
    int r = lookup(q, qid, &e);
    if (r == 0 && (r = ph_qstore_hold(q->store, qid)) == 0) {
        e->held = true;
        unready(q, e); /* out of the FIFO, but stays known */
    }
    return r;
}

int ph_qmgr_release(ph_qmgr *q, const char *qid)
{
    entry *e;
    int r = lookup(q, qid, &e);
    if (r == 0 && (r = ph_qstore_release(q->store, qid)) == -ENOENT)
        r = 0; /* not held: nothing to do */
    if (r == 0 && e->held) {
        e->held = false;
        run_now(q, e, PH_JOB_DELIVER);
    }
    return r;
}

int ph_qmgr_delete(ph_qmgr *q, const char *qid)
{
    entry *e;
    int r = lookup(q, qid, &e);
    if (r < 0)
        return r;
    if (e->active) {
        e->deleted = true; /* the job may still write its envelope: remove after it */
        return 0;
    }
    r = ph_qstore_remove(q->store, qid);
    logf_(q, 2, "event=queue_deleted qid=%s", qid);
    forget(q, e);
    return r;
}

int ph_qmgr_bounce(ph_qmgr *q, const char *qid)
{
    entry *e;
    int r = lookup(q, qid, &e);
    if (r == 0) {
        if (e->held) {
            ph_qstore_release(q->store, qid);
            e->held = false;
        }
        run_now(q, e, PH_JOB_BOUNCE);
    }
    return r;
}

ph_qmgr_stats ph_qmgr_get_stats(const ph_qmgr *q)
{
    return (ph_qmgr_stats){q->count, q->active, q->nready, q->jobs};
}
