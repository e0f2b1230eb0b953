/*
 * spool.c - durable message storage with group commit (see spool.h).
 *
 * Commit order, on a worker thread: fdatasync data and envelope of every message of the batch
 * (up to SYNC_THREADS_MAX at once), close them (checked: NFS and some filesystems report write
 * errors only there); per message that succeeded, rename the data into queue/<qid>.msg and the
 * envelope into queue/<qid>.new; then one fsync of queue/ for the whole batch; only after that
 * each <qid>.new becomes <qid>.env, the name the queue manager
 * acts on. So the queue manager never sees a message whose directory fsync failed (that client
 * gets 451/452 and the files are removed). A .new file found at start was durable (the fsync
 * succeeded, the last rename may be lost in a crash): recovery completes its rename. Anything
 * else without an .env is removed. Owns the directory descriptors, the pending and in-flight
 * batches and every message handed to ph_spool_commit.
 */
#include "queue/spool.h"
#include "queue/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MSG_BUFFER (16 * 1024) /* bytes gathered before a write() */
#define SYNC_THREADS_MAX 8      /* fdatasyncs of one batch in flight at once */

struct ph_spool_msg {
    ph_spool *sp;
    ph_spool_msg *next;
    char qid[48];
    int fd, envfd;
    int error;        /* first write error, negative errno */
    int result;       /* of the commit */
    bool in_queue;    /* its files were renamed into queue/ (so removing them there is ours) */
    ph_spool_done_fn done;
    void *arg;
    size_t blen;
    char buf[MSG_BUFFER];
};

typedef struct batch {
    ph_spool *sp;
    ph_spool_msg *msgs;
    bool on_stack; /* not malloc'd: batch_done must not free it */
} batch;

struct ph_spool {
    char *dir;
    int incoming_fd, queue_fd;
    struct event *flush_ev;
    ph_spool_offload_fn offload;
    void *offload_ctx;
    ph_spool_msg *pending, **pending_tail;
    bool in_flight;
    bool chown;                 /* give stored files to owner_uid/owner_gid */
    unsigned owner_uid, owner_gid;
    ph_spool_stats stats;
};

/* ---- small I/O helpers ----------------------------------------------------------------- */


static void name_of(char *buf, size_t len, const char *qid, const char *ext)
{
    snprintf(buf, len, "%s.%s", qid, ext);
}

/* A directory stream over a copy of dirfd, from the start: the copy shares the file offset,
 * so without the rewind a second scan would see nothing. */
static DIR *dir_stream(int dirfd)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    rewinddir(d);
    return d;
}

/* Removes every entry of a directory (incoming/ at start: nothing there was acknowledged). */
static void purge_dir(int dirfd)
{
    DIR *d = dir_stream(dirfd);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(dirfd, e->d_name, 0);
    closedir(d);
}

/* At start, in queue/: a <qid>.new next to its .msg passed the directory fsync (only the last
 * rename may be lost): it becomes <qid>.env. A .msg with neither (a crash between the renames)
 * was never acknowledged and is removed, as is a .new without its data. */
static void remove_orphans(int dirfd)
{
    DIR *d = dir_stream(dirfd);
    if (!d)
        return;
    struct dirent *e;
    char other[300], env[300];
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || n > 250)
            continue;
        bool is_new = strcmp(e->d_name + n - 4, ".new") == 0;
        if (!is_new && strcmp(e->d_name + n - 4, ".msg") != 0)
            continue;
        snprintf(env, sizeof(env), "%.*s.env", (int)(n - 4), e->d_name);
        snprintf(other, sizeof(other), "%.*s.%s", (int)(n - 4), e->d_name, is_new ? "msg" : "new");
        bool has_other = faccessat(dirfd, other, F_OK, 0) == 0;
        if (is_new && has_other)
            renameat(dirfd, e->d_name, dirfd, env);
        else if (is_new || (!has_other && faccessat(dirfd, env, F_OK, 0) != 0))
            unlinkat(dirfd, e->d_name, 0);
    }
    closedir(d);
}


/* ---- open / close ----------------------------------------------------------------------- */

static void flush_cb(evutil_socket_t fd, short what, void *arg);

