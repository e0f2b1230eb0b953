/*
 * runner.c - the daemon's process model (see runner.h). The parent binds, logs the listening
 * addresses, then either serves itself (one worker) or supervises forked workers. A worker
 * failing to start is an error exit; a worker dying later is restarted after a pause.
 */
#include "daemon/runner.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/logbuf.h"

#define MAX_WORKERS 64

static void shutdown_done(posthorn_server *srv, void *arg)
{
    (void)srv;
    event_base_loopbreak(arg);
}

static void drain_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    posthorn_server *srv = arg;
    logbuf_now(POSTHORN_LOG_INFO, "event=retiring pid=%d", (int)getpid());
    posthorn_server_drain(srv, shutdown_done, posthorn_server_base(srv));
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    posthorn_server_reload_tls(arg); /* logs its own outcome; old certificates stay on failure */
}

static const posthorn_listener_options *listen_opts(const runner_config *rc, unsigned i)
{
    return rc->listen_opts ? rc->listen_opts[i] : NULL;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    posthorn_server *srv = arg;
    logbuf_now(POSTHORN_LOG_INFO, "event=signal signal=%d pid=%d", (int)sig, (int)getpid());
    posthorn_server_shutdown(srv, shutdown_done, posthorn_server_base(srv));
}

/* ---- privileges ------------------------------------------------------------------------ */

static int lookup_ids(const char *user, const char *group, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        logbuf_now(POSTHORN_LOG_ERROR, "event=error what=user user=%s error=\"no such user\"", user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            logbuf_now(POSTHORN_LOG_ERROR, "event=error what=group group=%s error=\"no such group\"",
                       group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

int runner_ids_for(const char *user, const char *group, uid_t *uid, gid_t *gid)
{
    if (!user || !*user || geteuid() != 0)
        return 1;
    return lookup_ids(user, group && *group ? group : NULL, uid, gid) < 0 ? -1 : 0;
}

int runner_chown_for(const char *user, const char *group, const char *path)
{
    uid_t uid;
    gid_t gid;
    if (!user || !*user || geteuid() != 0)
        return 0;
    if (lookup_ids(user, group && *group ? group : NULL, &uid, &gid) < 0)
        return -1;
    if (chown(path, uid, gid) < 0) {
        logbuf_now(POSTHORN_LOG_ERROR, "event=error what=chown path=%s error=\"%s\"", path,
                   strerror(errno));
        return -1;
    }
    return 0;
}

/* After the sockets are bound and the certificates loaded: give up root for good. */
static int drop_privileges(const runner_config *rc)
{
    if (!rc->run_as_user)
        return 0;
    if (geteuid() != 0) {
        logbuf_now(POSTHORN_LOG_WARN, "event=privileges result=kept reason=not_root user=%s",
                   rc->run_as_user);
        return 0;
    }
    uid_t uid;
    gid_t gid;
    if (lookup_ids(rc->run_as_user, rc->run_as_group, &uid, &gid) < 0)
        return -1;
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0 || setuid(0) == 0) {
        logbuf_now(POSTHORN_LOG_ERROR, "event=error what=privileges error=\"%s\"", strerror(errno));
        return -1;
    }
    logbuf_now(POSTHORN_LOG_INFO, "event=privileges result=dropped user=%s uid=%d gid=%d pid=%d",
               rc->run_as_user, (int)uid, (int)gid, (int)getpid());
    return 0;
}

/* One event loop serving the shared sockets until a graceful shutdown. */
/* Ports the sockets got (port 0 asks the kernel), for the listening lines. */
static int *bound_ports;
static bool announced;

/* "event=listening" only once every listener is fully set up (certificates loaded): scripts
 * and tests take it as the sign that the server is ready. */
static void log_listening(const runner_config *rc)
{
    if (announced)
        return;
    announced = true;
    for (unsigned i = 0; i < rc->nlisten; i++) {
        if (strncmp(rc->listen[i], "unix:", 5) == 0) {
            logbuf_now(POSTHORN_LOG_INFO, "event=listening address=%s", rc->listen[i]);
            continue;
        }
        char host[256];
        snprintf(host, sizeof(host), "%s", rc->listen[i]);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
        logbuf_now(POSTHORN_LOG_INFO, "event=listening address=%s:%d", host, bound_ports[i]);
    }
}

static int serve(const runner_config *rc, const int *fds)
{
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (!base)
        return 1;
    posthorn_server *srv = posthorn_server_new(base, rc->hooks, rc->options, rc->user);
    if (!srv) {
        event_base_free(base);
        return 1;
    }
    posthorn_server_set_log(srv, logbuf_log, rc->log_level, NULL);
    for (unsigned i = 0; i < rc->nlisten; i++) {
        /* the server takes this process's descriptor: at shutdown it closes it, and the kernel
         * refuses new clients once no process holds the socket any more */
        int fd = fds[i];
        if (posthorn_server_listen_fd_opts(srv, fd, listen_opts(rc, i)) < 0) {
            logbuf_now(POSTHORN_LOG_ERROR, "event=error what=listen address=%s", rc->listen[i]);
            posthorn_server_free(srv);
            event_base_free(base);
            return 1;
        }
    }
    log_listening(rc); /* no-op in a worker: the supervisor said it already */
    if (drop_privileges(rc) < 0) {
        posthorn_server_free(srv);
        event_base_free(base);
        return 1;
    }
    struct event *term = evsignal_new(base, SIGTERM, signal_cb, srv);
    struct event *intr = evsignal_new(base, SIGINT, signal_cb, srv);
    struct event *hup = evsignal_new(base, SIGHUP, hup_cb, srv);
    struct event *usr2 = evsignal_new(base, SIGUSR2, drain_cb, srv);
    event_add(usr2, NULL);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_add(hup, NULL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigaddset(&stop, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &stop, NULL); /* a signal that came early is delivered now */
    logbuf_start(base);
    event_base_dispatch(base);
    logbuf_stop();
    event_free(term);
    event_free(intr);
    event_free(hup);
    event_free(usr2);
    posthorn_server_free(srv);
    event_base_free(base);
    return 0;
}

/* In a new child: die with the supervisor (a kill -9 of the daemon stops all of it, so a
 * restarted daemon never runs beside an orphaned queue manager). */
static void follow_parent(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1); /* the parent died before prctl */
}

static pid_t start_worker(const runner_config *rc, const int *fds, const sigset_t *old)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        follow_parent(parent);
        sigprocmask(SIG_SETMASK, old, NULL);
        _exit(serve(rc, fds));
    }
    return pid;
}

