/*
 * maildir.c - one message into one Maildir, durably (see maildir.h).
 *
 * The copy converts the queue's CRLF line ends to LF in place, in one 64 KiB buffer read with
 * pread (so deliveries sharing a message fd never disturb each other). A CR at the end of a
 * chunk is held back until the next chunk shows whether an LF follows; the buffer keeps one
 * byte in front of each chunk so that a held-back CR that turns out to be lone can be put back
 * without a second buffer. Directories are created only when an open or link finds them
 * missing, so a delivery into an existing Maildir costs no extra system calls.
 */
#include "deliver/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COPY_BUFFER (64 * 1024)
#define UNIQUE_MAX 320   /* "<secs>.M<usecs>P<pid>Q<counter>.<escaped host>" */
#define OPEN_TRIES 4     /* names taken already (EEXIST): only after a clock step back */

/* The one piece of process-wide state: see maildir.h (unique names across threads). */
static atomic_ullong delivery_counter;

typedef struct delivery {
    const char *path;
    char unique[UNIQUE_MAX];
    char tmp[PATH_MAX];   /* path/tmp/<unique>; "" when no file is there */
    char dest[PATH_MAX];  /* path/new/<unique>,S=<size>; "" until linked */
    int fd;
    uint64_t written;
    char *err;
    size_t errlen;
} delivery;

__attribute__((format(printf, 3, 4)))
static int fail(delivery *d, int code, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- names and directories ------------------------------------------------------------ */

/* The host name with the spec's escapes, so that names never hold '/' or ':'. */
static void escaped_host(char *out, size_t outlen)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    size_t o = 0;
    for (const char *p = host; *p && o + 5 < outlen; p++) {
        if (*p == '/' || *p == ':') {
            memcpy(out + o, *p == '/' ? "\\057" : "\\072", 4);
            o += 4;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static void make_unique(char *out, size_t outlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long n = atomic_fetch_add(&delivery_counter, 1);
    char host[4 * 256 + 1];
    escaped_host(host, sizeof(host));
    snprintf(out, outlen, "%lld.M%ldP%ldQ%llu.%.200s", (long long)ts.tv_sec,
             (long)(ts.tv_nsec / 1000), (long)getpid(), n, host);
}

/* mkdir that accepts an existing entry (if it is not a directory, the next open says so). */
static int make_dir(const char *p)
{
    return mkdir(p, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* Creates path's missing parents, path itself and tmp/, new/, cur/. */
static int make_maildir(delivery *d)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s/cur", d->path) >= (int)sizeof(p))
        return fail(d, -ENAMETOOLONG, "maildir path too long: %s", d->path);
    size_t base = strlen(d->path);
    for (size_t i = 1; i <= base; i++) {
        if (p[i] != '/' || p[i - 1] == '/')
            continue;
        p[i] = '\0';
        int r = make_dir(p);
        p[i] = '/';
        if (r < 0)
            return fail(d, r, "cannot create directory %.*s: %s", (int)i, p, strerror(-r));
    }
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", d->path, subdirs[i]);
        int r = make_dir(p);
        if (r < 0)
            return fail(d, r, "cannot create directory %s: %s", p, strerror(-r));
    }
    return 0;
}

/* Opens tmp/<unique> exclusively, creating the Maildir when it is missing. */
static int open_tmp(delivery *d)
{
    bool made = false;
    for (int tries = 0; tries < OPEN_TRIES; tries++) {
        make_unique(d->unique, sizeof(d->unique));
        if (snprintf(d->tmp, sizeof(d->tmp), "%s/tmp/%s", d->path, d->unique) >=
            (int)sizeof(d->tmp))
            return fail(d, -ENAMETOOLONG, "maildir path too long: %s", d->path);
        d->fd = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (d->fd >= 0)
            return 0;
        int e = errno;
        if (e == ENOENT && !made) {
            made = true;
            int r = make_maildir(d);
            if (r < 0)
                return r;
            tries--; /* creating the directories is not a failed name */
            continue;
        }
        if (e != EEXIST && e != EINTR)
            return fail(d, -e, "cannot create %s: %s", d->tmp, strerror(e));
    }
    return fail(d, -EEXIST, "cannot create a unique file in %s/tmp", d->path);
}

/* ---- the copy ------------------------------------------------------------------------- */

static int write_all(delivery *d, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(d->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            return fail(d, -e, "write to %s: %s", d->tmp, strerror(e));
        }
        p += w;
        n -= (size_t)w;
        d->written += (uint64_t)w;
    }
    return 0;
}

/* Turns each CRLF in p[0..n) into LF in place; returns the new length. A CR as the last byte
 * is left out and reported in *cr_held: only the next chunk can tell what it is. */
static size_t crlf_to_lf(char *p, size_t n, bool *cr_held)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *cr = memchr(p + in, '\r', n - in);
        size_t end = cr ? (size_t)(cr - p) : n;
        if (out != in)
            memmove(p + out, p + in, end - in);
        out += end - in;
        in = end;
        if (!cr)
            break;
        if (in + 1 == n) {
            *cr_held = true;
            break;
        }
        bool crlf = p[in + 1] == '\n';
        p[out++] = crlf ? '\n' : '\r';
        in += crlf ? 2 : 1;
    }
    return out;
}

