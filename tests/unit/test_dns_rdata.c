/*
 * test_dns_rdata.c - the rdata parsers (src/dns/rdata.c): A/AAAA lengths, MX preference + name,
 * every way a name can be malformed (compression pointer, extended label, truncation, trailing
 * bytes, over-long labels and names, bytes that are not host-name bytes), the 255-octet edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/rdata.h"

static int parse(uint16_t type, const void *bytes, size_t len, ph_dns_record *out)
{
    return ph_dns_parse_record(type, bytes, len, out);
}

static void test_a_and_aaaa(void **state)
{
    (void)state;
    ph_dns_record r;
    const uint8_t a[4] = {192, 0, 2, 7};
    assert_int_equal(parse(PH_DNS_TYPE_A, a, 4, &r), 0);
    assert_int_equal(r.type, PH_DNS_TYPE_A);
    assert_int_equal(r.u.addr.family, AF_INET);
    assert_memory_equal(r.u.addr.bytes, a, 4);
    assert_ptr_equal(r.rdata, a);
    assert_int_equal(r.rdlen, 4);
    assert_int_equal(parse(PH_DNS_TYPE_A, a, 3, &r), -EBADMSG);
    assert_int_equal(parse(PH_DNS_TYPE_A, a, 0, &r), -EBADMSG);

    uint8_t aaaa[17] = {0x20, 0x01, 0x0d, 0xb8};
    aaaa[15] = 1;
    assert_int_equal(parse(PH_DNS_TYPE_AAAA, aaaa, 16, &r), 0);
    assert_int_equal(r.u.addr.family, AF_INET6);
    assert_memory_equal(r.u.addr.bytes, aaaa, 16);
    assert_int_equal(parse(PH_DNS_TYPE_AAAA, aaaa, 17, &r), -EBADMSG);
    assert_int_equal(parse(PH_DNS_TYPE_AAAA, aaaa, 4, &r), -EBADMSG);
}

static void test_mx(void **state)
{
    (void)state;
    ph_dns_record r;
    static const uint8_t mx[] = "\x00\x0a\x02mx\x07""example\x03""com\x00";
    assert_int_equal(parse(PH_DNS_TYPE_MX, mx, sizeof(mx) - 1, &r), 0);
    assert_int_equal(r.u.mx.preference, 10);
    assert_string_equal(r.u.mx.exchange, "mx.example.com");

    static const uint8_t null_mx[] = {0, 0, 0};
    assert_int_equal(parse(PH_DNS_TYPE_MX, null_mx, 3, &r), 0);
    assert_int_equal(r.u.mx.preference, 0);
    assert_string_equal(r.u.mx.exchange, ".");

    static const uint8_t big_pref[] = "\xff\xfe\x01""a\x00";
    assert_int_equal(parse(PH_DNS_TYPE_MX, big_pref, sizeof(big_pref) - 1, &r), 0);
    assert_int_equal(r.u.mx.preference, 65534);
    assert_string_equal(r.u.mx.exchange, "a");

    static const uint8_t mixed[] = "\x00\x01\x05Mx-_9\x00";
    assert_int_equal(parse(PH_DNS_TYPE_MX, mixed, sizeof(mixed) - 1, &r), 0);
    assert_string_equal(r.u.mx.exchange, "Mx-_9"); /* case kept */
}

static void expect_bad_mx(const void *bytes, size_t len)
{
    ph_dns_record r;
    assert_int_equal(parse(PH_DNS_TYPE_MX, bytes, len, &r), -EBADMSG);
    assert_string_equal(r.u.mx.exchange, ""); /* nothing half-parsed is left */
}

static void test_mx_malformed(void **state)
{
    (void)state;
    expect_bad_mx("", 0);
    expect_bad_mx("\x00", 1);
    expect_bad_mx("\x00\x0a", 2);                      /* no name at all */
    expect_bad_mx("\x00\x0a\x02mx", 5);                /* no root label */
    expect_bad_mx("\x00\x0a\x05mx", 5);                /* label longer than the rdata */
    expect_bad_mx("\x00\x0a\x02mx\x00X", 7);           /* a byte after the name */
    expect_bad_mx("\x00\x0a\xc0\x0c", 4);              /* compression pointer */
    expect_bad_mx("\x00\x0a\x02mx\xc0\x0c", 7);        /* pointer after a label */
    expect_bad_mx("\x00\x0a\x41", 3);                  /* extended label type 01 */
    expect_bad_mx("\x00\x0a\x81", 3);                  /* extended label type 10 */
    expect_bad_mx("\x00\x0a\x03m.x\x00", 7);           /* a dot inside a label */
    expect_bad_mx("\x00\x0a\x03m x\x00", 7);           /* space */
    expect_bad_mx("\x00\x0a\x03m\x00x\x00", 7);        /* NUL inside a label */
    expect_bad_mx("\x00\x0a\x03m\xc3\xa9\x00", 7);     /* 8-bit bytes */
}

