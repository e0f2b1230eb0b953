/*
 * config_table.c - the parameter table of posthorn.conf(5) (name, scope, type, default, bounds,
 * help) and the value types (parsing and printing of string, path, bool, uint, size, duration,
 * enum and list values, with their extra checks: addresses, networks, domain names, maildir
 * patterns, relay hosts and DNS forwarders, whose readers ph_config_expand_maildir(),
 * ph_config_relay_endpoint() and ph_config_forwarder() are here too, next to their checks).
 * The line parser and `dump` are in config.c, sections and the cross-field checks in
 * config_sections.c; they share config_internal.h.
 *
 * Owns no state: the table is read-only; slots belong to the ph_config they are in. A value that
 * is not acceptable is refused with the reason (BAD), never clamped; a value parser out of
 * memory returns NOMEM and leaves the value as it was.
 * Needs only libc (no libevent): the unit test and the fuzzer link it with config.c and
 * config_sections.c alone.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, strndup when built standalone */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/config_internal.h"

/* ---- value checks ----------------------------------------------------------------------- */

static bool host_ok(const char *s, size_t n)
{
    if (n > 253 || !only_chars(s, n, ".-") || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return false;
    return true;
}

static const char *check_hostname(const char *s)
{
    return !*s || host_ok(s, strlen(s)) ? NULL : "not a host name (letters, digits, '-', '.')";
}

/* The banner goes into the 220 reply: printable ASCII, short enough for one reply line. */
static const char *check_banner(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return "only printable ASCII is allowed in a reply";
    return strlen(s) > 200 ? "longer than 200 characters" : NULL;
}

static const char *check_account(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return NULL;
    return n <= 32 && s[0] != '-' && only_chars(s, n, "._-") ? NULL : "not a user or group name";
}

static bool port_ok(const char *s, unsigned long min)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return false;
    unsigned long port = strtoul(s, NULL, 10);
    return port >= min && port <= 65535;
}

static const char *check_unix_path(const char *path)
{
    return strlen(path) < 108 ? NULL : "unix socket path longer than 107 bytes";
}

/* An address to listen on (listening: "*" is every address, port 0 picks a free one) or to
 * connect to (neither makes sense there). */
static const char *check_address(const char *s, bool listening)
{
    const char *bad_port = listening ? "bad port (0..65535)" : "bad port (1..65535)";
    unsigned long min_port = listening ? 0 : 1;
    if (strncmp(s, "unix:", 5) == 0)
        return s[5] == '/' ? check_unix_path(s + 5)
                           : "a unix socket path must be absolute (unix:/path)";
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        char host[INET6_ADDRSTRLEN];
        struct in6_addr a;
        size_t n = close ? (size_t)(close - s - 1) : 0;
        if (!close || close[1] != ':' || n >= sizeof(host))
            return "expected [IPv6]:PORT";
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, &a) != 1)
            return "bad IPv6 address";
        return port_ok(close + 2, min_port) ? NULL : bad_port;
    }
    const char *colon = strrchr(s, ':');
    if (!colon)
        return listening ? "expected HOST:PORT, [IPv6]:PORT, *:PORT or unix:/path"
                         : "expected unix:/path, HOST:PORT or [IPv6]:PORT";
    size_t n = (size_t)(colon - s);
    if (!(listening && n == 1 && s[0] == '*') && !host_ok(s, n))
        return listening ? "bad host (an IPv4 address, a host name, [IPv6] or *)"
                         : "bad host (an IPv4 address, a host name or [IPv6])";
    return port_ok(colon + 1, min_port) ? NULL : bad_port;
}

static const char *check_listen(const char *s)
{
    return check_address(s, true);
}

static const char *check_lmtp(const char *s)
{
    return *s ? check_address(s, false) : NULL;
}

static const char *check_control_socket(const char *s)
{
    return check_unix_path(s);
}

/* NAME:CERTFILE:KEYFILE, exactly three non-empty parts. */
static const char *check_sni(const char *s)
{
    const char *a = strchr(s, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    if (!a || !b || strchr(b + 1, ':') || a == s || b == a + 1 || !b[1])
        return "expected NAME:CERTFILE:KEYFILE";
    return only_chars(s, (size_t)(a - s), ".-*") ? NULL : "bad server name before the first ':'";
}

/* ADDRESS or ADDRESS/PREFIX, IPv4 or IPv6 (a ':' tells which), as inet_pton reads them. */
static const char *check_network(const char *s)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof(addr))
        return "not a network (ADDRESS or ADDRESS/PREFIX, IPv4 or IPv6)";
    memcpy(addr, s, n);
    addr[n] = '\0';
    bool v6 = strchr(addr, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1)
        return "not a network (ADDRESS or ADDRESS/PREFIX, IPv4 or IPv6)";
    if (!slash)
        return NULL;
    size_t len = strlen(slash + 1);
    if (len == 0 || len > 3 || strspn(slash + 1, "0123456789") != len ||
        (len > 1 && slash[1] == '0') || strtoul(slash + 1, NULL, 10) > (v6 ? 128u : 32u))
        return v6 ? "bad prefix length (0..128 for IPv6)" : "bad prefix length (0..32 for IPv4)";
    return NULL;
}