int ph_spool_open(const char *dir, struct event_base *base, ph_spool_offload_fn offload,
                  void *offload_ctx, bool recover, ph_spool **out, char *err, size_t errlen)
{
    ph_spool *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    sp->incoming_fd = sp->queue_fd = -1;
    sp->pending_tail = &sp->pending;
    sp->offload = offload;
    sp->offload_ctx = offload_ctx;
    int r = 0;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        r = -errno;
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-r));
    } else if (!(sp->dir = strdup(dir)) ||
               (base && !(sp->flush_ev = event_new(base, -1, 0, flush_cb, sp)))) {
        r = -ENOMEM;
    } else if ((sp->incoming_fd = ph_open_subdir(dir, "incoming", err, errlen)) < 0 ||
               (sp->queue_fd = ph_open_subdir(dir, "queue", err, errlen)) < 0) {
        r = sp->incoming_fd < 0 ? sp->incoming_fd : sp->queue_fd;
    } else {
        char tmp[256];
        int c = ph_open_subdir(dir, "corrupt", tmp, sizeof(tmp));
        if (c >= 0)
            close(c);
        if (recover) {
            purge_dir(sp->incoming_fd);
            remove_orphans(sp->queue_fd);
        }
    }
    if (r < 0) {
        ph_spool_close(sp);
        return r;
    }
    *out = sp;
    return 0;
}

static void free_msg(ph_spool_msg *m)
{
    if (m->fd >= 0)
        close(m->fd);
    if (m->envfd >= 0)
        close(m->envfd);
    free(m);
}

void ph_spool_close(ph_spool *sp)
{
    if (!sp)
        return;
    while (sp->pending) { /* never submitted: nobody was told they are stored */
        ph_spool_msg *m = sp->pending;
        sp->pending = m->next;
        m->done(m->arg, -ECANCELED);
        ph_spool_abort(m);
    }
    if (sp->flush_ev)
        event_free(sp->flush_ev);
    if (sp->incoming_fd >= 0)
        close(sp->incoming_fd);
    if (sp->queue_fd >= 0)
        close(sp->queue_fd);
    free(sp->dir);
    free(sp);
}

/* ---- receiving -------------------------------------------------------------------------- */

ph_spool_msg *ph_spool_begin(ph_spool *sp, const char *qid)
{
    ph_spool_msg *m = malloc(sizeof(*m));
    if (!m)
        return NULL;
    memset(m, 0, offsetof(ph_spool_msg, buf));
    m->sp = sp;
    m->envfd = -1;
    snprintf(m->qid, sizeof(m->qid), "%s", qid);
    char name[80];
    name_of(name, sizeof(name), qid, "msg");
    m->fd = openat(sp->incoming_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (m->fd < 0) {
        int e = errno;
        free(m);
        errno = e;
        return NULL;
    }
    return m;
}

static int flush_buffer(ph_spool_msg *m)
{
    if (!m->error && m->blen)
        m->error = ph_write_all(m->fd, m->buf, m->blen);
    m->blen = 0;
    return m->error;
}

int ph_spool_append(ph_spool_msg *m, const void *data, size_t len)
{
    if (m->error)
        return m->error;
    if (m->blen + len > sizeof(m->buf)) {
        if (flush_buffer(m) < 0)
            return m->error;
        if (len > sizeof(m->buf)) /* big pieces go straight to the file */
            return m->error = ph_write_all(m->fd, data, len);
    }
    memcpy(m->buf + m->blen, data, len);
    m->blen += len;
    return 0;
}

/* Removes the message's files wherever they are now. */
static void remove_files(ph_spool_msg *m)
{
    char name[80];
    const char *exts[] = {"msg", "env", "new"};
    for (int i = 0; i < 3; i++) {
        name_of(name, sizeof(name), m->qid, exts[i]);
        unlinkat(m->sp->incoming_fd, name, 0);
        if (m->in_queue) /* never another message's files (a duplicate id) */
            unlinkat(m->sp->queue_fd, name, 0);
    }
}

void ph_spool_abort(ph_spool_msg *m)
{
    if (!m)
        return;
    remove_files(m);
    free_msg(m);
}

static int write_envelope(ph_spool_msg *m, const char *env, size_t len)
{
    char name[80];
    name_of(name, sizeof(name), m->qid, "env");
    m->envfd = openat(m->sp->incoming_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (m->envfd < 0)
        return -errno;
    return ph_write_all(m->envfd, env, len);
}

int ph_spool_commit(ph_spool_msg *m, const char *envelope, size_t len, ph_spool_done_fn done,
                    void *arg)
{
    int r = flush_buffer(m);
    if (r == 0)
        r = write_envelope(m, envelope, len);
    if (r < 0) {
        m->sp->stats.failed++;
        ph_spool_abort(m);
        return r;
    }
    m->done = done;
    m->arg = arg;
    m->next = NULL;
    ph_spool *sp = m->sp;
    *sp->pending_tail = m;
    sp->pending_tail = &m->next;
    if (!sp->in_flight)
        event_active(sp->flush_ev, 0, 0); /* after the other events of this loop turn */
    return 0;
}

/* ---- the group commit --------------------------------------------------------------------- */

static int sync_and_close(int *fd, unsigned long long *fsyncs)
{
    int r = fdatasync(*fd) < 0 ? -errno : 0;
    (*fsyncs)++;
    if (close(*fd) < 0 && r == 0)
        r = -errno;
    *fd = -1;
    return r;
}

/* rename that never replaces an existing file (a queue id used twice must not overwrite a
 * committed message); plain rename where the filesystem lacks RENAME_NOREPLACE. */
static int rename_new(int fromfd, const char *from, int tofd, const char *to)
{
    int r = renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE);
    if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
        if (faccessat(tofd, to, F_OK, 0) == 0) {
            errno = EEXIST;
            return -1;
        }
        r = renameat(fromfd, from, tofd, to);
    }
    return r;
}

