/*
 * control.c - the control socket, both ends (see control.h). The server reads a command with
 * an event (a silent client costs nothing) and answers with a blocking write bounded by a send
 * timeout: answers are small, and one slow reader can delay the loop by at most that timeout.
 */
#include "daemon/control.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "deliver/qmgr.h"
#include "queue/qlist.h"
#include "queue/qstore.h"

#define LINE_MAX_ 256
#define IO_TIMEOUT_S 5

struct control_server {
    struct event_base *base;
    struct ph_qmgr *q;
    struct ph_qstore *store;
    int fd;
    struct event *accept_ev;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

typedef struct client {
    control_server *cs;
    int fd;
    struct event *ev;
    size_t len;
    char line[LINE_MAX_];
} client;

static void set_timeouts(int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client went away or stalled past the timeout */
        p += w;
        n -= (size_t)w;
    }
}

static void client_free(client *c)
{
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static const char *error_text(int r)
{
    return r == -ENOENT ? "no such message" : r == -EINVAL ? "bad queue id" : strerror(-r);
}

/* Runs one command line; the answer (status line first) goes to out. */
static void execute(control_server *cs, char *line, FILE *out)
{
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    int64_t now = (int64_t)time(NULL);
    int r;
    if (strcmp(line, "list") == 0 && !arg) {
        fputs("ok\n", out);
        ph_qlist_list(cs->store, out, now);
        return;
    }
    if (strcmp(line, "show") == 0 && arg) {
        char *body = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&body, &len);
        r = m ? ph_qlist_show(cs->store, arg, m, now) : -ENOMEM;
        if (m)
            fclose(m);
        if (r == 0)
            fprintf(out, "ok\n%s", body);
        else
            fprintf(out, "error: %s\n", error_text(r));
        free(body);
        return;
    }
    if (strcmp(line, "flush") == 0)
        r = ph_qmgr_flush(cs->q, arg);
    else if (!arg)
        r = -EBADRQC;
    else if (strcmp(line, "hold") == 0)
        r = ph_qmgr_hold(cs->q, arg);
    else if (strcmp(line, "release") == 0)
        r = ph_qmgr_release(cs->q, arg);
    else if (strcmp(line, "delete") == 0)
        r = ph_qmgr_delete(cs->q, arg);
    else if (strcmp(line, "bounce") == 0)
        r = ph_qmgr_bounce(cs->q, arg);
    else
        r = -EBADRQC;
    if (r == -EBADRQC)
        fputs("error: unknown command (list, show ID, flush [ID], hold ID, release ID, "
              "delete ID, bounce ID)\n", out);
    else if (r < 0)
        fprintf(out, "error: %s\n", error_text(r));
    else
        fputs("ok\n", out);
}

static bool peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return false;
    return cred.uid == 0 || cred.uid == geteuid();
}

static void answer(client *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return;
    if (!peer_allowed(c->fd))
        fputs("error: permission denied\n", out);
    else
        execute(c->cs, c->line, out);
    fclose(out);
    int flags = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK);
    write_all(c->fd, text, len);
    free(text);
}

static void client_cb(evutil_socket_t fd, short what, void *arg)
{
    client *c = arg;
    if (what & EV_TIMEOUT)
        return client_free(c);
    ssize_t n = recv(fd, c->line + c->len, sizeof(c->line) - 1 - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        return client_free(c);
    c->len += (size_t)n;
    c->line[c->len] = '\0';
    char *nl = strchr(c->line, '\n');
    if (!nl && c->len < sizeof(c->line) - 1)
        return; /* more to come */
    if (nl)
        *nl = '\0';
    if (nl && nl > c->line && nl[-1] == '\r')
        nl[-1] = '\0';
    answer(c);
    client_free(c);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    control_server *cs = arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    client *c = calloc(1, sizeof(*c));
    struct timeval tv = {IO_TIMEOUT_S, 0};
    if (c) {
        c->cs = cs;
        c->fd = fd;
        c->ev = event_new(cs->base, fd, EV_READ | EV_PERSIST, client_cb, c);
    }
    if (!c || !c->ev || event_add(c->ev, &tv) < 0) {
        if (c && c->ev)
            event_free(c->ev);
        free(c);
        close(fd);
        return;
    }
    set_timeouts(fd);
}

control_server *control_start(struct event_base *base, const char *path, struct ph_qmgr *q,
                              struct ph_qstore *store, char *err, size_t errlen)
{
    control_server *cs = calloc(1, sizeof(*cs));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!cs || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, cs ? "control socket path too long: %s" : "out of memory", path);
        free(cs);
        return NULL;
    }
    *cs = (control_server){.base = base, .q = q, .store = store, .fd = -1};
    snprintf(cs->path, sizeof(cs->path), "%s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path); /* a socket left by a daemon that was killed */
    mode_t old = umask(0177);
    cs->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int r = cs->fd < 0 || bind(cs->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(cs->fd, 16) < 0;
    umask(old);
    if (r || !(cs->accept_ev = event_new(base, cs->fd, EV_READ | EV_PERSIST, accept_cb, cs)) ||
        event_add(cs->accept_ev, NULL) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        control_stop(cs);
        return NULL;
    }
    return cs;
}

void control_stop(control_server *cs)
{
    if (!cs)
        return;
    if (cs->accept_ev)
        event_free(cs->accept_ev);
    if (cs->fd >= 0) {
        close(cs->fd);
        unlink(cs->path);
    }
    free(cs);
}

/* ---- client ------------------------------------------------------------------------------ */

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    set_timeouts(fd);
    return fd;
}

int control_call(const char *path, const char *line, int out_fd, char *err, size_t errlen)
{
    int fd = connect_to(path);
    if (fd < 0)
        return fd;
    char req[LINE_MAX_ + 2];
    snprintf(req, sizeof(req), "%s\n", line);
    write_all(fd, req, strlen(req));
    char buf[8192];
    char status[LINE_MAX_] = "";
    size_t slen = 0;
    bool in_body = false;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        size_t off = 0;
        while (!in_body && off < (size_t)n) {
            char ch = buf[off++];
            if (ch == '\n')
                in_body = true;
            else if (slen < sizeof(status) - 1)
                status[slen++] = ch;
        }
        if (in_body && off < (size_t)n && write(out_fd, buf + off, (size_t)n - off) < 0)
            break;
    }
    close(fd);
    status[slen] = '\0';
    if (strcmp(status, "ok") == 0)
        return 0;
    snprintf(err, errlen, "%s", strncmp(status, "error: ", 7) == 0 ? status + 7
                                 : status[0] ? status : "no answer from the queue manager");
    return 1;
}
