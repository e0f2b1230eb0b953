/*
 * runner.h - runs a posthorn_server as a daemon: binds the listeners once, then serves in this
 * process or in N pre-forked workers (each with its own event loop on the shared sockets),
 * handles SIGTERM/SIGINT as a graceful shutdown, SIGHUP as a certificate reload, and restarts a
 * worker that dies.
 */
#ifndef POSTHORN_DAEMON_RUNNER_H
#define POSTHORN_DAEMON_RUNNER_H

#include <sys/types.h>

#include "posthorn/posthorn.h"

typedef struct runner_config {
    const char **listen;        /* addresses, borrowed */
    const posthorn_listener_options *const *listen_opts; /* parallel to listen; NULL = plain */
    unsigned nlisten;
    unsigned workers;           /* 1 = no fork */
    posthorn_log_level log_level;
    const posthorn_hooks *hooks;
    const posthorn_options *options;
    void *user;                 /* server user pointer (each worker gets the same value) */
    const char *run_as_user;    /* when started as root: serve as this user (NULL = stay) */
    const char *run_as_group;   /* and group (NULL = the user's primary group) */
    /* An extra process beside the workers (the queue manager), or NULL: started after them
     * with the same privilege drop, restarted when it dies, sent SIGHUP on reload and SIGTERM
     * at shutdown. aux_main returns its exit status; signals are unblocked when it starts. */
    int (*aux_main)(void *aux_arg);
    void *aux_arg;
    /* Called in the supervisor on SIGHUP (NULL = none), e.g. to re-read recipient tables: 0 when
     * something new was loaded - the workers are then replaced (new ones forked from the
     * reloaded supervisor, old ones drain) and the aux process restarted once the old one has
     * finished its jobs; <0 keeps everything as it was (the function logs why). */
    int (*reload)(void *reload_arg);
    void *reload_arg;
} runner_config;

/* The uid/gid the server will run as: 0 with them set, 1 when nothing changes (not root or no
 * user), -1 when the user or group does not exist (logged). */
int runner_ids_for(const char *user, const char *group, uid_t *uid, gid_t *gid);
/* Gives path to the user/group the server will run as (no-op when not root or no user). */
int runner_chown_for(const char *user, const char *group, const char *path);

/* Returns the process exit status (0 after a clean shutdown). */
int runner_run(const runner_config *rc);

#endif
