/*
 * lmtp.c - the blocking LMTP driver (see lmtp.h): a non-blocking socket waited on with poll(),
 * so every connect, read and write has a timeout and a pipelining server that answers while
 * we still write can never deadlock us. The protocol is entirely lmtp_proto.c's; this file
 * only moves bytes. Owns the socket and the two 64 KiB message buffers of one call.
 */
#include "deliver/lmtp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 30000
#define READ_CHUNK 4096 /* replies are short */

/* ---- waiting -------------------------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to timeout_ms for events on fd: the revents, 0 on timeout, or a negative errno.
 * EINTR restarts the wait with the time that is left. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (n > 0)
            return pfd.revents;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* ---- connecting ----------------------------------------------------------------------------- */

static int connect_addr(const struct sockaddr *sa, socklen_t salen, int timeout_ms)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, sa, salen);
    if (rc < 0 && (errno == EINPROGRESS || errno == EINTR)) { /* EINTR: still in progress */
        int r = wait_fd(fd, POLLOUT, timeout_ms);
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (r == 0)
            errno = ETIMEDOUT;
        else if (r < 0)
            errno = -r;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0)
            errno = soerr;
        rc = (r > 0 && soerr == 0) ? 0 : -1;
    }
    if (rc < 0) {
        int e = errno ? errno : ECONNREFUSED;
        close(fd);
        return -e;
    }
    return fd;
}

static int connect_unix(const char *path, int timeout_ms)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path))
        return -EINVAL;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    return connect_addr((const struct sockaddr *)&sun, sizeof(sun), timeout_ms);
}

/* Splits "host:port" or "[v6]:port" into host and port (copies in the caller's buffers). */
static int split_host_port(const char *dest, char *host, size_t hostlen, char *port,
                           size_t portlen)
{
    const char *h = dest, *colon;
    size_t hl;
    if (dest[0] == '[') {
        const char *end = strchr(dest, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        h = dest + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(dest, ':');
        if (!colon || strchr(dest, ':') != colon) /* a bare IPv6 address needs brackets */
            return -EINVAL;
        hl = (size_t)(colon - dest);
    }
    size_t pl = strlen(colon + 1);
    if (hl == 0 || hl >= hostlen || pl == 0 || pl >= portlen)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

static int connect_tcp(const char *dest, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[16];
    if (split_host_port(dest, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, errlen, "bad LMTP destination \"%s\" (want unix:/path, host:port or "
                 "[v6]:port)", dest);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, port, &hints, &list);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve LMTP destination %s: %s", dest, gai_strerror(gai));
        return (gai == EAI_SYSTEM && errno) ? -errno : -EHOSTUNREACH;
    }
    int fd = -ECONNREFUSED;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        fd = connect_addr(ai->ai_addr, ai->ai_addrlen, timeout_ms);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(list);
    if (fd < 0)
        snprintf(err, errlen, "connect to LMTP %s: %s", dest, strerror(-fd));
    return fd;
}

/* A connected non-blocking socket to dest, or a negative errno with err set. */
static int connect_dest(const char *dest, int timeout_ms, char *err, size_t errlen)
{
    if (strncmp(dest, "unix:", 5) != 0)
        return connect_tcp(dest, timeout_ms, err, errlen);
    int fd = connect_unix(dest + 5, timeout_ms);
    if (fd < 0)
        snprintf(err, errlen, "connect to LMTP %s: %s", dest, strerror(-fd));
    return fd;
}

/* ---- moving bytes --------------------------------------------------------------------------- */

/* Reads what the socket has without waiting and feeds it: after a write error the server may
 * have said why (a 421) before closing. */
static void drain_input(ph_lmtp_client *c, int fd)
{
    char buf[READ_CHUNK];
    while (ph_lmtp_wants(c) != 0) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            ph_lmtp_feed(c, buf, (size_t)n);
        } else if (n == 0) {
            ph_lmtp_closed(c);
        } else if (errno != EINTR) {
            return;
        }
    }
}

static void fail_io(ph_lmtp_client *c, int fd, const char *what, int error)
{
    char text[256];
    const char *waiting = ph_lmtp_waiting_for(c);
    if (error == ETIMEDOUT)
        snprintf(text, sizeof(text), "timeout talking to the LMTP server (waiting for %s)",
                 waiting);
    else
        snprintf(text, sizeof(text), "%s error talking to the LMTP server (waiting for %s): %s",
                 what, waiting, strerror(error));
    drain_input(c, fd);
    ph_lmtp_fail(c, 451, "4.4.2", text);
}

/* Sends all of buf, waiting for room as needed: 0 or a negative errno. */
static int send_all(int fd, const char *buf, size_t len, int timeout_ms)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int r = wait_fd(fd, POLLOUT, timeout_ms);
        if (r == 0)
            return -ETIMEDOUT;
        if (r < 0)
            return r;
    }
    return 0;
}

typedef struct msg_buffers {
    char in[PH_LMTP_IO_CHUNK];
    char out[PH_LMTP_DOTSTUFF_BOUND(PH_LMTP_IO_CHUNK)];
} msg_buffers;

/* Reads the next piece of the message at *off into in: its length, or a negative errno
 * (-EIO for a file shorter than the job says). */
static ssize_t read_piece(const ph_lmtp_job *job, uint64_t off, char *in)
{
    uint64_t left = job->size - off;
    size_t want = left < PH_LMTP_IO_CHUNK ? (size_t)left : PH_LMTP_IO_CHUNK;
    for (;;) {
        ssize_t n = pread(job->msg_fd, in, want, (off_t)off);
        if (n > 0)
            return n;
        if (n == 0)
            return -EIO;
        if (errno != EINTR)
            return -errno;
    }
}

