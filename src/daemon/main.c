/*
 * main.c - the posthorn command: dispatches to a subcommand. Today: sink (the default).
 */
#include <stdio.h>
#include <string.h>

#include "daemon/commands.h"

static const char main_help[] =
    "usage: posthorn COMMAND [options]\n"
    "\n"
    "Posthorn is an SMTP server (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,\n"
    "ENHANCEDSTATUSCODES and CHUNKING), also usable as the C library libposthorn.\n"
    "\n"
    "Commands:\n"
    "  sink      development sink: accept every message, print and/or store it\n"
    "            (posthorn sink --help for its options)\n"
    "  serve     the configured server: posthorn serve --config FILE (posthorn.conf(5))\n"
    "  passwd    print a password file line USER:HASH (password read from stdin)\n"
    "  config    check or dump a configuration file (posthorn config --help)\n"
    "  queue     list and manage the durable queue (posthorn queue --help)\n"
    "  send      queue a message from standard input: posthorn send RCPT...\n"
    "  sendmail  the sendmail-compatible command (-t -i -f ADDR; also as `sendmail`)\n"
    "\n"
    "  posthorn --help       this help\n"
    "  posthorn --version    print the version\n"
    "\n"
    "Without a command, posthorn runs `posthorn sink` on 127.0.0.1:2525.\n";

int main(int argc, char **argv)
{
    /* installed as sendmail (or mailq) through a link: the traditional interfaces */
    const char *self = argc > 0 ? strrchr(argv[0], '/') : NULL;
    self = self ? self + 1 : (argc > 0 ? argv[0] : "");
    if (strcmp(self, "sendmail") == 0)
        return cmd_sendmail(argc, argv);
    if (strcmp(self, "mailq") == 0) {
        char *qargv[] = {"queue", "list", NULL};
        return cmd_queue(2, qargv);
    }
    if (argc < 2)
        return cmd_sink(argc, argv);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(main_help, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("posthorn %s\n", POSTHORN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "sink") == 0)
        return cmd_sink(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "passwd") == 0)
        return cmd_passwd(argc - 1, argv + 1);
    if (strcmp(argv[1], "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(argv[1], "queue") == 0)
        return cmd_queue(argc - 1, argv + 1);
    if (strcmp(argv[1], "sendmail") == 0)
        return cmd_sendmail(argc - 1, argv + 1);
    if (strcmp(argv[1], "send") == 0)
        return cmd_send(argc - 1, argv + 1);
    fprintf(stderr, "posthorn: unknown command '%s'\n%s", argv[1], main_help);
    return 2;
}
