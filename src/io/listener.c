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
    ph_listener *ls = arg;
    /* EMFILE and friends: keep running; the connection waits in the backlog */
    ph_log(ls->srv, POSTHORN_LOG_WARN, "event=accept_error error=\"%s\"", strerror(e));
}

/* ---- options: a deep copy the listener owns ------------------------------------------ */

static char *dup_opt(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *ok = false;
    return c;
}

static void free_opts(posthorn_listener_options *o)
{
    free((char *)o->cert_file);
    free((char *)o->key_file);
    free((char *)o->tls_min_version);
    free((char *)o->tls_ciphers);
    free((char *)o->tls_ciphersuites);
    for (size_t i = 0; i < o->nsni; i++) {
        free((char *)o->sni[i].name);
        free((char *)o->sni[i].cert_file);
        free((char *)o->sni[i].key_file);
    }
    free((void *)o->sni);
    memset(o, 0, sizeof(*o));
}

static int copy_opts(posthorn_listener_options *dst, const posthorn_listener_options *src)
{
    bool ok = true;
    *dst = *src;
    dst->limits = NULL;
    dst->cert_file = dup_opt(src->cert_file, &ok);
    dst->key_file = dup_opt(src->key_file, &ok);
    dst->tls_min_version = dup_opt(src->tls_min_version, &ok);
    dst->tls_ciphers = dup_opt(src->tls_ciphers, &ok);
    dst->tls_ciphersuites = dup_opt(src->tls_ciphersuites, &ok);
    dst->sni = NULL;
    dst->nsni = 0;
    posthorn_tls_sni *sni = calloc(src->nsni ? src->nsni : 1, sizeof(*sni));
    if (!sni)
        ok = false;
    for (size_t i = 0; sni && i < src->nsni; i++) {
        sni[i].name = dup_opt(src->sni[i].name, &ok);
        sni[i].cert_file = dup_opt(src->sni[i].cert_file, &ok);
        sni[i].key_file = dup_opt(src->sni[i].key_file, &ok);
    }
    dst->sni = sni;
    dst->nsni = sni ? src->nsni : 0;
    if (!ok)
        free_opts(dst);
    return ok ? 0 : -ENOMEM;
}

/* ---- TLS contexts ------------------------------------------------------------------------ */

static ph_tls_ctx *build_tls(ph_listener *l)
{
    const posthorn_listener_options *o = &l->opts;
    ph_tls_sni_cert *sni = calloc(o->nsni ? o->nsni : 1, sizeof(*sni));
    if (!sni)
        return NULL;
    for (size_t i = 0; i < o->nsni; i++)
        sni[i] = (ph_tls_sni_cert){o->sni[i].name, o->sni[i].cert_file, o->sni[i].key_file};
    ph_tls_config cfg = {
        .cert_file = o->cert_file, .key_file = o->key_file, .sni = sni, .nsni = o->nsni,
        .min_version = o->tls_min_version, .ciphers = o->tls_ciphers,
        .ciphersuites = o->tls_ciphersuites, .no_session_tickets = o->no_session_tickets,
    };
    char err[400];
    ph_tls_ctx *c = ph_tls_ctx_new(&cfg, err, sizeof(err));
    free(sni);
    if (!c)
        ph_log(l->srv, POSTHORN_LOG_ERROR, "event=tls_error what=load error=\"%s\"", err);
    return c;
}

int ph_listeners_reload_tls(posthorn_server *srv)
{
    ph_tls_ctx **fresh = calloc(srv->nlisteners ? srv->nlisteners : 1, sizeof(*fresh));
    if (!fresh)
        return -ENOMEM;
    int r = 0;
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        fresh[i] = NULL;
        if (srv->listeners[i]->tls && !(fresh[i] = build_tls(srv->listeners[i])))
            r = -EINVAL;
    }
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        if (r < 0) { /* all or nothing: keep every old certificate */
            ph_tls_ctx_unref(fresh[i]);
            continue;
        }
        if (fresh[i]) {
            ph_tls_ctx_unref(srv->listeners[i]->tls);
            srv->listeners[i]->tls = fresh[i];
        }
    }
    free(fresh);
    ph_log(srv, r < 0 ? POSTHORN_LOG_ERROR : POSTHORN_LOG_INFO, "event=tls_reload result=%s",
           r < 0 ? "failed_kept_old" : "ok");
    return r;
}

/* ---- listeners -------------------------------------------------------------------------- */

static void free_listener(ph_listener *l)
{
    if (!l)
        return;
    if (l->evl)
        evconnlistener_free(l->evl);
    if (l->unix_path) {
        unlink(l->unix_path);
        free(l->unix_path);
    }
    ph_tls_ctx_unref(l->tls);
    free_opts(&l->opts);
    free(l);
}

static int init_listener(ph_listener *l, const posthorn_listener_options *opts)
{
    static const posthorn_listener_options plain = {.tls = POSTHORN_TLS_NONE};
    posthorn_server *srv = l->srv;
    if (copy_opts(&l->opts, opts ? opts : &plain) < 0)
        return -ENOMEM;
    l->limits = opts && opts->limits ? *opts->limits : srv->limits;
    if (l->opts.handshake_timeout_ms == 0)
        l->opts.handshake_timeout_ms = 30000;
    if (l->limits.idle_timeout_ms) {
        struct timeval tv = {l->limits.idle_timeout_ms / 1000,
                             (l->limits.idle_timeout_ms % 1000) * 1000};
        /* one timer queue per distinct timeout: O(1) re-arming instead of heap updates */
        l->idle_tv = event_base_init_common_timeout(srv->base, &tv);
    }
    if (l->opts.tls != POSTHORN_TLS_NONE && !(l->tls = build_tls(l)))
        return -EINVAL;
    return 0;
}

int ph_listener_adopt(posthorn_server *srv, int fd, const posthorn_listener_options *opts)
{
    ph_listener **ls = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*ls));
    ph_listener *l = calloc(1, sizeof(*l));
    if (ls)
        srv->listeners = ls;
    if (!ls || !l) {
        free(l);
        close(fd);
        return -ENOMEM;
    }
    l->srv = srv;
    l->port = local_port(fd);
    int r = init_listener(l, opts);
    if (r < 0) {
        close(fd);
        free_listener(l);
        return r;
    }
    evutil_make_socket_nonblocking(fd);
    int one = 1; /* accepted sockets inherit it: replies are small and latency-bound */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails harmlessly on AF_UNIX */
    l->evl = evconnlistener_new(srv->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!l->evl) {
        close(fd);
        free_listener(l);
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(l->evl, accept_error_cb);
    srv->listeners[srv->nlisteners++] = l;
    return 0;
}

int ph_listener_open(posthorn_server *srv, const char *address,
                     const posthorn_listener_options *opts)
{
    int port;
    int fd = ph_listener_bind(address, &port);
    if (fd < 0)
        return fd;
    int r = ph_listener_adopt(srv, fd, opts);
    if (r == 0 && strncmp(address, "unix:", 5) == 0)
        srv->listeners[srv->nlisteners - 1]->unix_path = strdup(address + 5);
    return r;
}

void ph_listeners_stop(posthorn_server *srv)
{
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        ph_listener *l = srv->listeners[i];
        if (l->evl)
            evconnlistener_free(l->evl); /* closes the socket: the kernel refuses new clients */
        l->evl = NULL;
    }
}

void ph_listeners_close(posthorn_server *srv)
{
    for (unsigned i = 0; i < srv->nlisteners; i++)
        free_listener(srv->listeners[i]);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}
