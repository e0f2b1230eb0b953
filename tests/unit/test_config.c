/*
 * test_config.c - unit tests for src/daemon/config.c (posthorn.conf): every value type, every
 * bound exactly at and one past it, syntax (comments, continuations, sections, CRLF, control
 * bytes), every cross check, role defaults, overrides, list repetition, [domain] and [relay]
 * sections (names, duplicates, scopes, their parameters, domains listed twice or local, the
 * default smarthost, relay lookup, endpoints and DNS forwarders), dump and dump -n round trips,
 * limits conversion, the retry schedule, maildir expansion, the caps on hostile input, and that
 * docs/posthorn.conf.5 documents every parameter of the table. Table-driven; failures name
 * the case.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config.h"

#define FILE_NAME "t.conf"
/* Every value case starts with BASE (line 1), then its global text, then LISTENER_A. */
#define BASE "store_dir = /var/spool/posthorn\n"
#define LISTENER_A "[listener a]\nlisten = 127.0.0.1:2525\n"
/* Domain value cases: BASE, LISTENER_A, then DOMAIN_A (line 4) and their text (line 5 on). */
#define DOMAIN_A "[domain example.org]\n"
/* Relay value cases: BASE, LISTENER_A, then RELAY_A (line 4) and their text (line 5 on). */
#define RELAY_A "[relay smart]\n"
/* What a submission listener needs to be valid. */
#define TLS_AUTH "tls_cert = /c.pem\ntls_key = /k.pem\npasswd_file = /p\n"

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    memcpy(s + u * times, tail, t + 1);
    return s;
}

static void print_errors(const char *what, const ph_config_errors *e)
{
    fprintf(stderr, "case '%s': %zu errors\n", what, e->n);
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "  %s\n", e->v[i].text);
}

/* Parses text that must be valid. */
static ph_config *parse_ok(const char *what, const char *text)
{
    ph_config *cfg = NULL;
    ph_config_errors errs;
    int r = ph_config_parse(FILE_NAME, text, strlen(text), &cfg, &errs);
    if (r != 0)
        print_errors(what, &errs);
    ph_config_errors_free(&errs);
    assert_int_equal(r, 0);
    assert_non_null(cfg);
    return cfg;
}

static char *dump_text(const ph_config *cfg, bool only_set)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(ph_config_dump(cfg, f, only_set), 0);
    fclose(f);
    return text;
}

/* dump re-parses to the same effective config; dump -n to the same explicit subset too. */
static void check_roundtrip(const char *what, const ph_config *cfg)
{
    char *full = dump_text(cfg, false), *set = dump_text(cfg, true);
    ph_config *again = parse_ok(what, full), *again_n = parse_ok(what, set);
    char *full2 = dump_text(again, false), *full3 = dump_text(again_n, false);
    char *set3 = dump_text(again_n, true);
    if (strcmp(full, full2) != 0 || strcmp(full, full3) != 0 || strcmp(set, set3) != 0)
        fprintf(stderr, "case '%s': dump round trip differs:\n%s\n---\n%s\n", what, full, full3);
    assert_string_equal(full, full2);
    assert_string_equal(full, full3);
    assert_string_equal(set, set3);
    free(full), free(set), free(full2), free(full3), free(set3);
    ph_config_free(again);
    ph_config_free(again_n);
}

/* --- effective values ---------------------------------------------------------------------- */

typedef struct value_case {
    const char *global;   /* after BASE */
    const char *listener; /* after LISTENER_A */
    char where;           /* 'g': the global value; 'l': listener a's effective value */
    const char *key;
    const char *want;     /* as dumped */
} value_case;

static const value_case value_cases[] = {
    /* defaults */
    {"", "", 'g', "hostname", ""},
    {"", "", 'g', "banner", "Posthorn"},
    {"", "", 'g', "user", ""},
    {"", "", 'g', "workers", "1"},
    {"", "", 'g', "log_level", "info"},
    {"", "", 'g', "log_target", "stderr"},
    {"", "", 'g', "delivery", "store"},
    {"", "", 'g', "passwd_file", ""},
    {"", "", 'g', "auth_fail_limit", "5"},
    {"", "", 'g', "auth_fail_delay", "1s"},
    {"", "", 'g', "tls_sni", ""},
    {"", "", 'g', "max_connections", "10000"},
    {"", "", 'g', "queue_retry_schedule", "1m 5m 15m 1h 4h"},
    {"", "", 'g', "queue_lifetime", "5d"},
    {"", "", 'g', "queue_concurrency", "20"},
    {"", "", 'g', "destination_concurrency", "10"},
    {"", "", 'g', "max_received_headers", "100"},
    {"", "", 'g', "control_socket", ""},
    {"", "", 'g', "relay_networks", ""},
    {"", "", 'g', "destination_rate", "0"},
    {"", "", 'g', "dns_forwarders", ""},
    {"", "", 'g', "dns_timeout", "10s"},
    {"", "", 'g', "smtp_tls", "may"},
    {"", "", 'g', "smtp_tls_verify", "no"},
    {"", "", 'g', "smtp_connect_timeout", "30s"},
    {"", "", 'g', "smtp_command_timeout", "5m"},
    {"", "", 'g', "smtp_data_timeout", "10m"},
    {"", "", 'g', "smtp_connect_stagger", "250ms"},
    {"", "", 'g', "smtp_host_memory", "10m"},
    {"", "", 'g', "smtp_mx_port", "25"},
    {"", "", 'l', "max_message_size", "32M"},
    {"", "", 'l', "max_recipients", "1000"},
    {"", "", 'l', "max_errors", "20"},
    {"", "", 'l', "max_line", "512"},
    {"", "", 'l', "max_per_ip", "100"},
    {"", "", 'l', "idle_timeout", "5m"},
    {"", "", 'l', "session_timeout", "1h"},
    {"", "", 'l', "greeting_delay", "0"},
    {"", "", 'l', "shutdown_grace", "30s"},
    {"", "", 'l', "handshake_timeout", "30s"},
    {"", "", 'l', "tls_cert", ""},
    {"", "", 'l', "tls_min_version", "TLSv1.2"},
    {"", "", 'l', "tls_ciphers", ""},
    {"", "", 'l', "tls_ciphersuites", ""},
    {"", "", 'l', "tls_session_tickets", "yes"},
    {"", "", 'l', "role", "mx"},
    /* strings and paths: the rest of the line, trimmed; '#' inside a value is kept */
    {"hostname = mx1.example.org\n", "", 'g', "hostname", "mx1.example.org"},
    {"hostname=mx1\n", "", 'g', "hostname", "mx1"},
    {"banner =   Hello  there   \n", "", 'g', "banner", "Hello  there"},
    {"banner = a # not a comment\n", "", 'g', "banner", "a # not a comment"},
    {"banner = x = y\n", "", 'g', "banner", "x = y"},
    {"banner =\n", "", 'g', "banner", ""},
    {"user = posthorn\ngroup = mail\n", "", 'g', "group", "mail"},
    {"user = _ph-1.x\n", "", 'g', "user", "_ph-1.x"},
    {"passwd_file = relative/p w\n", "", 'g', "passwd_file", "relative/p w"},
    {"tls_ciphers = HIGH:!aNULL\n", "", 'l', "tls_ciphers", "HIGH:!aNULL"},
    /* bools */
    {"", "tls_session_tickets = no\n", 'l', "tls_session_tickets", "no"},
    {"", "tls_session_tickets = false\n", 'l', "tls_session_tickets", "no"},
    {"", "tls_session_tickets = off\n", 'l', "tls_session_tickets", "no"},
    {"", "tls_session_tickets = 0\n", 'l', "tls_session_tickets", "no"},
    {"", "tls_session_tickets = yes\n", 'l', "tls_session_tickets", "yes"},
    {"", "tls_session_tickets = true\n", 'l', "tls_session_tickets", "yes"},
    {"", "tls_session_tickets = on\n", 'l', "tls_session_tickets", "yes"},
    {"", "tls_session_tickets = 1\n", 'l', "tls_session_tickets", "yes"},
    {"", "tls_session_tickets = NO\n", 'l', "tls_session_tickets", "no"},
    /* numbers */
    {"workers = 8\n", "", 'g', "workers", "8"},
    {"workers = 007\n", "", 'g', "workers", "7"},
    {"", "max_per_ip = 0\n", 'l', "max_per_ip", "0"},
    /* sizes: powers of 1024, printed with the largest exact suffix */
    {"", "max_message_size = 1k\n", 'l', "max_message_size", "1k"},
    {"", "max_message_size = 2K\n", 'l', "max_message_size", "2k"},
    {"", "max_message_size = 1025\n", 'l', "max_message_size", "1025"},
    {"", "max_message_size = 1048576\n", 'l', "max_message_size", "1M"},
    {"", "max_message_size = 10m\n", 'l', "max_message_size", "10M"},
    {"", "max_message_size = 1g\n", 'l', "max_message_size", "1G"},
    {"", "max_message_size = 1024M\n", 'l', "max_message_size", "1G"},
    {"", "max_message_size = 1536k\n", 'l', "max_message_size", "1536k"},
    /* durations: a bare number is seconds */
    {"", "idle_timeout = 90\n", 'l', "idle_timeout", "90s"},
    {"", "idle_timeout = 120\n", 'l', "idle_timeout", "2m"},
    {"", "idle_timeout = 1500ms\n", 'l', "idle_timeout", "1500ms"},
    {"", "idle_timeout = 2000ms\n", 'l', "idle_timeout", "2s"},
    {"", "idle_timeout = 3m\n", 'l', "idle_timeout", "3m"},
    {"", "idle_timeout = 2h\n", 'l', "idle_timeout", "2h"},
    {"", "idle_timeout = 1d\n", 'l', "idle_timeout", "1d"},
    {"", "idle_timeout = 24h\n", 'l', "idle_timeout", "1d"},
    {"", "greeting_delay = 0ms\n", 'l', "greeting_delay", "0"},
    {"", "greeting_delay = 250ms\n", 'l', "greeting_delay", "250ms"},
    {"auth_fail_delay = 0\n", "", 'g', "auth_fail_delay", "0"},
    /* enums, case-insensitive, printed canonically */
    {"log_level = debug\n", "", 'g', "log_level", "debug"},
    {"log_level = WARN\n", "", 'g', "log_level", "warn"},
    {"log_level = error\n", "", 'g', "log_level", "error"},
    {"log_target = syslog\n", "", 'g', "log_target", "syslog"},
    {"delivery = discard\n", "", 'g', "delivery", "discard"},
    {"", "tls_min_version = tlsv1.3\n", 'l', "tls_min_version", "TLSv1.3"},
    /* lists: blanks and/or commas; a repeated key appends */
    {"", "", 'l', "listen", "127.0.0.1:2525"},
    {"", "listen = [::1]:2525, *:25,unix:/run/ph.sock\n", 'l', "listen",
     "127.0.0.1:2525 [::1]:2525 *:25 unix:/run/ph.sock"},
    {"", "listen = localhost:0\nlisten = 0.0.0.0:65535\n", 'l', "listen",
     "127.0.0.1:2525 localhost:0 0.0.0.0:65535"},
    {"", "listen =\n", 'l', "listen", "127.0.0.1:2525"},
    {"", "listen = ,,  ,\n", 'l', "listen", "127.0.0.1:2525"},
    {"tls_sni = a.example:/a.pem:/a.key\ntls_sni = *.b.example:/b.pem:/b.key, c:/c:/k\n", "", 'g',
     "tls_sni", "a.example:/a.pem:/a.key *.b.example:/b.pem:/b.key c:/c:/k"},
    /* a list's first line replaces its default; the next ones append; entries kept as written */
    {"queue_retry_schedule = 30s\n", "", 'g', "queue_retry_schedule", "30s"},
    {"queue_retry_schedule = 10m, 90 2h\nqueue_retry_schedule = 1d 1500ms\n", "", 'g',
     "queue_retry_schedule", "10m 90 2h 1d 1500ms"},
    {"queue_retry_schedule = 4h 1m 1m\n", "", 'g', "queue_retry_schedule", "4h 1m 1m"},
    {"queue_retry_schedule = 1m\n  2m\n", "", 'g', "queue_retry_schedule", "1m 2m"},
    {"relay_networks = 10.0.0.0/8 192.168.1.7, ::1\nrelay_networks = 2001:db8::/32 "
     "::ffff:10.1.2.3/128 0.0.0.0/0 ::/0\n", "", 'g', "relay_networks",
     "10.0.0.0/8 192.168.1.7 ::1 2001:db8::/32 ::ffff:10.1.2.3/128 0.0.0.0/0 ::/0"},
    {"relay_networks =\n", "", 'g', "relay_networks", ""},
    /* the resolver and the SMTP client */
    {"dns_forwarders = 127.0.0.1@5353\n", "", 'g', "dns_forwarders", "127.0.0.1@5353"},
    {"dns_forwarders = ::1, 2001:db8::53@53\ndns_forwarders = 192.0.2.1\n", "", 'g',
     "dns_forwarders", "::1 2001:db8::53@53 192.0.2.1"},
    {"dns_forwarders =\n", "", 'g', "dns_forwarders", ""},
    {"dns_timeout = 30\n", "", 'g', "dns_timeout", "30s"},
    {"smtp_tls = none\n", "", 'g', "smtp_tls", "none"},
    {"smtp_tls = ENCRYPT\nsmtp_tls_verify = yes\n", "", 'g', "smtp_tls", "encrypt"},
    {"smtp_tls = encrypt\nsmtp_tls_verify = on\n", "", 'g', "smtp_tls_verify", "yes"},
    {"smtp_tls = encrypt\n", "", 'g', "smtp_tls_verify", "no"},
    {"smtp_connect_timeout = 90\n", "", 'g', "smtp_connect_timeout", "90s"},
    {"smtp_command_timeout = 2m\n", "", 'g', "smtp_command_timeout", "2m"},
    {"smtp_data_timeout = 1800s\n", "", 'g', "smtp_data_timeout", "30m"},
    {"smtp_connect_stagger = 0\n", "", 'g', "smtp_connect_stagger", "0"},
    {"smtp_connect_stagger = 1500ms\n", "", 'g', "smtp_connect_stagger", "1500ms"},
    {"smtp_host_memory = 1h\n", "", 'g', "smtp_host_memory", "1h"},
    {"smtp_mx_port = 2525\n", "", 'g', "smtp_mx_port", "2525"},
    {"destination_rate = 5\n", "", 'g', "destination_rate", "5"},
    {"queue_lifetime = 336h\nqueue_concurrency = 4\n", "", 'g', "queue_lifetime", "14d"},
    {"max_received_headers = 30\n", "", 'g', "max_received_headers", "30"},
    {"control_socket = /run/posthorn/control\n", "", 'g', "control_socket",
     "/run/posthorn/control"},
    /* continuation lines: joined with one space; comments inside are skipped */
    {"banner = Hello\n   there\n\tworld\n", "", 'g', "banner", "Hello there world"},
    {"", "listen = [::1]:1\n  # the v4 one:\n  127.0.0.2:1\n", 'l', "listen",
     "127.0.0.1:2525 [::1]:1 127.0.0.2:1"},
    {"banner = a\n#comment at column 0\n b\n", "", 'g', "banner", "a b"},
    /* comments, blank lines, CRLF */
    {"# comment\n   # indented comment\n\n  \t \nworkers = 2\n", "", 'g', "workers", "2"},
    {"workers = 3\r\nbanner = crlf\r\n", "", 'g', "banner", "crlf"},
    /* overrides: a listener value wins over the global one; otherwise inherited */
    {"max_recipients = 5\n", "", 'l', "max_recipients", "5"},
    {"max_recipients = 5\n", "max_recipients = 7\n", 'l', "max_recipients", "7"},
    {"max_recipients = 5\n", "max_recipients = 7\n", 'g', "max_recipients", "5"},
    {"tls_ciphers = A\n", "", 'l', "tls_ciphers", "A"},
    {"tls_cert = /c\ntls_key = /k\n", "tls_cert =\ntls_key =\n", 'l', "tls", "none"},
    /* role defaults */
    {"", "", 'l', "tls", "none"},
    {"", "", 'l', "require_tls", "no"},
    {"", "", 'l', "auth", "none"},
    {"", "", 'l', "require_auth", "no"},
    {"tls_cert = /c\ntls_key = /k\n", "", 'l', "tls", "starttls"},
    {"", "tls_cert = /c\ntls_key = /k\n", 'l', "tls", "starttls"},
    {TLS_AUTH, "role = submission\n", 'l', "tls", "starttls"},
    {TLS_AUTH, "role = submission\n", 'l', "require_tls", "yes"},
    {TLS_AUTH, "role = submission\n", 'l', "auth", "tls"},
    {TLS_AUTH, "role = submission\n", 'l', "require_auth", "yes"},
    {TLS_AUTH, "role = submissions\n", 'l', "tls", "implicit"},
    {TLS_AUTH, "role = submissions\n", 'l', "require_tls", "yes"},
    {TLS_AUTH, "role = submissions\n", 'l', "auth", "tls"},
    {TLS_AUTH, "role = submissions\n", 'l', "require_auth", "yes"},
    {TLS_AUTH, "role = mx\n", 'l', "auth", "none"},
    /* explicit values win over role defaults */
    {TLS_AUTH, "role = submission\ntls = implicit\n", 'l', "tls", "implicit"},
    {TLS_AUTH, "role = submission\nrequire_tls = no\n", 'l', "require_tls", "no"},
    {TLS_AUTH, "role = submission\nauth = insecure\n", 'l', "auth", "insecure"},
    {TLS_AUTH, "role = submission\nrequire_auth = no\n", 'l', "require_auth", "no"},
    {"passwd_file = /p\n", "role = submission\ntls = none\nrequire_tls = no\nauth = insecure\n",
     'l', "auth", "insecure"},
    {"passwd_file = /p\n", "auth = tls\n", 'l', "auth", "tls"},
    {TLS_AUTH, "tls = implicit\n", 'l', "tls", "implicit"},
    {"", "tls = none\n", 'l', "tls", "none"},
};

