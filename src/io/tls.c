/*
 * tls.c - OpenSSL 3 behind tls.h: server contexts with SNI, client contexts, non-blocking handshake/read/write
 * on a raw socket, connection facts for logs and Received:, and self-signed certificates.
 *
 * Owns: SSL_CTX objects (a ph_tls_ctx holds the default one and one per SNI name) and each
 * connection's SSL. OpenSSL errors are turned into PH_TLS_* codes plus a short reason text;
 * the thread's OpenSSL error queue is always left empty so one session cannot confuse another.
 */
#include "io/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct sni_entry {
    char *name;
    SSL_CTX *ctx;
} sni_entry;

struct ph_tls_ctx {
    atomic_int refs;
    SSL_CTX *ctx;
    sni_entry *sni;
    size_t nsni;
};

struct ph_tls {
    SSL *ssl;
    bool failed; /* a fatal error happened: no close_notify */
    ph_tls_ctx *ctx;
    char err[160];
};

/* ---- errors --------------------------------------------------------------------------- */

static void take_openssl_error(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[120] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(buf, len, "%s: %s", what, reason);
}

/* ---- contexts --------------------------------------------------------------------------- */

static int min_version(const char *name)
{
    if (!name || strcmp(name, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return -1;
}

static int apply_settings(SSL_CTX *ctx, const ph_tls_config *cfg, char *err, size_t errlen)
{
    int v = min_version(cfg->min_version);
    if (v < 0) {
        snprintf(err, errlen, "unknown TLS version '%s' (TLSv1.2 or TLSv1.3)", cfg->min_version);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, v);
    /* SSL_OP_IGNORE_UNEXPECTED_EOF: a client that just closes is an EOF, not an error */
    long opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (cfg->no_session_tickets) {
        opts |= SSL_OP_NO_TICKET;
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_options(ctx, (uint64_t)opts);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (!cfg->no_session_tickets)
        SSL_CTX_set_num_tickets(ctx, 1); /* one is enough to resume; OpenSSL's 2 cost ~8 % CPU */
    SSL_CTX_set_read_ahead(ctx, 1);      /* fewer read()s: records come in as they fit */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"posthorn", 8);
    if (cfg->ciphers && *cfg->ciphers && !SSL_CTX_set_cipher_list(ctx, cfg->ciphers)) {
        take_openssl_error(err, errlen, "tls_ciphers");
        return -1;
    }
    if (cfg->ciphersuites && *cfg->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites)) {
        take_openssl_error(err, errlen, "tls_ciphersuites");
        return -1;
    }
    return 0;
}

static SSL_CTX *new_ssl_ctx(const ph_tls_config *cfg, const char *cert, const char *key,
                            char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        take_openssl_error(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    if (apply_settings(ctx, cfg, err, errlen) < 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "certificate %s", cert);
        take_openssl_error(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "key %s", key);
        take_openssl_error(err, errlen, what);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* SNI: switch the connection to the context whose name the client asked for. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    ph_tls_ctx *c = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < c->nsni; i++) {
        if (strcasecmp(c->sni[i].name, name) == 0) {
            SSL_set_SSL_CTX(ssl, c->sni[i].ctx);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

static int add_sni(ph_tls_ctx *c, const ph_tls_config *cfg, char *err, size_t errlen)
{
    c->sni = calloc(cfg->nsni ? cfg->nsni : 1, sizeof(*c->sni));
    if (!c->sni)
        return -1;
    for (size_t i = 0; i < cfg->nsni; i++) {
        const ph_tls_sni_cert *s = &cfg->sni[i];
        c->sni[i].ctx = new_ssl_ctx(cfg, s->cert_file, s->key_file, err, errlen);
        c->sni[i].name = strdup(s->name);
        c->nsni = i + 1;
        if (!c->sni[i].ctx || !c->sni[i].name)
            return -1;
    }
    SSL_CTX_set_tlsext_servername_callback(c->ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(c->ctx, c);
    return 0;
}

ph_tls_ctx *ph_tls_ctx_new(const ph_tls_config *cfg, char *err, size_t errlen)
{
    if (!cfg->cert_file || !cfg->key_file) {
        snprintf(err, errlen, "TLS needs a certificate and a key file");
        return NULL;
    }
    ph_tls_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->ctx = new_ssl_ctx(cfg, cfg->cert_file, cfg->key_file, err, errlen);
    if (!c->ctx || add_sni(c, cfg, err, errlen) < 0) {
        ph_tls_ctx_unref(c);
        return NULL;
    }
    return c;
}

void ph_tls_ctx_ref(ph_tls_ctx *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void ph_tls_ctx_unref(ph_tls_ctx *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (size_t i = 0; i < c->nsni; i++) {
        SSL_CTX_free(c->sni[i].ctx);
        free(c->sni[i].name);
    }
    free(c->sni);
    SSL_CTX_free(c->ctx);
    free(c);
}

ph_tls_ctx *ph_tls_client_ctx_new(const ph_tls_client_config *cfg, char *err, size_t errlen)
{
    int v = min_version(cfg->min_version);
    if (v < 0) {
        snprintf(err, errlen, "unknown TLS version '%s' (TLSv1.2 or TLSv1.3)", cfg->min_version);
        return NULL;
    }
    ph_tls_ctx *c = calloc(1, sizeof(*c));
    if (!c || !(c->ctx = SSL_CTX_new(TLS_client_method()))) {
        if (c)
            take_openssl_error(err, errlen, "SSL_CTX_new");
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    SSL_CTX_set_min_proto_version(c->ctx, v);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(c->ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    int ok = !cfg->verify ? 1
             : cfg->ca_file ? SSL_CTX_load_verify_locations(c->ctx, cfg->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(c->ctx);
    if (ok != 1) {
        take_openssl_error(err, errlen, cfg->ca_file ? cfg->ca_file : "default CA paths");
        ph_tls_ctx_unref(c);
        return NULL;
    }
    return c;
}

/* ---- connections ------------------------------------------------------------------------ */

static bool is_address_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

ph_tls *ph_tls_client_new(ph_tls_ctx *c, int fd, const char *server_name)
{
    ph_tls *t = ph_tls_new(c, fd);
    if (!t)
        return NULL;
    SSL_set_connect_state(t->ssl);
    bool ok = true;
    if (server_name && *server_name && !is_address_literal(server_name))
        ok = SSL_set_tlsext_host_name(t->ssl, server_name) == 1;
    if (ok && server_name && *server_name &&
        SSL_CTX_get_verify_mode(c->ctx) & SSL_VERIFY_PEER)
        ok = SSL_set1_host(t->ssl, server_name) == 1; /* checked during the handshake */
    if (!ok) {
        ERR_clear_error();
        ph_tls_free(t);
        return NULL;
    }
    return t;
}

ph_tls *ph_tls_new(ph_tls_ctx *c, int fd)
{
    ph_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(c->ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(t->ssl);
    ph_tls_ctx_ref(c);
    t->ctx = c;
    return t;
}

void ph_tls_free(ph_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* no close_notify: the socket is closed right after */
    ph_tls_ctx_unref(t->ctx);
    free(t);
}

/* Maps an OpenSSL result to a PH_TLS_* code (or 0 for a closed stream). */
static int map_result(ph_tls *t, int r, const char *what)
{
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return PH_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return PH_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return 0;
    default:
        take_openssl_error(t->err, sizeof(t->err), what);
        t->failed = true;
        return PH_TLS_ERROR;
    }
}

int ph_tls_handshake(ph_tls *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    int m = map_result(t, r, "handshake");
    return m == 0 ? PH_TLS_ERROR : m;
}

ssize_t ph_tls_read(ph_tls *t, void *buf, size_t len)
{
    size_t got = 0;
    int r = SSL_read_ex(t->ssl, buf, len, &got);
    if (r == 1)
        return (ssize_t)got;
    return map_result(t, r, "read");
}

ssize_t ph_tls_write(ph_tls *t, const void *buf, size_t len)
{
    size_t put = 0;
    int r = SSL_write_ex(t->ssl, buf, len, &put);
    if (r == 1)
        return (ssize_t)put;
    int m = map_result(t, r, "write");
    return m == 0 ? PH_TLS_ERROR : m;
}

void ph_tls_close_notify(ph_tls *t)
{
    if (t->failed || !SSL_is_init_finished(t->ssl))
        return; /* after a fatal error OpenSSL must not be asked for more */
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

bool ph_tls_pending(const ph_tls *t)
{
    return SSL_has_pending(t->ssl) == 1;
}

const char *ph_tls_version(const ph_tls *t) { return SSL_get_version(t->ssl); }
const char *ph_tls_last_error(const ph_tls *t) { return t->err[0] ? t->err : "none"; }

const char *ph_tls_cipher(const ph_tls *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    return c ? SSL_CIPHER_get_name(c) : "none";
}

int ph_tls_cipher_bits(const ph_tls *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    return c ? SSL_CIPHER_get_bits(c, NULL) : 0;
}

const char *ph_tls_sni(const ph_tls *t)
{
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

/* ---- self-signed certificates -------------------------------------------------------- */

static int add_san(X509 *x, const char *hostname)
{
    char san[600];
    snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *hostname)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    unsigned char serial[8];
    FILE *r = fopen("/dev/urandom", "rb");
    size_t got = r ? fread(serial, 1, sizeof(serial), r) : 0;
    if (r)
        fclose(r);
    BIGNUM *bn = BN_bin2bn(serial, (int)got, NULL);
    X509_set_version(x, 2);
    if (bn) {
        BN_set_bit(bn, 0); /* never zero */
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
        BN_free(bn);
    }
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (add_san(x, hostname) < 0 || !X509_sign(x, key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    if (key)
        chmod(path, 0600);
    int ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int ph_tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file,
                            char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? make_cert(key, hostname) : NULL;
    int r = -1;
    if (!x)
        take_openssl_error(err, errlen, "self-signed certificate");
    else if (write_pem(key_file, NULL, key) < 0 || write_pem(cert_file, x, NULL) < 0)
        snprintf(err, errlen, "cannot write %s or %s", cert_file, key_file);
    else
        r = 0;
    X509_free(x);
    EVP_PKEY_free(key);
    return r;
}
