/*
 * runner.c - transcript tests for the pure protocol core. Reads NAME.in (client input and
 * verdict directives), runs it through smtp_session twice - all input in one piece (fully
 * pipelined) and one byte at a time - and compares both outputs with NAME.ref.
 *
 * .in format, one item per line:
 *   # comment                      ignored
 *   !verdict HOOK ACTION [CODE ENH TEXT...]   HOOK: connect helo mail rcpt data chunk message;
 *                                  ACTION: accept reject disconnect; applies until changed
 *   !config FLAG                   before any input: starttls, require_tls, auth, auth_insecure,
 *                                  require_auth (session options)
 *   !tls                           the TLS handshake happens here: input between the STARTTLS
 *                                  line and this point is what the client pipelined (discarded)
 *   anything else                  sent with CRLF appended; escapes \r \n \\ \xHH; a line ending
 *                                  in "\c" is sent without the CRLF
 * The output holds the replies, and for each accepted message its content as "| " lines.
 * usage: transcript_runner FILE.in [--update]
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/session.h"

#define MAX_INPUT (1 << 20)

typedef struct script {
    char *input;
    size_t len;
    char *directives[64]; /* "!verdict ..." lines with the input offset they apply from */
    size_t at[64];
    int ndirectives;
    size_t tls_at[8];     /* input offsets of !tls */
    int ntls;
    smtp_session_config cfg;
} script;

static const char *const hook_names[] = {"none", "connect", "helo", "mail", "rcpt",
                                         "data", "chunk", "message", "auth"};
#define NHOOKS 9