/* ---- relay hosts and DNS forwarders ---------------------------------------------------- */

/* HOST, HOST:PORT, [IPv6] or [IPv6]:PORT: the host (no brackets) into host[size] and the port
 * text into *port ("" if none). NULL if fine, else what is wrong. size >= 256 holds any host
 * that is accepted. */
static const char *split_host_port(const char *s, char *host, size_t size, const char **port)
{
    const char *end, *colon = strchr(s, ':');
    struct in6_addr a;
    bool v6 = s[0] == '[';
    if (v6) {
        if (!(end = strchr(++s, ']')) || (end[1] && end[1] != ':'))
            return "expected [IPv6] or [IPv6]:PORT";
    } else if (colon && strchr(colon + 1, ':')) {
        return "an IPv6 address goes in brackets ([IPv6] or [IPv6]:PORT)";
    } else {
        end = colon ? colon : s + strlen(s);
        if (!host_ok(s, (size_t)(end - s)))
            return "bad host (an IPv4 address, a host name or [IPv6])";
    }
    size_t n = (size_t)(end - s);
    if (n >= size || (v6 && n >= INET6_ADDRSTRLEN))
        return v6 ? "bad IPv6 address" : "host too long";
    memcpy(host, s, n);
    host[n] = '\0';
    if (v6 && inet_pton(AF_INET6, host, &a) != 1)
        return "bad IPv6 address";
    end += v6; /* past the ']' */
    *port = end[0] == ':' ? end + 1 : "";
    return end[0] == ':' && !port_ok(end + 1, 1) ? "bad port (1..65535)" : NULL;
}

static const char *check_relay_host(const char *s)
{
    char host[256];
    const char *port;
    return *s ? split_host_port(s, host, sizeof(host), &port) : NULL; /* "": a cross check */
}

int ph_config_relay_endpoint(const ph_config_relay *r, char *host, size_t size, unsigned *port)
{
    char h[256];
    const char *p;
    if (size)
        host[0] = '\0';
    if (!*r->host || split_host_port(r->host, h, sizeof(h), &p))
        return -EINVAL;
    *port = *p ? (unsigned)strtoul(p, NULL, 10) : r->tls == PH_RELAY_TLS_IMPLICIT ? 465 : 25;
    return (size_t)snprintf(host, size, "%s", h) < size ? 0 : -ENOSPC;
}

/* IP or IP@PORT (the '@' keeps a port apart from an IPv6 address's colons): the address into
 * ip[INET6_ADDRSTRLEN], the port text into *port ("" if none). NULL if fine. */
static const char *split_forwarder(const char *s, char *ip, const char **port)
{
    const char *at = strchr(s, '@');
    unsigned char bin[sizeof(struct in6_addr)];
    size_t n = at ? (size_t)(at - s) : strlen(s);
    if (n == 0 || n >= INET6_ADDRSTRLEN)
        return "not an IP address (IP or IP@PORT, IPv4 or IPv6)";
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(strchr(ip, ':') ? AF_INET6 : AF_INET, ip, bin) != 1)
        return "not an IP address (IP or IP@PORT, IPv4 or IPv6)";
    *port = at ? at + 1 : "";
    return at && !port_ok(at + 1, 1) ? "bad port after '@' (1..65535)" : NULL;
}

static const char *check_forwarder(const char *s)
{
    char ip[INET6_ADDRSTRLEN];
    const char *port;
    return split_forwarder(s, ip, &port);
}

int ph_config_forwarder(const char *entry, char *ip, size_t size, unsigned *port)
{
    char a[INET6_ADDRSTRLEN];
    const char *p;
    if (size)
        ip[0] = '\0';
    if (split_forwarder(entry, a, &p))
        return -EINVAL;
    *port = *p ? (unsigned)strtoul(p, NULL, 10) : 53;
    return (size_t)snprintf(ip, size, "%s", a) < size ? 0 : -ENOSPC;
}

/* ---- domain names and maildir patterns ------------------------------------------------- */

