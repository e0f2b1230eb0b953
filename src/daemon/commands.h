/*
 * commands.h - the posthorn command line: subcommands and the server options they share.
 */
#ifndef POSTHORN_DAEMON_COMMANDS_H
#define POSTHORN_DAEMON_COMMANDS_H

#include <getopt.h>

#include "daemon/runner.h"
#include "posthorn/posthorn.h"

#define MAX_LISTEN 32

/* Options common to every serving subcommand. */
typedef struct server_cli {
    const char *listen[MAX_LISTEN];
    unsigned nlisten;
    unsigned workers;
    posthorn_log_level log_level;
    posthorn_options options;
} server_cli;

void server_cli_init(server_cli *c);
/* getopt_long entries for the shared options (terminated by a zero entry). */
extern const struct option server_cli_longopts[];
/* Handles one shared option; 1 if handled, 0 if not ours, -1 on a bad value (message printed). */
int server_cli_option(server_cli *c, int opt, const char *arg);
/* The help text of the shared options. */
extern const char server_cli_help[];

int cmd_sink(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_sendmail(int argc, char **argv);
int cmd_send(int argc, char **argv);

#endif