static void test_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
        const value_case *c = &value_cases[i];
        char *g = concat3(BASE, c->global, LISTENER_A), *text = concat3(g, c->listener, "");
        ph_config *cfg = parse_ok(text, text);
        const ph_config_listener *l = ph_config_find_listener(cfg, "a");
        char got[512];
        assert_non_null(l);
        assert_int_equal(ph_config_value(cfg, c->where == 'l' ? l : NULL, c->key, got,
                                         sizeof(got)), 0);
        if (strcmp(got, c->want) != 0)
            fprintf(stderr, "case %zu (%s): got '%s'\n", i, text, got);
        assert_string_equal(got, c->want);
        check_roundtrip(text, cfg);
        ph_config_free(cfg);
        free(g);
        free(text);
    }
}

/* --- domain values --------------------------------------------------------------------------- */

typedef struct domain_case {
    const char *text; /* after BASE LISTENER_A DOMAIN_A */
    const char *key;
    const char *want; /* as dumped */
} domain_case;

static const domain_case domain_cases[] = {
    /* defaults */
    {"", "transport", "maildir"},
    {"", "maildir", "/var/mail/%d/%u/Maildir"},
    {"", "mailboxes", ""},
    {"", "users", ""},
    {"", "aliases", ""},
    {"", "catch_all", ""},
    {"", "recipient_delimiter", "+"},
    {"", "lmtp", ""},
    {"", "lmtp_timeout", "5m"},
    /* values */
    {"transport = LMTP\nlmtp = unix:/run/dovecot/lmtp\n", "transport", "lmtp"},
    {"transport = lmtp\nlmtp = unix:/run/dovecot/lmtp\n", "lmtp", "unix:/run/dovecot/lmtp"},
    {"transport = lmtp\nlmtp = 127.0.0.1:24\n", "lmtp", "127.0.0.1:24"},
    {"transport = lmtp\nlmtp = [::1]:65535\n", "lmtp", "[::1]:65535"},
    {"transport = lmtp\nlmtp = dovecot.example:1\n", "lmtp", "dovecot.example:1"},
    {"lmtp = 127.0.0.1:24\n", "transport", "maildir"}, /* an address kept for later is fine */
    {"transport = maildir\n", "transport", "maildir"},
    {"maildir = /srv/mail/%d/%u\n", "maildir", "/srv/mail/%d/%u"},
    {"maildir = /m/100%%/%u/%%d\n", "maildir", "/m/100%%/%u/%%d"},
    {"maildir = /home/vmail/Maildir\n", "maildir", "/home/vmail/Maildir"},
    {"maildir = /\n", "maildir", "/"},
    {"mailboxes = /etc/posthorn/users\n", "mailboxes", "/etc/posthorn/users"},
    {"users = alice, bob\nusers = Carol.Smith\n", "users", "alice bob Carol.Smith"},
    {"users = \"q\"x +x ~x\n", "users", "\"q\"x +x ~x"},
    {"users =\n", "users", ""},
    {"users = 1234567890123456789012345678901234567890123456789012345678901234\n", "users",
     "1234567890123456789012345678901234567890123456789012345678901234"},
    {"users = caf\xc3\xa9\n", "users", "caf\xc3\xa9"}, /* SMTPUTF8 local parts */
    {"aliases = /etc/aliases\n", "aliases", "/etc/aliases"},
    {"catch_all = postmaster\n", "catch_all", "postmaster"},
    {"catch_all = admin@example.net\n", "catch_all", "admin@example.net"},
    {"catch_all =\n", "catch_all", ""},
    {"recipient_delimiter = -\n", "recipient_delimiter", "-"},
    {"recipient_delimiter = _\n", "recipient_delimiter", "_"},
    {"recipient_delimiter = =\n", "recipient_delimiter", "="},
    {"recipient_delimiter = .\n", "recipient_delimiter", "."},
    {"recipient_delimiter =\n", "recipient_delimiter", ""},
    {"lmtp_timeout = 1s\n", "lmtp_timeout", "1s"},
    {"lmtp_timeout = 3600\n", "lmtp_timeout", "1h"},
    {"lmtp_timeout = 90\n", "lmtp_timeout", "90s"},
};

static void test_domain_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
        const domain_case *c = &domain_cases[i];
        char *text = concat3(BASE LISTENER_A DOMAIN_A, c->text, "");
        ph_config *cfg = parse_ok(text, text);
        char got[512];
        assert_int_equal(cfg->ndomains, 1);
        assert_int_equal(ph_config_domain_value(cfg, &cfg->domains[0], c->key, got, sizeof(got)),
                         0);
        if (strcmp(got, c->want) != 0)
            fprintf(stderr, "domain case %zu (%s): got '%s'\n", i, text, got);
        assert_string_equal(got, c->want);
        check_roundtrip(text, cfg);
        ph_config_free(cfg);
        free(text);
    }
}

/* --- relay values --------------------------------------------------------------------------- */

typedef struct relay_case {
    const char *text; /* after BASE LISTENER_A RELAY_A: must set host */
    const char *key;
    const char *want; /* as dumped */
} relay_case;

#define HOST "host = smtp.example.net\n"

static const relay_case relay_cases[] = {
    /* defaults */
    {HOST, "tls", "starttls"},
    {HOST, "tls_verify", "yes"},
    {HOST, "auth_user", ""},
    {HOST, "auth_password_file", ""},
    {HOST, "auth_insecure", "no"},
    {HOST, "domains", ""},
    /* hosts as written */
    {HOST, "host", "smtp.example.net"},
    {"host = smtp.example.net:587\n", "host", "smtp.example.net:587"},
    {"host = 192.0.2.7:25\n", "host", "192.0.2.7:25"},
    {"host = [2001:db8::1]\n", "host", "[2001:db8::1]"},
    {"host = [::1]:2525\n", "host", "[::1]:2525"},
    {"host = localhost\n", "host", "localhost"},
    /* tls: required STARTTLS by default; the others, each with what tls_verify becomes */
    {HOST "tls = IMPLICIT\n", "tls", "implicit"},
    {HOST "tls = implicit\n", "tls_verify", "yes"},
    {HOST "tls = may\n", "tls", "may"},
    {HOST "tls = may\n", "tls_verify", "no"},
    {HOST "tls = none\n", "tls_verify", "no"},
    {HOST "tls = none\ntls_verify = no\n", "tls_verify", "no"},
    {HOST "tls_verify = no\n", "tls_verify", "no"},
    {HOST "tls = starttls\ntls_verify = yes\n", "tls_verify", "yes"},
    /* AUTH: both keys, over required TLS or allowed in clear text */
    {HOST "auth_user = mailer@example.org\nauth_password_file = /etc/posthorn/relay.pw\n",
     "auth_user", "mailer@example.org"},
    {HOST "auth_user = u\nauth_password_file = relay pw\n", "auth_password_file", "relay pw"},
    {HOST "tls = implicit\nauth_user = u\nauth_password_file = /p\n", "auth_insecure", "no"},
    {HOST "tls = may\nauth_user = u\nauth_password_file = /p\nauth_insecure = yes\n",
     "auth_insecure", "yes"},
    {HOST "tls = none\nauth_user = u\nauth_password_file = /p\nauth_insecure = 1\n",
     "auth_user", "u"},
    {HOST "auth_insecure = yes\n", "auth_insecure", "yes"}, /* harmless without AUTH */
    {HOST "auth_user =\nauth_password_file =\n", "auth_user", ""},
    /* domains: as written, blanks and/or commas, repeatable */
    {HOST "domains = Example.ORG\n", "domains", "Example.ORG"},
    {HOST "domains = a.example, b.example c.example\ndomains = xn--bcher-kva.example\n",
     "domains", "a.example b.example c.example xn--bcher-kva.example"},
    {HOST "domains = localhost\n", "domains", "localhost"},
    {HOST "domains =\n", "domains", ""},
};

static void test_relay_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(relay_cases) / sizeof(relay_cases[0]); i++) {
        const relay_case *c = &relay_cases[i];
        char *text = concat3(BASE LISTENER_A RELAY_A, c->text, "");
        ph_config *cfg = parse_ok(text, text);
        char got[512];
        assert_int_equal(cfg->nrelays, 1);
        assert_int_equal(ph_config_relay_value(cfg, &cfg->relays[0], c->key, got, sizeof(got)),
                         0);
        if (strcmp(got, c->want) != 0)
            fprintf(stderr, "relay case %zu (%s): got '%s'\n", i, text, got);
        assert_string_equal(got, c->want);
        check_roundtrip(text, cfg);
        ph_config_free(cfg);
        free(text);
    }
}

