/*
 * fuzz_smtp_client.c - libFuzzer driver for the SMTP/LMTP client state machine
 * (src/proto/smtp_client.c) and the reply reader under it (src/proto/client_reply.c).
 *
 * The fuzzer plays the server. Input layout:
 *   byte 0: the session: bit 0 LMTP, bits 1-2 TLS policy (3 = opportunistic), bit 3 implicit
 *           TLS, bit 4 AUTH configured, bit 5 AUTH allowed without TLS, bit 6 8-bit message,
 *           bit 7 a recipient needs SMTPUTF8
 *   byte 1: bits 0-2 recipients - 1 (1..8), bits 3-4 message size (unknown, 1000, 50 MB,
 *           2^64-1), bits 5-7 chunk size class
 *   byte 2: seed of the pseudo-random choices (chunk sizes, partial writes, what the driver
 *           does when asked for TLS, the message or the next envelope)
 *   the rest: the server's bytes, fed in pseudo-random chunks (each in its own heap copy, so
 *           ASan sees any read outside it); when they run out the server "closes".
 * The harness is a driver that obeys ph_smtp_client_wants() and also checks, with abort():
 *   - it always terminates (a bound on steps), and when it does every recipient of every
 *     envelope has an outcome: a 2xx/4xx/5xx code, a stage, an enhanced code of the code's
 *     class (or none), a NUL-terminated text without control bytes; a 2xx only for a
 *     recipient whose message was streamed, from the reply at the end of data;
 *   - the same whenever the machine is idle (the envelope is finished);
 *   - it never sends a command out of state: every command is a known verb with CRLF and no
 *     other CR/LF; EHLO/LHLO first (per mode) and again only right after TLS; HELO only after
 *     EHLO in SMTP mode; STARTTLS only when the policy allows it, and after it nothing until
 *     the handshake (but QUIT, or anything once the machine recorded the refusal); AUTH only
 *     when configured and under TLS (unless allowed); MAIL only after the hello (and TLS when
 *     required, AUTH when configured), once per envelope; RCPT only inside a transaction, no
 *     more than the envelope's recipients; DATA only after all of them; nothing after QUIT;
 *     the message, the handshake and the next envelope only once every command byte was
 *     taken; the message only after DATA, once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

#define MAX_ENVELOPES 3
#define MAX_RCPTS 8

static const char *const rcpt_names[MAX_RCPTS] = {
    "r0@example.org", "r1@example.org", "\"r 2\"@example.org", "r3@example.org",
    "r4@example.net", "r5@example.net", "r6@example.com", "r7@example.com",
};

typedef struct model {
    ph_smtp_client_params p;
    bool hello_sent, helo_sent, hello_allowed, starttls_pending, tls_done;
    bool auth_sent, auth_login, quit_sent;
    bool in_txn, data_sent, message_sent;
    size_t rcpts_sent, nrcpts;
    bool streamed[MAX_ENVELOPES];
    size_t envelope;
} model;

typedef struct rng {
    uint32_t x;
} rng;

static uint32_t next_rand(rng *r)
{
    r->x ^= r->x << 13;
    r->x ^= r->x >> 17;
    r->x ^= r->x << 5;
    return r->x;
}

static bool starts(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(line, word, n) == 0;
}

static bool is_base64_line(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = line[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '=';
        if (!ok)
            return false;
    }
    return len > 0;
}

/* The session may carry a transaction now: hello done, TLS and AUTH as configured. */
static bool ready_for_mail(const model *m)
{
    bool tls = m->tls_done || m->p.tls_active;
    if (!m->hello_sent || m->starttls_pending)
        return false;
    if (m->p.tls == PH_SMTP_TLS_REQUIRED && !tls)
        return false;
    return !m->p.auth_user || m->auth_sent;
}

