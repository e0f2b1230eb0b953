/*
 * config.h - the posthorn configuration file, posthorn.conf(5): the one table of parameters,
 * the parser, the effective values (listener overrides and role defaults applied), the local
 * domains ([domain NAME] sections), the relays ([relay NAME] sections: smarthosts for all or
 * chosen domains), `dump`, and small helpers over the parsed values (the retry schedule in
 * milliseconds, Maildir path expansion, the relay and DNS forwarder addresses).
 *
 * A loaded ph_config owns every string and array it points to; ph_config_free() releases all
 * of it. Parsing never stops at the first problem: every error is collected as "FILE:LINE:
 * message" (in line order) and a config is only handed out when there was none. Memory stays
 * O(input); every count has a limit below. No global mutable state: configs are independent.
 * Public functions return 0 or a negative errno.
 */
#ifndef POSTHORN_DAEMON_CONFIG_H
#define POSTHORN_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "posthorn/posthorn.h"

#define PH_CONFIG_MAX_FILE (16u << 20) /* bytes in a configuration file */
#define PH_CONFIG_MAX_LINE 65536       /* bytes in a logical line (continuations joined) */
#define PH_CONFIG_MAX_VALUE 4096       /* bytes in a string value or a list entry: a dump line
                                          (key = value) always fits in PH_CONFIG_MAX_LINE */
#define PH_CONFIG_MAX_LISTENERS 256    /* [listener] sections */
#define PH_CONFIG_MAX_DOMAINS 1024     /* [domain] sections */
#define PH_CONFIG_MAX_RELAYS 256       /* [relay] sections */
#define PH_CONFIG_MAX_LIST 1024        /* entries in one list parameter (some have less) */
#define PH_CONFIG_MAX_RETRIES 32       /* entries in queue_retry_schedule */
#define PH_CONFIG_MAX_ERRORS 100       /* messages kept; further ones are only counted */
#define PH_CONFIG_MAX_PARAMS 96        /* room for the parameter table (checked at build) */

/* Enum parameters: the values are the indexes of the words in the table, in this order. */
typedef enum ph_log_target { PH_LOG_STDERR, PH_LOG_SYSLOG } ph_log_target;
typedef enum ph_delivery { PH_DELIVERY_STORE, PH_DELIVERY_DISCARD, PH_DELIVERY_QUEUE } ph_delivery;
typedef enum ph_role { PH_ROLE_MX, PH_ROLE_SUBMISSION, PH_ROLE_SUBMISSIONS } ph_role;
typedef enum ph_tls_mode { PH_TLS_NONE, PH_TLS_STARTTLS, PH_TLS_IMPLICIT } ph_tls_mode;
typedef enum ph_auth_mode { PH_AUTH_NONE, PH_AUTH_TLS, PH_AUTH_INSECURE } ph_auth_mode;
typedef enum ph_config_tls_version { PH_TLS_V1_2, PH_TLS_V1_3 } ph_config_tls_version;
typedef enum ph_transport { PH_TRANSPORT_MAILDIR, PH_TRANSPORT_LMTP } ph_transport;
/* smtp_tls: TLS towards MX hosts. may = STARTTLS when offered (certificate not checked), else
 * clear text; encrypt = STARTTLS required (a host without it is a temporary failure). */
typedef enum ph_config_smtp_tls {
    PH_CONFIG_SMTP_TLS_NONE, PH_CONFIG_SMTP_TLS_MAY, PH_CONFIG_SMTP_TLS_ENCRYPT
} ph_config_smtp_tls;
/* tls of a [relay]: none = clear text; starttls = STARTTLS required; implicit = TLS from the
 * first byte (port 465 by default); may = STARTTLS when offered, else clear text. */
typedef enum ph_relay_tls {
    PH_RELAY_TLS_NONE, PH_RELAY_TLS_STARTTLS, PH_RELAY_TLS_IMPLICIT, PH_RELAY_TLS_MAY
} ph_relay_tls;

/* A list parameter: n words in file order. */
typedef struct ph_strlist {
    char **v;
    size_t n;
} ph_strlist;

/*
 * Parameters set globally that a listener may override ("both" scope). Strings are never
 * NULL ("" = unset). Enum fields are int holding the enums above.
 */
typedef struct ph_config_shared {
    uint64_t max_message_size;     /* bytes */
    unsigned max_recipients;
    unsigned max_errors;
    unsigned max_line;
    unsigned max_per_ip;           /* 0 = no limit */
    uint64_t idle_timeout_ms;
    uint64_t session_timeout_ms;
    uint64_t greeting_delay_ms;
    uint64_t shutdown_grace_ms;
    uint64_t handshake_timeout_ms;
    char *tls_cert;                /* path */
    char *tls_key;                 /* path */
    int tls_min_version;           /* ph_config_tls_version */
    char *tls_ciphers;             /* "" = OpenSSL default */
    char *tls_ciphersuites;        /* "" = OpenSSL default */
    bool tls_session_tickets;
} ph_config_shared;

