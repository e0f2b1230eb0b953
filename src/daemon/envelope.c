/*
 * envelope.c - printing and durable storing of a sink message (see envelope.h). Storing never
 * leaves a partial file under its final name: data goes to a dot-file, is fsync'd and closed,
 * then renamed, and the directory is fsync'd. Errors are -errno after cleaning up.
 */
#include "daemon/envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void envelope_print(FILE *out, const sink_envelope *env, const char *data, size_t len)
{
    fprintf(out, "=== MESSAGE %s ===\nQueue-Id: %s\nPeer: %s:%d\nHelo: %s\nMail-From: %s\n",
            env->qid, env->qid, env->client_ip[0] ? env->client_ip : "unix", env->client_port,
            env->helo ? env->helo : "", env->mail_from);
    for (size_t i = 0; i < env->nrcpts; i++)
        fprintf(out, "Rcpt-To: %s\n", env->rcpts[i]);
    if (env->tls)
        fprintf(out, "Size: %zu\nTLS: %s %s\n--- DATA ---\n", env->size, env->tls_version,
                env->tls_cipher);
    else
        fprintf(out, "Size: %zu\nTLS: no\n--- DATA ---\n", env->size);
    size_t start = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (data[i] == '\r' && data[i + 1] == '\n') { /* show CRLF as LF */
            fwrite(data + start, 1, i - start, out);
            start = i + 1;
        }
    }
    fwrite(data + start, 1, len - start, out);
    if (len && data[len - 1] != '\n')
        fputc('\n', out);
    fprintf(out, "=== END %s ===\n", env->qid);
    fflush(out);
}

/* JSON string escaping (RFC 8259): quotes, backslash, control bytes; UTF-8 passes through. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int json_render(const sink_envelope *env, char **out, size_t *outlen)
{
    FILE *f = open_memstream(out, outlen);
    if (!f)
        return -ENOMEM;
    char when[32];
    struct tm tm;
    gmtime_r(&env->received_at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fputs("{\"id\":", f);
    json_str(f, env->qid);
    fprintf(f, ",\"received_at\":\"%s\",\"client_ip\":", when);
    json_str(f, env->client_ip);
    fprintf(f, ",\"client_port\":%d,\"helo\":", env->client_port);
    json_str(f, env->helo);
    fputs(",\"mail_from\":", f);
    json_str(f, env->mail_from);
    fputs(",\"rcpt_to\":[", f);
    for (size_t i = 0; i < env->nrcpts; i++) {
        if (i)
            fputc(',', f);
        json_str(f, env->rcpts[i]);
    }
    fprintf(f, "],\"size\":%zu,\"tls\":%s,", env->size, env->tls ? "true" : "false");
    if (env->tls) {
        fputs("\"tls_version\":", f);
        json_str(f, env->tls_version);
        fputs(",\"tls_cipher\":", f);
        json_str(f, env->tls_cipher);
        fputc(',', f);
    }
    fputs("\"auth\":", f);
    if (env->auth)
        json_str(f, env->auth);
    else
        fputs("null", f);
    fputs("}\n", f);
    return fclose(f) == 0 ? 0 : -ENOMEM;
}

/* Writes data to dir/.name.tmp durably; the caller renames it. */
static int write_tmp(const char *tmp, const char *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        off += (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:;
    int e = errno ? -errno : -EIO;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return e;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int envelope_store(const char *dir, const sink_envelope *env, const char *data, size_t len)
{
    char tmp_eml[4096], tmp_json[4096], eml[4096], json[4096];
    snprintf(tmp_eml, sizeof(tmp_eml), "%s/.%s.eml.tmp", dir, env->qid);
    snprintf(tmp_json, sizeof(tmp_json), "%s/.%s.json.tmp", dir, env->qid);
    snprintf(eml, sizeof(eml), "%s/%s.eml", dir, env->qid);
    snprintf(json, sizeof(json), "%s/%s.json", dir, env->qid);
    char *js = NULL;
    size_t jslen = 0;
    int r = json_render(env, &js, &jslen);
    if (r == 0)
        r = write_tmp(tmp_eml, data, len);
    if (r == 0 && (r = write_tmp(tmp_json, js, jslen)) < 0)
        unlink(tmp_eml);
    free(js);
    if (r < 0)
        return r;
    /* the .json first: whoever sees the .eml finds its envelope beside it */
    if (rename(tmp_json, json) < 0 || rename(tmp_eml, eml) < 0) {
        r = -errno;
        unlink(tmp_json);
        unlink(tmp_eml);
        unlink(json);
        return r;
    }
    return fsync_dir(dir);
}
