/*
 * blocklist.c - libposthorn example: an SMTP server that refuses senders from blocklisted
 * domains at MAIL FROM with 550 5.7.1 and accepts (and discards) everything else.
 *
 *   usage: blocklist ADDR:PORT DOMAIN...
 *   e.g.   blocklist 127.0.0.1:2526 spam.example junk.example
 *
 * Shows: a synchronous hook, a custom reply with an enhanced status code, the server running
 * on its own event_base, and a graceful stop on SIGTERM.
 */
#include <event2/event.h>
#include <posthorn/posthorn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct blocklist {
    char **domains;
    int count;
} blocklist;

static posthorn_verdict on_mail(posthorn_session *s, const char *address, void *user)
{
    (void)s;
    const blocklist *bl = user;
    const char *at = strrchr(address, '@');
    if (!at)
        return posthorn_accept(); /* <> and <postmaster> have no domain */
    for (int i = 0; i < bl->count; i++)
        if (strcasecmp(at + 1, bl->domains[i]) == 0)
            return posthorn_reject(550, "5.7.1", "Sender domain is blocklisted");
    return posthorn_accept();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    posthorn_server_shutdown(arg, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ADDR:PORT DOMAIN...\n", argv[0]);
        return 2;
    }
    blocklist bl = {argv + 2, argc - 2};
    posthorn_hooks hooks = {.on_mail = on_mail};
    posthorn_server *srv = posthorn_server_new(NULL, &hooks, NULL, &bl);
    if (!srv || posthorn_server_listen(srv, argv[1]) < 0) {
        fprintf(stderr, "blocklist: cannot listen on %s\n", argv[1]);
        posthorn_server_free(srv);
        return 1;
    }
    char host[256];
    snprintf(host, sizeof(host), "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    fprintf(stderr, "level=info event=listening address=%s:%d\n", host,
            posthorn_server_listener_port(srv, 0));
    signal(SIGPIPE, SIG_IGN);
    struct event *term = evsignal_new(posthorn_server_base(srv), SIGTERM, on_signal, srv);
    event_add(term, NULL);
    int r = posthorn_server_run(srv);
    event_free(term);
    posthorn_server_free(srv);
    return r == 0 ? 0 : 1;
}