/* Reads up to want bytes at off into p; 0 at a premature end, or a negative errno. */
static ssize_t read_at(delivery *d, int fd, char *p, size_t want, uint64_t off)
{
    for (;;) {
        ssize_t n = pread(fd, p, want, (off_t)off);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return fail(d, -errno, "read of the queued message: %s", strerror(errno));
    }
}

static int copy_message(delivery *d, int msg_fd, uint64_t size)
{
    char *buf = malloc(COPY_BUFFER + 1); /* buf[0]: room to put a held-back CR back */
    if (!buf)
        return fail(d, -ENOMEM, "out of memory");
    bool cr_held = false;
    int rc = 0;
    for (uint64_t off = 0; off < size && rc == 0;) {
        size_t want = size - off < COPY_BUFFER ? (size_t)(size - off) : COPY_BUFFER;
        ssize_t n = read_at(d, msg_fd, buf + 1, want, off);
        if (n <= 0) {
            rc = n < 0 ? (int)n
                       : fail(d, -EIO, "queued message shorter than its size %" PRIu64, size);
            break;
        }
        off += (uint64_t)n;
        char *start = buf + 1;
        size_t len = (size_t)n;
        if (cr_held && start[0] != '\n') {
            *--start = '\r'; /* it was a lone CR: kept */
            len++;
        }
        cr_held = false; /* before an LF it was half of a CRLF: dropped */
        len = crlf_to_lf(start, len, &cr_held);
        rc = write_all(d, start, len);
    }
    if (rc == 0 && cr_held)
        rc = write_all(d, "\r", 1);
    free(buf);
    return rc;
}

/* ---- commit --------------------------------------------------------------------------- */

static int sync_and_close(delivery *d)
{
    int rc = 0;
    if (fsync(d->fd) != 0)
        rc = fail(d, -errno, "fsync of %s: %s", d->tmp, strerror(errno));
    int fd = d->fd;
    d->fd = -1;
    if (close(fd) != 0 && rc == 0)
        rc = fail(d, -errno, "close of %s: %s", d->tmp, strerror(errno));
    return rc;
}

/* link() where it works (a crash leaves both names, never none); rename() on filesystems
 * without hard links. new/ missing (removed under us) is created once. */
static int move_to_new(delivery *d)
{
    if (snprintf(d->dest, sizeof(d->dest), "%s/new/%s,S=%" PRIu64, d->path, d->unique,
                 d->written) >= (int)sizeof(d->dest)) {
        d->dest[0] = '\0';
        return fail(d, -ENAMETOOLONG, "maildir path too long: %s", d->path);
    }
    for (int tries = 0; tries < 2; tries++) {
        if (link(d->tmp, d->dest) == 0) {
            unlink(d->tmp); /* failure ignored: the message is delivered (maildir.h) */
            d->tmp[0] = '\0';
            return 0;
        }
        int e = errno;
        if (e == EPERM || e == ENOSYS || e == EOPNOTSUPP) {
            if (rename(d->tmp, d->dest) == 0) {
                d->tmp[0] = '\0';
                return 0;
            }
            e = errno;
        }
        if (e != ENOENT || tries > 0 || make_maildir(d) < 0) {
            d->dest[0] = '\0';
            return fail(d, -e, "cannot link %s into new/: %s", d->tmp, strerror(e));
        }
    }
    d->dest[0] = '\0';
    return fail(d, -ENOENT, "cannot link %s into new/", d->tmp);
}

/* Removes whatever a failed delivery left. */
static void roll_back(delivery *d)
{
    if (d->fd >= 0)
        close(d->fd);
    if (d->tmp[0])
        unlink(d->tmp);
    if (d->dest[0])
        unlink(d->dest);
}

int ph_maildir_sync(const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s/new", path) >= (int)sizeof(p))
        return -ENAMETOOLONG;
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int ph_maildir_deliver(const char *path, const char *prefix, size_t prefix_len, int msg_fd,
                       uint64_t size, bool sync_dir, char *name_out, size_t name_size,
                       char *err, size_t errlen)
{
    delivery d = {.path = path, .fd = -1, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (name_out && name_size)
        name_out[0] = '\0';
    if (!path || !*path || (prefix_len && !prefix) || msg_fd < 0)
        return fail(&d, -EINVAL, "invalid arguments");
    int rc = open_tmp(&d);
    if (rc == 0 && prefix_len)
        rc = write_all(&d, prefix, prefix_len);
    if (rc == 0)
        rc = copy_message(&d, msg_fd, size);
    if (rc == 0)
        rc = sync_and_close(&d);
    if (rc == 0)
        rc = move_to_new(&d);
    if (rc == 0 && sync_dir && (rc = ph_maildir_sync(path)) < 0)
        fail(&d, rc, "fsync of %s/new: %s", path, strerror(-rc));
    if (rc < 0) {
        roll_back(&d);
        return rc;
    }
    if (name_out && name_size)
        snprintf(name_out, name_size, "new/%s", strrchr(d.dest, '/') + 1);
    return 0;
}

/* ---- error classes -------------------------------------------------------------------- */

bool ph_maildir_error_is_temporary(int neg_errno)
{
    static const int permanent[] = {ENOTDIR, EISDIR, EACCES, EPERM, ENAMETOOLONG,
                                    ELOOP,   EINVAL, EFBIG,  EXDEV};
    if (neg_errno >= 0)
        return false;
    for (size_t i = 0; i < sizeof(permanent) / sizeof(*permanent); i++)
        if (-neg_errno == permanent[i])
            return false;
    return true; /* unknown trouble: retrying is safer than bouncing */
}
