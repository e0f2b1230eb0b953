/*
 * recipients.h - the local recipient table: which domains are local, which addresses exist in
 * them (users, aliases, catch-alls, plus-addresses), and where a local user's mail goes
 * (a Maildir or an LMTP server). Built once from plain domain definitions plus the mailboxes
 * and aliases files they name; after that it is read-only, so any number of threads may query
 * one table at once. The daemon reloads on SIGHUP by loading a new table and freeing the old
 * one when nothing uses it any more. No daemon types: the daemon converts its config.
 *
 * Ownership: ph_rcpt_table_load copies everything it keeps from the definitions (they may be
 * freed right after). Results (ph_expansion, ph_mailbox) own their strings and stay valid after
 * the table is freed; release them with ph_expansion_clear / ph_mailbox_clear.
 *
 * Errors: functions return 0 or a negative errno: -EINVAL (bad definitions or files; err says
 * why, file errors as "FILE:LINE: message"), -ENOENT (ph_rcpt_table_mailbox: no such user),
 * -ENOMEM, or the errno of a file that cannot be read. Nothing half-built is left behind.
 *
 * ---------------------------------------------------------------------------------------------
 * NAMES. Users and aliases are local parts: dot-atoms of RFC 5321 atext (letters, digits,
 * !#$%&'*+-/=?^_`{|}~) and UTF-8 bytes, at most 64 bytes, no leading, trailing or double dot;
 * user names may not contain '/' (they become path components through %u). Names are stored
 * and matched in ASCII lowercase; domains too. Quoted local parts ("a b"@d) never match.
 *
 * MAILBOXES FILE (mailboxes_file): one user per line, `user [maildir-path]`, where user is a
 * local part of this domain or `user@domain` naming this domain; the optional absolute path
 * replaces the domain's pattern for that user (ignored for LMTP domains). A '#' at the start of
 * a word starts a comment; blank lines are ignored. Each user at most once per file; users
 * also listed inline (ph_domain_def.users) are merged, the file's path winning.
 *
 * ALIASES FILE (aliases_file), like /etc/aliases: `alias: target, target ...`; a line starting
 * with whitespace continues the previous alias; targets are separated by commas and/or
 * whitespace; a target is a local part of the alias's domain or a full address `local@domain`
 * (of any local domain, or remote). Pipes ("|cmd"), files ("/path") and ":include:" are
 * refused. '#' comments and blank lines as above. Each alias at most once; at least one target.
 *
 * MAILDIR PATTERN (maildir, required for Maildir domains): %u is the user (lowercase, without
 * extension), %d the domain, %% a '%'; any other '%' is an error. Must expand to an absolute
 * path.
 *
 * ---------------------------------------------------------------------------------------------
 * EXPANSION RULES (ph_rcpt_table_expand), for an address `local@domain`:
 *  1. The domain (ASCII case-insensitive) is not local -> PH_EXPAND_NOT_LOCAL: the caller
 *     applies its relay rules.
 *  2. The local part (ASCII lowercased) is looked up as an alias, then as a user (Postfix
 *     order). If neither, and the domain has a delimiter and the local part contains it after
 *     its first byte, the part before the first delimiter is looked up the same way: a user
 *     found so keeps the extension in its final address (`user+ext@domain`, so Delivered-To
 *     shows it); an alias found so expands without the extension (it is not propagated).
 *  3. Still nothing: the domain's catch-all (a local part of the domain or a full address)
 *     is expanded in its place; catch-alls do not chain (inside a catch-all's expansion an
 *     unknown address is not caught again). No catch-all: PH_EXPAND_UNKNOWN (550 5.1.1).
 *  4. Alias targets expand by the same rules, recursively; remote targets are final. A target
 *     naming an alias already being expanded (a cycle) resolves to the user of that name if
 *     there is one (the /etc/aliases idiom `bob: bob, bob@elsewhere` keeps a local copy) and
 *     is otherwise PH_EXPAND_LOOP; more than PH_RCPT_ALIAS_DEPTH_MAX nested aliases is
 *     PH_EXPAND_LOOP too (suggested reply 550 5.4.6). An alias reached a second time by
 *     another path adds nothing new (duplicates are removed), so expansion work is bounded.
 *  5. More than PH_RCPT_TARGETS_MAX final addresses: PH_EXPAND_TOO_MANY (suggested reply
 *     451 4.3.0: a configuration problem the operator can fix while the sender retries).
 *  6. An alias target (or catch-all) in a local domain that names nothing there and is not
 *     caught: PH_EXPAND_BROKEN (suggested reply 451 4.3.0: the alias is misconfigured; no
 *     copy is dropped silently). ph_rcpt_table_check finds these at load time.
 *  7. postmaster gets no special treatment: like any name it must be a user or alias (or be
 *     caught by a catch-all), else it is PH_EXPAND_UNKNOWN. RFC 5321 4.5.1 requires it to
 *     exist, so operators must define it; ph_rcpt_table_check warns when it is missing. A bare
 *     "postmaster" without a domain (RCPT TO:<Postmaster>) means postmaster@ the first domain
 *     defined; any other address without '@' is PH_EXPAND_NOT_LOCAL.
 * Final addresses: local ones are `user[<delim>ext]@domain` with user and domain lowercase and
 * the extension as written; remote ones as written with the domain lowercased. Exact
 * duplicates are removed, first occurrence kept; order follows the alias files.
 * ---------------------------------------------------------------------------------------------
 */
#ifndef POSTHORN_DELIVER_RECIPIENTS_H
#define POSTHORN_DELIVER_RECIPIENTS_H