bool ph_cfg_domain_name_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') { /* a label ends: s[i - label .. i) */
            if (label == 0 || label > 63 || s[i - label] == '-' || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (is_alnum((unsigned char)s[i]) || s[i] == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* Whether s can stand for one name in a path without leaving the directory it is put in. */
static bool path_part_ok(const char *s)
{
    return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/');
}

/* Whether every '%' in pattern is %u, %d or %%. */
static bool pattern_ok(const char *pattern)
{
    for (const char *p = strchr(pattern, '%'); p; p = strchr(p + 2, '%'))
        if (!p[1] || !strchr("ud%", p[1]))
            return false;
    return true;
}

int ph_config_expand_maildir(const char *pattern, const char *user, const char *domain,
                             char *out, size_t size)
{
    size_t o = 0; /* length of the full result so far, written or not */
    if (size)
        out[0] = '\0';
    if (pattern[0] != '/' || !pattern_ok(pattern) || !path_part_ok(user) ||
        !path_part_ok(domain))
        return -EINVAL;
    for (const char *p = pattern; *p; p++) {
        const char *put = p; /* a literal byte, or the '%' of "%%" */
        size_t n = 1;
        bool name = *p == '%' && *++p != '%';
        if (name) {
            put = *p == 'u' ? user : domain;
            n = strlen(put);
        }
        for (size_t i = 0; i < n; i++, o++)
            if (o + 1 < size)
                out[o] = name ? ascii_lower(put[i]) : put[i];
    }
    if (size)
        out[o < size ? o : size - 1] = '\0';
    return o < size ? 0 : -ENOSPC;
}

/* One entry of queue_retry_schedule. */
static const char *check_retry(const char *s)
{
    uint64_t ms = 0;
    int r = ph_cfg_duration_ms(s, &ms);
    if (r == BAD)
        return "not a duration (seconds, or a number with ms, s, m, h or d)";
    return r == 0 && ms >= 1000 && ms <= 7 * 86400000ull ? NULL : "out of range (1s..7d)";
}

/* A maildir pattern: absolute, and every '%' is %u, %d or %% (the expansion decides). */
static const char *check_maildir(const char *s)
{
    if (s[0] != '/')
        return "must be an absolute path (starting with '/')";
    return ph_config_expand_maildir(s, "u", "d", NULL, 0) == -EINVAL
               ? "only %u (user), %d (domain) and %% may follow '%'"
               : NULL;
}

/* An entry of users: a local part. Blanks and commas split list entries and control bytes are
 * refused with their line, so neither can reach this check. */
static const char *check_user(const char *s)
{
    if (strlen(s) > 64)
        return "longer than 64 bytes (a local part)";
    return strchr(s, '@') ? "a local part, without '@'" : NULL;
}

/* LOCAL or LOCAL@DOMAIN, without blanks. */
static const char *check_catch_all(const char *s)
{
    const char *at = strchr(s, '@');
    size_t local = at ? (size_t)(at - s) : strlen(s);
    if (!*s)
        return NULL;
    if (strpbrk(s, " \t") || local == 0 || local > 64 || (at && !host_ok(at + 1, strlen(at + 1))))
        return "not a local part (at most 64 bytes) or LOCAL@DOMAIN";
    return NULL;
}

static const char *check_delimiter(const char *s)
{
    if (*s && (s[1] || !strchr("+-_=.", s[0])))
        return "one of + - _ = . (or empty: none)";
    return NULL;
}

/* An entry of a relay's domains: named as a [domain] section is. */
static const char *check_relay_domain(const char *s)
{
    return ph_cfg_domain_name_ok(s) ? NULL
                                    : "not a domain name (letters, digits, '-' and '.', at most "
                                      "253 bytes; labels of 1 to 63, not starting or ending with "
                                      "'-')";
}

/* ---- the parameter table ---------------------------------------------------------------- */

static const char *const w_level[] = {"error", "warn", "info", "debug", NULL};
static const char *const w_target[] = {"stderr", "syslog", NULL};
static const char *const w_delivery[] = {"store", "discard", "queue", NULL};
static const char *const w_role[] = {"mx", "submission", "submissions", NULL};
static const char *const w_tls[] = {"none", "starttls", "implicit", NULL};
static const char *const w_auth[] = {"none", "tls", "insecure", NULL};
static const char *const w_version[] = {"TLSv1.2", "TLSv1.3", NULL};
static const char *const w_transport[] = {"maildir", "lmtp", NULL};
static const char *const w_smtp_tls[] = {"none", "may", "encrypt", NULL};
static const char *const w_relay_tls[] = {"none", "starttls", "implicit", "may", NULL};

#define G(f) .scope = S_GLOBAL, .offset = offsetof(ph_config_global, f)
#define B(f) .scope = S_BOTH, .offset = offsetof(ph_config_shared, f)
#define L(f) .scope = S_LISTENER, .offset = offsetof(ph_config_listener, f)
#define D(f) .scope = S_DOMAIN, .offset = offsetof(ph_config_domain, f)
#define R(f) .scope = S_RELAY, .offset = offsetof(ph_config_relay, f)
#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

const param ph_cfg_params[] = {
    {.name = "hostname", .type = T_STRING, G(hostname), .def = "", .check = check_hostname,
     .help = "name in the banner, EHLO reply and Received: (empty: the machine's host name)"},
    {.name = "banner", .type = T_STRING, G(banner), .def = "Posthorn", .check = check_banner,
     .help = "text after \"220 HOSTNAME ESMTP\" in the greeting"},
    {.name = "user", .type = T_STRING, G(user), .def = "", .check = check_account,
     .help = "user to switch to after binding the listeners (empty: no privilege drop)"},
    {.name = "group", .type = T_STRING, G(group), .def = "", .check = check_account,
     .help = "group to switch to (empty: the user's primary group)"},
    {.name = "workers", .type = T_UINT, G(workers), .def = "1", .min = 1, .max = 64,
     .help = "worker processes, each with its own event loop"},
    {.name = "log_level", .type = T_ENUM, G(log_level), .def = "info", .words = w_level,
     .help = "least important log lines written"},
    {.name = "log_target", .type = T_ENUM, G(log_target), .def = "stderr", .words = w_target,
     .help = "where log lines go"},
    {.name = "delivery", .type = T_ENUM, G(delivery), .def = "store", .words = w_delivery,
     .help = "accepted messages are stored in store_dir, discarded, or queued in queue_dir"},
    {.name = "store_dir", .type = T_PATH, G(store_dir), .def = "",
     .help = "directory for accepted messages (.eml and .json); needed by delivery = store"},
    {.name = "queue_dir", .type = T_PATH, G(queue_dir), .def = "/var/spool/posthorn",
     .help = "the durable queue (incoming/, queue/, corrupt/) for delivery = queue"},
    {.name = "queue_retry_schedule", .type = T_LIST, G(queue_retry_schedule),
     .def = "1m 5m 15m 1h 4h", .max = PH_CONFIG_MAX_RETRIES, .check = check_retry,
     .help = "delays between delivery attempts (1s..7d each); the last one repeats"},
    {.name = "queue_lifetime", .type = T_DURATION, G(queue_lifetime_ms), .def = "5d", .min = MIN,
     .max = 60 * DAY, .help = "then a message's undelivered recipients fail and a bounce is sent"},
    {.name = "queue_concurrency", .type = T_UINT, G(queue_concurrency), .def = "20", .min = 1,
     .max = 1000, .help = "delivery attempts running at once"},
    {.name = "destination_concurrency", .type = T_UINT, G(destination_concurrency), .def = "10",
     .min = 1, .max = 1000,
     .help = "delivery sessions at once to one destination (an LMTP server, relay or domain)"},
    {.name = "destination_rate", .type = T_UINT, G(destination_rate), .def = "0", .min = 0,
     .max = 100000, .help = "new sessions per second to one destination domain, 0 = no limit"},
    {.name = "control_socket", .type = T_PATH, G(control_socket), .def = "",
     .check = check_control_socket,
     .help = "unix socket of `posthorn queue` (empty: QUEUE_DIR/control)"},
    {.name = "passwd_file", .type = T_PATH, G(passwd_file), .def = "",
     .help = "user:crypt-hash lines checked by AUTH; needed when a listener offers AUTH"},
    {.name = "auth_fail_limit", .type = T_UINT, G(auth_fail_limit), .def = "5", .min = 1,
     .max = 1000, .help = "failed AUTH attempts per client address before 421 and close"},
    {.name = "auth_fail_delay", .type = T_DURATION, G(auth_fail_delay_ms), .def = "1s",
     .min = 0, .max = 10 * MIN, .help = "delay after a failed AUTH, doubled per further failure"},
    {.name = "tls_sni", .type = T_LIST, G(tls_sni), .def = "", .check = check_sni,
     .help = "more certificates chosen by SNI, NAME:CERTFILE:KEYFILE each (repeatable)"},
    {.name = "max_connections", .type = T_UINT, G(max_connections), .def = "10000", .min = 1,
     .max = 1000000, .help = "open sessions per worker process (421 4.7.0 beyond)"},
    {.name = "max_received_headers", .type = T_UINT, G(max_received_headers), .def = "100",
     .min = 1, .max = 1000, .help = "more Received: headers is a mail loop (554 5.4.6)"},
    {.name = "relay_networks", .type = T_LIST, G(relay_networks), .def = "",
     .check = check_network,
     .help = "clients in these networks (ADDR or ADDR/PREFIX) may relay to other domains"},
    {.name = "dns_forwarders", .type = T_LIST, G(dns_forwarders), .def = "",
     .check = check_forwarder,
     .help = "resolvers to ask, IP or IP@PORT (empty: full recursion with DNSSEC validation)"},
    {.name = "dns_timeout", .type = T_DURATION, G(dns_timeout_ms), .def = "10s", .min = SEC,
     .max = 2 * MIN, .help = "longest wait for one DNS lookup, retries included"},
    {.name = "smtp_tls", .type = T_ENUM, G(smtp_tls), .def = "may", .words = w_smtp_tls,
     .help = "TLS to MX hosts: none, STARTTLS when offered (may), or STARTTLS required"},
    {.name = "smtp_tls_verify", .type = T_BOOL, G(smtp_tls_verify), .def = "no",
     .help = "check MX hosts' certificates (needs smtp_tls = encrypt)"},
    {.name = "smtp_connect_timeout", .type = T_DURATION, G(smtp_connect_timeout_ms), .def = "30s",
     .min = SEC, .max = 5 * MIN, .help = "longest wait for a TCP connection to an SMTP server"},
    {.name = "smtp_command_timeout", .type = T_DURATION, G(smtp_command_timeout_ms), .def = "5m",
     .min = SEC, .max = HOUR, .help = "longest wait for an SMTP server's reply to a command"},
    {.name = "smtp_data_timeout", .type = T_DURATION, G(smtp_data_timeout_ms), .def = "10m",
     .min = SEC, .max = HOUR, .help = "longest time for sending a message's data and its reply"},
    {.name = "smtp_connect_stagger", .type = T_DURATION, G(smtp_connect_stagger_ms),
     .def = "250ms", .min = 0, .max = 10 * SEC,
     .help = "pause before trying the next host of equal preference (Happy Eyeballs)"},
    {.name = "smtp_host_memory", .type = T_DURATION, G(smtp_host_memory_ms), .def = "10m",
     .min = 0, .max = DAY, .help = "how long a host's connect latency and failures are remembered"},
    {.name = "smtp_mx_port", .type = T_UINT, G(smtp_mx_port), .def = "25", .min = 1,
     .max = 65535, .help = "FOR TESTS ONLY: port of MX hosts instead of 25"},

    {.name = "max_message_size", .type = T_SIZE, B(max_message_size), .def = "32M",
     .min = 1 << 10, .max = 1 << 30, .help = "largest message accepted (552 5.3.4 beyond)"},
    {.name = "max_recipients", .type = T_UINT, B(max_recipients), .def = "1000", .min = 1,
     .max = 100000, .help = "recipients per message (452 4.5.3 beyond)"},
    {.name = "max_errors", .type = T_UINT, B(max_errors), .def = "20", .min = 1, .max = 1000,
     .help = "protocol errors per session before 421 4.7.0 and close"},
    {.name = "max_line", .type = T_UINT, B(max_line), .def = "512", .min = 512, .max = 65536,
     .help = "longest command line in bytes with its CRLF (500 5.5.6 beyond)"},
    {.name = "max_per_ip", .type = T_UINT, B(max_per_ip), .def = "100", .min = 0,
     .max = 100000, .help = "open sessions per client address, 0 = no limit (421 4.7.0 beyond)"},
    {.name = "idle_timeout", .type = T_DURATION, B(idle_timeout_ms), .def = "300s", .min = SEC,
     .max = DAY, .help = "a session idle this long is closed with 421 4.4.2"},
    {.name = "session_timeout", .type = T_DURATION, B(session_timeout_ms), .def = "1h",
     .min = SEC, .max = 7 * DAY, .help = "longest session (421 4.4.2)"},
    {.name = "greeting_delay", .type = T_DURATION, B(greeting_delay_ms), .def = "0", .min = 0,
     .max = 60 * SEC, .help = "wait before the banner; clients talking first get 554 5.5.0"},
    {.name = "shutdown_grace", .type = T_DURATION, B(shutdown_grace_ms), .def = "30s",
     .min = 0, .max = HOUR, .help = "on SIGTERM, time messages in flight get to finish"},
    {.name = "handshake_timeout", .type = T_DURATION, B(handshake_timeout_ms), .def = "30s",
     .min = SEC, .max = 10 * MIN, .help = "longest TLS handshake before the connection is closed"},
    {.name = "tls_cert", .type = T_PATH, B(tls_cert), .def = "",
     .help = "certificate chain file (PEM)"},
    {.name = "tls_key", .type = T_PATH, B(tls_key), .def = "",
     .help = "private key file (PEM) of tls_cert"},
    {.name = "tls_min_version", .type = T_ENUM, B(tls_min_version), .def = "TLSv1.2",
     .words = w_version, .help = "oldest TLS version accepted"},
    {.name = "tls_ciphers", .type = T_STRING, B(tls_ciphers), .def = "",
     .help = "OpenSSL cipher list for TLS 1.2 (empty: OpenSSL's default)"},
    {.name = "tls_ciphersuites", .type = T_STRING, B(tls_ciphersuites), .def = "",
     .help = "OpenSSL cipher suites for TLS 1.3 (empty: OpenSSL's default)"},
    {.name = "tls_session_tickets", .type = T_BOOL, B(tls_session_tickets), .def = "yes",
     .help = "offer TLS session tickets (some Microsoft clients fail with them)"},

    {.name = "listen", .type = T_LIST, L(listen), .def = "", .check = check_listen,
     .help = "where to listen (required, repeatable): HOST:PORT, [IPv6]:PORT, *:PORT, unix:/path"},
    {.name = "role", .type = T_ENUM, L(role), .def = "mx", .words = w_role,
     .help = "mx (port 25), submission (587) or submissions (465, implicit TLS)"},
    {.name = "tls", .type = T_ENUM, L(tls), .role_def = {-1, -1, PH_TLS_IMPLICIT}, .words = w_tls,
     .help = "default: implicit for submissions, else starttls if tls_cert is set, else none"},
    {.name = "require_tls", .type = T_BOOL, L(require_tls), .role_def = {0, 1, 1},
     .help = "refuse MAIL before TLS (530 5.7.0); default: no for mx, yes otherwise"},
    {.name = "auth", .type = T_ENUM, L(auth), .role_def = {PH_AUTH_NONE, PH_AUTH_TLS, PH_AUTH_TLS},
     .words = w_auth, .help = "AUTH offered: never, only under TLS, or also in clear text; "
                              "default: none for mx, tls otherwise"},
    {.name = "require_auth", .type = T_BOOL, L(require_auth), .role_def = {0, 1, 1},
     .help = "refuse MAIL before AUTH (530 5.7.0); default: no for mx, yes otherwise"},

    {.name = "transport", .type = T_ENUM, D(transport), .def = "maildir", .words = w_transport,
     .help = "how mail for the domain's users is delivered: into a Maildir or by LMTP"},
    {.name = "maildir", .type = T_STRING, D(maildir), .def = "/var/mail/%d/%u/Maildir",
     .check = check_maildir,
     .help = "a user's Maildir: %u the local part, %d the domain, %% a '%'"},
    {.name = "mailboxes", .type = T_PATH, D(mailboxes), .def = "",
     .help = "file listing the domain's users (empty: none)"},
    {.name = "users", .type = T_LIST, D(users), .def = "", .check = check_user,
     .help = "local parts of the domain's users, inline (repeatable)"},
    {.name = "aliases", .type = T_PATH, D(aliases), .def = "",
     .help = "aliases file of the domain (empty: none)"},
    {.name = "catch_all", .type = T_STRING, D(catch_all), .def = "", .check = check_catch_all,
     .help = "local part or address receiving mail for unknown users (empty: none, 550)"},
    {.name = "recipient_delimiter", .type = T_STRING, D(recipient_delimiter), .def = "+",
     .check = check_delimiter, .help = "separates a local part from its extension (empty: none)"},
    {.name = "lmtp", .type = T_STRING, D(lmtp), .def = "", .check = check_lmtp,
     .help = "LMTP server for transport = lmtp: unix:/path, HOST:PORT or [IPv6]:PORT"},
    {.name = "lmtp_timeout", .type = T_DURATION, D(lmtp_timeout_ms), .def = "5m", .min = SEC,
     .max = HOUR, .help = "longest wait for the LMTP server at any step"},

    {.name = "host", .type = T_STRING, R(host), .def = "", .check = check_relay_host,
     .help = "the smarthost (required): HOST, HOST:PORT, [IPv6] or [IPv6]:PORT"},
    {.name = "tls", .type = T_ENUM, R(tls), .def = "starttls", .words = w_relay_tls,
     .help = "none, STARTTLS required, TLS from the first byte (465), or STARTTLS if offered"},
    {.name = "tls_verify", .type = T_BOOL, R(tls_verify), .def = "yes",
     .help = "check the relay's certificate (starttls and implicit; no with none or may)"},
    {.name = "auth_user", .type = T_STRING, R(auth_user), .def = "",
     .help = "user name for AUTH at the relay (empty: no AUTH)"},
    {.name = "auth_password_file", .type = T_PATH, R(auth_password_file), .def = "",
     .help = "file whose first line is the AUTH password; needed with auth_user"},
    {.name = "auth_insecure", .type = T_BOOL, R(auth_insecure), .def = "no",
     .help = "allow AUTH with tls = none or may (the password may travel in clear text)"},
    {.name = "domains", .type = T_LIST, R(domains), .def = "", .check = check_relay_domain,
     .help = "recipient domains sent through this relay (empty: every non-local domain)"},
};

#define NPARAMS (sizeof(ph_cfg_params) / sizeof(ph_cfg_params[0]))
_Static_assert(NPARAMS <= PH_CONFIG_MAX_PARAMS, "raise PH_CONFIG_MAX_PARAMS");
const size_t ph_cfg_nparams = NPARAMS;

const param *ph_cfg_find_param_in(const char *name, unsigned kinds)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if ((ph_cfg_params[i].scope & kinds) && strcmp(ph_cfg_params[i].name, name) == 0)
            return &ph_cfg_params[i];
    return NULL;
}

const param *ph_cfg_find_param(const char *name)
{
    return ph_cfg_find_param_in(name, S_GLOBAL | S_LISTENER | S_DOMAIN | S_RELAY);
}

unsigned ph_cfg_scopes_of(const char *name)
{
    unsigned scopes = 0;
    for (size_t i = 0; i < NPARAMS; i++)
        if (strcmp(ph_cfg_params[i].name, name) == 0)
            scopes |= ph_cfg_params[i].scope;
    return scopes;
}

/* Where parameter p lives in section sec (a global-only one: in the global scope whatever the
 * section, as the public API reads them). */
void *ph_cfg_slot(const ph_config *cfg, section sec, const param *p)
{
    const void *base = p->scope == S_GLOBAL     ? (const void *)&cfg->g
                       : p->scope == S_LISTENER ? (const void *)sec.l
                       : p->scope == S_DOMAIN   ? (const void *)sec.d
                       : p->scope == S_RELAY    ? (const void *)sec.r
                       : sec.l                  ? (const void *)&sec.l->s
                                                : (const void *)&cfg->s;
    return (char *)base + p->offset;
}

unsigned *ph_cfg_set_lines(const ph_config *cfg, section sec)
{
    const unsigned *set = sec.kind == S_DOMAIN     ? sec.d->set_line
                          : sec.kind == S_RELAY    ? sec.r->set_line
                          : sec.kind == S_LISTENER ? sec.l->set_line
                                                   : cfg->set_line;
    return (unsigned *)set;
}

/* ---- value types ------------------------------------------------------------------------ */

/* s for a message: at most 56 bytes of it, anything but printable ASCII as \xNN (no byte of
 * the file can reach a terminal raw), "..." if shortened. */
const char *ph_cfg_quote(qbuf *q, const char *s)
{
    size_t o = 0;
    for (; *s && o < 56; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            q->s[o++] = (char)c;
        else
            o += (size_t)snprintf(q->s + o, 5, "\\x%02x", c);
    }
    snprintf(q->s + o, sizeof(q->s) - o, "%s", *s ? "..." : "");
    return q->s;
}

typedef struct unit {
    const char *suffix;
    uint64_t mul;
} unit;

/* Per numeric type: suffixes accepted (bare number last), suffixes printed (largest first,
 * ending with a factor 1), and what the value should look like. */
typedef struct num_format {
    const unit *in, *out;
    const char *shape;
} num_format;

static const unit u_plain[] = {{"", 1}, {NULL, 0}};
static const unit u_size_in[] = {{"k", 1 << 10}, {"K", 1 << 10}, {"m", 1 << 20}, {"M", 1 << 20},
                                 {"g", 1 << 30}, {"G", 1 << 30}, {"", 1}, {NULL, 0}};
static const unit u_size_out[] = {{"G", 1 << 30}, {"M", 1 << 20}, {"k", 1 << 10}, {"", 1}};
static const unit u_dur_in[] = {{"ms", 1},     {"s", SEC},   {"m", MIN},  {"h", HOUR},
                                {"d", DAY},    {"", SEC},    {NULL, 0}};
static const unit u_dur_out[] = {{"d", DAY}, {"h", HOUR}, {"m", MIN}, {"s", SEC}, {"ms", 1}};

static const num_format num_formats[T__N] = {
    [T_UINT] = {u_plain, u_plain, "a number"},
    [T_SIZE] = {u_size_in, u_size_out, "a size (a number, optionally with k, M or G)"},
    [T_DURATION] = {u_dur_in, u_dur_out,
                    "a duration (seconds, or a number with ms, s, m, h or d)"},
};

static uint64_t num_get(ptype t, const void *slot)
{
    return t == T_UINT ? *(const unsigned *)slot : *(const uint64_t *)slot;
}

static void format_number(ptype t, uint64_t v, char *buf, size_t size)
{
    const unit *u = num_formats[t].out;
    while (v != 0 && v % u->mul != 0)
        u++;
    snprintf(buf, size, "%" PRIu64 "%s", v / u->mul, v ? u->suffix : "");
}

/* Digits, then one of units' suffixes (exactly): 0; BAD if not that shape; 1 if the value
 * overflows 64 bits (reported as out of range, like any too big number). */
static int read_scaled(const char *v, const unit *units, uint64_t *out)
{
    const char *s = v;
    while (is_digit(*s))
        s++;
    const unit *u = units;
    while (u->suffix && strcmp(s, u->suffix) != 0)
        u++;
    if (s == v || !u->suffix)
        return BAD;
    uint64_t n = 0;
    for (const char *p = v; p < s; p++)
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
            return 1;
    return __builtin_mul_overflow(n, u->mul, out) ? 1 : 0;
}

int ph_cfg_duration_ms(const char *s, uint64_t *ms)
{
    return read_scaled(s, u_dur_in, ms);
}

static int parse_number(const param *p, const char *v, void *slot, char *why, size_t n)
{
    const num_format *f = &num_formats[p->type];
    qbuf q;
    uint64_t x = 0;
    int r = read_scaled(v, f->in, &x);
    if (r == BAD) {
        snprintf(why, n, "'%s' is not %s", ph_cfg_quote(&q, v), f->shape);
        return BAD;
    }
    if (r == 1 || x < p->min || x > p->max) {
        char lo[32], hi[32];
        format_number(p->type, p->min, lo, sizeof(lo));
        format_number(p->type, p->max, hi, sizeof(hi));
        snprintf(why, n, "'%s' is out of range (%s..%s)", ph_cfg_quote(&q, v), lo, hi);
        return BAD;
    }
    if (p->type == T_UINT)
        *(unsigned *)slot = (unsigned)x; /* max <= UINT_MAX by the table */
    else
        *(uint64_t *)slot = x;
    return 0;
}

static void print_number(const param *p, const void *slot, FILE *out)
{
    char buf[32];
    format_number(p->type, num_get(p->type, slot), buf, sizeof(buf));
    fputs(buf, out);
}

static int parse_string(const param *p, const char *v, void *slot, char *why, size_t n)
{
    const char *bad = strlen(v) > PH_CONFIG_MAX_VALUE ? "longer than 4096 bytes"
                      : p->check                       ? p->check(v)
                                                       : NULL;
    qbuf q;
    if (bad) {
        snprintf(why, n, "'%s': %s", ph_cfg_quote(&q, v), bad);
        return BAD;
    }
    char *copy = strdup(v);
    if (!copy)
        return NOMEM;
    free(*(char **)slot);
    *(char **)slot = copy;
    return 0;
}

static void print_string(const param *p, const void *slot, FILE *out)
{
    (void)p;
    fputs(*(char *const *)slot, out);
}

static const struct {
    const char *word;
    bool value;
} bool_words[] = {{"yes", true}, {"no", false}, {"true", true}, {"false", false},
                  {"on", true},  {"off", false}, {"1", true},   {"0", false}};

static int parse_bool(const param *p, const char *v, void *slot, char *why, size_t n)
{
    qbuf q;
    (void)p;
    for (size_t i = 0; i < sizeof(bool_words) / sizeof(bool_words[0]); i++)
        if (strcasecmp(v, bool_words[i].word) == 0) {
            *(bool *)slot = bool_words[i].value;
            return 0;
        }
    snprintf(why, n, "'%s' is not yes or no (also true/false, on/off, 1/0)", ph_cfg_quote(&q, v));
    return BAD;
}

static void print_bool(const param *p, const void *slot, FILE *out)
{
    (void)p;
    fputs(*(const bool *)slot ? "yes" : "no", out);
}

static void join_words(const char *const *w, const char *sep, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; w[i] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? sep : "", w[i]);
}