/* One message's files made durable and closed; the result goes to m->result. */
static void sync_msg(ph_spool_msg *m, unsigned long long *fsyncs)
{
    int r = sync_and_close(&m->fd, fsyncs);
    int r2 = sync_and_close(&m->envfd, fsyncs);
    m->result = r < 0 ? r : r2;
}

typedef struct sync_work {
    ph_spool_msg **msgs;
    size_t n;
    size_t next;                /* atomic: the next message to take */
    unsigned long long fsyncs;  /* atomic */
} sync_work;

static void *sync_worker(void *arg)
{
    sync_work *w = arg;
    unsigned long long fsyncs = 0;
    size_t i;
    while ((i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED)) < w->n)
        sync_msg(w->msgs[i], &fsyncs);
    __atomic_add_fetch(&w->fsyncs, fsyncs, __ATOMIC_RELAXED);
    return NULL;
}

/* Every file of the batch fdatasync'd, up to SYNC_THREADS_MAX at once: the device gets the
 * flushes together (ext4 commits them in one journal transaction) instead of one after another,
 * which is what bounds a worker's durable rate (2 fdatasyncs per message, ~1 ms each here). */
static void sync_batch(batch *b, unsigned long long *fsyncs)
{
    size_t n = 0;
    for (ph_spool_msg *m = b->msgs; m; m = m->next)
        n++;
    sync_work w = {.msgs = malloc(n * sizeof(*w.msgs)), .n = n};
    if (!w.msgs) { /* one after another, then */
        for (ph_spool_msg *m = b->msgs; m; m = m->next)
            sync_msg(m, fsyncs);
        return;
    }
    size_t k = 0;
    for (ph_spool_msg *m = b->msgs; m; m = m->next)
        w.msgs[k++] = m;
    pthread_t helpers[SYNC_THREADS_MAX - 1];
    size_t nhelpers = 0;
    while (nhelpers + 1 < SYNC_THREADS_MAX && nhelpers + 1 < n &&
           pthread_create(&helpers[nhelpers], NULL, sync_worker, &w) == 0)
        nhelpers++;
    sync_worker(&w); /* this thread takes its share too */
    for (size_t i = 0; i < nhelpers; i++)
        pthread_join(helpers[i], NULL);
    *fsyncs += w.fsyncs;
    free(w.msgs);
}

/* A durable message renamed into queue/ (the envelope as .new). Worker thread. */
static int move_to_queue(ph_spool_msg *m)
{
    char from[80], to[80];
    name_of(from, sizeof(from), m->qid, "msg");
    if (rename_new(m->sp->incoming_fd, from, m->sp->queue_fd, from) < 0)
        return -errno;
    m->in_queue = true;
    name_of(from, sizeof(from), m->qid, "env");
    name_of(to, sizeof(to), m->qid, "new");
    return renameat(m->sp->incoming_fd, from, m->sp->queue_fd, to) < 0 ? -errno : 0;
}

/* After the directory fsync: the queue manager may have it now. */
static int publish(ph_spool_msg *m)
{
    char from[80], to[80];
    name_of(from, sizeof(from), m->qid, "new");
    name_of(to, sizeof(to), m->qid, "env");
    return renameat(m->sp->queue_fd, from, m->sp->queue_fd, to) < 0 ? -errno : 0;
}