#include <stdbool.h>
#include <stddef.h>

#define PH_RCPT_ALIAS_DEPTH_MAX 10  /* nested alias lookups for one address */
#define PH_RCPT_TARGETS_MAX 1000    /* final addresses of one expansion */
#define PH_RCPT_NAME_MAX 64         /* bytes of a user or alias name (RFC 5321 local part) */

typedef enum ph_transport_kind { PH_DELIVER_MAILDIR, PH_DELIVER_LMTP } ph_transport_kind;

typedef struct ph_domain_def {
    const char *name;            /* lowercase domain */
    ph_transport_kind transport;
    const char *maildir;         /* pattern: %u user (lowercase local part w/o extension), %d domain, %% */
    const char *mailboxes_file;  /* NULL or "" = none; format above */
    const char *const *users;    /* inline local parts */
    size_t nusers;
    const char *aliases_file;    /* NULL or "" = none; format above */
    const char *catch_all;       /* NULL/"" = none; local part (same domain) or full address */
    char delimiter;              /* '\0' = no plus-addressing, else e.g. '+' */
    const char *lmtp;            /* LMTP destination for transport LMTP */
} ph_domain_def;

typedef struct ph_rcpt_table ph_rcpt_table;

typedef enum ph_expand_kind {
    PH_EXPAND_NOT_LOCAL, /* the domain is not local: relay rules decide */
    PH_EXPAND_LOCAL,     /* targets holds the final addresses (at least one) */
    PH_EXPAND_UNKNOWN,   /* local domain, no such user or alias, no catch-all: 550 5.1.1 */
    PH_EXPAND_LOOP,      /* alias cycle or nesting deeper than the limit: 550 5.4.6 */
    PH_EXPAND_TOO_MANY,  /* more than PH_RCPT_TARGETS_MAX final addresses: 451 4.3.0 */
    PH_EXPAND_BROKEN,    /* an alias/catch-all target names nothing local: 451 4.3.0 */
} ph_expand_kind;

typedef struct ph_rcpt_target {
    char *addr;  /* final address */
    bool local;  /* a local user (ph_rcpt_table_mailbox resolves it) or remote */
} ph_rcpt_target;

typedef struct ph_expansion {
    ph_expand_kind kind;
    ph_rcpt_target *targets;  /* LOCAL only: ntargets final addresses; else NULL */
    size_t ntargets;
    char detail[256];         /* LOOP/TOO_MANY/BROKEN: what went wrong, for the log */
} ph_expansion;

typedef struct ph_mailbox {
    ph_transport_kind transport;
    char *user;        /* canonical "user@domain" (lowercase, no extension) */
    char *extension;   /* the extension as written in the address, or NULL */
    char *maildir;     /* MAILDIR: the user's Maildir (pattern expanded or the file's path) */
    char *folder;      /* MAILDIR: "<maildir>/.<ext>" when that Maildir++ folder exists
                          (ext lowercased, only [a-z0-9_-]), else NULL: deliver to INBOX */
    char *lmtp;        /* LMTP: the destination */
} ph_mailbox;

/*
 * Builds a table from n domain definitions, reading every mailboxes and aliases file once.
 * -EINVAL with a reason in err for a duplicate or invalid domain, a bad pattern, catch-all or
 * user name, a missing LMTP destination, or any file error ("FILE:LINE: message"); the errno
 * of a file that cannot be opened or read ("FILE: reason"); -ENOMEM. *out is NULL on error.
 */
int ph_rcpt_table_load(const ph_domain_def *defs, size_t n, ph_rcpt_table **out, char *err,
                       size_t errlen);
/* Frees the table. NULL is fine. Results taken from it stay valid. */
void ph_rcpt_table_free(ph_rcpt_table *t);

/* Whether domain (any ASCII case) is one of the table's domains. */
bool ph_rcpt_table_is_local(const ph_rcpt_table *t, const char *domain);

/*
 * Expands addr ("local@domain" as given at RCPT, without <>) by the rules above into *res
 * (overwritten; release with ph_expansion_clear, also after an error). 0 with res->kind set,
 * or -ENOMEM (res is then empty).
 */
int ph_rcpt_table_expand(const ph_rcpt_table *t, const char *addr, ph_expansion *res);
void ph_expansion_clear(ph_expansion *res);

/*
 * Resolves a local final address ("user[<delim>ext]@domain", as expand produced it) to its
 * mailbox in *mbox (overwritten; release with ph_mailbox_clear). Users only: aliases and
 * catch-alls were applied by expand. Looks for the Maildir++ folder on disk (a stat).
 * -ENOENT when the domain or user no longer exists (e.g. after a reload), -ENAMETOOLONG when
 * the path does not fit PATH_MAX, -ENOMEM.
 */
int ph_rcpt_table_mailbox(const ph_rcpt_table *t, const char *final_addr, ph_mailbox *mbox);
void ph_mailbox_clear(ph_mailbox *mbox);

/*
 * Problems that are not load errors but will show at RCPT time, for `config check` and the
 * load log: every alias and catch-all is expanded and a result other than LOCAL reported
 * ("FILE:LINE: alias 'x': ..."; "domain D: catch-all ..."), and a domain without postmaster
 * reported. warn(arg, message) is called once per problem. Returns the number of problems, or
 * -ENOMEM.
 */
int ph_rcpt_table_check(const ph_rcpt_table *t, void (*warn)(void *arg, const char *message),
                        void *arg);

/* "not-local", "local", "unknown", "loop", "too-many", "broken"; "?" otherwise. */
const char *ph_expand_kind_name(ph_expand_kind k);

#endif