/* One command line the client sent (without its CRLF), checked against the model. */
static void check_command(const ph_smtp_client *c, model *m, const char *line, size_t len)
{
    if (m->starttls_pending && c->starttls_refused)
        m->starttls_pending = false; /* refused (opportunistic): on in clear */
    bool quit = len == 4 && starts(line, len, "QUIT");
    CHECK(!m->quit_sent && (!m->starttls_pending || quit)); /* QUIT: required, but refused */
    CHECK(!memchr(line, '\r', len) && !memchr(line, '\n', len));
    bool lmtp = m->p.mode == PH_SMTP_MODE_LMTP;
    if (starts(line, len, "EHLO ") || starts(line, len, "LHLO ")) {
        CHECK(m->hello_allowed && line[0] == (lmtp ? 'L' : 'E'));
        m->hello_allowed = false;
        m->hello_sent = true;
    } else if (starts(line, len, "HELO ")) {
        CHECK(!lmtp && m->hello_sent && !m->helo_sent && !m->in_txn && !m->auth_sent);
        m->helo_sent = true;
    } else if (len == 8 && starts(line, len, "STARTTLS")) {
        CHECK(m->hello_sent && m->p.tls != PH_SMTP_TLS_NONE && !m->p.tls_active && !m->tls_done);
        CHECK(!m->in_txn && !m->auth_sent);
        m->starttls_pending = true;
    } else if (starts(line, len, "AUTH ")) {
        CHECK(m->p.auth_user && m->hello_sent && !m->auth_sent && !m->in_txn);
        CHECK(m->tls_done || m->p.tls_active || m->p.auth_insecure);
        m->auth_sent = true;
        m->auth_login = len == 10 && starts(line, len, "AUTH LOGIN");
    } else if (len == 4 && starts(line, len, "RSET")) {
        CHECK(ready_for_mail(m) && !m->in_txn);
    } else if (starts(line, len, "MAIL FROM:<")) {
        CHECK(ready_for_mail(m) && !m->in_txn);
        m->in_txn = true;
    } else if (starts(line, len, "RCPT TO:<")) {
        CHECK(m->in_txn && !m->data_sent && m->rcpts_sent < m->nrcpts);
        m->rcpts_sent++;
    } else if (len == 4 && starts(line, len, "DATA")) {
        CHECK(m->in_txn && !m->data_sent && m->rcpts_sent == m->nrcpts);
        m->data_sent = true;
    } else if (quit) {
        m->quit_sent = true;
    } else {
        CHECK(m->auth_login && is_base64_line(line, len)); /* an AUTH LOGIN response */
    }
}

/* Takes some of the output (all of it, or a pseudo-random part) and checks whole lines. */
static void take_output(ph_smtp_client *c, model *m, rng *r, char *pending, size_t *npending)
{
    size_t len;
    const char *out = ph_smtp_client_output(c, &len);
    CHECK(out && len > 0);
    size_t take = (next_rand(r) & 3) == 0 ? 1 + next_rand(r) % len : len;
    CHECK(*npending + take <= 2 * PH_SMTP_OUT_MAX);
    memcpy(pending + *npending, out, take);
    *npending += take;
    ph_smtp_client_output_done(c, take);
    size_t start = 0;
    for (size_t i = 0; i + 1 < *npending; i++) {
        if (pending[i] == '\r' && pending[i + 1] == '\n') {
            check_command(c, m, pending + start, i - start);
            start = i + 2;
            i++;
        }
    }
    memmove(pending, pending + start, *npending - start);
    *npending -= start;
    CHECK(*npending < 2048); /* no command is that long: a missing CRLF */
}

static void check_results(const ph_client_result *res, size_t n, bool streamed)
{
    for (size_t i = 0; i < n; i++) {
        const ph_client_result *x = &res[i];
        int cls = x->code / 100;
        CHECK(x->code >= 200 && x->code <= 599 && cls != 3);
        CHECK(x->stage != PH_STAGE_NONE);
        CHECK(x->enh[0] == '\0' || x->enh[0] == '0' + cls);
        CHECK(memchr(x->enh, '\0', sizeof(x->enh)) && memchr(x->text, '\0', sizeof(x->text)));
        for (const char *t = x->text; *t; t++)
            CHECK((unsigned char)*t >= 0x20 && *t != 0x7F);
        if (cls == 2)
            CHECK(streamed && x->stage == PH_STAGE_END_OF_DATA && x->remote);
    }
}

typedef struct session {
    ph_smtp_client c;
    model m;
    rng r;
    ph_smtp_envelope env[MAX_ENVELOPES];
    ph_client_result res[MAX_ENVELOPES][MAX_RCPTS];
    const char *rcpts[MAX_RCPTS];
    char pending[2 * PH_SMTP_OUT_MAX];
    size_t npending;
} session;

static void setup(session *s, const uint8_t *data)
{
    static const uint64_t sizes[] = {0, 1000, 50000000, UINT64_MAX};
    uint8_t a = data[0], b = data[1];
    s->m.p = (ph_smtp_client_params){
        .mode = (a & 1) ? PH_SMTP_MODE_LMTP : PH_SMTP_MODE_SMTP,
        .helo_name = "mx.example.net",
        .tls = ((a >> 1) & 3) == 3 ? PH_SMTP_TLS_OPPORTUNISTIC : (ph_smtp_tls_policy)((a >> 1) & 3),
        .tls_active = (a >> 3) & 1,
        .auth_user = ((a >> 4) & 1) ? "alice" : NULL,
        .auth_pass = "s3cret",
        .auth_insecure = (a >> 5) & 1,
    };
    size_t n = 1 + (b & 7);
    memcpy(s->rcpts, rcpt_names, sizeof(s->rcpts));
    if (a & 0x80)
        s->rcpts[n - 1] = "j\xc3\xb6rg@example.org";
    for (size_t e = 0; e < MAX_ENVELOPES; e++)
        s->env[e] = (ph_smtp_envelope){.from = e == 1 ? "" : "alice@example.com",
                                       .rcpts = s->rcpts + e, .nrcpts = n > e ? n - e : 1,
                                       .size = sizes[(b >> 3) & 3],
                                       .body_8bitmime = (a >> 6) & 1};
    s->r.x = ((uint32_t)data[2] << 16 | (uint32_t)a << 8 | b) | 1u;
    s->m.hello_allowed = true;
    s->m.nrcpts = s->env[0].nrcpts;
    CHECK(ph_smtp_client_init(&s->c, &s->m.p, &s->env[0], s->res[0]) == 0);
}

