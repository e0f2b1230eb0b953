/*
 * maildir.h - durable delivery of one message into one Maildir (cr.yp.to/proto/maildir.html,
 * with the Maildir++ ",S=<size>" suffix Dovecot and Courier use to skip a stat).
 *
 * A delivery writes tmp/<unique>, fsyncs and closes it (checked: some filesystems report write
 * errors only there), links it to new/<unique>,S=<size> (rename where hard links are not
 * supported), removes the tmp/ name and optionally fsyncs new/. Nothing is half-delivered:
 * on any failure the files it made are removed. Group commit: deliver several messages with
 * sync_dir false, then one ph_maildir_sync per Maildir makes all their names durable.
 *
 * Unique names: <secs>.M<usecs>P<pid>Q<counter>.<host>, the counter being one process-wide
 * atomic: the only state this module keeps, since names must differ across the worker
 * threads that deliver at the same time (pid and time alone do not). The host has '/' written
 * as \057 and ':' as \072 (the spec's escapes), so a name never contains either.
 *
 * Threads: every function may run on any thread at once. Errors: negative errnos with a
 * reason in err; ph_maildir_error_is_temporary says whether to retry or bounce.
 */
#ifndef POSTHORN_DELIVER_MAILDIR_H
#define POSTHORN_DELIVER_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PH_MAILDIR_NAME_MAX 512 /* bytes of "new/<unique>" including its NUL */

/* Delivers the message held in msg_fd (size bytes from offset 0, read with pread: the fd's
 * offset is not used, several deliveries may share one fd) into the Maildir at path, creating
 * path (and its missing parents) and path/{tmp,new,cur} (0700) if missing. prefix (prefix_len
 * bytes, e.g. "Return-Path: <a@b>\nDelivered-To: c@d\n"; NULL when prefix_len is 0) is written
 * first, as it is. The queue's message file has CRLF line ends; the Maildir copy uses LF (each
 * CRLF becomes LF; a lone CR or LF is kept as it is), as Postfix and Dovecot expect. Steps:
 * tmp/<unique> (O_EXCL) -> write all -> fsync -> close (checked) -> link() into
 * new/<unique>,S=<size> (rename() if link is not supported) -> unlink tmp -> if sync_dir,
 * fsync new/. On any failure nothing is left in tmp/ or new/ and a negative errno is returned
 * with a reason in err (-EIO when msg_fd holds fewer than size bytes). name_out (may be NULL)
 * gets "new/<unique>,S=<size>" (cut to name_size; PH_MAILDIR_NAME_MAX always suffices). A
 * failure to remove the tmp/ name after the link is ignored: the message is delivered, and
 * Maildir readers clean tmp/ themselves. */
int ph_maildir_deliver(const char *path, const char *prefix, size_t prefix_len, int msg_fd,
                       uint64_t size, bool sync_dir, char *name_out, size_t name_size,
                       char *err, size_t errlen);

/* fsync of path/new: one call makes several deliveries' links durable (group commit).
 * 0 or a negative errno. */
int ph_maildir_sync(const char *path);

/* Whether an errno from ph_maildir_deliver is worth retrying: resource shortages and I/O
 * trouble (ENOSPC, EDQUOT, EIO, EAGAIN, EMFILE, ENFILE, EINTR, ENOMEM, EBUSY, EROFS, ESTALE,
 * ETIMEDOUT, ENOENT, EEXIST, EMLINK ...) and any errno not known to be permanent. Permanent:
 * the Maildir path is unusable as configured or the message can never fit (ENOTDIR, EISDIR,
 * EACCES, EPERM, ENAMETOOLONG, ELOOP, EINVAL, EFBIG, EXDEV). 0 and positive values are not errors: false. */
bool ph_maildir_error_is_temporary(int neg_errno);

#endif
