/*
 * cmd_queue.c - `posthorn queue`: inspect and steer the durable queue. Talks to the running
 * daemon's queue manager through its control socket; when no daemon answers, list/show/hold/
 * release/delete work on the spool directory directly (flush and bounce need the daemon).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/commands.h"
#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/qmgr_main.h"
#include "queue/qlist.h"
#include "queue/qstore.h"

#define DEFAULT_CONFIG "/etc/posthorn/posthorn.conf"

static const char queue_help[] =
    "usage: posthorn queue [--config FILE | --queue-dir DIR] [--socket PATH] COMMAND [ID]\n"
    "\n"
    "Commands:\n"
    "  list          every queued message: id, size, age, sender, each recipient's state\n"
    "  show ID       the message's envelope and header section\n"
    "  flush [ID]    try every deferred recipient (of one message) now\n"
    "  hold ID       keep the message from being delivered until released\n"
    "  release ID    undo hold\n"
    "  delete ID     remove the message without a bounce\n"
    "  bounce ID     fail every undelivered recipient now and return the message to its sender\n"
    "\n"
    "The queue directory and control socket come from the config file (queue_dir,\n"
    "control_socket; default " DEFAULT_CONFIG "). Without a running daemon, list, show,\n"
    "hold, release and delete work on the queue directory itself.\n";

typedef struct queue_args {
    const char *config, *queue_dir, *socket;
    const char *command, *id;
} queue_args;

static bool needs_id(const char *cmd)
{
    static const char *const with_id[] = {"show", "hold", "release", "delete", "bounce"};
    for (size_t i = 0; i < sizeof(with_id) / sizeof(with_id[0]); i++)
        if (strcmp(cmd, with_id[i]) == 0)
            return true;
    return false;
}

static bool known(const char *cmd)
{
    return needs_id(cmd) || strcmp(cmd, "list") == 0 || strcmp(cmd, "flush") == 0;
}

/* Not held is fine: release only promises the message is not held afterwards. */
static int release_offline(ph_qstore *qs, const char *id)
{
    int r = ph_qstore_release(qs, id);
    return r == -ENOENT ? 0 : r;
}

/* Without a daemon: the files themselves. */
static int offline(const char *dir, const queue_args *a)
{
    if (strcmp(a->command, "flush") == 0 || strcmp(a->command, "bounce") == 0) {
        fprintf(stderr, "posthorn queue: %s needs the running daemon (no answer on its "
                        "control socket)\n", a->command);
        return 1;
    }
    ph_qstore *qs;
    char err[512];
    if (ph_qstore_open(dir, &qs, err, sizeof(err)) < 0) {
        fprintf(stderr, "posthorn queue: %s\n", err);
        return 1;
    }
    int64_t now = (int64_t)time(NULL);
    int r;
    if (strcmp(a->command, "list") == 0)
        r = ph_qlist_list(qs, stdout, now);
    else if (strcmp(a->command, "show") == 0)
        r = ph_qlist_show(qs, a->id, stdout, now);
    else if (strcmp(a->command, "hold") == 0)
        r = ph_qstore_hold(qs, a->id);
    else if (ph_qstore_data_size(qs, a->id) < 0)
        r = -ENOENT; /* release and delete of a message that is not there */
    else if (strcmp(a->command, "release") == 0)
        r = release_offline(qs, a->id);
    else
        r = ph_qstore_remove(qs, a->id);
    ph_qstore_close(qs);
    if (r < 0)
        fprintf(stderr, "posthorn queue: %s: %s\n", a->id ? a->id : a->command,
                r == -ENOENT ? "no such message" : strerror(-r));
    return r < 0 ? 1 : 0;
}

static int run(const queue_args *a)
{
    ph_config *cfg = NULL;
    ph_config_errors errs = {0};
    const char *config = a->config ? a->config : (a->queue_dir ? NULL : DEFAULT_CONFIG);
    if (config && ph_config_load(config, &cfg, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.v[i].text);
        ph_config_errors_free(&errs);
        return 1;
    }
    ph_config_errors_free(&errs);
    char dir[4096], sock[4200];
    snprintf(dir, sizeof(dir), "%s", a->queue_dir ? a->queue_dir : cfg->g.queue_dir);
    if (a->socket)
        snprintf(sock, sizeof(sock), "%s", a->socket);
    else if (cfg)
        qmgr_control_path(cfg, sock, sizeof(sock));
    else
        snprintf(sock, sizeof(sock), "%s/control", dir);
    ph_config_free(cfg);
    char line[512], err[512];
    snprintf(line, sizeof(line), "%s%s%s", a->command, a->id ? " " : "", a->id ? a->id : "");
    fflush(stdout);
    int r = control_call(sock, line, STDOUT_FILENO, err, sizeof(err));
    if (r == -ENOENT || r == -ECONNREFUSED)
        return offline(dir, a);
    if (r < 0)
        fprintf(stderr, "posthorn queue: control socket %s: %s\n", sock, strerror(-r));
    else if (r > 0)
        fprintf(stderr, "posthorn queue: %s\n", err);
    return r == 0 ? 0 : 1;
}

int cmd_queue(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"queue-dir", required_argument, NULL, 'q'},
                                             {"socket", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    queue_args a = {0};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:q:s:h", longopts, NULL)) != -1) {
        if (opt == 'c')
            a.config = optarg;
        else if (opt == 'q')
            a.queue_dir = optarg;
        else if (opt == 's')
            a.socket = optarg;
        else if (opt == 'h')
            return fputs(queue_help, stdout), 0;
        else
            return fputs("Try 'posthorn queue --help'.\n", stderr), 2;
    }
    if (optind >= argc || !known(argv[optind]))
        return fputs(queue_help, stderr), 2;
    a.command = argv[optind++];
    if (optind < argc)
        a.id = argv[optind++];
    if (optind < argc || (needs_id(a.command) && !a.id) ||
        (strcmp(a.command, "list") == 0 && a.id))
        return fputs(queue_help, stderr), 2;
    if (a.id && !ph_qstore_valid_id(a.id)) {
        fprintf(stderr, "posthorn queue: '%s' is not a queue id\n", a.id);
        return 2;
    }
    return run(&a);
}
