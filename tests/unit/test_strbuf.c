/*
 * test_strbuf.c - unit tests for src/proto/strbuf.c: appends, formatted appends, the growth
 * limit (exactly at and one past it), consume and clear. Table-driven: each case is a short
 * script of operations with the return code expected from each, then the final content.
 * Failures name the case; the buffer must stay unchanged by any failed operation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/strbuf.h"

typedef enum { OP_END = 0, OP_APPEND, OP_APPENDF, OP_REPEAT, OP_CLEAR, OP_CONSUME } op_kind;

typedef struct step {
    op_kind op;
    const char *s; /* APPEND/REPEAT: bytes (strlen); APPENDF: the %s argument */
    size_t n;      /* REPEAT: times; CONSUME: bytes; APPENDF: the %zu argument */
    int rc;        /* expected return of APPEND/APPENDF/REPEAT (for REPEAT: of the last) */
} step;

typedef struct sb_case {
    const char *name;
    size_t limit;
    step steps[8];
    const char *expect; /* NULL: only the length is checked (long or unallocated content) */
    size_t want_len;    /* checked when expect is NULL */
} sb_case;

#define A(str, r) {OP_APPEND, str, 0, r}
#define F(str, num, r) {OP_APPENDF, str, num, r}
#define REP(str, times, r) {OP_REPEAT, str, times, r}
#define CLEAR {OP_CLEAR, NULL, 0, 0}
#define CONSUME(k) {OP_CONSUME, NULL, k, 0}

/* 100 x "0123456789" = 1000 bytes: forces several reallocations past the first 64. */
#define X10 "0123456789"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
static const char x1000[] = X100 X100 X100 X100 X100 X100 X100 X100 X100 X100;

static const sb_case cases[] = {
    {"empty buffer", 0, {{OP_END, NULL, 0, 0}}, NULL, 0},
    {"one append", 0, {A("hello", 0)}, "hello", 0},
    {"two appends", 0, {A("hello", 0), A(", world", 0)}, "hello, world", 0},
    {"empty append", 0, {A("", 0)}, "", 0},
    {"appendf", 0, {F("x=", 42, 0)}, "x=42", 0},
    {"appendf after append", 0, {A("a", 0), F("b", 7, 0), F("c", 8, 0)}, "ab7c8", 0},
    {"appendf large", 0, {F(x1000, 5, 0)}, NULL, 1001},
    {"repeat growth", 0, {REP("abc", 100, 0)}, NULL, 300},
    {"limit exact", 5, {A("hello", 0)}, "hello", 0},
    {"limit one past", 5, {A("hello!", -1)}, NULL, 0},
    {"limit exact in steps", 5, {A("he", 0), A("llo", 0), A("", 0)}, "hello", 0},
    {"limit one past in steps", 5, {A("he", 0), A("llo", 0), A("!", -1)}, "hello", 0},
    {"limit appendf exact", 4, {F("x=", 42, 0)}, "x=42", 0},
    {"limit appendf one past", 4, {A("a", 0), F("x=", 42, -1)}, "a", 0},
    {"limit appendf past big", 100, {A("keep", 0), F(x1000, 1, -1)}, "keep", 0},
    {"limit large ok", 1000, {REP("0123456789", 100, 0)}, NULL, 1000},
    {"limit large one past", 999, {REP("0123456789", 100, -1)}, NULL, 990},
    {"clear", 0, {A("hello", 0), CLEAR}, "", 0},
    {"clear then append", 0, {A("hello", 0), CLEAR, A("bye", 0)}, "bye", 0},
    {"clear unallocated", 0, {CLEAR}, NULL, 0},
    {"consume some", 0, {A("hello", 0), CONSUME(2)}, "llo", 0},
    {"consume all", 0, {A("hello", 0), CONSUME(5)}, "", 0},
    {"consume more than len", 0, {A("hello", 0), CONSUME(99)}, "", 0},
    {"consume zero", 0, {A("hello", 0), CONSUME(0)}, "hello", 0},
    {"consume then append", 0, {A("hello", 0), CONSUME(4), A("!", 0)}, "o!", 0},
    {"limit frees after consume", 5, {A("hello", 0), CONSUME(3), A("abc", 0)}, "loabc", 0},
};

static int run_step(strbuf *b, const step *st)
{
    int rc = 0;
    switch (st->op) {
    case OP_APPEND:
        return strbuf_append(b, st->s, strlen(st->s));
    case OP_APPENDF:
        return strbuf_appendf(b, "%s%zu", st->s, st->n);
    case OP_REPEAT:
        for (size_t k = 0; k < st->n; k++)
            rc = strbuf_append(b, st->s, strlen(st->s));
        return rc;
    case OP_CLEAR:
        strbuf_clear(b);
        return 0;
    case OP_CONSUME:
        strbuf_consume(b, st->n);
        return 0;
    case OP_END:
        break;
    }
    return 0;
}

