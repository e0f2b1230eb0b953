/*
 * control.h - the queue manager's control socket (a Unix socket, mode 0600, owned by the user
 * the daemon runs as) through which `posthorn queue` talks to a running daemon. Only root and
 * the daemon's own user are served (SO_PEERCRED); anyone else gets an error.
 *
 * Protocol: one command per connection. The client sends one line
 *     list | show ID | flush [ID] | hold ID | release ID | delete ID | bounce ID
 * and the server answers "ok" or "error: TEXT" on the first line, then (list, show) the text of
 * queue/qlist.h, then closes the connection.
 */
#ifndef POSTHORN_DAEMON_CONTROL_H
#define POSTHORN_DAEMON_CONTROL_H

#include <stddef.h>

struct event_base;
struct ph_qmgr;
struct ph_qstore;

typedef struct control_server control_server;

/* Binds path (replacing a stale socket) and serves on base. NULL with a reason in err. */
control_server *control_start(struct event_base *base, const char *path, struct ph_qmgr *q,
                              struct ph_qstore *store, char *err, size_t errlen);
/* Closes the socket and removes its file. NULL is fine. */
void control_stop(control_server *cs);

/* Client side: sends line to the socket at path and copies the answer's body to out (the status
 * line is not copied). 0 when the answer was "ok", 1 when it was an error (its text in err),
 * -errno when the socket cannot be reached (-ENOENT, -ECONNREFUSED: no daemon running). */
int control_call(const char *path, const char *line, int out_fd, char *err, size_t errlen);

#endif