/* Global-only parameters. */
typedef struct ph_config_global {
    char *hostname;                /* "" = the machine's host name */
    char *banner;
    char *user;                    /* "" = no privilege drop */
    char *group;
    unsigned workers;
    int log_level;                 /* posthorn_log_level (same order) */
    int log_target;                /* ph_log_target */
    int delivery;                  /* ph_delivery */
    char *store_dir;
    char *queue_dir;               /* the durable queue (delivery = queue) */
    char *passwd_file;
    unsigned auth_fail_limit;
    uint64_t auth_fail_delay_ms;
    ph_strlist tls_sni;            /* "NAME:CERTFILE:KEYFILE" each */
    unsigned max_connections;
    ph_strlist queue_retry_schedule; /* 1..PH_CONFIG_MAX_RETRIES durations (1s..7d) as written;
                                        ph_config_retry_schedule() gives milliseconds */
    uint64_t queue_lifetime_ms;    /* then undelivered recipients fail and bounce */
    unsigned queue_concurrency;    /* delivery attempts running at once */
    unsigned destination_concurrency; /* sessions at once to one destination */
    unsigned max_received_headers; /* more Received: headers: 554 5.4.6 (a mail loop) */
    char *control_socket;          /* "" = <queue_dir>/control */
    ph_strlist relay_networks;     /* "ADDR" or "ADDR/PREFIX", IPv4 or IPv6, inet_pton-valid */
    unsigned destination_rate;     /* new sessions per second to one destination domain;
                                      0 = no limit */
    /* Delivery to other servers (issue 5): the resolver, then the SMTP client. */
    ph_strlist dns_forwarders;     /* "IP" or "IP@PORT" (ph_config_forwarder); empty = full
                                      recursion from the root with DNSSEC validation */
    uint64_t dns_timeout_ms;       /* one lookup, retries included */
    int smtp_tls;                  /* ph_config_smtp_tls, towards MX hosts */
    bool smtp_tls_verify;          /* check MX certificates (only with smtp_tls = encrypt) */
    uint64_t smtp_connect_timeout_ms;
    uint64_t smtp_command_timeout_ms; /* each reply, the greeting included */
    uint64_t smtp_data_timeout_ms;    /* the message data and its final reply */
    uint64_t smtp_connect_stagger_ms; /* between connection attempts to equal-preference hosts
                                         (Happy Eyeballs); 0 = one after the other fails */
    uint64_t smtp_host_memory_ms;  /* how long per-host latency and failures are remembered */
    unsigned smtp_mx_port;         /* TEST ONLY: the port of MX hosts (25 in real use) */
} ph_config_global;

/* One [listener NAME] section with fully resolved effective values. */
typedef struct ph_config_listener {
    char *name;
    unsigned line;                 /* of the [listener NAME] header */
    ph_strlist listen;             /* "host:port", "[v6]:port", "*:port", "unix:/path" */
    int role;                      /* ph_role */
    int tls;                       /* ph_tls_mode */
    bool require_tls;
    int auth;                      /* ph_auth_mode */
    bool require_auth;
    ph_config_shared s;            /* effective: the global value unless overridden here */
    unsigned set_line[PH_CONFIG_MAX_PARAMS]; /* private: where each parameter was set, 0 = not */
} ph_config_listener;

/*
 * One [domain NAME] section: a local domain, whose mail is delivered here. Strings are never
 * NULL ("" = unset). Its parameters exist only in domain sections (nothing is inherited).
 */
typedef struct ph_config_domain {
    char *name;                    /* lowercased; a valid host name of at most 253 bytes */
    unsigned line;                 /* of the [domain NAME] header */
    int transport;                 /* ph_transport */
    char *maildir;                 /* absolute pattern with %u, %d, %% (ph_config_expand_maildir) */
    char *mailboxes;               /* path of the domain's user list, or "" */
    ph_strlist users;              /* local parts given inline (1..64 bytes, no '@') */
    char *aliases;                 /* path of the aliases file, or "" */
    char *catch_all;               /* "LOCAL" or "LOCAL@DOMAIN" for unknown users; "" = none */
    char *recipient_delimiter;     /* "" (none) or one of + - _ = . */
    char *lmtp;                    /* "unix:/path", "HOST:PORT", "[v6]:PORT" or ""; set when
                                      transport is lmtp */
    uint64_t lmtp_timeout_ms;
    unsigned set_line[PH_CONFIG_MAX_PARAMS]; /* private: where each parameter was set, 0 = not */
} ph_config_domain;

