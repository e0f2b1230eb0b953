/*
 * tls.h - TLS for Posthorn's connections (RFC 3207 STARTTLS, RFC 8314 implicit TLS), the only
 * interface to OpenSSL: server contexts (certificate, key, SNI certificates, protocol floor,
 * ciphers, tickets), non-blocking handshakes, reads and writes on a connection's socket, and
 * a self-signed certificate generator for development sinks.
 *
 * Ownership: a ph_tls_ctx is reference counted (each connection holds one reference through its
 * ph_tls), so reloading certificates never disturbs sessions in progress. Errors: negative
 * codes below, with a readable reason from ph_tls_last_error().
 */
#ifndef POSTHORN_IO_TLS_H
#define POSTHORN_IO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PH_TLS_WANT_READ (-1001)  /* retry when the socket is readable */
#define PH_TLS_WANT_WRITE (-1002) /* retry when the socket is writable */
#define PH_TLS_ERROR (-1003)      /* protocol or I/O error: close the connection */

typedef struct ph_tls_ctx ph_tls_ctx;
typedef struct ph_tls ph_tls;

typedef struct ph_tls_sni_cert {
    const char *name;       /* server name the client asks for (exact, case-insensitive) */
    const char *cert_file;  /* PEM chain */
    const char *key_file;   /* PEM private key */
} ph_tls_sni_cert;

typedef struct ph_tls_config {
    const char *cert_file;      /* default certificate chain (PEM) */
    const char *key_file;
    const ph_tls_sni_cert *sni; /* more certificates chosen by SNI */
    size_t nsni;
    const char *min_version;    /* "TLSv1.2" (NULL = TLSv1.2) or "TLSv1.3" */
    const char *ciphers;        /* TLS <= 1.2 cipher list, NULL = OpenSSL's default */
    const char *ciphersuites;   /* TLS 1.3 suites, NULL = OpenSSL's default */
    bool no_session_tickets;
} ph_tls_config;

/* Builds a server context; on failure returns NULL and writes the reason into err. */
ph_tls_ctx *ph_tls_ctx_new(const ph_tls_config *cfg, char *err, size_t errlen);
void ph_tls_ctx_ref(ph_tls_ctx *c);
void ph_tls_ctx_unref(ph_tls_ctx *c); /* NULL is allowed */

/* Client contexts (towards MX hosts and relays). verify: the peer's chain must verify against
 * ca_file (NULL: OpenSSL's default paths, Debian's /etc/ssl/certs) and its name must match the
 * server name given to ph_tls_client_new; without verify any certificate is taken (opportunistic
 * TLS, RFC 7435: encryption against passive listening, no authentication). */
typedef struct ph_tls_client_config {
    bool verify;
    const char *ca_file;     /* PEM bundle, NULL = default paths */
    const char *min_version; /* as in ph_tls_config; NULL = TLSv1.2 */
} ph_tls_client_config;

ph_tls_ctx *ph_tls_client_ctx_new(const ph_tls_client_config *cfg, char *err, size_t errlen);

/* Client side of a connection on fd (not owned): server_name goes out as SNI (unless it is an
 * address literal) and is the name checked when the context verifies. NULL on memory
 * shortage. */
ph_tls *ph_tls_client_new(ph_tls_ctx *c, int fd, const char *server_name);

/* Server side of a connection on fd (not owned). NULL on memory shortage. */
ph_tls *ph_tls_new(ph_tls_ctx *c, int fd);
void ph_tls_free(ph_tls *t);

/* 0 when the handshake is complete, or PH_TLS_WANT_READ/WANT_WRITE/ERROR. */
int ph_tls_handshake(ph_tls *t);
/* Bytes read (> 0), 0 at a clean or unclean end of the stream, or PH_TLS_* */
ssize_t ph_tls_read(ph_tls *t, void *buf, size_t len);
/* Bytes written (> 0; may be fewer than len), or PH_TLS_* */
ssize_t ph_tls_write(ph_tls *t, const void *buf, size_t len);
/* Sends close_notify (one non-blocking attempt) before the socket is closed; harmless after
 * an error. */
void ph_tls_close_notify(ph_tls *t);
/* True if decrypted bytes wait inside the TLS layer (no socket event will announce them). */
bool ph_tls_pending(const ph_tls *t);

const char *ph_tls_version(const ph_tls *t); /* "TLSv1.3" */
const char *ph_tls_cipher(const ph_tls *t);  /* "TLS_AES_256_GCM_SHA384" */
int ph_tls_cipher_bits(const ph_tls *t);
const char *ph_tls_sni(const ph_tls *t);     /* server name the client sent, or NULL */
/* Why the last call failed, e.g. "wrong version number" (borrowed, per connection). */
const char *ph_tls_last_error(const ph_tls *t);

/*
 * Writes a new self-signed certificate (EC P-256, one year, CN and DNS SAN hostname plus
 * localhost and IP 127.0.0.1 / ::1) and its key to the given PEM files (key mode 0600).
 * 0, or -1 with the reason in err.
 */
int ph_tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file,
                            char *err, size_t errlen);

#endif