/* The queue manager: no listening sockets, the workers' privileges. */
static pid_t start_aux(const runner_config *rc, const int *fds, const sigset_t *old)
{
    if (!rc->aux_main)
        return 0;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        follow_parent(parent);
        for (unsigned i = 0; i < rc->nlisten; i++)
            close(fds[i]);
        if (drop_privileges(rc) < 0)
            _exit(1);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        (void)old;
        _exit(rc->aux_main(rc->aux_arg));
    }
    return pid;
}

static void stop_workers(pid_t *pids, unsigned n, int sig)
{
    for (unsigned i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], sig);
}

/* Waits for every worker; escalates to SIGKILL after the grace time. */
static void reap_all(pid_t *pids, unsigned n, unsigned grace_ms)
{
    time_t deadline = time(NULL) + (time_t)(grace_ms / 1000) + 5;
    unsigned alive = n;
    while (alive) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p > 0) {
            for (unsigned i = 0; i < n; i++)
                if (pids[i] == p)
                    pids[i] = 0, alive--;
            continue;
        }
        if (p < 0 && errno == ECHILD)
            break;
        if (time(NULL) >= deadline) {
            stop_workers(pids, n, SIGKILL);
            deadline = time(NULL) + 5;
        }
        usleep(20000);
    }
}

/* Workers that run as an unprivileged user cannot read root-only keys again: a reload then
 * means new workers (loading the certificates as root, then dropping privileges) and a
 * graceful stop of the old ones, which finish their sessions on the shared sockets. */
static bool reload_by_replacing(const runner_config *rc)
{
    return rc->run_as_user && geteuid() == 0;
}

static bool aux_restarting; /* the aux process was told to stop for a reload: start it again */

static void replace_workers(const runner_config *rc, const int *fds, const sigset_t *old,
                            pid_t *pids, unsigned n, pid_t *retired, unsigned *nretired)
{
    for (unsigned i = 0; i < n; i++) {
        pid_t fresh = start_worker(rc, fds, old);
        if (fresh < 0)
            continue; /* keep the old worker: better old certificates than no service */
        kill(pids[i], SIGUSR2); /* stop accepting; sessions in progress run to their end */
        if (*nretired < MAX_WORKERS * 4)
            retired[(*nretired)++] = pids[i];
        pids[i] = fresh;
    }
    logbuf_now(POSTHORN_LOG_INFO, "event=tls_reload result=workers_replaced workers=%u", n);
}

/* A worker that ended: restart it if it was serving, forget it if it was retiring. The queue
 * manager (pids[n], when there is one) is restarted the same way. */
static void worker_ended(const runner_config *rc, const int *fds, const sigset_t *old,
                         pid_t p, int status, pid_t *pids, unsigned n, pid_t *retired,
                         unsigned *nretired)
{
    if (rc->aux_main && pids[n] == p) {
        if (aux_restarting) {
            aux_restarting = false;
            logbuf_now(POSTHORN_LOG_INFO, "event=qmgr_restart pid=%d", (int)p);
        } else {
            logbuf_now(POSTHORN_LOG_ERROR, "event=qmgr_died pid=%d status=%d", (int)p, status);
            sleep(1);
        }
        pids[n] = start_aux(rc, fds, old);
        return;
    }
    for (unsigned i = 0; i < *nretired; i++)
        if (retired[i] == p) {
            retired[i] = retired[--(*nretired)];
            return;
        }
    for (unsigned i = 0; i < n; i++) {
        if (pids[i] != p)
            continue;
        logbuf_now(POSTHORN_LOG_ERROR, "event=worker_died pid=%d status=%d", (int)p, status);
        sleep(1); /* no tight restart loop if workers keep dying */
        pids[i] = start_worker(rc, fds, old);
    }
}