static int unescape_line(const char *line, char *out)
{
    int n = 0;
    size_t len = strlen(line);
    int crlf = 1;
    if (len >= 2 && strcmp(line + len - 2, "\\c") == 0) {
        len -= 2;
        crlf = 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (line[i] != '\\' || i + 1 >= len) {
            out[n++] = line[i];
            continue;
        }
        char c = line[++i];
        if (c == 'r') out[n++] = '\r';
        else if (c == 'n') out[n++] = '\n';
        else if (c == 'x' && i + 2 < len + 1) {
            char hex[3] = {line[i + 1], line[i + 2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else out[n++] = c;
    }
    if (crlf) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    return n;
}

static void set_flag(smtp_session_config *c, const char *flag)
{
    static const struct { const char *name; size_t off; } flags[] = {
        {"starttls", offsetof(smtp_session_config, starttls)},
        {"require_tls", offsetof(smtp_session_config, require_tls)},
        {"auth", offsetof(smtp_session_config, auth)},
        {"auth_insecure", offsetof(smtp_session_config, auth_insecure)},
        {"require_auth", offsetof(smtp_session_config, require_auth)},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(flag, flags[i].name) == 0)
            *(bool *)((char *)c + flags[i].off) = true;
}

static int load_script(const char *path, script *sc)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    sc->input = malloc(MAX_INPUT);
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#')
            continue;
        if (strncmp(line, "!config ", 8) == 0) {
            set_flag(&sc->cfg, line + 8);
            continue;
        }
        if (strcmp(line, "!tls") == 0 && sc->ntls < 8) {
            sc->tls_at[sc->ntls++] = sc->len;
            continue;
        }
        if (strncmp(line, "!verdict ", 9) == 0 && sc->ndirectives < 64) {
            sc->directives[sc->ndirectives] = strdup(line + 9);
            sc->at[sc->ndirectives++] = sc->len;
            continue;
        }
        if (sc->len + 2 * strlen(line) + 2 > MAX_INPUT)
            break;
        sc->len += (size_t)unescape_line(line, sc->input + sc->len);
    }
    fclose(f);
    return 0;
}

typedef struct verdicts {
    smtp_verdict v[NHOOKS];
    char text[NHOOKS][256], enh[NHOOKS][16];
} verdicts;

static void apply_directive(verdicts *vs, const char *d)
{
    char hook[16], action[16];
    int code = 0, off = 0;
    char enh[16] = "";
    if (sscanf(d, "%15s %15s %n", hook, action, &off) < 2)
        return;
    for (int k = 1; k < NHOOKS; k++) {
        if (strcmp(hook, hook_names[k]) != 0)
            continue;
        smtp_verdict *v = &vs->v[k];
        memset(v, 0, sizeof(*v));
        v->action = strcmp(action, "reject") == 0       ? SV_REJECT
                    : strcmp(action, "disconnect") == 0 ? SV_DISCONNECT : SV_ACCEPT;
        int off2 = 0;
        if (sscanf(d + off, "%d %15s %n", &code, enh, &off2) >= 2) {
            v->code = code;
            snprintf(vs->enh[k], sizeof(vs->enh[k]), "%s", enh);
            snprintf(vs->text[k], sizeof(vs->text[k]), "%s", d + off + off2);
            v->enhanced = vs->enh[k];
            v->text = vs->text[k][0] ? vs->text[k] : NULL;
        }
    }
}

/* Appends the message content as "| " lines (CRLF shown as end of line). */
static void dump_message(strbuf *out, const strbuf *msg)
{
    size_t start = 0;
    for (size_t i = 0; i <= msg->len; i++) {
        bool end = i == msg->len;
        if (!end && !(msg->data[i] == '\n' && i > 0 && msg->data[i - 1] == '\r'))
            continue;
        size_t stop = end ? i : i - 1;
        if (end && start == i)
            break;
        strbuf_append(out, "| ", 2);
        strbuf_append(out, msg->data + start, stop - start);
        strbuf_append(out, end ? "<no CRLF>\n" : "\n", end ? 10 : 1);
        start = i + 1;
    }
}

static void run_hooks(smtp_session *s, verdicts *vs, strbuf *out, strbuf *msg)
{
    const smtp_hook_req *req;
    while ((req = smtp_session_hook(s)) != NULL) {
        if (req->kind == HOOK_DATA_START) {
            snprintf(smtp_session_txn_mut(s)->queue_id, 32, "QUEUEID");
            strbuf_clear(msg);
        }
        if (req->kind == HOOK_DATA_CHUNK)
            strbuf_append(msg, req->chunk, req->chunk_len);
        if (req->kind == HOOK_AUTH) {
            char line[900];
            int n = snprintf(line, sizeof(line), "[auth %s authzid=%s user=%s password=%s]\n",
                             req->mechanism, req->authzid, req->user, req->password);
            strbuf *o = smtp_session_output(s);
            strbuf_append(out, o->data, o->len);
            strbuf_clear(o);
            strbuf_append(out, line, (size_t)n);
        }
        smtp_verdict v = vs->v[req->kind];
        if (req->kind == HOOK_MESSAGE && v.action == SV_ACCEPT) {
            strbuf *o = smtp_session_output(s);
            strbuf_append(out, o->data, o->len);
            strbuf_clear(o);
            dump_message(out, msg);
        }
        smtp_session_resolve(s, &v);
    }
}

/* Runs the whole script feeding `step` bytes at a time (0 = all at once). */
static void run(const script *sc, size_t step, strbuf *out)
{
    smtp_session_config cfg = sc->cfg;
    cfg.hostname = "mx.test";
    cfg.banner = "Posthorn";
    cfg.max_line = 512;
    cfg.max_data_line = 998;
    cfg.max_message_size = 1000;
    cfg.max_recipients = 3;
    cfg.max_errors = 20;
    smtp_session *s = smtp_session_new(&cfg);
    verdicts vs;
    memset(&vs, 0, sizeof(vs));
    strbuf msg;
    strbuf_init(&msg, 0);
    smtp_session_start(s);
    size_t pos = 0;
    int d = 0;
    while (!smtp_session_want_close(s)) {
        run_hooks(s, &vs, out, &msg); /* verdicts for bytes fed so far, then directives */
        while (d < sc->ndirectives && sc->at[d] <= pos)
            apply_directive(&vs, sc->directives[d++]);
        strbuf *o = smtp_session_output(s);
        strbuf_append(out, o->data, o->len);
        strbuf_clear(o);
        if (smtp_session_want_tls(s)) { /* what the client sent before the handshake is dropped */
            size_t to = pos;
            for (int i = 0; i < sc->ntls; i++)
                if (sc->tls_at[i] >= pos) {
                    to = sc->tls_at[i];
                    break;
                }
            if (to > pos) {
                char note[64];
                strbuf_append(out, note, (size_t)snprintf(note, sizeof(note),
                                                          "[discarded %zu bytes]\n", to - pos));
            }
            pos = to;
            strbuf_append(out, "[tls]\n", 6);
            smtp_session_tls_started(s);
            continue;
        }
        if (pos >= sc->len || smtp_session_want_close(s))
            break;
        size_t end = sc->len;
        if (d < sc->ndirectives && sc->at[d] < end)
            end = sc->at[d];
        for (int i = 0; i < sc->ntls; i++)
            if (sc->tls_at[i] > pos && sc->tls_at[i] < end)
                end = sc->tls_at[i];
        size_t n = step && end - pos > step ? step : end - pos;
        pos += smtp_session_feed(s, sc->input + pos, n);
    }
    run_hooks(s, &vs, out, &msg);
    strbuf *o = smtp_session_output(s);
    strbuf_append(out, o->data, o->len);
    if (smtp_session_want_close(s))
        strbuf_append(out, "[closed]\n", 9);
    strbuf_free(&msg);
    smtp_session_free(s);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(MAX_INPUT);
    *len = fread(buf, 1, MAX_INPUT, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fprintf(stderr, "usage: %s FILE.in [--update]\n", argv[0]), 2;
    script sc = {0};
    if (load_script(argv[1], &sc) < 0)
        return perror(argv[1]), 2;
    strbuf whole, bytewise;
    strbuf_init(&whole, 0);
    strbuf_init(&bytewise, 0);
    run(&sc, 0, &whole);
    run(&sc, 1, &bytewise);
    char ref[4096];
    snprintf(ref, sizeof(ref), "%.*s.ref", (int)(strlen(argv[1]) - 3), argv[1]);
    if (argc > 2 && strcmp(argv[2], "--update") == 0) {
        FILE *f = fopen(ref, "wb");
        fwrite(whole.data, 1, whole.len, f);
        fclose(f);
    }
    size_t reflen = 0;
    char *expected = read_file(ref, &reflen);
    int fail = 0;
    if (!expected || reflen != whole.len || memcmp(expected, whole.data, reflen) != 0) {
        printf("FAIL %s (pipelined): output differs from %s\n--- got ---\n%.*s", argv[1], ref,
               (int)whole.len, whole.data);
        fail = 1;
    }
    if (bytewise.len != whole.len || memcmp(bytewise.data, whole.data, whole.len) != 0) {
        printf("FAIL %s: byte-at-a-time output differs\n--- got ---\n%.*s", argv[1],
               (int)bytewise.len, bytewise.data);
        fail = 1;
    }
    if (!fail)
        printf("1 passed, 0 failed: %s\n", argv[1]);
    free(expected);
    strbuf_free(&whole);
    strbuf_free(&bytewise);
    for (int i = 0; i < sc.ndirectives; i++)
        free(sc.directives[i]);
    free(sc.input);
    return fail;
}