/* Idle: the envelope is finished; start the next one or quit. */
static void on_next(session *s)
{
    model *m = &s->m;
    size_t len;
    CHECK(s->npending == 0 && !ph_smtp_client_output(&s->c, &len));
    check_results(s->res[m->envelope], s->env[m->envelope].nrcpts, m->streamed[m->envelope]);
    if (m->envelope + 1 < MAX_ENVELOPES && (next_rand(&s->r) & 3) != 0) {
        m->envelope++;
        m->in_txn = m->data_sent = false;
        m->rcpts_sent = 0;
        m->nrcpts = s->env[m->envelope].nrcpts;
        CHECK(ph_smtp_client_next(&s->c, &s->env[m->envelope], s->res[m->envelope]) == 0);
    } else {
        CHECK(ph_smtp_client_quit(&s->c) == 0);
    }
}

static void on_tls(session *s)
{
    size_t len;
    CHECK(s->m.starttls_pending && s->npending == 0 && !ph_smtp_client_output(&s->c, &len));
    if ((next_rand(&s->r) & 7) == 0) {
        ph_smtp_client_fail(&s->c, 454, "4.7.5", "TLS handshake failed");
        return;
    }
    CHECK(ph_smtp_client_tls_started(&s->c) == 0);
    s->m.starttls_pending = false;
    s->m.tls_done = true;
    s->m.hello_allowed = true;
}

static void on_message(session *s)
{
    model *m = &s->m;
    size_t len;
    CHECK(m->data_sent && !m->streamed[m->envelope] && s->npending == 0 &&
          !ph_smtp_client_output(&s->c, &len));
    if ((next_rand(&s->r) & 15) == 0) {
        ph_smtp_client_fail(&s->c, 451, "4.3.0", "cannot read the message");
        return;
    }
    m->streamed[m->envelope] = true;
    ph_smtp_client_message_sent(&s->c);
}

/* Feeds the next chunk of server bytes (its own heap copy), or reports the end of input. */
static void on_read(session *s, const uint8_t *in, size_t n, size_t *pos, size_t max_chunk)
{
    if (*pos >= n) {
        ph_smtp_client_closed(&s->c);
        return;
    }
    size_t take = 1 + next_rand(&s->r) % max_chunk;
    if (take > n - *pos)
        take = n - *pos;
    uint8_t *piece = malloc(take);
    CHECK(piece);
    memcpy(piece, in + *pos, take);
    ph_smtp_client_feed(&s->c, piece, take);
    free(piece);
    *pos += take;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_chunks[] = {1, 2, 3, 7, 16, 64, 512, 8192};
    if (size < 3)
        return 0;
    session *s = calloc(1, sizeof(*s));
    CHECK(s);
    setup(s, data);
    const uint8_t *in = data + 3;
    size_t n = size - 3, pos = 0, max_chunk = max_chunks[data[1] >> 5];
    unsigned w;
    size_t steps = 0;
    while ((w = ph_smtp_client_wants(&s->c)) != 0) {
        CHECK(++steps < 4 * size + 100000); /* every step makes progress */
        if (w & PH_SMTP_WANT_NEXT)
            on_next(s);
        else if (w & PH_SMTP_WANT_TLS)
            on_tls(s);
        else if (w & PH_SMTP_WANT_MESSAGE)
            on_message(s);
        else if ((w & PH_SMTP_WANT_WRITE) && (!(w & PH_SMTP_WANT_READ) || (next_rand(&s->r) & 1)))
            take_output(&s->c, &s->m, &s->r, s->pending, &s->npending);
        else
            on_read(s, in, n, &pos, max_chunk);
    }
    size_t len = 1;
    CHECK(ph_smtp_client_output(&s->c, &len) == NULL && len == 0);
    for (size_t e = 0; e <= s->m.envelope; e++)
        check_results(s->res[e], s->env[e].nrcpts, s->m.streamed[e]);
    free(s);
    return 0;
}
