/*
 * date.h - RFC 5322 3.3 date-time text in UTC ("Tue, 24 Nov 2026 00:30:00 +0000"), for
 * Received:, Date: and DSN fields. Pure: the caller passes the time.
 */
#ifndef POSTHORN_PROTO_DATE_H
#define POSTHORN_PROTO_DATE_H

#include <stddef.h>
#include <stdint.h>

#define PH_DATE_MAX 40 /* bytes a formatted date needs, with its NUL */

/* t: unix seconds (0 .. year 9999; anything gmtime cannot take prints the epoch's fields). */
void ph_format_date(int64_t t, char *buf, size_t len);

#endif