/*
 * One [relay NAME] section: a smarthost that takes the mail for the domains it lists, or (with
 * an empty domains list: "the default smarthost", at most one) for every domain that is not
 * local and not listed by another relay. Strings are never NULL ("" = unset); its parameters
 * exist only in relay sections (nothing is inherited). Checked when parsed: host is set and
 * valid; auth_user and auth_password_file are both set or both empty; AUTH with tls = none or
 * may needs auth_insecure; a domain is listed by one relay at most and is not local.
 */
typedef struct ph_config_relay {
    char *name;                    /* 1..64 letters, digits, '_', '-'; unique */
    unsigned line;                 /* of the [relay NAME] header */
    char *host;                    /* "HOST", "HOST:PORT", "[IPv6]" or "[IPv6]:PORT" as written;
                                      ph_config_relay_endpoint() splits it */
    int tls;                       /* ph_relay_tls */
    bool tls_verify;               /* check the relay's certificate (starttls, implicit); always
                                      false with tls = none or may (yes there is an error) */
    char *auth_user;               /* "" = no AUTH */
    char *auth_password_file;      /* the password is its first line; "" = no AUTH */
    bool auth_insecure;            /* AUTH allowed without required TLS (tls = none or may) */
    ph_strlist domains;            /* as written (valid domain names, matched case-insensitively);
                                      empty = the default smarthost */
    unsigned *domain_lines;        /* private: the line of each entry of domains */
    unsigned set_line[PH_CONFIG_MAX_PARAMS]; /* private: where each parameter was set, 0 = not */
} ph_config_relay;

typedef struct ph_config {
    char *file;                    /* the name given to the parser */
    ph_config_global g;
    ph_config_shared s;            /* the global values of the overridable parameters */
    ph_config_listener *listeners; /* n, in file order */
    size_t nlisteners;
    ph_config_domain *domains;     /* n, in file order; names unique (case-insensitively) */
    size_t ndomains;
    ph_config_relay *relays;       /* n, in file order; names unique */
    size_t nrelays;
    unsigned set_line[PH_CONFIG_MAX_PARAMS]; /* private: global scope, as above */
} ph_config;

typedef struct ph_config_error {
    unsigned line;                 /* 0 = about the whole file */
    char *text;                    /* "FILE:LINE: message" (no newline) */
} ph_config_error;

typedef struct ph_config_errors {
    ph_config_error *v;            /* in line order, file-wide ones last */
    size_t n;
    size_t dropped;                /* beyond PH_CONFIG_MAX_ERRORS (a last message says so) */
} ph_config_errors;

/*
 * Parses len bytes of buf (any bytes; no NUL terminator needed) as a config file called name
 * in messages. On success *out gets a config the caller owns (ph_config_free) and 0 is
 * returned. Otherwise *out is NULL and the result is -EINVAL (errors in *errs) or -ENOMEM.
 * errs may be NULL; if not, it is (re)initialised here and the caller frees it with
 * ph_config_errors_free() whatever the result.
 */
int ph_config_parse(const char *name, const char *buf, size_t len, ph_config **out,
                    ph_config_errors *errs);

/* Reads and parses a file, as ph_config_parse(). A file that cannot be read gives its errno
 * (negative) and one message "PATH: reason" in *errs. */
int ph_config_load(const char *path, ph_config **out, ph_config_errors *errs);

void ph_config_free(ph_config *cfg);                /* NULL is allowed */
void ph_config_errors_free(ph_config_errors *errs); /* leaves it empty; NULL is allowed */

/*
 * Writes the config in file syntax: global parameters, then each [listener NAME] section, then
 * each [domain NAME] section, then each [relay NAME] section.
 * only_set false: every effective value (role defaults and inherited values spelled out);
 * true: only the values set in the file (`dump -n`). Both re-parse to the same config.
 * Returns 0 or -EIO if the stream reported an error.
 */
int ph_config_dump(const ph_config *cfg, FILE *out, bool only_set);

/*
 * Overwrites in *out the limits the config file knows, from listener l's effective values
 * (l NULL: the global ones) and max_connections. Start *out from posthorn_limits_default():
 * fields the file has no key for (max_data_line) are left as they are.
 */
void ph_config_listener_limits(const ph_config *cfg, const ph_config_listener *l,
                               posthorn_limits *out);

/* The listener called name, or NULL. */
const ph_config_listener *ph_config_find_listener(const ph_config *cfg, const char *name);

/* The domain called name, compared ASCII case-insensitively ("Example.ORG" finds
 * [domain example.org]), or NULL. A linear scan: at most PH_CONFIG_MAX_DOMAINS entries. */
const ph_config_domain *ph_config_find_domain(const ph_config *cfg, const char *name);

/* The relay called name (exact, case-sensitive like listener names), or NULL. */
const ph_config_relay *ph_config_find_relay(const ph_config *cfg, const char *name);