/* The struct fields hold the documented units. */
static void test_fields(void **state)
{
    (void)state;
    ph_config *cfg = parse_ok("fields",
        BASE TLS_AUTH "workers = 4\nlog_level = debug\nidle_timeout = 2m\n"
        "[listener s]\nrole = submissions\nlisten = *:465\nmax_message_size = 10M\n"
        "greeting_delay = 1500ms\ntls_session_tickets = no\n");
    const ph_config_listener *l = &cfg->listeners[0];
    assert_int_equal(cfg->nlisteners, 1);
    assert_string_equal(l->name, "s");
    assert_int_equal(l->line, 8);
    assert_int_equal(cfg->g.workers, 4);
    assert_int_equal(cfg->g.log_level, POSTHORN_LOG_DEBUG);
    assert_int_equal(cfg->g.delivery, PH_DELIVERY_STORE);
    assert_string_equal(cfg->g.store_dir, "/var/spool/posthorn");
    assert_int_equal(cfg->s.idle_timeout_ms, 120000);
    assert_int_equal(l->s.idle_timeout_ms, 120000);
    assert_int_equal(l->s.max_message_size, 10u << 20);
    assert_int_equal(l->s.greeting_delay_ms, 1500);
    assert_false(l->s.tls_session_tickets);
    assert_true(cfg->s.tls_session_tickets);
    assert_string_equal(l->s.tls_cert, "/c.pem");
    assert_int_equal(l->role, PH_ROLE_SUBMISSIONS);
    assert_int_equal(l->tls, PH_TLS_IMPLICIT);
    assert_int_equal(l->auth, PH_AUTH_TLS);
    assert_true(l->require_tls);
    assert_true(l->require_auth);
    assert_int_equal(l->listen.n, 1);
    assert_string_equal(l->listen.v[0], "*:465");
    assert_int_equal(cfg->g.tls_sni.n, 0);
    assert_int_equal(cfg->g.queue_retry_schedule.n, 5);
    assert_string_equal(cfg->g.queue_retry_schedule.v[4], "4h");
    assert_int_equal(cfg->g.queue_lifetime_ms, 5ull * 86400000);
    assert_int_equal(cfg->g.queue_concurrency, 20);
    assert_int_equal(cfg->g.max_received_headers, 100);
    assert_string_equal(cfg->g.control_socket, "");
    assert_int_equal(cfg->g.relay_networks.n, 0);
    assert_int_equal(cfg->ndomains, 0);
    assert_null(ph_config_find_domain(cfg, "example.org"));
    /* where values were set: dump -n's knowledge */
    assert_int_equal(ph_config_set_line(cfg, NULL, "workers"), 5);
    assert_int_equal(ph_config_set_line(cfg, NULL, "banner"), 0);
    assert_int_equal(ph_config_set_line(cfg, l, "role"), 9);
    assert_int_equal(ph_config_set_line(cfg, l, "tls"), 0);
    assert_int_equal(ph_config_set_line(cfg, l, "idle_timeout"), 0);
    assert_int_equal(ph_config_set_line(cfg, NULL, "nope"), 0);

    posthorn_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_data_line = 998;
    ph_config_listener_limits(cfg, l, &lim);
    assert_int_equal(lim.max_message_size, 10u << 20);
    assert_int_equal(lim.max_line, 512);
    assert_int_equal(lim.max_data_line, 998); /* not the file's: left alone */
    assert_int_equal(lim.max_recipients, 1000);
    assert_int_equal(lim.max_errors, 20);
    assert_int_equal(lim.max_connections, 10000);
    assert_int_equal(lim.max_per_ip, 100);
    assert_int_equal(lim.idle_timeout_ms, 120000);
    assert_int_equal(lim.session_timeout_ms, 3600000);
    assert_int_equal(lim.greeting_delay_ms, 1500);
    assert_int_equal(lim.shutdown_grace_ms, 30000);
    ph_config_listener_limits(cfg, NULL, &lim);
    assert_int_equal(lim.max_message_size, 32u << 20);
    assert_int_equal(lim.greeting_delay_ms, 0);

    char buf[8];
    assert_int_equal(ph_config_value(cfg, NULL, "nope", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(ph_config_value(cfg, NULL, "listen", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_value(cfg, NULL, "store_dir", buf, sizeof(buf)), -ENOSPC);
    assert_string_equal(buf, "/var/sp");
    assert_null(ph_config_find_listener(cfg, "nope"));
    ph_config_free(cfg);
    ph_config_free(NULL);
    ph_config_errors_free(NULL);
}

/* dump -n prints exactly what the file set, in file syntax. */
static void test_dump_only_set(void **state)
{
    (void)state;
    ph_config *cfg = parse_ok("dump -n",
        "# c\nworkers = 2\nstore_dir = /s\n[listener mx]\nlisten = *:25 [::]:25\n"
        "max_message_size = 51200k\n\n[listener local]\nlisten = unix:/run/p.sock\n");
    char *set = dump_text(cfg, true);
    assert_string_equal(set, "workers = 2\nstore_dir = /s\n"
                             "\n[listener mx]\nlisten = *:25\nlisten = [::]:25\n"
                             "max_message_size = 50M\n"
                             "\n[listener local]\nlisten = unix:/run/p.sock\n");
    char *full = dump_text(cfg, false);
    assert_true(strncmp(full, "hostname =\nbanner = Posthorn\n", 29) == 0);
    assert_non_null(strstr(full, "[listener local]\nlisten = unix:/run/p.sock\nrole = mx\n"
                                 "tls = none\nrequire_tls = no\nauth = none\n"
                                 "require_auth = no\nmax_message_size = 32M\n"));
    check_roundtrip("dump -n", cfg);
    free(set);
    free(full);
    ph_config_free(cfg);
}

/* --- [domain] sections: fields, lookup, the value API, dump ------------------------------- */

#define TWO_DOMAINS                                                                           \
    BASE LISTENER_A "\n[domain Example.ORG]\nusers = alice bob\ncatch_all = postmaster\n"     \
    "# Dovecot for the other one\n[domain mail.example.net]\ntransport = lmtp\n"              \
    "lmtp = unix:/run/dovecot/lmtp\nlmtp_timeout = 30s\nrecipient_delimiter =\n"              \
    "maildir = /srv/%d/%u\n"

static void test_domains(void **state)
{
    (void)state;
    ph_config *cfg = parse_ok("domains", TWO_DOMAINS);
    assert_int_equal(cfg->ndomains, 2);
    const ph_config_domain *org = &cfg->domains[0], *net = &cfg->domains[1];
    assert_string_equal(org->name, "example.org");
    assert_int_equal(org->line, 5);
    assert_int_equal(org->transport, PH_TRANSPORT_MAILDIR);
    assert_string_equal(org->maildir, "/var/mail/%d/%u/Maildir");
    assert_int_equal(org->users.n, 2);
    assert_string_equal(org->users.v[1], "bob");
    assert_string_equal(org->catch_all, "postmaster");
    assert_string_equal(org->recipient_delimiter, "+");
    assert_string_equal(org->lmtp, "");
    assert_string_equal(org->mailboxes, "");
    assert_string_equal(org->aliases, "");
    assert_int_equal(org->lmtp_timeout_ms, 300000);
    assert_string_equal(net->name, "mail.example.net");
    assert_int_equal(net->line, 9);
    assert_int_equal(net->transport, PH_TRANSPORT_LMTP);
    assert_string_equal(net->lmtp, "unix:/run/dovecot/lmtp");
    assert_int_equal(net->lmtp_timeout_ms, 30000);
    assert_string_equal(net->recipient_delimiter, "");
    assert_int_equal(net->users.n, 0);

    /* lookup: ASCII case-insensitive, whole names only */
    assert_ptr_equal(ph_config_find_domain(cfg, "example.org"), org);
    assert_ptr_equal(ph_config_find_domain(cfg, "EXAMPLE.org"), org);
    assert_ptr_equal(ph_config_find_domain(cfg, "Mail.Example.NET"), net);
    assert_null(ph_config_find_domain(cfg, "example.net"));
    assert_null(ph_config_find_domain(cfg, "example.or"));
    assert_null(ph_config_find_domain(cfg, "example.orgx"));
    assert_null(ph_config_find_domain(cfg, "xexample.org"));
    assert_null(ph_config_find_domain(cfg, "example.org."));
    assert_null(ph_config_find_domain(cfg, ""));
    assert_null(ph_config_find_listener(cfg, "example.org"));

    /* the value API */
    char buf[64];
    assert_int_equal(ph_config_domain_value(cfg, net, "transport", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "lmtp");
    assert_int_equal(ph_config_domain_value(cfg, org, "users", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "alice bob");
    assert_int_equal(ph_config_domain_value(cfg, org, "maildir", buf, 8), -ENOSPC);
    assert_string_equal(buf, "/var/ma");
    assert_int_equal(ph_config_domain_value(cfg, org, "nope", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(ph_config_domain_value(cfg, org, "workers", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_domain_value(cfg, org, "listen", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_value(cfg, NULL, "transport", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_value(cfg, &cfg->listeners[0], "lmtp", buf, sizeof(buf)),
                     -EINVAL);
    assert_int_equal(ph_config_domain_set_line(net, "transport"), 10);
    assert_int_equal(ph_config_domain_set_line(net, "maildir"), 14);
    assert_int_equal(ph_config_domain_set_line(org, "maildir"), 0);
    assert_int_equal(ph_config_domain_set_line(org, "workers"), 0);
    assert_int_equal(ph_config_domain_set_line(org, "nope"), 0);
    assert_int_equal(ph_config_set_line(cfg, NULL, "transport"), 0);
    assert_int_equal(ph_config_set_line(cfg, &cfg->listeners[0], "transport"), 0);

    /* dump -n: what the file set, domains last, names lowercased */
    char *set = dump_text(cfg, true);
    assert_string_equal(set, "store_dir = /var/spool/posthorn\n"
                             "\n[listener a]\nlisten = 127.0.0.1:2525\n"
                             "\n[domain example.org]\nusers = alice\nusers = bob\n"
                             "catch_all = postmaster\n"
                             "\n[domain mail.example.net]\ntransport = lmtp\n"
                             "maildir = /srv/%d/%u\nrecipient_delimiter =\n"
                             "lmtp = unix:/run/dovecot/lmtp\nlmtp_timeout = 30s\n");
    char *full = dump_text(cfg, false);
    assert_non_null(strstr(full, "\nqueue_retry_schedule = 1m\nqueue_retry_schedule = 5m\n"
                                 "queue_retry_schedule = 15m\nqueue_retry_schedule = 1h\n"
                                 "queue_retry_schedule = 4h\nqueue_lifetime = 5d\n"
                                 "queue_concurrency = 20\ndestination_concurrency = 10\n"
                                 "destination_rate = 0\ncontrol_socket =\n"));
    assert_non_null(strstr(full, "\nmax_received_headers = 100\nrelay_networks =\n"));
    const char *org_full = "\n[domain example.org]\ntransport = maildir\n"
                           "maildir = /var/mail/%d/%u/Maildir\nmailboxes =\nusers = alice\n"
                           "users = bob\naliases =\ncatch_all = postmaster\n"
                           "recipient_delimiter = +\nlmtp =\nlmtp_timeout = 5m\n"
                           "\n[domain mail.example.net]\n";
    assert_non_null(strstr(full, org_full));
    /* listeners come before the domains, whatever the file's order */
    assert_true(strstr(full, "[listener a]") < strstr(full, "[domain example.org]"));
    check_roundtrip("domains", cfg);
    free(set);
    free(full);
    ph_config_free(cfg);

    cfg = parse_ok("domain first", BASE "[domain b.example]\nusers = x\n" LISTENER_A
                                        "[domain a.example]\n");
    assert_string_equal(cfg->domains[0].name, "b.example");
    assert_string_equal(cfg->domains[1].name, "a.example");
    check_roundtrip("domain first", cfg);
    ph_config_free(cfg);
}

/* --- [relay] sections: fields, lookup, the value API, endpoints, dump ----------------------- */

#define RELAYS                                                                                \
    BASE LISTENER_A "[domain local.example]\n"                                                \
    "\n# everything else through the provider, with AUTH\n[relay provider]\n"                  \
    "host = smtp.provider.example:587\nauth_user = mailer\n"                                  \
    "auth_password_file = /etc/posthorn/provider.pw\n"                                        \
    "\n[relay corp]\nhost = [2001:db8::25]\ntls = implicit\ntls_verify = no\n"                \
    "domains = corp.example, Partner.EXAMPLE\ndomains = other.example\n"                      \
    "\n[relay lab]\nhost = 192.0.2.9\ntls = may\ndomains = lab.example\n"

static void test_relays(void **state)
{
    (void)state;
    ph_config *cfg = parse_ok("relays", RELAYS);
    assert_int_equal(cfg->nrelays, 3);
    const ph_config_relay *provider = &cfg->relays[0], *corp = &cfg->relays[1],
                          *lab = &cfg->relays[2];
    assert_string_equal(provider->name, "provider");
    assert_int_equal(provider->line, 7);
    assert_string_equal(provider->host, "smtp.provider.example:587");
    assert_int_equal(provider->tls, PH_RELAY_TLS_STARTTLS);
    assert_true(provider->tls_verify);
    assert_string_equal(provider->auth_user, "mailer");
    assert_string_equal(provider->auth_password_file, "/etc/posthorn/provider.pw");
    assert_false(provider->auth_insecure);
    assert_int_equal(provider->domains.n, 0);
    assert_string_equal(corp->name, "corp");
    assert_int_equal(corp->line, 12);
    assert_int_equal(corp->tls, PH_RELAY_TLS_IMPLICIT);
    assert_false(corp->tls_verify);
    assert_string_equal(corp->auth_user, "");
    assert_string_equal(corp->auth_password_file, "");
    assert_int_equal(corp->domains.n, 3);
    assert_string_equal(corp->domains.v[1], "Partner.EXAMPLE"); /* as written */
    assert_int_equal(corp->domain_lines[0], 16);
    assert_int_equal(corp->domain_lines[1], 16);
    assert_int_equal(corp->domain_lines[2], 17);
    assert_int_equal(lab->tls, PH_RELAY_TLS_MAY);
    assert_false(lab->tls_verify); /* nothing to verify without required TLS */

    /* lookup: the relay listing the domain, else the default smarthost */
    assert_ptr_equal(ph_config_relay_for(cfg, "corp.example"), corp);
    assert_ptr_equal(ph_config_relay_for(cfg, "CORP.Example"), corp);
    assert_ptr_equal(ph_config_relay_for(cfg, "partner.example"), corp);
    assert_ptr_equal(ph_config_relay_for(cfg, "other.example"), corp);
    assert_ptr_equal(ph_config_relay_for(cfg, "lab.example"), lab);
    assert_ptr_equal(ph_config_relay_for(cfg, "gmail.example"), provider);
    assert_ptr_equal(ph_config_relay_for(cfg, "sub.corp.example"), provider);
    assert_ptr_equal(ph_config_relay_for(cfg, "corp.example."), provider);
    assert_ptr_equal(ph_config_relay_for(cfg, "orp.example"), provider);
    assert_ptr_equal(ph_config_relay_for(cfg, ""), provider);
    assert_ptr_equal(ph_config_find_relay(cfg, "corp"), corp);
    assert_null(ph_config_find_relay(cfg, "Corp"));
    assert_null(ph_config_find_relay(cfg, "a"));
    assert_null(ph_config_find_listener(cfg, "corp"));

    /* endpoints: the port written, else 465 for implicit TLS, else 25 */
    char host[256];
    unsigned port = 0;
    assert_int_equal(ph_config_relay_endpoint(provider, host, sizeof(host), &port), 0);
    assert_string_equal(host, "smtp.provider.example");
    assert_int_equal(port, 587);
    assert_int_equal(ph_config_relay_endpoint(corp, host, sizeof(host), &port), 0);
    assert_string_equal(host, "2001:db8::25");
    assert_int_equal(port, 465);
    assert_int_equal(ph_config_relay_endpoint(lab, host, sizeof(host), &port), 0);
    assert_string_equal(host, "192.0.2.9");
    assert_int_equal(port, 25);
    assert_int_equal(ph_config_relay_endpoint(lab, host, 9, &port), -ENOSPC);
    assert_string_equal(host, "192.0.2.");
    assert_int_equal(ph_config_relay_endpoint(lab, host, 10, &port), 0);
    ph_config_relay bad = *lab;
    bad.host = "::1";
    assert_int_equal(ph_config_relay_endpoint(&bad, host, sizeof(host), &port), -EINVAL);
    bad.host = "";
    assert_int_equal(ph_config_relay_endpoint(&bad, host, sizeof(host), &port), -EINVAL);
    bad.host = "[::1]:2525";
    bad.tls = PH_RELAY_TLS_IMPLICIT;
    assert_int_equal(ph_config_relay_endpoint(&bad, host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 2525);

    /* the value API: "tls" is the listener's or the relay's by the function */
    char buf[64];
    assert_int_equal(ph_config_relay_value(cfg, corp, "tls", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "implicit");
    assert_int_equal(ph_config_value(cfg, &cfg->listeners[0], "tls", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "none");
    assert_int_equal(ph_config_relay_value(cfg, corp, "domains", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "corp.example Partner.EXAMPLE other.example");
    assert_int_equal(ph_config_relay_value(cfg, corp, "domains", buf, 5), -ENOSPC);
    assert_string_equal(buf, "corp");
    assert_int_equal(ph_config_relay_value(cfg, corp, "nope", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(ph_config_relay_value(cfg, corp, "workers", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_relay_value(cfg, corp, "listen", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_relay_value(cfg, corp, "users", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_value(cfg, NULL, "host", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_value(cfg, &cfg->listeners[0], "domains", buf, sizeof(buf)),
                     -EINVAL);
    assert_int_equal(ph_config_value(cfg, NULL, "tls", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ph_config_domain_value(cfg, &cfg->domains[0], "host", buf, sizeof(buf)),
                     -EINVAL);
    assert_int_equal(ph_config_relay_set_line(corp, "tls"), 14);
    assert_int_equal(ph_config_relay_set_line(corp, "domains"), 16);
    assert_int_equal(ph_config_relay_set_line(provider, "tls"), 0);
    assert_int_equal(ph_config_relay_set_line(provider, "workers"), 0);
    assert_int_equal(ph_config_relay_set_line(provider, "nope"), 0);
    assert_int_equal(ph_config_set_line(cfg, &cfg->listeners[0], "tls"), 0);
    assert_int_equal(ph_config_set_line(cfg, NULL, "host"), 0);
    assert_int_equal(ph_config_domain_set_line(&cfg->domains[0], "host"), 0);

    /* dump -n: relays last, each entry of a list on its own line */
    char *set = dump_text(cfg, true);
    const char *relays_set =
        "\n[domain local.example]\n"
        "\n[relay provider]\nhost = smtp.provider.example:587\nauth_user = mailer\n"
        "auth_password_file = /etc/posthorn/provider.pw\n"
        "\n[relay corp]\nhost = [2001:db8::25]\ntls = implicit\ntls_verify = no\n"
        "domains = corp.example\ndomains = Partner.EXAMPLE\ndomains = other.example\n"
        "\n[relay lab]\nhost = 192.0.2.9\ntls = may\ndomains = lab.example\n";
    assert_non_null(strstr(set, relays_set));
    assert_string_equal(strstr(set, relays_set), relays_set);
    char *full = dump_text(cfg, false);
    const char *provider_full =
        "\n[relay provider]\nhost = smtp.provider.example:587\ntls = starttls\n"
        "tls_verify = yes\nauth_user = mailer\nauth_password_file = /etc/posthorn/provider.pw\n"
        "auth_insecure = no\ndomains =\n"
        "\n[relay corp]\n";
    const char *lab_full = "\n[relay lab]\nhost = 192.0.2.9\ntls = may\ntls_verify = no\n"
                           "auth_user =\nauth_password_file =\nauth_insecure = no\n"
                           "domains = lab.example\n";
    assert_non_null(strstr(full, provider_full));
    assert_string_equal(strstr(full, lab_full), lab_full);
    assert_non_null(strstr(full, "\nrelay_networks =\ndns_forwarders =\ndns_timeout = 10s\n"
                                 "smtp_tls = may\nsmtp_tls_verify = no\n"
                                 "smtp_connect_timeout = 30s\nsmtp_command_timeout = 5m\n"
                                 "smtp_data_timeout = 10m\nsmtp_connect_stagger = 250ms\n"
                                 "smtp_host_memory = 10m\nsmtp_mx_port = 25\n"
                                 "max_message_size = 32M\n"));
    assert_true(strstr(full, "[domain local.example]") < strstr(full, "[relay provider]"));
    check_roundtrip("relays", cfg);
    free(set);
    free(full);
    ph_config_free(cfg);

    /* without a default smarthost, other domains go by MX; without relays, all do */
    cfg = parse_ok("no default", BASE LISTENER_A "[relay r]\nhost = h\ndomains = a.example\n");
    assert_ptr_equal(ph_config_relay_for(cfg, "a.example"), &cfg->relays[0]);
    assert_null(ph_config_relay_for(cfg, "b.example"));
    ph_config_free(cfg);
    cfg = parse_ok("no relays", BASE LISTENER_A);
    assert_int_equal(cfg->nrelays, 0);
    assert_null(cfg->relays);
    assert_null(ph_config_relay_for(cfg, "a.example"));
    assert_null(ph_config_find_relay(cfg, "r"));
    ph_config_free(cfg);
}

/* The global fields of the resolver and the SMTP client, in their units; forwarder entries. */
static void test_delivery_fields(void **state)
{
    (void)state;
    ph_config *cfg = parse_ok("delivery defaults", BASE LISTENER_A);
    assert_int_equal(cfg->g.dns_forwarders.n, 0);
    assert_int_equal(cfg->g.dns_timeout_ms, 10000);
    assert_int_equal(cfg->g.smtp_tls, PH_CONFIG_SMTP_TLS_MAY);
    assert_false(cfg->g.smtp_tls_verify);
    assert_int_equal(cfg->g.smtp_connect_timeout_ms, 30000);
    assert_int_equal(cfg->g.smtp_command_timeout_ms, 300000);
    assert_int_equal(cfg->g.smtp_data_timeout_ms, 600000);
    assert_int_equal(cfg->g.smtp_connect_stagger_ms, 250);
    assert_int_equal(cfg->g.smtp_host_memory_ms, 600000);
    assert_int_equal(cfg->g.smtp_mx_port, 25);
    assert_int_equal(cfg->g.destination_rate, 0);
    assert_int_equal(cfg->g.destination_concurrency, 10);
    ph_config_free(cfg);

    cfg = parse_ok("delivery values",
        BASE "dns_forwarders = 127.0.0.1@5353 ::1\ndns_timeout = 2s\nsmtp_tls = encrypt\n"
        "smtp_tls_verify = yes\nsmtp_connect_timeout = 5\nsmtp_command_timeout = 1m\n"
        "smtp_data_timeout = 2m\nsmtp_connect_stagger = 0\nsmtp_host_memory = 1h\n"
        "smtp_mx_port = 2525\ndestination_rate = 7\n" LISTENER_A);
    assert_int_equal(cfg->g.dns_forwarders.n, 2);
    assert_int_equal(cfg->g.dns_timeout_ms, 2000);
    assert_int_equal(cfg->g.smtp_tls, PH_CONFIG_SMTP_TLS_ENCRYPT);
    assert_true(cfg->g.smtp_tls_verify);
    assert_int_equal(cfg->g.smtp_connect_timeout_ms, 5000);
    assert_int_equal(cfg->g.smtp_command_timeout_ms, 60000);
    assert_int_equal(cfg->g.smtp_data_timeout_ms, 120000);
    assert_int_equal(cfg->g.smtp_connect_stagger_ms, 0);
    assert_int_equal(cfg->g.smtp_host_memory_ms, 3600000);
    assert_int_equal(cfg->g.smtp_mx_port, 2525);
    assert_int_equal(cfg->g.destination_rate, 7);
    assert_int_equal(ph_config_set_line(cfg, NULL, "smtp_mx_port"), 11);

    char ip[64];
    unsigned port = 0;
    assert_int_equal(ph_config_forwarder(cfg->g.dns_forwarders.v[0], ip, sizeof(ip), &port), 0);
    assert_string_equal(ip, "127.0.0.1");
    assert_int_equal(port, 5353);
    assert_int_equal(ph_config_forwarder(cfg->g.dns_forwarders.v[1], ip, sizeof(ip), &port), 0);
    assert_string_equal(ip, "::1");
    assert_int_equal(port, 53);
    ph_config_free(cfg);
    assert_int_equal(ph_config_forwarder("2001:db8::53@1", ip, sizeof(ip), &port), 0);
    assert_string_equal(ip, "2001:db8::53");
    assert_int_equal(port, 1);
    assert_int_equal(ph_config_forwarder("192.0.2.1@65535", ip, sizeof(ip), &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(ph_config_forwarder("192.0.2.1", ip, 9, &port), -ENOSPC);
    assert_string_equal(ip, "192.0.2.");
    assert_int_equal(ph_config_forwarder("192.0.2.1", ip, 10, &port), 0);
    const char *bad[] = {"", "@53", "192.0.2.1@0", "192.0.2.1@", "192.0.2.1:53", "[::1]@53",
                         "dns.example", "192.0.2.1@65536", "::1@53@53"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        port = 99;
        assert_int_equal(ph_config_forwarder(bad[i], ip, sizeof(ip), &port), -EINVAL);
        assert_string_equal(ip, "");
        assert_int_equal(port, 99);
    }
}

/* The retry schedule in milliseconds, within the caller's room. */
static void test_retry_schedule(void **state)
{
    (void)state;
    uint64_t ms[PH_CONFIG_MAX_RETRIES + 1];
    ph_config *cfg = parse_ok("default schedule", BASE LISTENER_A);
    assert_int_equal(ph_config_retry_schedule(cfg, ms, PH_CONFIG_MAX_RETRIES), 5);
    const uint64_t want[] = {60000, 300000, 900000, 3600000, 14400000};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(ms[i], want[i]);
    memset(ms, 0, sizeof(ms));
    assert_int_equal(ph_config_retry_schedule(cfg, ms, 2), 2);
    assert_int_equal(ms[1], 300000);
    assert_int_equal(ms[2], 0); /* nothing beyond max */
    assert_int_equal(ph_config_retry_schedule(cfg, NULL, 0), 0);
    ph_config_free(cfg);

    cfg = parse_ok("custom schedule", BASE "queue_retry_schedule = 30s 1500ms, 7d\n"
                                           "queue_retry_schedule = 90 1\n" LISTENER_A);
    assert_int_equal(ph_config_retry_schedule(cfg, ms, PH_CONFIG_MAX_RETRIES), 5);
    assert_int_equal(ms[0], 30000);
    assert_int_equal(ms[1], 1500);
    assert_int_equal(ms[2], 604800000);
    assert_int_equal(ms[3], 90000);
    assert_int_equal(ms[4], 1000);
    ph_config_free(cfg);

    char *many = repeat("queue_retry_schedule = 1h\n", PH_CONFIG_MAX_RETRIES, LISTENER_A);
    char *text = concat3(BASE, many, "");
    cfg = parse_ok("32 delays", text);
    assert_int_equal(ph_config_retry_schedule(cfg, ms, PH_CONFIG_MAX_RETRIES + 1), 32);
    assert_int_equal(ms[31], 3600000);
    check_roundtrip("32 delays", cfg);
    ph_config_free(cfg);
    free(text);
    free(many);
}

typedef struct maildir_case {
    const char *pattern, *user, *domain;
    size_t size; /* 0: sizeof the output buffer */
    int ret;
    const char *want;
} maildir_case;

static const maildir_case maildir_cases[] = {
    {"/var/mail/%d/%u/Maildir", "alice", "example.org", 0, 0,
     "/var/mail/example.org/alice/Maildir"},
    {"/var/mail/%d/%u/Maildir", "Alice", "Example.ORG", 0, 0,
     "/var/mail/example.org/alice/Maildir"},
    {"/Mail/%u", "Bob", "x.org", 0, 0, "/Mail/bob"}, /* the pattern's own case is kept */
    {"/m/100%%/%u%%%d", "b", "x.org", 0, 0, "/m/100%/b%x.org"},
    {"/m/%u", "a%u", "x.org", 0, 0, "/m/a%u"}, /* no second round of expansion */
    {"/m/%u", "...", "x.org", 0, 0, "/m/..."},
    {"/m/%u", "cafÃ©", "x.org", 0, 0, "/m/cafÃ©"},
    {"/srv/mail", "a", "x.org", 0, 0, "/srv/mail"},
    {"/", "a", "x.org", 0, 0, "/"},
    /* bad patterns */
    {"m/%u", "a", "x.org", 0, -EINVAL, ""},
    {"", "a", "x.org", 0, -EINVAL, ""},
    {"/m/%x", "a", "x.org", 0, -EINVAL, ""},
    {"/m/%U", "a", "x.org", 0, -EINVAL, ""},
    {"/m/%", "a", "x.org", 0, -EINVAL, ""},
    {"/m/%%%", "a", "x.org", 0, -EINVAL, ""},
    /* names that would leave the directory */
    {"/m/%u", "", "x.org", 0, -EINVAL, ""},
    {"/m/%u", ".", "x.org", 0, -EINVAL, ""},
    {"/m/%u", "..", "x.org", 0, -EINVAL, ""},
    {"/m/%u", "a/b", "x.org", 0, -EINVAL, ""},
    {"/m/%u", "../../etc", "x.org", 0, -EINVAL, ""},
    {"/m/%d", "a", "..", 0, -EINVAL, ""},
    {"/m/%d", "a", "x/y", 0, -EINVAL, ""},
    /* room: the result and its NUL */
    {"/m/%d/%u", "alice", "x.org", 15, 0, "/m/x.org/alice"},
    {"/m/%d/%u", "alice", "x.org", 14, -ENOSPC, "/m/x.org/alic"},
    {"/m/%d/%u", "alice", "x.org", 1, -ENOSPC, ""},
    {"/m/%x", "alice", "x.org", 1, -EINVAL, ""}, /* a bad pattern is bad whatever the room */
};

static void test_expand_maildir(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(maildir_cases) / sizeof(maildir_cases[0]); i++) {
        const maildir_case *c = &maildir_cases[i];
        char out[64];
        memset(out, 'X', sizeof(out));
        int r = ph_config_expand_maildir(c->pattern, c->user, c->domain, out,
                                         c->size ? c->size : sizeof(out));
        if (r != c->ret || strcmp(out, c->want) != 0)
            fprintf(stderr, "maildir case %zu ('%s', '%s', '%s'): %d '%s'\n", i, c->pattern,
                    c->user, c->domain, r, out);
        assert_int_equal(r, c->ret);
        assert_string_equal(out, c->want);
    }
    /* size 0 only validates: out is not touched */
    assert_int_equal(ph_config_expand_maildir("/m/%u", "a", "b", NULL, 0), -ENOSPC);
    assert_int_equal(ph_config_expand_maildir("/m/%q", "a", "b", NULL, 0), -EINVAL);
    /* the configured default with the parsed domain */
    ph_config *cfg = parse_ok("expand", BASE LISTENER_A "[domain Example.org]\n");
    char out[128];
    assert_int_equal(ph_config_expand_maildir(cfg->domains[0].maildir, "joe",
                                              cfg->domains[0].name, out, sizeof(out)), 0);
    assert_string_equal(out, "/var/mail/example.org/joe/Maildir");
    ph_config_free(cfg);
}

/* --- bounds: exactly at and one past every bound, in every scope the key has --------------- */

typedef struct bound_case {
    const char *key;
    const char *scopes; /* "g", "l", "gl", "d" (in a [domain] section) or "r" ([relay]) */
    const char *value;
    const char *want;   /* the effective value, or NULL: refused with err */
    const char *err;
} bound_case;

#define IN(k, sc, v, w) {k, sc, v, w, NULL}
#define OUT(k, sc, v, e) {k, sc, v, NULL, e}

static const bound_case bound_cases[] = {
    IN("workers", "g", "1", "1"),
    IN("workers", "g", "64", "64"),
    OUT("workers", "g", "0", "'0' is out of range (1..64)"),
    OUT("workers", "g", "65", "'65' is out of range (1..64)"),
    OUT("workers", "g", "99999999999999999999999999", "out of range (1..64)"),
    OUT("workers", "g", "18446744073709551616", "out of range (1..64)"),
    OUT("workers", "g", "-1", "'-1' is not a number"),
    OUT("workers", "g", "+1", "'+1' is not a number"),
    OUT("workers", "g", "1.5", "'1.5' is not a number"),
    OUT("workers", "g", "0x10", "'0x10' is not a number"),
    OUT("workers", "g", "1 2", "'1 2' is not a number"),
    OUT("workers", "g", "4k", "'4k' is not a number"),
    IN("auth_fail_limit", "g", "1", "1"),
    IN("auth_fail_limit", "g", "1000", "1000"),
    OUT("auth_fail_limit", "g", "0", "'0' is out of range (1..1000)"),
    OUT("auth_fail_limit", "g", "1001", "'1001' is out of range (1..1000)"),
    IN("auth_fail_delay", "g", "0", "0"),
    IN("auth_fail_delay", "g", "10m", "10m"),
    OUT("auth_fail_delay", "g", "600001ms", "'600001ms' is out of range (0..10m)"),
    IN("max_connections", "g", "1", "1"),
    IN("max_connections", "g", "1000000", "1000000"),
    OUT("max_connections", "g", "0", "'0' is out of range (1..1000000)"),
    OUT("max_connections", "g", "1000001", "'1000001' is out of range (1..1000000)"),
    IN("max_message_size", "gl", "1k", "1k"),
    IN("max_message_size", "gl", "1024", "1k"),
    IN("max_message_size", "gl", "1G", "1G"),
    IN("max_message_size", "gl", "1073741824", "1G"),
    OUT("max_message_size", "gl", "1023", "'1023' is out of range (1k..1G)"),
    OUT("max_message_size", "gl", "1073741825", "'1073741825' is out of range (1k..1G)"),
    OUT("max_message_size", "gl", "1025M", "'1025M' is out of range (1k..1G)"),
    OUT("max_message_size", "gl", "0", "'0' is out of range (1k..1G)"),
    OUT("max_message_size", "gl", "17179869184G", "out of range (1k..1G)"),
    OUT("max_message_size", "gl", "1kb", "'1kb' is not a size (a number, optionally with k, M "
                                         "or G)"),
    OUT("max_message_size", "gl", "1 k", "'1 k' is not a size"),
    OUT("max_message_size", "gl", "k", "'k' is not a size"),
    OUT("max_message_size", "gl", "1T", "'1T' is not a size"),
    IN("max_recipients", "gl", "1", "1"),
    IN("max_recipients", "gl", "100000", "100000"),
    OUT("max_recipients", "gl", "0", "'0' is out of range (1..100000)"),
    OUT("max_recipients", "gl", "100001", "'100001' is out of range (1..100000)"),
    IN("max_errors", "gl", "1", "1"),
    IN("max_errors", "gl", "1000", "1000"),
    OUT("max_errors", "gl", "0", "'0' is out of range (1..1000)"),
    OUT("max_errors", "gl", "1001", "'1001' is out of range (1..1000)"),
    IN("max_line", "gl", "512", "512"),
    IN("max_line", "gl", "65536", "65536"),
    OUT("max_line", "gl", "511", "'511' is out of range (512..65536)"),
    OUT("max_line", "gl", "65537", "'65537' is out of range (512..65536)"),
    IN("max_per_ip", "gl", "0", "0"),
    IN("max_per_ip", "gl", "100000", "100000"),
    OUT("max_per_ip", "gl", "100001", "'100001' is out of range (0..100000)"),
    IN("idle_timeout", "gl", "1s", "1s"),
    IN("idle_timeout", "gl", "1000ms", "1s"),
    IN("idle_timeout", "gl", "1d", "1d"),
    IN("idle_timeout", "gl", "86400", "1d"),
    OUT("idle_timeout", "gl", "999ms", "'999ms' is out of range (1s..1d)"),
    OUT("idle_timeout", "gl", "0", "'0' is out of range (1s..1d)"),
    OUT("idle_timeout", "gl", "86401", "'86401' is out of range (1s..1d)"),
    OUT("idle_timeout", "gl", "99999999999999999999d", "out of range (1s..1d)"),
    OUT("idle_timeout", "gl", "18446744073709551d", "out of range (1s..1d)"),
    OUT("idle_timeout", "gl", "1.5h", "'1.5h' is not a duration (seconds, or a number with ms, "
                                      "s, m, h or d)"),
    OUT("idle_timeout", "gl", "1hr", "'1hr' is not a duration"),
    OUT("idle_timeout", "gl", "30 s", "'30 s' is not a duration"),
    OUT("idle_timeout", "gl", "s", "'s' is not a duration"),
    OUT("idle_timeout", "gl", "-5", "'-5' is not a duration"),
    OUT("idle_timeout", "gl", "5S", "'5S' is not a duration"),
    IN("session_timeout", "gl", "1s", "1s"),
    IN("session_timeout", "gl", "7d", "7d"),
    IN("session_timeout", "gl", "168h", "7d"),
    OUT("session_timeout", "gl", "999ms", "'999ms' is out of range (1s..7d)"),
    OUT("session_timeout", "gl", "604801s", "'604801s' is out of range (1s..7d)"),
    IN("greeting_delay", "gl", "0", "0"),
    IN("greeting_delay", "gl", "60s", "1m"),
    OUT("greeting_delay", "gl", "60001ms", "'60001ms' is out of range (0..1m)"),
    IN("shutdown_grace", "gl", "0", "0"),
    IN("shutdown_grace", "gl", "1h", "1h"),
    OUT("shutdown_grace", "gl", "3601", "'3601' is out of range (0..1h)"),
    IN("handshake_timeout", "gl", "1s", "1s"),
    IN("handshake_timeout", "gl", "10m", "10m"),
    OUT("handshake_timeout", "gl", "999ms", "'999ms' is out of range (1s..10m)"),
    OUT("handshake_timeout", "gl", "601", "'601' is out of range (1s..10m)"),
    /* the other types' refusals */
    OUT("tls_session_tickets", "gl", "maybe",
        "'maybe' is not yes or no (also true/false, on/off, 1/0)"),
    OUT("tls_session_tickets", "gl", "2", "'2' is not yes or no"),
    OUT("tls_session_tickets", "gl", "yes please", "'yes please' is not yes or no"),
    OUT("log_level", "g", "verbose", "'verbose' is not one of error, warn, info, debug"),
    OUT("log_target", "g", "file", "'file' is not one of stderr, syslog"),
    OUT("delivery", "g", "relay", "'relay' is not one of store, discard"),
    OUT("tls_min_version", "gl", "TLSv1.1", "'TLSv1.1' is not one of TLSv1.2, TLSv1.3"),
    OUT("role", "l", "relay", "'relay' is not one of mx, submission, submissions"),
    OUT("tls", "l", "ssl", "'ssl' is not one of none, starttls, implicit"),
    OUT("auth", "l", "plain", "'plain' is not one of none, tls, insecure"),
    OUT("require_tls", "l", "sometimes", "'sometimes' is not yes or no"),
    OUT("require_auth", "l", "y", "'y' is not yes or no"),
    OUT("hostname", "g", "a b", "'a b': not a host name (letters, digits, '-', '.')"),
    OUT("hostname", "g", "a..b", "not a host name"),
    OUT("hostname", "g", ".a", "not a host name"),
    OUT("hostname", "g", "a_b", "not a host name"),
    IN("hostname", "g", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    OUT("banner", "g", "caf\xc3\xa9", "only printable ASCII is allowed in a reply"),
    OUT("user", "g", "-x", "'-x': not a user or group name"),
    OUT("group", "g", "a b", "'a b': not a user or group name"),
    OUT("listen", "l", "127.0.0.1", "'127.0.0.1': expected HOST:PORT, [IPv6]:PORT, *:PORT or "
                                    "unix:/path"),
    OUT("listen", "l", "127.0.0.1:", "'127.0.0.1:': bad port (0..65535)"),
    OUT("listen", "l", "127.0.0.1:65536", "'127.0.0.1:65536': bad port (0..65535)"),
    OUT("listen", "l", "127.0.0.1:x", "bad port (0..65535)"),
    OUT("listen", "l", "::1:25", "'::1:25': bad host (an IPv4 address, a host name, [IPv6] or *)"),
    OUT("listen", "l", "[::1:25", "'[::1:25': expected [IPv6]:PORT"),
    OUT("listen", "l", "[::1]25", "expected [IPv6]:PORT"),
    OUT("listen", "l", "[nope]:25", "'[nope]:25': bad IPv6 address"),
    OUT("listen", "l", ":25", "bad host"),
    OUT("listen", "l", "unix:run/x", "'unix:run/x': a unix socket path must be absolute"),
    OUT("listen", "l", "*:25 bad", "'bad': expected HOST:PORT"),
    OUT("tls_sni", "g", "a:/c", "'a:/c': expected NAME:CERTFILE:KEYFILE"),
    OUT("tls_sni", "g", "a:/c:/k:/x", "expected NAME:CERTFILE:KEYFILE"),
    OUT("tls_sni", "g", ":/c:/k", "expected NAME:CERTFILE:KEYFILE"),
    OUT("tls_sni", "g", "a::/k", "expected NAME:CERTFILE:KEYFILE"),
    OUT("tls_sni", "g", "a:/c:", "expected NAME:CERTFILE:KEYFILE"),
    OUT("tls_sni", "g", "a/b:/c:/k", "bad server name before the first ':'"),
    /* a missing value is not an empty one, except for strings, paths and lists */
    OUT("workers", "g", "", "missing value"),
    OUT("max_message_size", "gl", "", "missing value"),
    OUT("tls_session_tickets", "gl", "", "missing value"),
    OUT("log_level", "g", "", "missing value"),
    /* the queue */
    IN("queue_lifetime", "g", "1m", "1m"),
    IN("queue_lifetime", "g", "60d", "60d"),
    IN("queue_lifetime", "g", "1440h", "60d"),
    OUT("queue_lifetime", "g", "59s", "'59s' is out of range (1m..60d)"),
    OUT("queue_lifetime", "g", "61d", "'61d' is out of range (1m..60d)"),
    OUT("queue_lifetime", "g", "5 d", "'5 d' is not a duration"),
    OUT("queue_lifetime", "g", "", "missing value"),
    IN("queue_concurrency", "g", "1", "1"),
    IN("queue_concurrency", "g", "1000", "1000"),
    OUT("queue_concurrency", "g", "0", "'0' is out of range (1..1000)"),
    OUT("queue_concurrency", "g", "1001", "'1001' is out of range (1..1000)"),
    OUT("queue_concurrency", "g", "ten", "'ten' is not a number"),
    IN("destination_concurrency", "g", "1", "1"),
    OUT("destination_concurrency", "g", "0", "'0' is out of range (1..1000)"),
    IN("max_received_headers", "g", "1", "1"),
    IN("max_received_headers", "g", "1000", "1000"),
    OUT("max_received_headers", "g", "0", "'0' is out of range (1..1000)"),
    OUT("max_received_headers", "g", "1001", "'1001' is out of range (1..1000)"),
    IN("queue_retry_schedule", "g", "1s", "1s"),
    IN("queue_retry_schedule", "g", "1000ms", "1000ms"),
    IN("queue_retry_schedule", "g", "7d", "7d"),
    IN("queue_retry_schedule", "g", "604800", "604800"),
    IN("queue_retry_schedule", "g", "1m 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 "
                                   "23 24 25 26 27 28 29 30 31",
       "1m 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31"),
    OUT("queue_retry_schedule", "g", "1m 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 "
                                    "22 23 24 25 26 27 28 29 30 31 32", "more than 32 entries"),
    OUT("queue_retry_schedule", "g", "999ms", "'999ms': out of range (1s..7d)"),
    OUT("queue_retry_schedule", "g", "0", "'0': out of range (1s..7d)"),
    OUT("queue_retry_schedule", "g", "604801", "'604801': out of range (1s..7d)"),
    OUT("queue_retry_schedule", "g", "8d", "'8d': out of range (1s..7d)"),
    OUT("queue_retry_schedule", "g", "99999999999999999999d", "out of range (1s..7d)"),
    OUT("queue_retry_schedule", "g", "1w", "'1w': not a duration (seconds, or a number with ms, "
                                          "s, m, h or d)"),
    OUT("queue_retry_schedule", "g", "5m -1m", "'-1m': not a duration"),
    OUT("queue_retry_schedule", "g", "1.5h", "'1.5h': not a duration"),
    OUT("control_socket", "g", "/" "123456789012345678901234567890123456789012345678901234567890"
                             "12345678901234567890123456789012345678901234567",
        "unix socket path longer than 107 bytes"),
    IN("control_socket", "g", "/" "12345678901234567890123456789012345678901234567890123456789"
                            "01234567890123456789012345678901234567890123456",
       "/1234567890123456789012345678901234567890123456789012345678901234567890123456789012"
       "345678901234567890123456"),
    IN("relay_networks", "g", "0.0.0.0/0", "0.0.0.0/0"),
    IN("relay_networks", "g", "10.1.2.3/32", "10.1.2.3/32"),
    IN("relay_networks", "g", "::/0", "::/0"),
    IN("relay_networks", "g", "fe80::1/128", "fe80::1/128"),
    OUT("relay_networks", "g", "10.0.0.0/33", "'10.0.0.0/33': bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "::/129", "'::/129': bad prefix length (0..128 for IPv6)"),
    OUT("relay_networks", "g", "10.0.0.0/", "bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "10.0.0.0/-1", "bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "10.0.0.0/+8", "bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "10.0.0.0/08", "bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "10.0.0.0/8/8", "bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "10.0.0.0/1000", "bad prefix length (0..32 for IPv4)"),
    OUT("relay_networks", "g", "10.0.0/8", "'10.0.0/8': not a network (ADDRESS or ADDRESS/PREFIX, "
                                          "IPv4 or IPv6)"),
    OUT("relay_networks", "g", "10.0.0.256", "not a network"),
    OUT("relay_networks", "g", "010.0.0.1", "not a network"),
    OUT("relay_networks", "g", "example.org", "not a network"),
    OUT("relay_networks", "g", "/8", "not a network"),
    OUT("relay_networks", "g", "[::1]", "not a network"),
    OUT("relay_networks", "g", "::1::2", "not a network"),
    OUT("relay_networks", "g", "fe80::1%eth0", "not a network"),
    OUT("relay_networks", "g", "2001:db8:0:0:0:0:0:0:1/64", "not a network"),
    OUT("relay_networks", "g", "10.0.0.0/8 bad", "'bad': not a network"),
    /* [domain] parameters */
    OUT("transport", "d", "smtp", "'smtp' is not one of maildir, lmtp"),
    OUT("transport", "d", "", "missing value"),
    OUT("maildir", "d", "var/mail/%u", "'var/mail/%u': must be an absolute path (starting with "
                                       "'/')"),
    OUT("maildir", "d", "", "'': must be an absolute path"),
    OUT("maildir", "d", "~/Maildir", "must be an absolute path"),
    OUT("maildir", "d", "/m/%x", "'/m/%x': only %u (user), %d (domain) and %% may follow '%'"),
    OUT("maildir", "d", "/m/%U", "only %u (user), %d (domain) and %% may follow '%'"),
    OUT("maildir", "d", "/m/%", "only %u (user), %d (domain) and %% may follow '%'"),
    OUT("maildir", "d", "/m/%%%", "only %u (user), %d (domain) and %% may follow '%'"),
    OUT("maildir", "d", "/m/% u", "only %u (user), %d (domain) and %% may follow '%'"),
    OUT("users", "d", "12345678901234567890123456789012345678901234567890123456789012345",
        "longer than 64 bytes (a local part)"),
    OUT("users", "d", "alice@example.org", "'alice@example.org': a local part, without '@'"),
    OUT("users", "d", "alice @", "'@': a local part, without '@'"),
    OUT("catch_all", "d", "a b", "'a b': not a local part (at most 64 bytes) or LOCAL@DOMAIN"),
    OUT("catch_all", "d", "@example.org", "not a local part (at most 64 bytes) or LOCAL@DOMAIN"),
    OUT("catch_all", "d", "a@", "not a local part"),
    OUT("catch_all", "d", "a@b@c", "not a local part"),
    OUT("catch_all", "d", "a@-x.org", "not a local part"),
    OUT("catch_all", "d", "a@x..org", "not a local part"),
    OUT("catch_all", "d", "12345678901234567890123456789012345678901234567890123456789012345",
        "not a local part"),
    IN("catch_all", "d", "1234567890123456789012345678901234567890123456789012345678901234",
       "1234567890123456789012345678901234567890123456789012345678901234"),
    OUT("recipient_delimiter", "d", "++", "'++': one of + - _ = . (or empty: none)"),
    OUT("recipient_delimiter", "d", "#", "one of + - _ = . (or empty: none)"),
    OUT("recipient_delimiter", "d", "a", "one of + - _ = . (or empty: none)"),
    OUT("recipient_delimiter", "d", "+-", "one of + - _ = . (or empty: none)"),
    OUT("lmtp", "d", "127.0.0.1", "'127.0.0.1': expected unix:/path, HOST:PORT or [IPv6]:PORT"),
    OUT("lmtp", "d", "*:24", "'*:24': bad host (an IPv4 address, a host name or [IPv6])"),
    OUT("lmtp", "d", "127.0.0.1:0", "'127.0.0.1:0': bad port (1..65535)"),
    OUT("lmtp", "d", "127.0.0.1:65536", "bad port (1..65535)"),
    OUT("lmtp", "d", "[::1]:0", "bad port (1..65535)"),
    OUT("lmtp", "d", "[nope]:24", "bad IPv6 address"),
    OUT("lmtp", "d", "[::1]24", "expected [IPv6]:PORT"),
    OUT("lmtp", "d", "unix:run/lmtp", "a unix socket path must be absolute (unix:/path)"),
    OUT("lmtp", "d", "unix:/" "1234567890123456789012345678901234567890123456789012345678901234"
                      "5678901234567890123456789012345678901234567",
        "unix socket path longer than 107 bytes"),
    OUT("lmtp", "d", "a b:24", "bad host"),
    IN("lmtp_timeout", "d", "1s", "1s"),
    IN("lmtp_timeout", "d", "1h", "1h"),
    OUT("lmtp_timeout", "d", "999ms", "'999ms' is out of range (1s..1h)"),
    OUT("lmtp_timeout", "d", "3601", "'3601' is out of range (1s..1h)"),
    OUT("lmtp_timeout", "d", "", "missing value"),
    /* the resolver and the SMTP client */
    IN("dns_forwarders", "g", "127.0.0.1", "127.0.0.1"),
    IN("dns_forwarders", "g", "127.0.0.1@5353", "127.0.0.1@5353"),
    IN("dns_forwarders", "g", "192.0.2.1@1", "192.0.2.1@1"),
    IN("dns_forwarders", "g", "192.0.2.1@65535", "192.0.2.1@65535"),
    IN("dns_forwarders", "g", "::1@53", "::1@53"),
    IN("dns_forwarders", "g", "2001:db8::1", "2001:db8::1"),
    IN("dns_forwarders", "g", "::ffff:192.0.2.1@53", "::ffff:192.0.2.1@53"),
    OUT("dns_forwarders", "g", "127.0.0.1@0", "'127.0.0.1@0': bad port after '@' (1..65535)"),
    OUT("dns_forwarders", "g", "127.0.0.1@65536", "bad port after '@' (1..65535)"),
    OUT("dns_forwarders", "g", "127.0.0.1@", "bad port after '@' (1..65535)"),
    OUT("dns_forwarders", "g", "127.0.0.1@x", "bad port after '@' (1..65535)"),
    OUT("dns_forwarders", "g", "127.0.0.1@53@53", "bad port after '@' (1..65535)"),
    OUT("dns_forwarders", "g", "127.0.0.1@-1", "bad port after '@' (1..65535)"),
    OUT("dns_forwarders", "g", "@53", "'@53': not an IP address (IP or IP@PORT, IPv4 or IPv6)"),
    OUT("dns_forwarders", "g", "127.0.0.1:53", "not an IP address (IP or IP@PORT, IPv4 or IPv6)"),
    OUT("dns_forwarders", "g", "[::1]@53", "not an IP address"),
    OUT("dns_forwarders", "g", "[::1]:53", "not an IP address"),
    OUT("dns_forwarders", "g", "dns.example", "not an IP address"),
    OUT("dns_forwarders", "g", "10.0.0.0/8", "not an IP address"),
    OUT("dns_forwarders", "g", "192.0.2", "not an IP address"),
    OUT("dns_forwarders", "g", "fe80::1%eth0", "not an IP address"),
    OUT("dns_forwarders", "g", "::1 bad", "'bad': not an IP address"),
    IN("dns_timeout", "g", "1s", "1s"),
    IN("dns_timeout", "g", "2m", "2m"),
    IN("dns_timeout", "g", "120", "2m"),
    OUT("dns_timeout", "g", "999ms", "'999ms' is out of range (1s..2m)"),
    OUT("dns_timeout", "g", "121", "'121' is out of range (1s..2m)"),
    OUT("dns_timeout", "g", "", "missing value"),
    IN("smtp_tls", "g", "none", "none"),
    IN("smtp_tls", "g", "May", "may"),
    IN("smtp_tls", "g", "encrypt", "encrypt"),
    OUT("smtp_tls", "g", "yes", "'yes' is not one of none, may, encrypt"),
    OUT("smtp_tls", "g", "starttls", "'starttls' is not one of none, may, encrypt"),
    IN("smtp_tls_verify", "g", "no", "no"),
    OUT("smtp_tls_verify", "g", "always", "'always' is not yes or no"),
    IN("smtp_connect_timeout", "g", "1s", "1s"),
    IN("smtp_connect_timeout", "g", "5m", "5m"),
    OUT("smtp_connect_timeout", "g", "999ms", "'999ms' is out of range (1s..5m)"),
    OUT("smtp_connect_timeout", "g", "301", "'301' is out of range (1s..5m)"),
    IN("smtp_command_timeout", "g", "1s", "1s"),
    IN("smtp_command_timeout", "g", "1h", "1h"),
    OUT("smtp_command_timeout", "g", "999ms", "'999ms' is out of range (1s..1h)"),
    OUT("smtp_command_timeout", "g", "3601", "'3601' is out of range (1s..1h)"),
    IN("smtp_data_timeout", "g", "1s", "1s"),
    IN("smtp_data_timeout", "g", "60m", "1h"),
    OUT("smtp_data_timeout", "g", "0", "'0' is out of range (1s..1h)"),
    OUT("smtp_data_timeout", "g", "3600001ms", "'3600001ms' is out of range (1s..1h)"),
    IN("smtp_connect_stagger", "g", "0", "0"),
    IN("smtp_connect_stagger", "g", "250ms", "250ms"),
    IN("smtp_connect_stagger", "g", "10000ms", "10s"),
    OUT("smtp_connect_stagger", "g", "10001ms", "'10001ms' is out of range (0..10s)"),
    OUT("smtp_connect_stagger", "g", "11", "'11' is out of range (0..10s)"),
    OUT("smtp_connect_stagger", "g", "0.25s", "'0.25s' is not a duration"),
    IN("smtp_host_memory", "g", "0", "0"),
    IN("smtp_host_memory", "g", "1d", "1d"),
    IN("smtp_host_memory", "g", "1440m", "1d"),
    OUT("smtp_host_memory", "g", "86401", "'86401' is out of range (0..1d)"),
    OUT("smtp_host_memory", "g", "2d", "'2d' is out of range (0..1d)"),
    IN("smtp_mx_port", "g", "1", "1"),
    IN("smtp_mx_port", "g", "65535", "65535"),
    OUT("smtp_mx_port", "g", "0", "'0' is out of range (1..65535)"),
    OUT("smtp_mx_port", "g", "65536", "'65536' is out of range (1..65535)"),
    OUT("smtp_mx_port", "g", "smtp", "'smtp' is not a number"),
    IN("destination_rate", "g", "0", "0"),
    IN("destination_rate", "g", "100000", "100000"),
    OUT("destination_rate", "g", "100001", "'100001' is out of range (0..100000)"),
    OUT("destination_rate", "g", "-1", "'-1' is not a number"),
    /* [relay] parameters (host = relay.example follows, unless the case is about host) */
    IN("host", "r", "smtp.example.net", "smtp.example.net"),
    IN("host", "r", "smtp.example.net:1", "smtp.example.net:1"),
    IN("host", "r", "smtp.example.net:65535", "smtp.example.net:65535"),
    IN("host", "r", "192.0.2.1", "192.0.2.1"),
    IN("host", "r", "[::1]", "[::1]"),
    IN("host", "r", "[2001:db8::25]:587", "[2001:db8::25]:587"),
    OUT("host", "r", "::1", "'::1': an IPv6 address goes in brackets ([IPv6] or [IPv6]:PORT)"),
    OUT("host", "r", "2001:db8::1:25", "an IPv6 address goes in brackets"),
    OUT("host", "r", "[::1", "'[::1': expected [IPv6] or [IPv6]:PORT"),
    OUT("host", "r", "[::1]25", "expected [IPv6] or [IPv6]:PORT"),
    OUT("host", "r", "[::1]:25:1", "bad port (1..65535)"),
    OUT("host", "r", "[nope]:25", "'[nope]:25': bad IPv6 address"),
    OUT("host", "r", "[192.0.2.1]", "bad IPv6 address"),
    OUT("host", "r", "[]", "bad IPv6 address"),
    OUT("host", "r", "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:25",
        "bad IPv6 address"),
    OUT("host", "r", "[::1]:0", "'[::1]:0': bad port (1..65535)"),
    OUT("host", "r", "[::1]:", "bad port (1..65535)"),
    OUT("host", "r", "h.example:0", "'h.example:0': bad port (1..65535)"),
    OUT("host", "r", "h.example:65536", "bad port (1..65535)"),
    OUT("host", "r", "h.example:", "bad port (1..65535)"),
    OUT("host", "r", "h.example:smtp", "bad port (1..65535)"),
    OUT("host", "r", "unix:/run/smtp", "bad port (1..65535)"),
    OUT("host", "r", ":25", "':25': bad host (an IPv4 address, a host name or [IPv6])"),
    OUT("host", "r", "a b:25", "bad host (an IPv4 address, a host name or [IPv6])"),
    OUT("host", "r", "a_b.example", "bad host"),
    OUT("host", "r", "a..example", "bad host"),
    OUT("host", "r", "*:25", "bad host"),
    IN("tls", "r", "none", "none"),
    IN("tls", "r", "starttls", "starttls"),
    IN("tls", "r", "Implicit", "implicit"),
    IN("tls", "r", "may", "may"),
    OUT("tls", "r", "ssl", "'ssl' is not one of none, starttls, implicit, may"),
    OUT("tls", "r", "encrypt", "'encrypt' is not one of none, starttls, implicit, may"),
    OUT("tls", "r", "", "missing value"),
    IN("tls_verify", "r", "no", "no"),
    IN("tls_verify", "r", "yes", "yes"),
    OUT("tls_verify", "r", "sure", "'sure' is not yes or no"),
    IN("auth_insecure", "r", "yes", "yes"),
    OUT("auth_insecure", "r", "2", "'2' is not yes or no"),
    IN("auth_user", "r", "", ""),
    IN("auth_password_file", "r", "", ""),
    IN("domains", "r", "example.org", "example.org"),
    IN("domains", "r", "a.example,B.Example  c.example", "a.example B.Example c.example"),
    OUT("domains", "r", "a..org", "'a..org': not a domain name (letters, digits, '-' and '.', "
                                  "at most 253 bytes; labels of 1 to 63, not starting or ending "
                                  "with '-')"),
    OUT("domains", "r", "-a.org", "not a domain name"),
    OUT("domains", "r", "a-.org", "not a domain name"),
    OUT("domains", "r", "a.org.", "not a domain name"),
    OUT("domains", "r", ".a.org", "not a domain name"),
    OUT("domains", "r", "*.a.org", "not a domain name"),
    OUT("domains", "r", "user@a.org", "not a domain name"),
    OUT("domains", "r", "a_b.org", "not a domain name"),
    OUT("domains", "r", "[192.0.2.1]", "not a domain name"),
    OUT("domains", "r", "a.org b_c.org", "'b_c.org': not a domain name"),
    OUT("domains", "r", "a234567890123456789012345678901234567890123456789012345678901234.b",
        "not a domain name"),
};

static void run_bound(const bound_case *c, char scope)
{
    char line[256], want_err[512];
    snprintf(line, sizeof(line), "%s = %s\n", c->key, c->value);
    const char *host = strcmp(c->key, "host") != 0 ? "host = relay.example\n" : "";
    char *text = scope == 'g'   ? concat3(BASE, line, LISTENER_A)
                 : scope == 'l' ? concat3(BASE LISTENER_A, line, "")
                 : scope == 'r' ? concat3(BASE LISTENER_A RELAY_A, line, host)
                                : concat3(BASE LISTENER_A DOMAIN_A, line, "");
    unsigned lineno = scope == 'g' ? 2 : scope == 'l' ? 4 : 5;
    ph_config *cfg = NULL;
    ph_config_errors errs;
    int r = ph_config_parse(FILE_NAME, text, strlen(text), &cfg, &errs);
    if (c->want) {
        char got[512];
        if (r != 0)
            print_errors(text, &errs);
        assert_int_equal(r, 0);
        const ph_config_listener *l = scope == 'l' ? &cfg->listeners[0] : NULL;
        if (scope == 'd')
            assert_int_equal(ph_config_domain_value(cfg, &cfg->domains[0], c->key, got,
                                                    sizeof(got)), 0);
        else if (scope == 'r')
            assert_int_equal(ph_config_relay_value(cfg, &cfg->relays[0], c->key, got,
                                                   sizeof(got)), 0);
        else
            assert_int_equal(ph_config_value(cfg, l, c->key, got, sizeof(got)), 0);
        if (strcmp(got, c->want) != 0)
            fprintf(stderr, "case '%s' in %c: got '%s'\n", line, scope, got);
        assert_string_equal(got, c->want);
    } else {
        snprintf(want_err, sizeof(want_err), FILE_NAME ":%u: %s: ", lineno, c->key);
        if (r != -EINVAL || errs.n != 1 || strncmp(errs.v[0].text, want_err, strlen(want_err)) ||
            !strstr(errs.v[0].text, c->err))
            print_errors(text, &errs);
        assert_int_equal(r, -EINVAL);
        assert_null(cfg);
        assert_int_equal(errs.n, 1);
        assert_int_equal(errs.v[0].line, lineno);
        assert_true(strncmp(errs.v[0].text, want_err, strlen(want_err)) == 0);
        assert_non_null(strstr(errs.v[0].text, c->err));
    }
    ph_config_errors_free(&errs);
    ph_config_free(cfg);
    free(text);
}

static void test_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bound_cases) / sizeof(bound_cases[0]); i++)
        for (const char *s = bound_cases[i].scopes; *s; s++)
            run_bound(&bound_cases[i], *s);
}

/* --- errors: every message, with its line, all of them, in order -------------------------- */

typedef struct error_case {
    const char *name;
    const char *text;
    size_t len;             /* 0: strlen(text) */
    const char *errors[10]; /* the exact messages, in order */
} error_case;

#define OKL "[listener a]\nlisten = *:25\n"

static const error_case error_cases[] = {
    {"empty file", "", 0,
     {"t.conf: delivery = store (the default) needs store_dir", "t.conf: no [listener] section"}},
    {"no listener", "store_dir = /s\n", 0, {"t.conf: no [listener] section"}},
    {"listener without listen", "store_dir = /s\n[listener a]\nrole = mx\n", 0,
     {"t.conf:2: listener 'a' has no listen address (listen = HOST:PORT)"}},
    {"empty listen", "store_dir = /s\n[listener a]\nlisten =\n", 0,
     {"t.conf:2: listener 'a' has no listen address (listen = HOST:PORT)"}},
    {"store needs store_dir", "delivery = store\n" OKL, 0,
     {"t.conf:1: delivery = store needs store_dir"}},
    {"discard needs nothing", "delivery = discard\n" OKL "workers = 2\n", 0,
     {"t.conf:4: workers: a global parameter, not allowed in a [listener] section"}},
    {"tls needs a certificate", "store_dir = /s\n" OKL "tls = starttls\n", 0,
     {"t.conf:4: listener 'a': tls = starttls needs tls_cert and tls_key"}},
    {"implicit needs a certificate", "store_dir = /s\n" OKL "tls = implicit\n", 0,
     {"t.conf:4: listener 'a': tls = implicit needs tls_cert and tls_key"}},
    {"global cert without key", "store_dir = /s\ntls_cert = /c\n" OKL, 0,
     {"t.conf:2: tls_cert without tls_key"}},
    {"global key without cert", "store_dir = /s\ntls_key = /k\n" OKL, 0,
     {"t.conf:2: tls_key without tls_cert"}},
    {"listener cert without key", "store_dir = /s\n" OKL "tls_cert = /c\n", 0,
     {"t.conf:4: listener 'a': tls_cert without tls_key"}},
    {"listener key without cert", "store_dir = /s\n" OKL "tls_key = /k\n", 0,
     {"t.conf:4: listener 'a': tls_key without tls_cert"}},
    {"listener drops the inherited key", "store_dir = /s\ntls_cert = /c\ntls_key = /k\n" OKL
     "tls_key =\n", 0, {"t.conf:6: listener 'a': tls_cert without tls_key"}},
    {"inherited mismatch reported once", "store_dir = /s\ntls_cert = /c\n" OKL OKL, 0,
     {"t.conf:2: tls_cert without tls_key", "t.conf:5: duplicate listener name 'a' (first at "
                                            "line 3)"}},
    {"auth needs passwd_file", "store_dir = /s\n" OKL "auth = insecure\n", 0,
     {"t.conf:4: listener 'a': auth = insecure needs passwd_file"}},
    {"require_tls without tls", "store_dir = /s\n" OKL "require_tls = yes\n", 0,
     {"t.conf:4: listener 'a': require_tls = yes but tls = none (set tls_cert and tls_key)"}},
    {"require_auth without auth", "store_dir = /s\n" OKL "require_auth = on\n", 0,
     {"t.conf:4: listener 'a': require_auth = yes but auth = none"}},
    {"submissions must be implicit", "store_dir = /s\n" TLS_AUTH OKL "role = submissions\n"
     "tls = starttls\n", 0, {"t.conf:8: listener 'a': role submissions needs tls = implicit"}},
    {"submissions without tls", "store_dir = /s\npasswd_file = /p\n" OKL "role = submissions\n"
     "tls = none\nrequire_tls = no\n", 0,
     {"t.conf:6: listener 'a': role submissions needs tls = implicit"}},
    {"submission without anything", "store_dir = /s\n" OKL "role = submission\n", 0,
     {"t.conf:2: listener 'a': require_tls = yes (the default for role submission) but tls = "
      "none (set tls_cert and tls_key)",
      "t.conf:2: listener 'a': auth = tls (the default for role submission) needs passwd_file"}},
    {"submissions without anything", "store_dir = /s\n" OKL "role = submissions\n", 0,
     {"t.conf:2: listener 'a': tls = implicit (the default for role submissions) needs "
      "tls_cert and tls_key",
      "t.conf:2: listener 'a': auth = tls (the default for role submissions) needs passwd_file"}},
    {"submission with auth none", "store_dir = /s\n" TLS_AUTH OKL "role = submission\n"
     "auth = none\n", 0,
     {"t.conf:8: listener 'a': require_auth = yes (the default for role submission) but auth = "
      "none"}},
    /* syntax */
    {"unknown key", "store_dir = /s\nfrobnicate = 1\n" OKL, 0,
     {"t.conf:2: unknown parameter 'frobnicate'"}},
    {"uppercase key", "store_dir = /s\nWorkers = 2\n" OKL, 0,
     {"t.conf:2: unknown parameter 'Workers' (did you mean 'workers'?)"}},
    {"typo", "store_dir = /s\n" OKL "max_recipient = 2\n", 0,
     {"t.conf:4: unknown parameter 'max_recipient' (did you mean 'max_recipients'?)"}},
    {"quoted bytes are escaped", "store_dir = /s\nw\xc3\xb6rkers = 2\n" OKL, 0,
     {"t.conf:2: unknown parameter 'w\\xc3\\xb6rkers' (did you mean 'workers'?)"}},
    {"tab in a quote", "store_dir = /s\nbanner = a\tb\n" OKL, 0,
     {"t.conf:2: banner: 'a\\x09b': only printable ASCII is allowed in a reply"}},
    {"no name", "store_dir = /s\n= 2\n" OKL, 0, {"t.conf:2: missing parameter name before '='"}},
    {"no equals", "store_dir = /s\nworkers 2\n" OKL, 0,
     {"t.conf:2: expected 'key = value' or '[listener NAME]', got 'workers 2'"}},
    {"duplicate global", "store_dir = /s\nworkers = 2\nworkers = 2\n" OKL, 0,
     {"t.conf:3: workers: set twice (first at line 2)"}},
    {"duplicate in listener", "store_dir = /s\n" OKL "role = mx\nrole = mx\n", 0,
     {"t.conf:5: role: set twice (first at line 4)"}},
    {"duplicate after a bad value", "store_dir = /s\nworkers = x\nworkers = 2\n" OKL, 0,
     {"t.conf:2: workers: 'x' is not a number"}},
    {"listener key at global", "store_dir = /s\nrole = mx\n" OKL, 0,
     {"t.conf:2: role: only allowed in a [listener NAME] section"}},
    {"global key in listener", "store_dir = /s\n" OKL "banner = x\n", 0,
     {"t.conf:4: banner: a global parameter, not allowed in a [listener] section"}},
    {"section: unknown type", "store_dir = /s\n[domains x]\nlisten = *:1\n" OKL, 0,
     {"t.conf:2: unknown section type 'domains' (expected [listener NAME], [domain NAME] or "
      "[relay NAME])"}},
    {"section: typo keeps checking keys", "store_dir = /s\n[listner x]\nlisten = x\n"
     "banner = x\n" OKL, 0,
     {"t.conf:2: unknown section type 'listner' (expected [listener NAME], [domain NAME] or "
      "[relay NAME])",
      "t.conf:3: listen: 'x': expected HOST:PORT, [IPv6]:PORT, *:PORT or unix:/path",
      "t.conf:4: banner: a global parameter, not allowed in a [listener] section"}},
    {"section: no name", "store_dir = /s\n[listener]\n" OKL, 0,
     {"t.conf:2: bad listener name '' (1 to 64 letters, digits, '_' and '-')"}},
    {"section: two names", "store_dir = /s\n[listener a b]\n" OKL, 0,
     {"t.conf:2: bad listener name 'a b' (1 to 64 letters, digits, '_' and '-')"}},
    {"section: dot in name", "store_dir = /s\n[listener a.b]\n" OKL, 0,
     {"t.conf:2: bad listener name 'a.b' (1 to 64 letters, digits, '_' and '-')"}},
    {"section: unclosed", "store_dir = /s\n[listener b\n" OKL, 0,
     {"t.conf:2: bad section header '[listener b' (expected [listener NAME], [domain NAME] or "
      "[relay NAME])"}},
    {"section: text after", "store_dir = /s\n[listener b] x\n" OKL, 0,
     {"t.conf:2: bad section header '[listener b] x' (expected [listener NAME], [domain "
      "NAME] or [relay NAME])"}},
    {"section: continued", "store_dir = /s\n[listener b]\n  x\n" OKL, 0,
     {"t.conf:2: bad section header '[listener b] x' (expected [listener NAME], [domain "
      "NAME] or [relay NAME])"}},
    {"section: spaces inside", "store_dir = /s\n[ listener  b ]\nlisten = *:2\n" OKL, 0, {NULL}},
    {"duplicate listener", "store_dir = /s\n" OKL "[listener a]\nlisten = *:26\n", 0,
     {"t.conf:4: duplicate listener name 'a' (first at line 2)"}},
    {"continuation at start", "  workers = 2\nstore_dir = /s\n" OKL, 0,
     {"t.conf:1: continuation line without a 'key = value' line before it"}},
    {"continuation after blank line", "store_dir = /s\nbanner = a\n\n  b\n  c\n" OKL, 0,
     {"t.conf:4: continuation line without a 'key = value' line before it"}},
    {"continued bad value", "store_dir = /s\nworkers = 1\n  2\n" OKL, 0,
     {"t.conf:2: workers: '1 2' is not a number"}},
    {"NUL byte", "store_dir = /s\nbanner = a\0b\n" OKL, 55,
     {"t.conf:2: control character 0x00 at column 11"}},
    {"NUL in a continuation drops the whole value", "store_dir = /s\nworkers = x\n \0\n"
     "  junk\nbanner = ok\n" OKL, 76, {"t.conf:3: control character 0x00 at column 2"}},
    {"control byte", "store_dir = /s\nbanner = a\x1b[0m\n" OKL, 0,
     {"t.conf:2: control character 0x1b at column 11"}},
    {"DEL byte", "store_dir = /s\x7f\n" OKL, 0,
     {"t.conf:1: control character 0x7f at column 15",
      "t.conf: delivery = store (the default) needs store_dir"}},
    {"bare CR", "store_dir = /s\rworkers = 2\n" OKL, 0,
     {"t.conf:1: control character 0x0d at column 15",
      "t.conf: delivery = store (the default) needs store_dir"}},
    /* [domain NAME] sections */
    {"domain: minimal", "store_dir = /s\n" OKL "[domain example.org]\n", 0, {NULL}},
    {"domain: before the listener", "store_dir = /s\n[domain a.example]\n" OKL, 0, {NULL}},
    {"domain: spaces inside", "store_dir = /s\n" OKL "[  domain\tA.example ]\n", 0, {NULL}},
    {"domain: label of 63, name of 253", "store_dir = /s\n" OKL
     "[domain a23456789012345678901234567890123456789012345678901234567890123.b]\n"
     "[domain a23456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789."
     "123456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789."
     "123456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789.123]\n", 0,
     {NULL}},
    {"domain: digits, hyphens, one label", "store_dir = /s\n" OKL "[domain 1-2.3]\n"
     "[domain localhost]\n[domain xn--bcher-kva.example]\n", 0, {NULL}},
    {"domain: duplicate", "store_dir = /s\n" OKL "[domain example.org]\n[domain example.net]\n"
     "[domain example.org]\n", 0,
     {"t.conf:6: duplicate domain 'example.org' (first at line 4)"}},
    {"domain: duplicate in another case", "store_dir = /s\n" OKL "[domain Example.ORG]\n"
     "[domain eXample.org]\n", 0,
     {"t.conf:5: duplicate domain 'example.org' (first at line 4)"}},
    {"domain: no name", "store_dir = /s\n" OKL "[domain]\n", 0,
     {"t.conf:4: bad domain name '' (letters, digits, '-' and '.', at most 253 bytes; labels of "
      "1 to 63, not starting or ending with '-')"}},
    {"domain: bad names", "store_dir = /s\n" OKL "[domain -a.org]\n[domain a-.org]\n"
     "[domain a.-b.org]\n[domain a..org]\n[domain .a.org]\n[domain a.org.]\n[domain a_b.org]\n"
     "[domain a b]\n[domain ex\xc3\xa4mple.org]\n", 0,
     {"t.conf:4: bad domain name '-a.org' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:5: bad domain name 'a-.org' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:6: bad domain name 'a.-b.org' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:7: bad domain name 'a..org' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:8: bad domain name '.a.org' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:9: bad domain name 'a.org.' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:10: bad domain name 'a_b.org' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:11: bad domain name 'a b' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')",
      "t.conf:12: bad domain name 'ex\\xc3\\xa4mple.org' (letters, digits, '-' and '.', at most "
      "253 bytes; labels of 1 to 63, not starting or ending with '-')"}},
    {"domain: an address is not a name", "store_dir = /s\n" OKL "[domain a@b]\n", 0,
     {"t.conf:4: bad domain name 'a@b' (letters, digits, '-' and '.', at most 253 bytes; "
      "labels of 1 to 63, not starting or ending with '-')"}},
    {"domain: label of 64", "store_dir = /s\n" OKL
     "[domain a234567890123456789012345678901234567890123456789012345678901234.b]\n", 0,
     {"t.conf:4: bad domain name 'a2345678901234567890123456789012345678901234567890123456...' "
      "(letters, digits, '-' and '.', at most 253 bytes; labels of 1 to 63, not starting or "
      "ending with '-')"}},
    {"domain: name of 254", "store_dir = /s\n" OKL
     "[domain a23456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789."
     "123456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789."
     "123456789.123456789.123456789.123456789.123456789.123456789.123456789.123456789.1234]\n", 0,
     {"t.conf:4: bad domain name 'a23456789.123456789.123456789.123456789.123456789.123456...' "
      "(letters, digits, '-' and '.', at most 253 bytes; labels of 1 to 63, not starting or "
      "ending with '-')"}},
    {"domain: a bad header's keys are checked as domain keys", "store_dir = /s\n" OKL
     "[domain -x]\ntransport = smtp\nusers = a\n", 0,
     {"t.conf:4: bad domain name '-x' (letters, digits, '-' and '.', at most 253 bytes; labels "
      "of 1 to 63, not starting or ending with '-')",
      "t.conf:5: transport: 'smtp' is not one of maildir, lmtp"}},
    {"domain: unclosed header", "store_dir = /s\n" OKL "[domain a.org\nusers = a\nlisten = *:1\n",
     0, {"t.conf:4: bad section header '[domain a.org' (expected [listener NAME], [domain "
         "NAME] or [relay NAME])", "t.conf:6: listen: not allowed in a [domain] section"}},
    {"domain: a duplicate's keys are checked", "store_dir = /s\n" OKL "[domain a.org]\n"
     "[domain a.org]\nlmtp_timeout = 0\n", 0,
     {"t.conf:5: duplicate domain 'a.org' (first at line 4)",
      "t.conf:6: lmtp_timeout: '0' is out of range (1s..1h)"}},
    {"domain: only domains", "store_dir = /s\n[domain a.org]\n", 0,
     {"t.conf: no [listener] section"}},
    {"domain: transport lmtp without lmtp", "store_dir = /s\n" OKL "[domain a.org]\n"
     "users = x\ntransport = lmtp\n", 0,
     {"t.conf:6: domain 'a.org': transport = lmtp needs lmtp (unix:/path, HOST:PORT or "
      "[IPv6]:PORT)"}},
    {"domain: lmtp emptied", "store_dir = /s\n" OKL "[domain a.org]\ntransport = lmtp\nlmtp =\n",
     0, {"t.conf:5: domain 'a.org': transport = lmtp needs lmtp (unix:/path, HOST:PORT or "
         "[IPv6]:PORT)"}},
    {"domain: each domain checked", "store_dir = /s\n" OKL "[domain a.org]\ntransport = lmtp\n"
     "lmtp = [::1]:24\n[domain b.org]\ntransport = lmtp\n", 0,
     {"t.conf:8: domain 'b.org': transport = lmtp needs lmtp (unix:/path, HOST:PORT or "
      "[IPv6]:PORT)"}},
    {"domain: set twice", "store_dir = /s\n" OKL "[domain a.org]\ntransport = lmtp\n"
     "lmtp = [::1]:24\ntransport = maildir\n", 0,
     {"t.conf:7: transport: set twice (first at line 5)"}},
    {"domain: same key in two domains", "store_dir = /s\n" OKL "[domain a.org]\ncatch_all = x\n"
     "[domain b.org]\ncatch_all = y\n", 0, {NULL}},
    {"domain: typo", "store_dir = /s\n" OKL "[domain a.org]\ntransprot = lmtp\n", 0,
     {"t.conf:5: unknown parameter 'transprot' (did you mean 'transport'?)"}},
    /* scopes */
    {"domain key at global", "store_dir = /s\ntransport = lmtp\nusers = a\n" OKL, 0,
     {"t.conf:2: transport: only allowed in a [domain NAME] section",
      "t.conf:3: users: only allowed in a [domain NAME] section"}},
    {"domain key in listener", "store_dir = /s\n" OKL "maildir = /m\n", 0,
     {"t.conf:4: maildir: only allowed in a [domain NAME] section"}},
    {"listener key in domain", "store_dir = /s\n" OKL "[domain a.org]\nlisten = *:25\n"
     "role = mx\n", 0,
     {"t.conf:5: listen: not allowed in a [domain] section",
      "t.conf:6: role: not allowed in a [domain] section"}},
    {"overridable key in domain", "store_dir = /s\n" OKL "[domain a.org]\n"
     "max_message_size = 1M\n", 0,
     {"t.conf:5: max_message_size: not allowed in a [domain] section"}},
    {"global key in domain", "store_dir = /s\n" OKL "[domain a.org]\nworkers = 2\n"
     "queue_lifetime = 1d\nrelay_networks = ::1\n", 0,
     {"t.conf:5: workers: a global parameter, not allowed in a [domain] section",
      "t.conf:6: queue_lifetime: a global parameter, not allowed in a [domain] section",
      "t.conf:7: relay_networks: a global parameter, not allowed in a [domain] section"}},
    {"queue keys in listener", "store_dir = /s\n" OKL "queue_concurrency = 2\n"
     "max_received_headers = 5\ncontrol_socket = /c\nqueue_retry_schedule = 1m\n", 0,
     {"t.conf:4: queue_concurrency: a global parameter, not allowed in a [listener] section",
      "t.conf:5: max_received_headers: a global parameter, not allowed in a [listener] section",
      "t.conf:6: control_socket: a global parameter, not allowed in a [listener] section",
      "t.conf:7: queue_retry_schedule: a global parameter, not allowed in a [listener] "
      "section"}},
    /* the retry schedule */
    {"retry schedule emptied", "store_dir = /s\nqueue_retry_schedule =\n" OKL, 0,
     {"t.conf:2: queue_retry_schedule: needs at least one delay"}},
    {"retry schedule over 32 by repetition", "store_dir = /s\n"
     "queue_retry_schedule = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
     "queue_retry_schedule = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
     "queue_retry_schedule = 1\n" OKL, 0,
     {"t.conf:4: queue_retry_schedule: more than 32 entries"}},
    {"retry schedule: a bad entry drops its line", "store_dir = /s\n"
     "queue_retry_schedule = 1m 0\n" OKL, 0,
     {"t.conf:2: queue_retry_schedule: '0': out of range (1s..7d)"}},
    /* [relay NAME] sections (lines 1-3: store_dir and listener a) */
    {"relay: minimal", "store_dir = /s\n" OKL "[relay smart]\nhost = smtp.example.net\n", 0,
     {NULL}},
    {"relay: before the listener, named like it", "store_dir = /s\n[relay a]\nhost = h\n" OKL,
     0, {NULL}},
    {"relay: spaces inside", "store_dir = /s\n" OKL "[ relay\tx_Y-1 ]\nhost = h\n", 0, {NULL}},
    {"relay: no host", "store_dir = /s\n" OKL "[relay smart]\ntls = none\n", 0,
     {"t.conf:4: relay 'smart' has no host (host = HOST or HOST:PORT)"}},
    {"relay: host emptied", "store_dir = /s\n" OKL "[relay smart]\nhost =\n", 0,
     {"t.conf:4: relay 'smart' has no host (host = HOST or HOST:PORT)"}},
    {"relay: no name", "store_dir = /s\n" OKL "[relay]\nhost = h\n", 0,
     {"t.conf:4: bad relay name '' (1 to 64 letters, digits, '_' and '-')"}},
    {"relay: bad names", "store_dir = /s\n" OKL "[relay a.b]\n[relay a b]\n[relay r\xc3\xa9]\n"
     "[relay 12345678901234567890123456789012345678901234567890123456789012345]\n", 0,
     {"t.conf:4: bad relay name 'a.b' (1 to 64 letters, digits, '_' and '-')",
      "t.conf:5: bad relay name 'a b' (1 to 64 letters, digits, '_' and '-')",
      "t.conf:6: bad relay name 'r\\xc3\\xa9' (1 to 64 letters, digits, '_' and '-')",
      "t.conf:7: bad relay name '12345678901234567890123456789012345678901234567890123456...' "
      "(1 to 64 letters, digits, '_' and '-')"}},
    {"relay: name of 64", "store_dir = /s\n" OKL
     "[relay 1234567890123456789012345678901234567890123456789012345678901234]\nhost = h\n", 0,
     {NULL}},
    {"relay: duplicate", "store_dir = /s\n" OKL "[relay x]\nhost = h\ndomains = a.org\n"
     "[relay x]\nhost = h2\n", 0, {"t.conf:7: duplicate relay name 'x' (first at line 4)"}},
    {"relay: a bad header's keys are checked as relay keys", "store_dir = /s\n" OKL
     "[relay a.b]\nhost = ::1\ntls = ssl\nlisten = *:1\n", 0,
     {"t.conf:4: bad relay name 'a.b' (1 to 64 letters, digits, '_' and '-')",
      "t.conf:5: host: '::1': an IPv6 address goes in brackets ([IPv6] or [IPv6]:PORT)",
      "t.conf:6: tls: 'ssl' is not one of none, starttls, implicit, may",
      "t.conf:7: listen: not allowed in a [relay] section"}},
    {"relay: unclosed header", "store_dir = /s\n" OKL "[relay x\nhost = h\nrole = mx\n", 0,
     {"t.conf:4: bad section header '[relay x' (expected [listener NAME], [domain NAME] or "
      "[relay NAME])", "t.conf:6: role: not allowed in a [relay] section"}},
    {"relay: a duplicate's keys are checked", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "domains = a.org\n[relay x]\ntls_verify = maybe\n", 0,
     {"t.conf:7: duplicate relay name 'x' (first at line 4)",
      "t.conf:8: tls_verify: 'maybe' is not yes or no (also true/false, on/off, 1/0)"}},
    {"relay: only relays", "store_dir = /s\n[relay x]\nhost = h\n", 0,
     {"t.conf: no [listener] section"}},
    {"relay: set twice", "store_dir = /s\n" OKL "[relay x]\nhost = h\nhost = h2\n", 0,
     {"t.conf:6: host: set twice (first at line 5)"}},
    {"relay: typo", "store_dir = /s\n" OKL "[relay x]\nhots = h\n", 0,
     {"t.conf:4: relay 'x' has no host (host = HOST or HOST:PORT)",
      "t.conf:5: unknown parameter 'hots' (did you mean 'host'?)"}},
    /* AUTH */
    {"relay: auth_user without a password file", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "auth_user = u\n", 0, {"t.conf:6: relay 'x': auth_user without auth_password_file"}},
    {"relay: a password file without auth_user", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "auth_password_file = /p\n", 0,
     {"t.conf:6: relay 'x': auth_password_file without auth_user"}},
    {"relay: AUTH without TLS", "store_dir = /s\n" OKL "[relay x]\nhost = h\ntls = none\n"
     "auth_user = u\nauth_password_file = /p\n", 0,
     {"t.conf:6: relay 'x': AUTH with tls = none could send the password in clear text (set "
      "auth_insecure = yes to allow it)"}},
    {"relay: AUTH with opportunistic TLS", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "auth_user = u\nauth_password_file = /p\ntls = may\n", 0,
     {"t.conf:8: relay 'x': AUTH with tls = may could send the password in clear text (set "
      "auth_insecure = yes to allow it)"}},
    {"relay: AUTH allowed in clear text", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "tls = none\nauth_user = u\nauth_password_file = /p\nauth_insecure = yes\n", 0, {NULL}},
    {"relay: auth_insecure = no is no permission", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "tls = may\nauth_user = u\nauth_password_file = /p\nauth_insecure = no\n", 0,
     {"t.conf:6: relay 'x': AUTH with tls = may could send the password in clear text (set "
      "auth_insecure = yes to allow it)"}},
    {"relay: AUTH over required TLS", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "auth_user = u\nauth_password_file = /p\n[relay y]\nhost = h\ntls = implicit\n"
     "auth_user = u\nauth_password_file = /p\ndomains = a.org\n", 0, {NULL}},
    {"relay: both AUTH problems", "store_dir = /s\n" OKL "[relay x]\nhost = h\ntls = none\n"
     "auth_user = u\n", 0,
     {"t.conf:6: relay 'x': AUTH with tls = none could send the password in clear text (set "
      "auth_insecure = yes to allow it)",
      "t.conf:7: relay 'x': auth_user without auth_password_file"}},
    /* verification needs required TLS */
    {"relay: tls_verify without TLS", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "tls = none\ntls_verify = yes\n", 0,
     {"t.conf:7: relay 'x': tls_verify = yes but tls = none (only starttls and implicit "
      "verify)"}},
    {"relay: tls_verify with may", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "tls_verify = on\ntls = may\n", 0,
     {"t.conf:6: relay 'x': tls_verify = yes but tls = may (only starttls and implicit "
      "verify)"}},
    /* domains: one relay each, never local; one default smarthost */
    {"relay: two default smarthosts", "store_dir = /s\n" OKL "[relay a]\nhost = h\n"
     "[relay b]\nhost = h\ndomains =\n[relay c]\nhost = h\ndomains = c.org\n[relay d]\n"
     "host = h\n", 0,
     {"t.conf:6: relay 'b': a second default smarthost (no domains); 'a' (line 4) is the first",
      "t.conf:12: relay 'd': a second default smarthost (no domains); 'a' (line 4) is the "
      "first"}},
    {"relay: a domain listed twice on one line", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "domains = a.org b.org A.ORG\n", 0,
     {"t.conf:6: relay 'x': domain 'A.ORG' listed twice (first at line 6)"}},
    {"relay: a domain listed twice on two lines", "store_dir = /s\n" OKL "[relay x]\n"
     "domains = a.org\nhost = h\ndomains = b.org,\n  a.org\n", 0,
     {"t.conf:7: relay 'x': domain 'a.org' listed twice (first at line 5)"}},
    {"relay: a domain in two relays", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "domains = a.org\ndomains = b.org\n[relay y]\nhost = h2\ndomains = c.org\n"
     "domains = d.org B.org\n[relay z]\nhost = h3\ndomains = b.org\n", 0,
     {"t.conf:11: relay 'y': domain 'B.org' is relayed by 'x' already (line 7)",
      "t.conf:14: relay 'z': domain 'b.org' is relayed by 'x' already (line 7)"}},
    {"relay: a local domain", "store_dir = /s\n" OKL "[domain a.org]\n[relay x]\nhost = h\n"
     "domains = b.org A.org\n", 0,
     {"t.conf:7: relay 'x': 'A.org' is a local domain ([domain] at line 4)"}},
    {"relay: a local domain defined after", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "domains = a.org\n[relay y]\nhost = h\ndomains = a.org\n[domain A.ORG]\n", 0,
     {"t.conf:6: relay 'x': 'a.org' is a local domain ([domain] at line 10)",
      "t.conf:9: relay 'y': 'a.org' is a local domain ([domain] at line 10)"}},
    {"relay: a bad entry drops its line", "store_dir = /s\n" OKL "[relay x]\nhost = h\n"
     "domains = a.org a..org\n[relay y]\nhost = h\ndomains = a.org\n", 0,
     {"t.conf:6: domains: 'a..org': not a domain name (letters, digits, '-' and '.', at most "
      "253 bytes; labels of 1 to 63, not starting or ending with '-')"}},
    {"relay: subdomains are other domains", "store_dir = /s\n" OKL "[domain a.org]\n"
     "[relay x]\nhost = h\ndomains = b.a.org a.org.b\n[relay y]\nhost = h\ndomains = org\n", 0,
     {NULL}},
    /* scopes */
    {"relay keys at global", "store_dir = /s\nhost = h\ndomains = a.org\ntls = none\n"
     "tls_verify = no\n" OKL, 0,
     {"t.conf:2: host: only allowed in a [relay NAME] section",
      "t.conf:3: domains: only allowed in a [relay NAME] section",
      "t.conf:4: tls: only allowed in a [listener NAME] or [relay NAME] section",
      "t.conf:5: tls_verify: only allowed in a [relay NAME] section"}},
    {"relay keys in a listener", "store_dir = /s\n" OKL "host = h\nauth_user = u\n"
     "auth_insecure = yes\n", 0,
     {"t.conf:4: host: only allowed in a [relay NAME] section",
      "t.conf:5: auth_user: only allowed in a [relay NAME] section",
      "t.conf:6: auth_insecure: only allowed in a [relay NAME] section"}},
    {"relay keys in a domain", "store_dir = /s\n" OKL "[domain a.org]\nhost = h\ntls = none\n"
     "auth_password_file = /p\n", 0,
     {"t.conf:5: host: only allowed in a [relay NAME] section",
      "t.conf:6: tls: not allowed in a [domain] section",
      "t.conf:7: auth_password_file: only allowed in a [relay NAME] section"}},
    {"other keys in a relay", "store_dir = /s\n" OKL "[relay x]\nhost = h\nlisten = *:25\n"
     "require_tls = yes\nmax_message_size = 1M\nworkers = 2\nsmtp_tls = none\n"
     "transport = lmtp\nusers = a\n", 0,
     {"t.conf:6: listen: not allowed in a [relay] section",
      "t.conf:7: require_tls: not allowed in a [relay] section",
      "t.conf:8: max_message_size: not allowed in a [relay] section",
      "t.conf:9: workers: a global parameter, not allowed in a [relay] section",
      "t.conf:10: smtp_tls: a global parameter, not allowed in a [relay] section",
      "t.conf:11: transport: only allowed in a [domain NAME] section",
      "t.conf:12: users: only allowed in a [domain NAME] section"}},
    {"delivery keys in a listener", "store_dir = /s\n" OKL "dns_forwarders = ::1\n"
     "smtp_mx_port = 2525\ndestination_rate = 1\n", 0,
     {"t.conf:4: dns_forwarders: a global parameter, not allowed in a [listener] section",
      "t.conf:5: smtp_mx_port: a global parameter, not allowed in a [listener] section",
      "t.conf:6: destination_rate: a global parameter, not allowed in a [listener] section"}},
    {"the listener's tls keeps its words", "store_dir = /s\n" OKL "tls = may\n", 0,
     {"t.conf:4: tls: 'may' is not one of none, starttls, implicit"}},
    /* the SMTP client's certificate checks */
    {"smtp_tls_verify with the default smtp_tls", "store_dir = /s\nsmtp_tls_verify = yes\n" OKL,
     0, {"t.conf:2: smtp_tls_verify = yes needs smtp_tls = encrypt (smtp_tls = may, the "
         "default)"}},
    {"smtp_tls_verify with smtp_tls none", "store_dir = /s\nsmtp_tls = none\n"
     "smtp_tls_verify = true\n" OKL, 0,
     {"t.conf:3: smtp_tls_verify = yes needs smtp_tls = encrypt (smtp_tls = none)"}},
    {"smtp_tls_verify with encrypt", "store_dir = /s\nsmtp_tls_verify = yes\n"
     "smtp_tls = encrypt\n" OKL, 0, {NULL}},
    {"collects every error in order", "workers = 0\nfoo\n[listener a]\nlisten = 1:2:3\n"
     "tls = x\n[listener a]\nbanner = x\n", 0,
     {"t.conf:1: workers: '0' is out of range (1..64)",
      "t.conf:2: expected 'key = value' or '[listener NAME]', got 'foo'",
      "t.conf:3: listener 'a' has no listen address (listen = HOST:PORT)",
      "t.conf:4: listen: '1:2:3': bad host (an IPv4 address, a host name, [IPv6] or *)",
      "t.conf:5: tls: 'x' is not one of none, starttls, implicit",
      "t.conf:6: duplicate listener name 'a' (first at line 3)",
      "t.conf:7: banner: a global parameter, not allowed in a [listener] section",
      "t.conf: delivery = store (the default) needs store_dir"}},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const error_case *c = &error_cases[i];
        size_t len = c->len ? c->len : strlen(c->text), want = 0;
        while (c->errors[want])
            want++;
        ph_config *cfg = NULL;
        ph_config_errors errs;
        int r = ph_config_parse(FILE_NAME, c->text, len, &cfg, &errs);
        bool same = errs.n == want;
        for (size_t k = 0; same && k < want; k++)
            same = strcmp(errs.v[k].text, c->errors[k]) == 0;
        if (!same)
            print_errors(c->name, &errs);
        assert_true(same);
        assert_int_equal(r, want ? -EINVAL : 0);
        assert_true(want ? cfg == NULL : cfg != NULL);
        ph_config_errors_free(&errs);
        assert_int_equal(errs.n, 0);
        ph_config_free(cfg);
    }
}

/* --- hostile input: caps, floods, huge lines ----------------------------------------------- */

static void expect_first_error(const char *text, size_t len, const char *first, size_t n)
{
    ph_config *cfg = NULL;
    ph_config_errors errs;
    assert_int_equal(ph_config_parse(FILE_NAME, text, len, &cfg, &errs), -EINVAL);
    if (errs.n != n || strcmp(errs.v[0].text, first) != 0)
        print_errors(first, &errs);
    assert_int_equal(errs.n, n);
    assert_string_equal(errs.v[0].text, first);
    ph_config_errors_free(&errs);
}

static void test_caps(void **state)
{
    (void)state;
    /* a logical line longer than PH_CONFIG_MAX_LINE, in one piece or by continuations */
    char *big = repeat("x", PH_CONFIG_MAX_LINE + 1, "\nstore_dir = /s\n" OKL);
    expect_first_error(big, strlen(big),
                       "t.conf:1: line too long (more than 65536 bytes with its continuations)", 1);
    free(big);
    /* "banner=" + 57 x, then lines of " " + 63 x, each adding 64 bytes with its joining space:
     * the 1024th continuation (line 1025) passes 65536 */
    char unit[66];
    unit[0] = ' ';
    memset(unit + 1, 'x', 63);
    memcpy(unit + 64, "\n", 2);
    char *cont = repeat(unit, 2000, "store_dir = /s\n" OKL);
    memcpy(cont, "banner=", 7);
    expect_first_error(cont, strlen(cont),
                       "t.conf:1025: line too long (more than 65536 bytes with its continuations)",
                       1);
    free(cont);
    /* exactly at the cap is fine: "tls_ciphers" + blanks + "= x"; one more blank is not */
    ph_config *cfg = NULL;
    for (size_t extra = 0; extra < 2; extra++) {
        char *at = repeat(" ", PH_CONFIG_MAX_LINE + extra, "\nstore_dir = /s\n" OKL);
        memcpy(at, "tls_ciphers", 11);
        memcpy(at + PH_CONFIG_MAX_LINE + extra - 3, "= x", 3);
        if (extra)
            expect_first_error(at, strlen(at), "t.conf:1: line too long (more than 65536 bytes "
                                               "with its continuations)", 1);
        else
            cfg = parse_ok("line at the cap", at);
        free(at);
    }
    assert_string_equal(cfg->s.tls_ciphers, "x");
    ph_config_free(cfg);
    /* string values and list entries: PH_CONFIG_MAX_VALUE bytes, then one more */
    char *value = repeat("A", PH_CONFIG_MAX_VALUE, "\nstore_dir = /s\n" OKL);
    char *text = concat3("tls_ciphers = ", value, "");
    cfg = parse_ok("value at the cap", text);
    assert_int_equal(strlen(cfg->s.tls_ciphers), PH_CONFIG_MAX_VALUE);
    check_roundtrip("value at the cap", cfg);
    ph_config_free(cfg);
    free(text);
    text = concat3("tls_ciphers = A", value, "");
    expect_first_error(text, strlen(text), "t.conf:1: tls_ciphers: '"
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...': longer than "
                       "4096 bytes", 1);
    free(text);
    free(value);
    value = repeat("a", PH_CONFIG_MAX_VALUE - 6, ":/k\nstore_dir = /s\n" OKL);
    text = concat3("tls_sni = n:/", value, "");
    cfg = parse_ok("entry at the cap", text);
    assert_int_equal(strlen(cfg->g.tls_sni.v[0]), PH_CONFIG_MAX_VALUE);
    check_roundtrip("entry at the cap", cfg);
    ph_config_free(cfg);
    free(text);
    text = concat3("tls_sni = n:/a", value, "");
    expect_first_error(text, strlen(text), "t.conf:1: tls_sni: '"
                       "n:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': longer than "
                       "4096 bytes", 1);
    free(text);
    free(value);

    /* lists: PH_CONFIG_MAX_LIST entries, then one more */
    char *list = repeat("listen = *:1\n", PH_CONFIG_MAX_LIST, "");
    text = concat3("store_dir = /s\n[listener a]\n", list, "");
    cfg = parse_ok("list at the cap", text);
    assert_int_equal(cfg->listeners[0].listen.n, PH_CONFIG_MAX_LIST);
    check_roundtrip("list at the cap", cfg);
    ph_config_free(cfg);
    free(text);
    text = concat3("store_dir = /s\n[listener a]\n", list, "listen = *:2 *:3\n");
    expect_first_error(text, strlen(text), "t.conf:1027: listen: more than 1024 entries", 1);
    free(text);
    free(list);

    /* listeners: PH_CONFIG_MAX_LISTENERS sections, then more */
    size_t n = 100000, len = 0;
    char *many = malloc(n * 40 + 64);
    assert_non_null(many);
    len += (size_t)sprintf(many, "store_dir = /s\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(many + len, "[listener l%zu]\nlisten = *:%zu\n", i, i % 65536);
    ph_config_errors errs;
    assert_int_equal(ph_config_parse(FILE_NAME, many, len, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.n, PH_CONFIG_MAX_ERRORS + 1);
    assert_string_equal(errs.v[0].text, "t.conf:514: more than 256 [listener] sections");
    char note[64];
    snprintf(note, sizeof(note), "t.conf: %zu more errors not shown",
             n - PH_CONFIG_MAX_LISTENERS - PH_CONFIG_MAX_ERRORS);
    assert_string_equal(errs.v[PH_CONFIG_MAX_ERRORS].text, note);
    ph_config_errors_free(&errs);
    /* within the cap: all kept */
    char *cut = strstr(many, "[listener l256]");
    cfg = parse_ok("256 listeners", (*cut = '\0', many));
    assert_int_equal(cfg->nlisteners, PH_CONFIG_MAX_LISTENERS);
    assert_string_equal(cfg->listeners[255].name, "l255");
    check_roundtrip("256 listeners", cfg);
    ph_config_free(cfg);
    free(many);

    /* domains: PH_CONFIG_MAX_DOMAINS sections, then more; past the cap each costs O(1) */
    n = 200000;
    len = 0;
    many = malloc(n * 32 + 64);
    assert_non_null(many);
    len += (size_t)sprintf(many, "store_dir = /s\n" OKL);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(many + len, "[domain d%zu.example]\n", i);
    assert_int_equal(ph_config_parse(FILE_NAME, many, len, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.n, PH_CONFIG_MAX_ERRORS + 1);
    assert_string_equal(errs.v[0].text, "t.conf:1028: more than 1024 [domain] sections");
    snprintf(note, sizeof(note), "t.conf: %zu more errors not shown",
             n - PH_CONFIG_MAX_DOMAINS - PH_CONFIG_MAX_ERRORS);
    assert_string_equal(errs.v[PH_CONFIG_MAX_ERRORS].text, note);
    ph_config_errors_free(&errs);
    cut = strstr(many, "[domain d1024.example]");
    cfg = parse_ok("1024 domains", (*cut = '\0', many));
    assert_int_equal(cfg->ndomains, PH_CONFIG_MAX_DOMAINS);
    assert_string_equal(cfg->domains[1023].name, "d1023.example");
    assert_ptr_equal(ph_config_find_domain(cfg, "D1023.example"), &cfg->domains[1023]);
    check_roundtrip("1024 domains", cfg);
    ph_config_free(cfg);
    free(many);

    /* relays: PH_CONFIG_MAX_RELAYS sections, then more */
    n = 100000;
    len = 0;
    many = malloc(n * 64 + 64);
    assert_non_null(many);
    len += (size_t)sprintf(many, "store_dir = /s\n" OKL);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(many + len, "[relay r%zu]\nhost = h\ndomains = d%zu.example\n", i,
                               i);
    assert_int_equal(ph_config_parse(FILE_NAME, many, len, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.n, PH_CONFIG_MAX_ERRORS + 1);
    assert_string_equal(errs.v[0].text, "t.conf:772: more than 256 [relay] sections");
    ph_config_errors_free(&errs);
    cut = strstr(many, "[relay r256]");
    cfg = parse_ok("256 relays", (*cut = '\0', many));
    assert_int_equal(cfg->nrelays, PH_CONFIG_MAX_RELAYS);
    assert_ptr_equal(ph_config_relay_for(cfg, "D255.example"), &cfg->relays[255]);
    assert_null(ph_config_relay_for(cfg, "d256.example"));
    check_roundtrip("256 relays", cfg);
    ph_config_free(cfg);
    free(many);

    /* the most domains relays can list, every one twice: found by sorting, errors capped */
    size_t per = PH_CONFIG_MAX_LIST;
    many = malloc(PH_CONFIG_MAX_RELAYS * (per * 32 + 64) + 64);
    assert_non_null(many);
    len = (size_t)sprintf(many, "store_dir = /s\n" OKL);
    for (size_t i = 0; i < PH_CONFIG_MAX_RELAYS; i++) {
        len += (size_t)sprintf(many + len, "[relay r%zu]\nhost = h\n", i);
        for (size_t j = 0; j < per; j++)
            len += (size_t)sprintf(many + len, "domains = d%zu.example\n", j + (i / 2) * per);
    }
    assert_int_equal(ph_config_parse(FILE_NAME, many, len, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.n, PH_CONFIG_MAX_ERRORS + 1);
    assert_string_equal(errs.v[0].text, "t.conf:1032: relay 'r1': domain 'd0.example' is "
                                        "relayed by 'r0' already (line 6)");
    snprintf(note, sizeof(note), "t.conf: %zu more errors not shown",
             PH_CONFIG_MAX_RELAYS / 2 * per - PH_CONFIG_MAX_ERRORS);
    assert_string_equal(errs.v[PH_CONFIG_MAX_ERRORS].text, note);
    ph_config_errors_free(&errs);
    free(many);

    /* a flood of one-byte lines: errors are counted, not stored */
    char *flood = repeat("x\n", 1000000, "");
    assert_int_equal(ph_config_parse(FILE_NAME, flood, strlen(flood), &cfg, &errs), -EINVAL);
    assert_int_equal(errs.n, PH_CONFIG_MAX_ERRORS + 1);
    assert_string_equal(errs.v[PH_CONFIG_MAX_ERRORS].text, "t.conf: 999902 more errors not shown");
    ph_config_errors_free(&errs);
    free(flood);

    /* NULs everywhere, no newline */
    char zeros[4096] = {0};
    expect_first_error(zeros, sizeof(zeros), "t.conf:1: control character 0x00 at column 1", 3);
    /* errs may be NULL */
    assert_int_equal(ph_config_parse(FILE_NAME, zeros, sizeof(zeros), &cfg, NULL), -EINVAL);
    assert_null(cfg);
}

/* Pseudo-random bytes and line soup: errors, never a crash (the fuzzer goes further). */
static void test_random(void **state)
{
    (void)state;
    static const char *const pieces[] = {"workers", " = ", "=", "\n", " ", "\t", "[listener ",
                                         "]", "#", "listen", "*:25", ",", "1k", "\r\n", "\0",
                                         "yes", "tls_sni", "a:b:c", "\xff", "role = submission",
                                         "[domain ", "a.example", "transport = lmtp",
                                         "lmtp = [::1]:24", "users", "queue_retry_schedule",
                                         "1m", "relay_networks = ::1/64", "maildir = /%d/%u",
                                         "[relay ", "host = h:25", "host", "domains",
                                         "b.example", "tls = may", "auth_user = u",
                                         "auth_password_file = /p", "auth_insecure = yes",
                                         "dns_forwarders = ::1@53", "smtp_tls = encrypt",
                                         "smtp_tls_verify = yes", "tls_verify = no"};
    uint32_t seed = 12345;
    char buf[2048];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        while (len < sizeof(buf) - 32) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t n = p[0] ? strlen(p) : 1;
            memcpy(buf + len, p, n);
            len += n;
            if ((seed & 0xff) == 0)
                break;
        }
        ph_config *cfg = NULL;
        ph_config_errors errs;
        int r = ph_config_parse(FILE_NAME, buf, len, &cfg, &errs);
        assert_true(r == 0 || r == -EINVAL);
        if (r == 0)
            check_roundtrip("random", cfg);
        ph_config_free(cfg);
        ph_config_errors_free(&errs);
    }
}

/* --- files --------------------------------------------------------------------------------- */

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "store_dir = /s\n# a comment\n[listener x]\nlisten = *:25\nworkers = 2\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    ph_config *cfg = NULL;
    ph_config_errors errs;
    assert_int_equal(ph_config_load(path, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.n, 1);
    char want[128];
    snprintf(want, sizeof(want), "%s:5: workers: a global parameter, not allowed in a "
                                 "[listener] section", path);
    assert_string_equal(errs.v[0].text, want);
    ph_config_errors_free(&errs);
    unlink(path);

    assert_int_equal(ph_config_load(path, &cfg, &errs), -ENOENT);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
    assert_string_equal(errs.v[0].text, want);
    ph_config_errors_free(&errs);
    assert_int_equal(ph_config_load("/", &cfg, &errs), -EISDIR);
    ph_config_errors_free(&errs);
}

/* --- the parameter table and its man page -------------------------------------------------- */

static void test_params(void **state)
{
    (void)state;
    ph_config_param_info info;
    size_t n = 0;
    while (ph_config_param_info_get(n, &info) == 0) {
        assert_non_null(info.help);
        assert_true(strlen(info.help) > 10);
        n++;
    }
    assert_int_equal(n, 71);
    assert_int_equal(ph_config_param_info_get(0, &info), 0);
    assert_string_equal(info.name, "hostname");
    assert_int_equal(ph_config_param_info_get(4, &info), 0);
    assert_string_equal(info.name, "workers");
    assert_string_equal(info.values, "1..64");
    assert_string_equal(info.scope, "global");
    assert_int_equal(ph_config_param_info_get(10, &info), 0);
    assert_string_equal(info.name, "queue_retry_schedule");
    assert_string_equal(info.type, "list");
    assert_string_equal(info.def, "1m 5m 15m 1h 4h");
    assert_int_equal(ph_config_param_info_get(25, &info), 0);
    assert_string_equal(info.name, "smtp_tls");
    assert_string_equal(info.values, "none | may | encrypt");
    assert_string_equal(info.def, "may");
    assert_int_equal(ph_config_param_info_get(32, &info), 0);
    assert_string_equal(info.name, "smtp_mx_port");
    assert_non_null(strstr(info.help, "TESTS ONLY"));
    assert_int_equal(ph_config_param_info_get(51, &info), 0);
    assert_string_equal(info.name, "tls");
    assert_string_equal(info.scope, "listener");
    assert_null(info.def);
    assert_int_equal(ph_config_param_info_get(55, &info), 0);
    assert_string_equal(info.name, "transport");
    assert_string_equal(info.scope, "domain");
    assert_string_equal(info.type, "enum");
    assert_string_equal(info.values, "maildir | lmtp");
    assert_string_equal(info.def, "maildir");
    assert_int_equal(ph_config_param_info_get(63, &info), 0);
    assert_string_equal(info.name, "lmtp_timeout");
    assert_string_equal(info.values, "1s..1h");
    assert_int_equal(ph_config_param_info_get(65, &info), 0);
    assert_string_equal(info.name, "tls");
    assert_string_equal(info.scope, "relay");
    assert_string_equal(info.values, "none | starttls | implicit | may");
    assert_string_equal(info.def, "starttls");
    assert_int_equal(ph_config_param_info_get(70, &info), 0);
    assert_string_equal(info.name, "domains");
    assert_string_equal(info.type, "list");
    assert_int_equal(ph_config_param_info_get(71, &info), -ENOENT);
#ifdef POSTHORN_SOURCE_DIR
    FILE *f = fopen(POSTHORN_SOURCE_DIR "/docs/posthorn.conf.5", "r");
    assert_non_null(f);
    char *man = NULL;
    size_t cap = 0;
    ssize_t got = getdelim(&man, &cap, '\0', f);
    fclose(f);
    assert_true(got > 0);
    /* each entry: ".B name" then its scope, type, values and default in the next line (a name
     * with two rows, "tls", has two entries) */
    for (size_t i = 0; ph_config_param_info_get(i, &info) == 0; i++) {
        char entry[384];
        snprintf(entry, sizeof(entry), "\n.TP\n.B %s\n%s; %s%s%s; default %s", info.name,
                 info.scope, info.type, info.values[0] ? " " : "", info.values,
                 !info.def ? "by role" : info.def[0] ? info.def : "empty");
        if (!strstr(man, entry))
            fprintf(stderr, "docs/posthorn.conf.5: want '%s'\n", entry + 1);
        assert_non_null(strstr(man, entry));
    }
    free(man);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),   cmocka_unit_test(test_fields),
        cmocka_unit_test(test_dump_only_set), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_errors),   cmocka_unit_test(test_caps),
        cmocka_unit_test(test_random),   cmocka_unit_test(test_load),
        cmocka_unit_test(test_params),   cmocka_unit_test(test_domain_values),
        cmocka_unit_test(test_domains),  cmocka_unit_test(test_retry_schedule),
        cmocka_unit_test(test_expand_maildir), cmocka_unit_test(test_relay_values),
        cmocka_unit_test(test_relays),   cmocka_unit_test(test_delivery_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