static void batch_work(void *arg)
{
    batch *b = arg;
    unsigned long long fsyncs = 0;
    bool any = false;
    sync_batch(b, &fsyncs);
    for (ph_spool_msg *m = b->msgs; m; m = m->next)
        if (m->result == 0)
            any |= (m->result = move_to_queue(m)) == 0;
    if (any) {
        int r = fsync(b->sp->queue_fd) < 0 ? -errno : 0; /* one directory sync for all */
        fsyncs++;
        for (ph_spool_msg *m = b->msgs; m; m = m->next)
            if (m->result == 0) /* not known to be durable: refuse it, the client retries */
                m->result = r < 0 ? r : publish(m);
    }
    __atomic_add_fetch(&b->sp->stats.fsyncs, fsyncs, __ATOMIC_RELAXED);
}

static void batch_done(void *arg)
{
    batch *b = arg;
    ph_spool *sp = b->sp;
    sp->in_flight = false;
    sp->stats.batches++;
    while (b->msgs) {
        ph_spool_msg *m = b->msgs;
        b->msgs = m->next;
        if (m->result < 0) {
            sp->stats.failed++;
            remove_files(m);
        } else {
            sp->stats.committed++;
        }
        m->done(m->arg, m->result);
        free_msg(m);
    }
    if (!b->on_stack)
        free(b);
    if (sp->pending)
        event_active(sp->flush_ev, 0, 0);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ph_spool *sp = arg;
    if (sp->in_flight || !sp->pending)
        return;
    batch *b = malloc(sizeof(*b));
    if (!b) { /* cannot even track a batch: refuse these messages, the clients retry */
        for (ph_spool_msg *m = sp->pending; m; m = m->next)
            m->result = -ENOMEM;
        batch stack = {sp, sp->pending, true};
        sp->pending = NULL;
        sp->pending_tail = &sp->pending;
        batch_done(&stack);
        return;
    }
    b->sp = sp;
    b->msgs = sp->pending;
    b->on_stack = false;
    sp->pending = NULL;
    sp->pending_tail = &sp->pending;
    sp->in_flight = true;
    if (sp->offload(sp->offload_ctx, batch_work, batch_done, b) < 0) {
        batch_work(b); /* no worker available: commit here, slower but just as durable */
        batch_done(b);
    }
}

/* ---- messages Posthorn makes itself (bounces) ------------------------------------------- */

static int write_new(int dirfd, const char *name, const char *data, size_t len, int *fd)
{
    *fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (*fd < 0)
        return -errno;
    return ph_write_all(*fd, data, len);
}

void ph_spool_set_owner(ph_spool *sp, unsigned uid, unsigned gid)
{
    sp->chown = true;
    sp->owner_uid = uid;
    sp->owner_gid = gid;
}

int ph_spool_store(ph_spool *sp, const char *qid, const char *msg, size_t msglen,
                   const char *envelope, size_t envlen)
{
    ph_spool_msg m = {.sp = sp, .fd = -1, .envfd = -1};
    snprintf(m.qid, sizeof(m.qid), "%s", qid);
    char name[80];
    name_of(name, sizeof(name), qid, "msg");
    int r = write_new(sp->incoming_fd, name, msg, msglen, &m.fd);
    if (r == 0) {
        name_of(name, sizeof(name), qid, "env");
        r = write_new(sp->incoming_fd, name, envelope, envlen, &m.envfd);
    }
    unsigned long long fsyncs = 0;
    if (r == 0 && sp->chown &&
        (fchown(m.fd, sp->owner_uid, sp->owner_gid) < 0 ||
         fchown(m.envfd, sp->owner_uid, sp->owner_gid) < 0))
        r = -errno;
    if (r == 0) {
        sync_msg(&m, &fsyncs);
        r = m.result;
    }
    if (r == 0)
        r = move_to_queue(&m);
    if (r == 0 && fsync(sp->queue_fd) < 0)
        r = -errno;
    fsyncs++;
    if (r == 0)
        r = publish(&m);
    __atomic_add_fetch(&sp->stats.fsyncs, fsyncs, __ATOMIC_RELAXED);
    if (m.fd >= 0)
        close(m.fd);
    if (m.envfd >= 0)
        close(m.envfd);
    if (r < 0)
        remove_files(&m);
    return r;
}

ph_spool_stats ph_spool_get_stats(const ph_spool *sp)
{
    return sp->stats;
}

long ph_spool_count(const ph_spool *sp)
{
    DIR *d = dir_stream(sp->queue_fd);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".env") == 0;
    }
    closedir(d);
    return n;
}
