/*
 * lmtp_send.c - test tool: delivers one message file over LMTP with ph_lmtp_deliver, so the
 * integration tests can drive the real driver against a real Dovecot.
 *
 *   lmtp_send [--8bitmime] [--smtputf8] [--lhlo NAME] [--timeout MS] DEST FROM FILE RCPT...
 *
 * FROM "" is the null sender. Prints one line per recipient, "RCPT CODE ENH TEXT" (ENH is "-"
 * when the server gave none). Exit 0 when the session ran, 1 when ph_lmtp_deliver failed (its
 * reason on stderr), 2 for usage or file errors.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/lmtp.h"

static int usage(void)
{
    fprintf(stderr, "usage: lmtp_send [--8bitmime] [--smtputf8] [--lhlo NAME] [--timeout MS] "
                    "DEST FROM FILE RCPT...\n");
    return 2;
}

/* Parses the options into job; returns the index of the first operand, or -1. */
static int parse_options(int argc, char **argv, ph_lmtp_job *job)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--8bitmime") == 0)
            job->body_8bitmime = true;
        else if (strcmp(argv[i], "--smtputf8") == 0)
            job->smtputf8 = true;
        else if (strcmp(argv[i], "--lhlo") == 0 && i + 1 < argc)
            job->lhlo_name = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            job->timeout_ms = atoi(argv[++i]);
        else
            return -1;
    }
    return argc - i >= 4 ? i : -1;
}

int main(int argc, char **argv)
{
    ph_lmtp_job job = {.lhlo_name = "posthorn.test", .timeout_ms = 10000};
    int i = parse_options(argc, argv, &job);
    if (i < 0)
        return usage();
    job.dest = argv[i];
    job.from = argv[i + 1];
    job.rcpts = (const char *const *)(argv + i + 3);
    job.nrcpts = (size_t)(argc - i - 3);
    int fd = open(argv[i + 2], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[i + 2]);
        return 2;
    }
    job.msg_fd = fd;
    job.size = (uint64_t)st.st_size;
    ph_lmtp_result *results = calloc(job.nrcpts, sizeof(*results));
    if (!results)
        return 2;
    char err[512];
    int rc = ph_lmtp_deliver(&job, results, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "lmtp_send: %s (%d)\n", err, rc);
    else
        for (size_t r = 0; r < job.nrcpts; r++)
            printf("%s %d %s %s\n", job.rcpts[r], results[r].code,
                   results[r].enh[0] ? results[r].enh : "-", results[r].text);
    free(results);
    close(fd);
    return rc < 0 ? 1 : 0;
}
