/*
 * envelope.h - what the sink records about one accepted message, and how it writes it out:
 * a readable block on stdout and, with --store, DIR/<qid>.eml + DIR/<qid>.json written
 * atomically (temporary file, fsync, rename, fsync of the directory).
 */
#ifndef POSTHORN_DAEMON_ENVELOPE_H
#define POSTHORN_DAEMON_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

typedef struct sink_envelope {
    const char *qid;
    const char *client_ip;
    int client_port;
    const char *helo;
    const char *mail_from;
    const char *const *rcpts;
    size_t nrcpts;
    size_t size;
    bool tls;
    const char *tls_version; /* NULL without TLS */
    const char *tls_cipher;
    const char *auth;  /* NULL if none */
    time_t received_at;
} sink_envelope;

/* Prints the message block (CRLF shown as LF) to out and flushes it. */
void envelope_print(FILE *out, const sink_envelope *env, const char *data, size_t len);

/* Writes DIR/<qid>.eml and DIR/<qid>.json durably. 0, or -errno (nothing left behind). */
int envelope_store(const char *dir, const sink_envelope *env, const char *data, size_t len);

#endif