static int parse_enum(const param *p, const char *v, void *slot, char *why, size_t n)
{
    char words[96];
    qbuf q;
    for (int i = 0; p->words[i]; i++)
        if (strcasecmp(v, p->words[i]) == 0) {
            *(int *)slot = i;
            return 0;
        }
    join_words(p->words, ", ", words, sizeof(words));
    snprintf(why, n, "'%s' is not one of %s", ph_cfg_quote(&q, v), words);
    return BAD;
}

static void print_enum(const param *p, const void *slot, FILE *out)
{
    fputs(p->words[*(const int *)slot], out);
}

static void list_release(ph_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Next word of a list value (separated by blanks and/or commas): its start, or NULL. */
static const char *next_word(const char *s, size_t *len)
{
    s += strspn(s, " \t,");
    *len = strcspn(s, " \t,");
    return *len ? s : NULL;
}

/* Appends every word or, if one is bad or the list would grow too long, none. */
static int parse_list(const param *p, const char *v, void *slot, char *why, size_t n)
{
    ph_strlist *l = slot;
    size_t count = 0, len, k = 0, cap = p->max ? (size_t)p->max : PH_CONFIG_MAX_LIST;
    for (const char *s = v; (s = next_word(s, &len)); s += len)
        count++;
    if (count == 0)
        return 0;
    if (count > cap - l->n) {
        snprintf(why, n, "more than %zu entries", cap);
        return BAD;
    }
    char **grown = realloc(l->v, (l->n + count) * sizeof(*grown));
    if (!grown)
        return NOMEM;
    l->v = grown;
    for (const char *s = v; (s = next_word(s, &len)); s += len, k++) {
        char *w = strndup(s, len);
        const char *bad = !w                          ? NULL
                          : len > PH_CONFIG_MAX_VALUE ? "longer than 4096 bytes"
                          : p->check                  ? p->check(w)
                                                      : NULL;
        qbuf q;
        if (!w || bad) {
            if (bad)
                snprintf(why, n, "'%s': %s", ph_cfg_quote(&q, w), bad);
            free(w);
            while (k > 0)
                free(l->v[l->n + --k]);
            return bad ? BAD : NOMEM;
        }
        l->v[l->n + k] = w;
    }
    l->n += count;
    return 0;
}

static void print_list(const param *p, const void *slot, FILE *out)
{
    const ph_strlist *l = slot;
    (void)p;
    for (size_t i = 0; i < l->n; i++)
        fprintf(out, "%s%s", i ? " " : "", l->v[i]);
}

const type_ops ph_cfg_types[T__N] = {
    [T_STRING] = {"string", sizeof(char *), parse_string, print_string, true},
    [T_PATH] = {"path", sizeof(char *), parse_string, print_string, true},
    [T_BOOL] = {"bool", sizeof(bool), parse_bool, print_bool, false},
    [T_UINT] = {"uint", sizeof(unsigned), parse_number, print_number, false},
    [T_SIZE] = {"size", sizeof(uint64_t), parse_number, print_number, false},
    [T_DURATION] = {"duration", sizeof(uint64_t), parse_number, print_number, false},
    [T_ENUM] = {"enum", sizeof(int), parse_enum, print_enum, false},
    [T_LIST] = {"list", sizeof(ph_strlist), parse_list, print_list, true},
};

void ph_cfg_release_value(const param *p, void *slot)
{
    if (p->type == T_LIST) {
        list_release(slot);
    } else if (p->type == T_STRING || p->type == T_PATH) {
        free(*(char **)slot);
        *(char **)slot = NULL;
    }
}

/* dst = src for one parameter; deep copies. -1 if out of memory. */
int ph_cfg_copy_value(const param *p, void *dst, const void *src)
{
    ph_cfg_release_value(p, dst);
    if (p->type == T_STRING || p->type == T_PATH)
        return (*(char **)dst = strdup(*(char *const *)src)) ? 0 : -1;
    if (p->type == T_LIST) {
        const ph_strlist *from = src;
        for (size_t i = 0; i < from->n; i++)
            if (parse_list(p, from->v[i], dst, NULL, 0) != 0)
                return -1;
        return 0;
    }
    memcpy(dst, src, ph_cfg_types[p->type].size);
    return 0;
}

void ph_cfg_describe_values(const param *p, char *buf, size_t size)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    if (p->words) {
        join_words(p->words, " | ", buf, size);
    } else if (p->type == T_BOOL) {
        snprintf(buf, size, "yes | no");
    } else if (num_formats[p->type].in) {
        format_number(p->type, p->min, lo, sizeof(lo));
        format_number(p->type, p->max, hi, sizeof(hi));
        snprintf(buf, size, "%s..%s", lo, hi);
    }
}