/* SIGHUP: the supervisor's own reload first (recipient tables); if that brought something
 * new, fresh workers and a fresh queue manager take it over, else the workers reload their
 * certificates in place (or are replaced when they cannot read root-only keys). */
static void reload_all(const runner_config *rc, const int *fds, const sigset_t *old,
                       pid_t *pids, unsigned n, pid_t *retired, unsigned *nretired)
{
    bool fresh = rc->reload && rc->reload(rc->reload_arg) == 0;
    if (fresh && rc->aux_main && pids[n] > 0) {
        /* only one queue manager at a time: the new one starts when the old has ended */
        aux_restarting = true;
        kill(pids[n], SIGTERM);
    }
    if (fresh || reload_by_replacing(rc))
        replace_workers(rc, fds, old, pids, n, retired, nretired);
    else
        stop_workers(pids, n, SIGHUP); /* each worker reloads its certificates */
}

static int supervise(const runner_config *rc, const int *fds)
{
    pid_t pids[MAX_WORKERS + 1] = {0}; /* the workers, then the queue manager */
    pid_t retired[MAX_WORKERS * 4 + MAX_WORKERS + 1] = {0};
    unsigned nretired = 0;
    unsigned n = rc->workers > MAX_WORKERS ? MAX_WORKERS : rc->workers;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (unsigned i = 0; i < n; i++)
        if ((pids[i] = start_worker(rc, fds, &old)) < 0)
            return stop_workers(pids, i, SIGTERM), 1;
    if ((pids[n] = start_aux(rc, fds, &old)) < 0)
        return stop_workers(pids, n, SIGTERM), 1;
    unsigned nall = n + (rc->aux_main ? 1 : 0);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload_all(rc, fds, &old, pids, n, retired, &nretired);
            continue;
        }
        if (sig != SIGCHLD)
            break;
        int status;
        pid_t p;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0)
            worker_ended(rc, fds, &old, p, status, pids, n, retired, &nretired);
    }
    for (unsigned i = 0; i < rc->nlisten; i++)
        close(fds[i]); /* only the workers hold the sockets now */
    for (unsigned i = 0; i < nall; i++)
        retired[nretired++] = pids[i];
    stop_workers(retired, nretired, SIGTERM);
    reap_all(retired, nretired, rc->options->limits.shutdown_grace_ms);
    return 0;
}

/* Each connection is a descriptor: use all the kernel allows us (the soft limit is often 1024). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Loads every listener's options (certificates) once in a scratch server. */
static int check_listeners(const runner_config *rc, const int *fds)
{
    posthorn_server *srv = posthorn_server_new(NULL, rc->hooks, rc->options, NULL);
    if (!srv)
        return -1;
    posthorn_server_set_log(srv, logbuf_log, POSTHORN_LOG_ERROR, NULL);
    int r = 0;
    for (unsigned i = 0; i < rc->nlisten && r == 0; i++) {
        int fd = dup(fds[i]);
        if (fd < 0 || posthorn_server_listen_fd_opts(srv, fd, listen_opts(rc, i)) < 0)
            r = -1;
    }
    posthorn_server_free(srv);
    return r;
}

int runner_run(const runner_config *rc)
{
    raise_fd_limit();
    /* SIGTERM before the event loop is ready must still mean a clean shutdown: hold it */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigaddset(&stop, SIGUSR2);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int *fds = calloc(rc->nlisten ? rc->nlisten : 1, sizeof(int));
    bound_ports = calloc(rc->nlisten ? rc->nlisten : 1, sizeof(int));
    if (!fds || !bound_ports) {
        free(fds);
        return 1;
    }
    int status = 1;
    unsigned bound = 0;
    for (; bound < rc->nlisten; bound++) {
        int port = 0;
        fds[bound] = posthorn_listen_socket(rc->listen[bound], &port);
        if (fds[bound] < 0) {
            logbuf_now(POSTHORN_LOG_ERROR, "event=error what=listen address=%s error=\"%s\"",
                       rc->listen[bound], strerror(-fds[bound]));
            goto out;
        }
        bound_ports[bound] = port;
    }
    /* a privileged supervisor whenever workers drop root: it can reload certificates */
    bool forked = rc->workers > 1 || reload_by_replacing(rc) || rc->aux_main || rc->reload;
    if (forked && check_listeners(rc, fds) < 0)
        goto out; /* e.g. a bad certificate: say so once instead of restarting workers */
    if (forked)
        log_listening(rc); /* certificates loaded: ready (serve() says it itself) */
    status = forked ? supervise(rc, fds) : serve(rc, fds);
out:
    if (status != 0 || bound < rc->nlisten) /* on success serve/supervise closed them */
        for (unsigned i = 0; i < bound; i++)
            close(fds[i]);
    for (unsigned i = 0; i < rc->nlisten; i++)
        if (strncmp(rc->listen[i], "unix:", 5) == 0 && i < bound)
            unlink(rc->listen[i] + 5);
    free(fds);
    free(bound_ports);
    bound_ports = NULL;
    return status;
}
