/*
 * listener.c - listening sockets: parses "host:port", "[v6]:port", "*:port" and "unix:/path",
 * binds non-blocking sockets (IPv6 ones v6-only), and hands accepted connections to
 * connection.c through evconnlistener. Owns the sockets and removes Unix socket files it made.
 * Errors are negative errnos; nothing here exits.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server_internal.h"

#define LISTEN_BACKLOG 4096

/* Splits "host:port" / "[v6]:port" / "*:port" into host (NULL for any) and port text. */
static int split_host_port(const char *address, char *host, size_t hostlen, const char **port)
{
    const char *colon;
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        if ((size_t)(close - address - 1) >= hostlen)
            return -EINVAL;
        memcpy(host, address + 1, (size_t)(close - address - 1));
        host[close - address - 1] = '\0';
        *port = close + 2;
        return 0;
    }
    colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= hostlen)
        return -EINVAL;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    if (strcmp(host, "*") == 0)
        host[0] = '\0';
    *port = colon + 1;
    return 0;
}

static int bind_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket from an earlier run */
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int bind_inet(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int ph_listener_bind(const char *address, int *port_out)
{
    if (strncmp(address, "unix:", 5) == 0) {
        *port_out = 0;
        return bind_unix(address + 5);
    }
    char host[256];
    const char *port;
    if (split_host_port(address, host, sizeof(host), &port) < 0 || !*port)
        return -EINVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
        return -EINVAL; /* numeric only: a listener never waits for DNS */
    int fd = bind_inet(res);
    freeaddrinfo(res);
    if (fd >= 0)
        *port_out = local_port(fd);
    return fd;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    ph_connection_accept(arg, fd, sa, salen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    (void)l;
    /* EMFILE and friends: keep running; the connection waits in the backlog */
    ph_log(arg, POSTHORN_LOG_WARN, "event=accept_error error=\"%s\"", strerror(e));
}

int ph_listener_adopt(posthorn_server *srv, int fd)
{
    ph_listener *ls = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    srv->listeners = ls;
    evutil_make_socket_nonblocking(fd);
    int one = 1; /* accepted sockets inherit it: replies are small and latency-bound */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails harmlessly on AF_UNIX */
    struct evconnlistener *evl =
        evconnlistener_new(srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!evl)
        return -ENOMEM;
    evconnlistener_set_error_cb(evl, accept_error_cb);
    ls[srv->nlisteners] = (ph_listener){.evl = evl, .port = local_port(fd), .unix_path = NULL};
    srv->nlisteners++;
    return 0;
}

int ph_listener_open(posthorn_server *srv, const char *address)
{
    int port;
    int fd = ph_listener_bind(address, &port);
    if (fd < 0)
        return fd;
    int r = ph_listener_adopt(srv, fd);
    if (r < 0) {
        close(fd);
        return r;
    }
    if (strncmp(address, "unix:", 5) == 0)
        srv->listeners[srv->nlisteners - 1].unix_path = strdup(address + 5);
    return 0;
}

void ph_listeners_close(posthorn_server *srv)
{
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        evconnlistener_free(srv->listeners[i].evl);
        if (srv->listeners[i].unix_path) {
            unlink(srv->listeners[i].unix_path);
            free(srv->listeners[i].unix_path);
        }
    }
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}
