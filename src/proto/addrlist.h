/*
 * addrlist.h - the addresses in an RFC 5322 address-list header field value (To:, Cc:, Bcc:),
 * for `posthorn sendmail -t`: display names, comments (nested, with quoted pairs), groups
 * ("team: a@x, b@y;", "undisclosed-recipients:;"), angle addresses with obsolete source routes,
 * quoted local parts, and folded lines are understood; what is left is each mailbox's
 * addr-spec with its comments and white space removed (a quoted local part keeps its quotes).
 * Pure; never allocates.
 */
#ifndef POSTHORN_PROTO_ADDRLIST_H
#define POSTHORN_PROTO_ADDRLIST_H

#include <stddef.h>

#define PH_ADDRLIST_ADDR_MAX 512 /* bytes of one addr-spec; longer ones count as errors */

/* Called once per mailbox, in order: addr (NUL-terminated, len bytes) is valid only during the
 * call. An address without '@' is passed as written (a local user: the caller qualifies it). */
typedef void (*ph_addrlist_fn)(const char *addr, size_t len, void *arg);

/*
 * Reports every mailbox of value[0..len) to fn. Returns the number reported, or -1 when part of
 * the value could not be read (an unterminated quote, comment or angle address, an over-long
 * address, a bare '@' where a mailbox should be): mailboxes before and after the bad one are
 * still reported, so a typo loses one recipient, not the list; the caller decides.
 */
int ph_addrlist_each(const char *value, size_t len, ph_addrlist_fn fn, void *arg);

#endif
