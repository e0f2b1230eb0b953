/*
 * async_rcpt.c - libposthorn example: answers every RCPT TO later, from a timer, as a server
 * would after an asynchronous directory or database lookup. Recipients whose local part starts
 * with "bad" are refused with 550 5.1.1; the others are accepted. Messages are discarded.
 *
 *   usage: async_rcpt ADDR:PORT DELAY_MS
 *
 * Shows: returning POSTHORN_PENDING, keeping only the session id across the wait (the client
 * may be gone when the timer fires) and posthorn_server_resume().
 */
#include <event2/event.h>
#include <posthorn/posthorn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct app {
    struct event_base *base;
    posthorn_server *srv;
    struct timeval delay;
} app;

typedef struct lookup {
    app *app;
    uint64_t session_id; /* never the session pointer: it may be freed meanwhile */
    bool refuse;
    struct event *timer;
} lookup;

static void lookup_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lookup *l = arg;
    posthorn_verdict v = l->refuse ? posthorn_reject(550, "5.1.1", "No such user here")
                                   : posthorn_accept();
    if (posthorn_server_resume(l->app->srv, l->session_id, v) < 0)
        fprintf(stderr, "level=info event=resume_dropped sid=%016llx\n",
                (unsigned long long)l->session_id);
    event_free(l->timer);
    free(l);
}

static posthorn_verdict on_rcpt(posthorn_session *s, const char *address, void *user)
{
    app *a = user;
    lookup *l = calloc(1, sizeof(*l));
    if (!l)
        return posthorn_reject(451, "4.3.0", "Out of memory");
    l->app = a;
    l->session_id = posthorn_session_id(s);
    l->refuse = strncasecmp(address, "bad", 3) == 0;
    l->timer = evtimer_new(a->base, lookup_done, l);
    if (!l->timer || evtimer_add(l->timer, &a->delay) < 0) {
        if (l->timer)
            event_free(l->timer);
        free(l);
        return posthorn_reject(451, "4.3.0", "Lookup failed");
    }
    return posthorn_pending();
}

static void stopped(posthorn_server *srv, void *arg)
{
    (void)arg;
    event_base_loopbreak(posthorn_server_base(srv)); /* our base: we stop it */
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    posthorn_server_shutdown(arg, stopped, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ADDR:PORT DELAY_MS\n", argv[0]);
        return 2;
    }
    long ms = strtol(argv[2], NULL, 10);
    app a = {.base = event_base_new(), .delay = {ms / 1000, (ms % 1000) * 1000}};
    posthorn_hooks hooks = {.on_rcpt = on_rcpt};
    /* the server runs on the caller's event_base, next to the caller's own timers */
    a.srv = posthorn_server_new(a.base, &hooks, NULL, &a);
    if (!a.srv || posthorn_server_listen(a.srv, argv[1]) < 0) {
        fprintf(stderr, "async_rcpt: cannot listen on %s\n", argv[1]);
        return 1;
    }
    char host[256];
    snprintf(host, sizeof(host), "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    fprintf(stderr, "level=info event=listening address=%s:%d\n", host,
            posthorn_server_listener_port(a.srv, 0));
    signal(SIGPIPE, SIG_IGN);
    struct event *term = evsignal_new(a.base, SIGTERM, on_signal, a.srv);
    event_add(term, NULL);
    event_base_dispatch(a.base); /* posthorn_server_shutdown stops it when the sessions end */
    event_free(term);
    posthorn_server_free(a.srv);
    event_base_free(a.base);
    return 0;
}
