/*
 * qmgr_main.h - the queue manager process of `posthorn serve` with `delivery = queue`: its own
 * event loop with the scheduler (deliver/qmgr.h), delivery jobs on worker threads
 * (deliver/job.h) and the control socket for `posthorn queue` (control.h). Started and
 * restarted by the runner beside the SMTP workers, with the same privileges.
 */
#ifndef POSTHORN_DAEMON_QMGR_MAIN_H
#define POSTHORN_DAEMON_QMGR_MAIN_H

#include "daemon/config.h"
#include "daemon/rcpt_policy.h"

typedef struct qmgr_process {
    const ph_config *cfg;        /* borrowed from serve */
    const rcpt_policy *policy;   /* the recipient table, loaded before the fork */
    const char *hostname;        /* for LHLO, bounces */
    const char *control_path;    /* the control socket */
} qmgr_process;

/* runner_config.aux_main: runs until SIGTERM/SIGINT; returns the exit status. */
int qmgr_process_main(void *arg);

/* The control socket path for cfg (control_socket, or <queue_dir>/control) into buf. */
void qmgr_control_path(const ph_config *cfg, char *buf, size_t size);

#endif
