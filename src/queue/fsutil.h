/*
 * fsutil.h - the two file helpers the spool and the queue store share: writing a whole buffer
 * (short writes and EINTR handled) and opening (creating if needed) a spool subdirectory.
 */
#ifndef POSTHORN_QUEUE_FSUTIL_H
#define POSTHORN_QUEUE_FSUTIL_H

#include <stddef.h>

/* 0, or a negative errno (-EIO for a write that wrote nothing). */
int ph_write_all(int fd, const char *p, size_t n);

/* An O_DIRECTORY descriptor of dir/sub, created 0750 if missing; or a negative errno with the
 * reason in err. */
int ph_open_subdir(const char *dir, const char *sub, char *err, size_t errlen);

#endif
