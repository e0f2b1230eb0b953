/*
 * fuzz_config.c - libFuzzer driver for the configuration parser (src/daemon/config.c).
 *
 * Each input is a whole config file (any bytes). Beyond ASan/UBSan, the driver traps when a
 * promise is broken: the result is 0 with a config or -EINVAL with at least one error; every
 * error is one printable "fuzz.conf..." line, in line order, at most PH_CONFIG_MAX_ERRORS + 1
 * of them. A config that loads must dump (and dump -n) to text that loads again to the same
 * effective values and the same explicit subset, and its limits must be in their bounds.
 * Owns nothing beyond the configs, errors and dump buffers of one input (freed before return).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            __builtin_trap();                                                                 \
    } while (0)

static void check_errors(const ph_config_errors *e, int r)
{
    CHECK(r != -EINVAL || e->n > 0);
    CHECK(r != 0 || (e->n == 0 && e->dropped == 0));
    CHECK(e->n <= PH_CONFIG_MAX_ERRORS + 1);
    for (size_t i = 0; i < e->n; i++) {
        const char *t = e->v[i].text;
        CHECK(strncmp(t, "fuzz.conf", 9) == 0);
        for (const char *p = t; *p; p++)
            CHECK(*p >= 0x20 && *p < 0x7f);
        /* sorted by line, the file-wide ones (line 0) last */
        if (i > 0 && e->v[i - 1].line == 0)
            CHECK(e->v[i].line == 0);
        if (i > 0 && e->v[i].line != 0)
            CHECK(e->v[i - 1].line <= e->v[i].line);
    }
}

/* The dump as a heap string (caller frees), or NULL if out of memory. */
static char *dump(const ph_config *cfg, bool only_set, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    int r = ph_config_dump(cfg, f, only_set);
    fclose(f);
    CHECK(r == 0);
    return text;
}

/* Loads the dump of cfg and checks it gives the same full dump and the same dump -n. */
static void check_roundtrip(const ph_config *cfg, bool only_set)
{
    size_t len, len2;
    char *text = dump(cfg, only_set, &len);
    if (!text)
        return;
    ph_config *again = NULL;
    int r = ph_config_parse("fuzz.conf", text, len, &again, NULL);
    CHECK(r == 0 || r == -ENOMEM);
    if (r == 0) {
        char *a = dump(cfg, false, &len), *b = dump(again, false, &len2);
        CHECK(!a || !b || (len == len2 && memcmp(a, b, len) == 0));
        free(a);
        free(b);
        a = dump(cfg, true, &len);
        b = dump(again, true, &len2);
        CHECK(only_set || !a || !b || len2 >= len);
        CHECK(!only_set || !a || !b || (len == len2 && memcmp(a, b, len) == 0));
        free(a);
        free(b);
    }
    ph_config_free(again);
    free(text);
}

static void check_config(const ph_config *cfg)
{
    CHECK(cfg->nlisteners >= 1 && cfg->nlisteners <= PH_CONFIG_MAX_LISTENERS);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const ph_config_listener *l = &cfg->listeners[i];
        posthorn_limits lim;
        memset(&lim, 0, sizeof(lim));
        ph_config_listener_limits(cfg, l, &lim);
        CHECK(l->listen.n >= 1 && l->listen.n <= PH_CONFIG_MAX_LIST);
        CHECK(lim.max_line >= 512 && lim.max_line <= 65536);
        CHECK(lim.max_message_size >= 1024 && lim.max_message_size <= (1u << 30));
        CHECK(lim.idle_timeout_ms >= 1000 && lim.session_timeout_ms <= 7u * 86400000u);
        CHECK(l->tls == 0 || (*l->s.tls_cert && *l->s.tls_key));
        CHECK(!l->require_tls || l->tls != 0);
        CHECK(l->auth == 0 || *cfg->g.passwd_file);
        CHECK(ph_config_find_listener(cfg, l->name) == l);
    }
    check_roundtrip(cfg, false);
    check_roundtrip(cfg, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ph_config *cfg = NULL;
    ph_config_errors errs;
    int r = ph_config_parse("fuzz.conf", (const char *)data, size, &cfg, &errs);
    CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
    CHECK((r == 0) == (cfg != NULL));
    check_errors(&errs, r);
    if (cfg)
        check_config(cfg);
    ph_config_free(cfg);
    ph_config_errors_free(&errs);
    return 0;
}
