/*
 * passwd.h - the password file for SMTP AUTH: `user:hash` lines with crypt(3) hashes
 * (yescrypt "$y$", bcrypt "$2b$"/"$2y$", sha512-crypt "$6$"), checked with libxcrypt.
 *
 * A loaded passwd_db is immutable, so any number of threads may call passwd_db_verify on it at
 * once (the daemon does, from its hashing worker pool). Verification is slow on purpose (one
 * hash, tens of milliseconds): never call it on the event loop thread.
 */
#ifndef POSTHORN_DAEMON_PASSWD_H
#define POSTHORN_DAEMON_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWD_USER_MAX 255     /* octets; the SASL field limit (RFC 4616) */
#define PASSWD_PASSWORD_MAX 255 /* octets; longer ones could never be sent over SASL */
#define PASSWD_HASH_CAP 384     /* bytes for a hash string and its NUL (CRYPT_OUTPUT_SIZE) */

typedef struct passwd_db passwd_db;

/*
 * Loads path. File format: one `user:hash` per line; blank lines and lines starting with '#'
 * (after optional blanks) are ignored. A user is 1-255 octets of valid UTF-8 without ':',
 * blanks or control characters; the hash must be a complete crypt string of an accepted
 * method. Any malformed line, or a user listed twice, fails the whole load: returns -EINVAL
 * with "path:line: message" in err. I/O errors return -errno ("path: strerror"). err (may be
 * NULL) receives at most errlen bytes, NUL-terminated. On success *out owns the database until
 * passwd_db_free; the file is read once and not kept open.
 */
int passwd_db_load(const char *path, passwd_db **out, char *err, size_t errlen);

/*
 * NULL if u[0..len) is an acceptable user name for the file (1-255 octets of UTF-8, no ':',
 * blanks or control characters), else a short description of the problem. u[len] must be
 * readable (a NUL terminator is fine).
 */
const char *passwd_user_problem(const char *u, size_t len);

/* Number of users in db. */
size_t passwd_db_count(const passwd_db *db);

/*
 * True if user (NUL-terminated) exists and password matches its hash. Constant-time compare of
 * the computed hash; an unknown user still computes a hash of the same method and cost (against
 * another entry's setting, or a built-in yescrypt one for an empty database), so the time taken
 * does not tell which users exist. False also when hashing fails (out of memory). Thread-safe.
 */
bool passwd_db_verify(const passwd_db *db, const char *user, const char *password);

/* Frees db (NULL is fine), wiping the hashes first. */
void passwd_db_free(passwd_db *db);

/*
 * Hashes password (1..PASSWD_PASSWORD_MAX octets of valid UTF-8, NUL-terminated) with yescrypt
 * and a random salt from the OS (crypt_gensalt_rn "$y$" with default cost) into out[0..cap).
 * Returns 0, -EINVAL (empty or too long), -EILSEQ (not UTF-8: SASL clients could not send it),
 * -ERANGE (cap too small), or -errno from libxcrypt (e.g. no randomness).
 */
int passwd_hash_new(const char *password, char *out, size_t cap);

#endif