/*
 * The relay for mail to a recipient domain: the [relay] listing domain (ASCII
 * case-insensitively, whole names only), else the default smarthost (the relay without
 * domains), else NULL: deliver by MX. Local domains are the caller's to handle first (the
 * parser refuses a relay listing one, but the default smarthost would answer for them). A
 * linear scan over every relay's domains.
 */
const ph_config_relay *ph_config_relay_for(const ph_config *cfg, const char *domain);

/*
 * The host and port of relay r: the host (an IPv6 address without its brackets) into
 * host[size], NUL-terminated; the port written in r->host, else 465 for tls = implicit, else
 * 25 (smtp_mx_port is for MX hosts, not relays). 0, -EINVAL if r->host is not valid (never
 * for a parsed config), -ENOSPC if host[size] is too small (256 bytes always fit).
 */
int ph_config_relay_endpoint(const ph_config_relay *r, char *host, size_t size, unsigned *port);

/*
 * One entry of dns_forwarders ("IP" or "IP@PORT", IPv4 or IPv6): the address into ip[size]
 * (46 bytes always fit), the port into *port (53 if none). 0, -EINVAL for a malformed entry,
 * -ENOSPC if ip[size] is too small.
 */
int ph_config_forwarder(const char *entry, char *ip, size_t size, unsigned *port);

/*
 * queue_retry_schedule in milliseconds: writes the first min(entries, max) delays to ms[] in
 * file order and returns how many were written (at least 1 when max > 0; the parser requires
 * 1..PH_CONFIG_MAX_RETRIES entries, so ms[PH_CONFIG_MAX_RETRIES] always holds them all).
 */
size_t ph_config_retry_schedule(const ph_config *cfg, uint64_t *ms, size_t max);

/*
 * Expands a maildir pattern for one recipient into out (NUL-terminated): %u becomes user, %d
 * domain, %% a '%'; both are lowercased (ASCII) on the way, the caller passes the local part
 * already without its +extension. Returns 0, or -EINVAL for a bad pattern (not absolute, '%'
 * followed by anything else or at the end) or a user/domain that could leave the pattern's
 * directory (empty, ".", "..", or containing '/'), or -ENOSPC if the result and its NUL do not
 * fit in size bytes (out then holds as much as fits, still terminated). out may be NULL when
 * size is 0: that only validates (-ENOSPC then means a good pattern). Borrows every argument.
 */
int ph_config_expand_maildir(const char *pattern, const char *user, const char *domain,
                             char *out, size_t size);

/*
 * The effective value of key as it would be dumped (lists space-separated), for listener l
 * or the global scope (l NULL). -ENOENT unknown key, -EINVAL listener-only key with l NULL or
 * a domain or relay key (see ph_config_domain_value, ph_config_relay_value), -ENOSPC buf too
 * small (it is then truncated), -ENOMEM. "tls" is the listener's here.
 */
int ph_config_value(const ph_config *cfg, const ph_config_listener *l, const char *key,
                    char *buf, size_t size);

/* The line where key was set in l's section (l NULL: before any section); 0 = not set there. */
unsigned ph_config_set_line(const ph_config *cfg, const ph_config_listener *l, const char *key);

/*
 * As ph_config_value() and ph_config_set_line() for a parameter of domain d (one of
 * cfg->domains): -ENOENT unknown key, -EINVAL a key that is not a domain parameter; the set
 * line is 0 for those too.
 */
int ph_config_domain_value(const ph_config *cfg, const ph_config_domain *d, const char *key,
                           char *buf, size_t size);
unsigned ph_config_domain_set_line(const ph_config_domain *d, const char *key);

/* The same for a parameter of relay r (one of cfg->relays); "tls" is the relay's here. */
int ph_config_relay_value(const ph_config *cfg, const ph_config_relay *r, const char *key,
                          char *buf, size_t size);
unsigned ph_config_relay_set_line(const ph_config_relay *r, const char *key);

/* One row of the parameter table, for `posthorn config params` and documentation checks. A
 * name may have two rows in different scopes ("tls": listener and relay). */
typedef struct ph_config_param_info {
    const char *name;
    const char *scope;             /* "global", "listener", "global, listener", "domain" or
                                      "relay" */
    const char *type;              /* "string", "path", "bool", "uint", "size", "duration",
                                      "enum" or "list" */
    const char *def;               /* default in file syntax ("" = empty); NULL: by role */
    const char *help;              /* one line */
    char values[96];               /* accepted values: "1..64", "error | warn", ... or "" */
} ph_config_param_info;

/* Fills *info for row i of the table: 0, or -ENOENT past the last row. */
int ph_config_param_info_get(size_t i, ph_config_param_info *info);

#endif