/* Builds a wire name of `labels` labels of `len` 'a's each into buf (after 2 preference bytes);
 * returns the rdata length. */
static size_t long_name(uint8_t *buf, size_t labels, size_t len)
{
    size_t off = 2;
    buf[0] = 0;
    buf[1] = 1;
    for (size_t i = 0; i < labels; i++) {
        buf[off++] = (uint8_t)len;
        memset(buf + off, 'a', len);
        off += len;
    }
    buf[off++] = 0;
    return off;
}

static void test_name_limits(void **state)
{
    (void)state;
    uint8_t buf[600];
    ph_dns_record r;
    /* 63-octet labels are fine. */
    size_t n = long_name(buf, 1, 63);
    assert_int_equal(parse(PH_DNS_TYPE_MX, buf, n, &r), 0);
    assert_int_equal(strlen(r.u.mx.exchange), 63);
    /* Exactly 255 octets: 3 x 63 + 1 x 61 labels = 4 + 250 + root = 255; text 253. */
    n = long_name(buf, 3, 63);
    buf[n - 1] = 61;
    memset(buf + n, 'b', 61);
    buf[n + 61] = 0;
    n += 62;
    assert_int_equal(n - 2, 255);
    assert_int_equal(parse(PH_DNS_TYPE_MX, buf, n, &r), 0);
    assert_int_equal(strlen(r.u.mx.exchange), PH_DNS_NAME_MAX);
    /* 256 octets: one more. */
    n = long_name(buf, 3, 63);
    buf[n - 1] = 62;
    memset(buf + n, 'b', 62);
    buf[n + 62] = 0;
    n += 63;
    assert_int_equal(parse(PH_DNS_TYPE_MX, buf, n, &r), -EBADMSG);
    /* Many short labels past 255. */
    n = long_name(buf, 130, 1);
    assert_int_equal(parse(PH_DNS_TYPE_MX, buf, n, &r), -EBADMSG);
}

static void test_name_from_wire(void **state)
{
    (void)state;
    char out[PH_DNS_NAME_MAX + 1];
    size_t used = 99;
    static const uint8_t name[] = "\x01""a\x02""bc\x00trailing";
    assert_int_equal(ph_dns_name_from_wire(name, sizeof(name) - 1, &used, out, sizeof(out)), 0);
    assert_string_equal(out, "a.bc");
    assert_int_equal(used, 6); /* the rest is the caller's */
    assert_int_equal(ph_dns_name_from_wire((const uint8_t *)"", 1, &used, out, sizeof(out)), 0);
    assert_string_equal(out, ".");
    assert_int_equal(used, 1);
    char tiny[4];
    assert_int_equal(ph_dns_name_from_wire(name, sizeof(name) - 1, &used, tiny, sizeof(tiny)),
                     -EINVAL);
    assert_int_equal(ph_dns_name_from_wire(NULL, 0, &used, out, sizeof(out)), -EINVAL);
    assert_int_equal(ph_dns_name_from_wire(name, 0, &used, out, sizeof(out)), -EBADMSG);
}

static void test_other_types_and_args(void **state)
{
    (void)state;
    ph_dns_record r;
    static const uint8_t txt[] = "\x05hello";
    assert_int_equal(parse(PH_DNS_TYPE_TXT, txt, 6, &r), 0);
    assert_int_equal(r.type, PH_DNS_TYPE_TXT);
    assert_int_equal(r.rdlen, 6);
    assert_int_equal(parse(PH_DNS_TYPE_TXT, NULL, 0, &r), 0);
    assert_int_equal(parse(PH_DNS_TYPE_TXT, NULL, 3, &r), -EINVAL);
    assert_int_equal(ph_dns_parse_record(PH_DNS_TYPE_A, txt, 4, NULL), -EINVAL);
}

static void test_status(void **state)
{
    (void)state;
    assert_string_equal(ph_dns_status_name(PH_DNS_SERVFAIL), "SERVFAIL");
    assert_string_equal(ph_dns_status_name(PH_DNS_TIMEOUT), "timeout");
    assert_string_equal(ph_dns_status_name((ph_dns_status)99), "unknown");
    assert_false(ph_dns_status_is_temporary(PH_DNS_OK));
    assert_false(ph_dns_status_is_temporary(PH_DNS_NODATA));
    assert_false(ph_dns_status_is_temporary(PH_DNS_NXDOMAIN));
    assert_true(ph_dns_status_is_temporary(PH_DNS_SERVFAIL));
    assert_true(ph_dns_status_is_temporary(PH_DNS_BOGUS));
    assert_true(ph_dns_status_is_temporary(PH_DNS_TIMEOUT));
    assert_true(ph_dns_status_is_temporary(PH_DNS_MALFORMED));
    assert_true(ph_dns_status_is_temporary(PH_DNS_ERROR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_and_aaaa),       cmocka_unit_test(test_mx),
        cmocka_unit_test(test_mx_malformed),     cmocka_unit_test(test_name_limits),
        cmocka_unit_test(test_name_from_wire),   cmocka_unit_test(test_other_types_and_args),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