static void test_strbuf_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sb_case *c = &cases[i];
        strbuf b;
        strbuf_init(&b, c->limit);
        for (size_t k = 0; k < 8 && c->steps[k].op != OP_END; k++) {
            int rc = run_step(&b, &c->steps[k]);
            if (rc != c->steps[k].rc)
                fail_msg("case '%s' step %zu: rc %d, want %d", c->name, k, rc, c->steps[k].rc);
        }
        if (c->limit != 0 && b.len > c->limit)
            fail_msg("case '%s': len %zu over limit %zu", c->name, b.len, c->limit);
        if (c->limit != 0 && b.cap > c->limit + 1)
            fail_msg("case '%s': cap %zu over limit %zu + 1", c->name, b.cap, c->limit);
        if (b.data != NULL && b.data[b.len] != '\0')
            fail_msg("case '%s': content not NUL-terminated", c->name);
        if (c->expect == NULL && b.len != c->want_len)
            fail_msg("case '%s': len %zu, want %zu", c->name, b.len, c->want_len);
        if (c->expect != NULL) {
            if (b.data == NULL || b.len != strlen(c->expect) || strcmp(b.data, c->expect) != 0)
                fail_msg("case '%s': got '%s', want '%s'", c->name,
                         b.data != NULL ? b.data : "(null)", c->expect);
        }
        strbuf_free(&b);
        if (b.data != NULL || b.len != 0 || b.cap != 0)
            fail_msg("case '%s': free left state behind", c->name);
    }
}

/* The cases whose expected content is too long for the table. */
static void test_strbuf_long(void **state)
{
    (void)state;
    strbuf b;
    strbuf_init(&b, 0);
    assert_int_equal(strbuf_appendf(&b, "%s|%d", x1000, 7), 0);
    assert_int_equal(b.len, 1002);
    assert_memory_equal(b.data, x1000, 1000);
    assert_string_equal(b.data + 1000, "|7");
    strbuf_clear(&b);
    for (int k = 0; k < 100; k++)
        assert_int_equal(strbuf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 1000);
    assert_string_equal(b.data, x1000);
    strbuf_consume(&b, 990);
    assert_string_equal(b.data, "0123456789");
    strbuf_free(&b);

    /* A limit of 999 holds 99 full appends; the 100th fails and changes nothing. */
    strbuf_init(&b, 999);
    for (int k = 0; k < 99; k++)
        assert_int_equal(strbuf_append(&b, "0123456789", 10), 0);
    assert_int_equal(strbuf_append(&b, "0123456789", 10), -1);
    assert_int_equal(b.len, 990);
    assert_int_equal(strbuf_append(&b, "012345678", 9), 0);
    assert_int_equal(b.len, 999);
    assert_int_equal(strbuf_appendf(&b, "%s", ""), 0);
    assert_int_equal(strbuf_appendf(&b, "%c", 'x'), -1);
    assert_int_equal(b.len, 999);
    assert_int_equal(b.data[999], '\0');
    strbuf_free(&b);
}

/* Binary content: NUL bytes inside are kept; len, not strlen, is the truth. */
static void test_strbuf_binary(void **state)
{
    (void)state;
    strbuf b;
    strbuf_init(&b, 0);
    assert_int_equal(strbuf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);
    strbuf_consume(&b, 1);
    assert_memory_equal(b.data, "\0b", 3);
    strbuf_free(&b);
    strbuf_free(&b); /* idempotent */
}

/* limit is a public field: lowering it after growth still stops both kinds of append. */
static void test_strbuf_lowered_limit(void **state)
{
    (void)state;
    strbuf b;
    strbuf_init(&b, 0);
    assert_int_equal(strbuf_append(&b, "hello", 5), 0);
    b.limit = 6;
    assert_int_equal(strbuf_appendf(&b, "%s", "xy"), -1);
    assert_int_equal(strbuf_append(&b, "xy", 2), -1);
    assert_string_equal(b.data, "hello");
    assert_int_equal(strbuf_appendf(&b, "%c", '!'), 0);
    assert_string_equal(b.data, "hello!");
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_cases),
        cmocka_unit_test(test_strbuf_long),
        cmocka_unit_test(test_strbuf_binary),
        cmocka_unit_test(test_strbuf_lowered_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