/* Streams the message through the dot-stuffer, then the terminator. */
static void send_message(ph_lmtp_client *c, int fd, const ph_lmtp_job *job, msg_buffers *b,
                         int timeout_ms)
{
    ph_lmtp_dotstuffer ds;
    ph_lmtp_dotstuff_init(&ds);
    for (uint64_t off = 0; off < job->size;) {
        ssize_t n = read_piece(job, off, b->in);
        if (n < 0) {
            char text[160];
            snprintf(text, sizeof(text), "cannot read the queued message at byte %llu: %s",
                     (unsigned long long)off, n == -EIO ? "file shorter than its size"
                                                        : strerror((int)-n));
            ph_lmtp_fail(c, 451, "4.3.0", text); /* no terminator: nothing is delivered */
            return;
        }
        off += (uint64_t)n;
        size_t m = ph_lmtp_dotstuff(&ds, b->in, (size_t)n, b->out);
        int rc = send_all(fd, b->out, m, timeout_ms);
        if (rc < 0) {
            fail_io(c, fd, "write", -rc);
            return;
        }
    }
    size_t m = ph_lmtp_dotstuff_finish(&ds, b->out);
    int rc = send_all(fd, b->out, m, timeout_ms);
    if (rc < 0)
        fail_io(c, fd, "write", -rc);
    else
        ph_lmtp_message_sent(c);
}

static void read_some(ph_lmtp_client *c, int fd)
{
    char buf[READ_CHUNK];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0)
        ph_lmtp_feed(c, buf, (size_t)n);
    else if (n == 0)
        ph_lmtp_closed(c);
    else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
        fail_io(c, fd, "read", errno);
}

static void write_some(ph_lmtp_client *c, int fd)
{
    size_t len;
    const char *out = ph_lmtp_output(c, &len);
    ssize_t n = send(fd, out, len, MSG_NOSIGNAL);
    if (n > 0)
        ph_lmtp_output_done(c, (size_t)n);
    else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
        fail_io(c, fd, "write", errno);
}

/* Runs the session until the state machine is done; every outcome is set on return. */
static void run_session(ph_lmtp_client *c, int fd, const ph_lmtp_job *job, msg_buffers *b,
                        int timeout_ms)
{
    unsigned w;
    while ((w = ph_lmtp_wants(c)) != 0) {
        if (w & PH_LMTP_WANT_MESSAGE) {
            send_message(c, fd, job, b, timeout_ms);
            continue;
        }
        short events = (short)(((w & PH_LMTP_WANT_READ) ? POLLIN : 0) |
                               ((w & PH_LMTP_WANT_WRITE) ? POLLOUT : 0));
        int r = wait_fd(fd, events, timeout_ms);
        if (r <= 0) {
            fail_io(c, fd, "poll", r == 0 ? ETIMEDOUT : -r);
        } else if ((w & PH_LMTP_WANT_READ) && (r & (POLLIN | POLLHUP | POLLERR))) {
            read_some(c, fd); /* replies first: they may end the session */
        } else if (w & PH_LMTP_WANT_WRITE) {
            write_some(c, fd);
        } else {
            fail_io(c, fd, "poll", EPIPE); /* hang-up while only reading was wanted */
        }
    }
}

/* ---- the API ---------------------------------------------------------------------------- */

static void defer_all(const ph_lmtp_job *job, ph_lmtp_result *results, const char *why)
{
    for (size_t i = 0; i < job->nrcpts; i++) {
        results[i].code = 451;
        snprintf(results[i].enh, sizeof(results[i].enh), "4.4.1");
        snprintf(results[i].text, sizeof(results[i].text), "%s", why);
    }
}

int ph_lmtp_deliver(const ph_lmtp_job *job, ph_lmtp_result *results, char *err, size_t errlen)
{
    char why[512] = "";
    if (err && errlen)
        err[0] = '\0';
    if (!job || !results || !job->dest || job->msg_fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, "invalid LMTP job");
        return -EINVAL;
    }
    ph_lmtp_params p = {.lhlo_name = job->lhlo_name, .from = job->from,
                        .body_8bitmime = job->body_8bitmime, .smtputf8 = job->smtputf8,
                        .rcpts = job->rcpts, .nrcpts = job->nrcpts};
    ph_lmtp_client *c = malloc(sizeof(*c));
    msg_buffers *b = malloc(sizeof(*b));
    int rc = (c && b) ? 0 : -ENOMEM;
    if (rc == 0 && ph_lmtp_client_init(c, &p, results) < 0) {
        snprintf(why, sizeof(why), "invalid LMTP job (names, paths or recipients)");
        rc = -EINVAL;
    }
    int timeout = job->timeout_ms > 0 ? job->timeout_ms : DEFAULT_TIMEOUT_MS;
    int fd = rc == 0 ? connect_dest(job->dest, timeout, why, sizeof(why)) : rc;
    if (fd >= 0) {
        run_session(c, fd, job, b, timeout);
        close(fd);
        rc = 0;
    } else {
        rc = fd;
        if (!why[0])
            snprintf(why, sizeof(why), "LMTP delivery failed: %s", strerror(-rc));
        if (job->rcpts && job->nrcpts)
            defer_all(job, results, why);
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
    }
    free(b);
    free(c);
    return rc;
}
