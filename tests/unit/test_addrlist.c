/*
 * test_addrlist.c - addr-specs out of To:/Cc:/Bcc: values: plain lists, display names, comments,
 * groups, quoted local parts, source routes, folding, and broken input that loses only the
 * broken mailbox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proto/addrlist.h"

typedef struct got {
    char text[2048];
} got;

static void collect(const char *addr, size_t len, void *arg)
{
    got *g = arg;
    assert_int_equal(strlen(addr), len);
    size_t n = strlen(g->text);
    snprintf(g->text + n, sizeof(g->text) - n, "%s%s", n ? "|" : "", addr);
}

static int run(const char *value, got *g)
{
    memset(g, 0, sizeof(*g));
    return ph_addrlist_each(value, strlen(value), collect, g);
}

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *value, *want;
        int n;
    } cases[] = {
        {"a@x.example", "a@x.example", 1},
        {"a@x.example, b@y.example", "a@x.example|b@y.example", 2},
        {"John Smith <john@x.example>", "john@x.example", 1},
        {"\"Smith, John\" <john@x.example>, jane@y.example", "john@x.example|jane@y.example", 2},
        {"john@x.example (John Smith)", "john@x.example", 1},
        {"(lead) john (the) @ (at) x.example", "john@x.example", 1},
        {"\"odd local\"@x.example", "\"odd local\"@x.example", 1},
        {"team: a@x.example, b@x.example;, c@y.example", "a@x.example|b@x.example|c@y.example", 3},
        {"undisclosed-recipients:;", "", 0},
        {"<@relay.example,@two.example:user@x.example>", "user@x.example", 1},
        {"a@x.example,\r\n b@y.example", "a@x.example|b@y.example", 2},
        {"Name\r\n <a@x.example>", "a@x.example", 1},
        {",, a@x.example ,", "a@x.example", 1},
        {"root", "root", 1},
        {"<a@x.example> trailing words", "a@x.example", 1},
        {"a@[192.0.2.1]", "a@[192.0.2.1]", 1},
        {"\"a\\\"b\"@x.example", "\"a\\\"b\"@x.example", 1},
        {"(nested (comment)) a@x.example", "a@x.example", 1},
        {"", "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got g;
        int n = run(cases[i].value, &g);
        if (n != cases[i].n || strcmp(g.text, cases[i].want) != 0)
            fail_msg("case %zu '%s': got %d '%s', want %d '%s'", i, cases[i].value, n, g.text,
                     cases[i].n, cases[i].want);
    }
}

static void test_errors(void **state)
{
    (void)state;
    got g;
    assert_int_equal(run("a@x.example, \"unterminated", &g), -1);
    assert_string_equal(g.text, "a@x.example");
    assert_int_equal(run("a@x.example, <b@y.example", &g), -1);
    assert_string_equal(g.text, "a@x.example");
    assert_int_equal(run("(open comment a@x.example", &g), -1);
    assert_string_equal(g.text, "");
    assert_int_equal(run("@x.example, b@y.example", &g), -1); /* the broken one only */
    assert_string_equal(g.text, "b@y.example");
    char big[1200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char value[1400];
    snprintf(value, sizeof(value), "%s@x.example, ok@y.example", big);
    assert_int_equal(run(value, &g), -1);
    assert_string_equal(g.text, "ok@y.example");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
