/*
 * cmd_passwd.c - `posthorn passwd [USER]`: makes a line for the AUTH password file. The password
 * comes from standard input (the first line, without its newline), never from argv, where
 * other local users could read it in /proc. From a terminal it prompts on stderr with echo off
 * and asks twice. Prints "USER:HASH" (or just "HASH") with a fresh yescrypt hash.
 *
 * Owns two fixed buffers holding the password, wiped before returning. The terminal's echo
 * setting is restored on every exit path, including SIGINT/SIGTERM/SIGHUP/SIGQUIT during the
 * prompt. Exit status: 0, 1 on error, 2 on bad usage; messages go to stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "daemon/commands.h"
#include "daemon/passwd.h"

static const char passwd_help[] =
    "usage: posthorn passwd [USER]\n"
    "\n"
    "Reads a password from standard input (the first line, without the newline) and prints a\n"
    "line for the AUTH password file: USER:HASH, or only HASH when no USER is given. The hash\n"
    "is yescrypt with a random salt. From a terminal, the password is asked for twice without\n"
    "echo. The password is never taken from the command line.\n"
    "\n"
    "  echo 'secret' | posthorn passwd alice >> /etc/posthorn/passwd\n";

/* Secrets up to PASSWD_PASSWORD_MAX octets; one more so that "too long" is detectable. */
#define SECRET_CAP (PASSWD_PASSWORD_MAX + 2)

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(void)
{
    if (tty_changed) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        tty_changed = 0;
    }
}

/* A signal during the prompt must not leave the terminal without echo. */
static void on_signal(int sig)
{
    restore_tty(); /* tcsetattr is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static int echo_off(void)
{
    if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
        return -1;
    for (size_t i = 0; i < sizeof tty_signals / sizeof tty_signals[0]; i++)
        signal(tty_signals[i], on_signal);
    struct termios t = saved_tty;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    tty_changed = 1;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0) {
        tty_changed = 0;
        return -1;
    }
    return 0;
}

/*
 * Reads one line from fd 0 into buf (NUL-terminated, newline dropped), a byte at a time so no
 * stdio buffer keeps a copy of the password. Returns its length, -1 on EOF before any byte or
 * a read error, -2 if longer than PASSWD_PASSWORD_MAX.
 */
static long read_line(char *buf)
{
    size_t n = 0;
    bool any = false, too_long = false;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n') {
            if (r < 0 || (r == 0 && !any))
                return -1;
            break;
        }
        any = true;
        if (n < SECRET_CAP - 1)
            buf[n++] = c;
        else
            too_long = true;
    }
    buf[n] = '\0';
    return too_long || n > PASSWD_PASSWORD_MAX ? -2 : (long)n;
}

static long prompt(const char *text, char *buf)
{
    fputs(text, stderr);
    fflush(stderr);
    long n = read_line(buf);
    fputc('\n', stderr); /* the user's Enter was not echoed */
    return n;
}

/* Fills pw from stdin: prompted twice on a terminal. Returns 0 or prints why not and -1. */
static int get_password(char *pw, char *again)
{
    long n;
    if (!isatty(STDIN_FILENO)) {
        n = read_line(pw);
    } else {
        if (echo_off() != 0) {
            fprintf(stderr, "posthorn passwd: cannot turn off echo: %s\n", strerror(errno));
            return -1;
        }
        n = prompt("Password: ", pw);
        if (n >= 0 && prompt("Retype password: ", again) >= 0 && strcmp(pw, again) != 0)
            n = -3;
        restore_tty();
    }
    if (n == -1)
        fputs("posthorn passwd: no password on standard input\n", stderr);
    else if (n == -2)
        fprintf(stderr, "posthorn passwd: password longer than %d octets\n", PASSWD_PASSWORD_MAX);
    else if (n == -3)
        fputs("posthorn passwd: passwords do not match\n", stderr);
    return n < 0 ? -1 : 0;
}

static const char *hash_error(int rc)
{
    if (rc == -EINVAL)
        return "the password is empty";
    if (rc == -EILSEQ)
        return "the password is not valid UTF-8 (SASL carries UTF-8, RFC 4616)";
    return strerror(-rc);
}

static int print_line(const char *user, const char *hash)
{
    if (user != NULL)
        printf("%s:%s\n", user, hash);
    else
        printf("%s\n", hash);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "posthorn passwd: cannot write: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static int usage_check(int argc, char **argv, const char **user)
{
    *user = argc > 1 ? argv[1] : NULL;
    if (*user != NULL && (strcmp(*user, "--help") == 0 || strcmp(*user, "-h") == 0)) {
        fputs(passwd_help, stdout);
        return 0;
    }
    if (argc > 2 || (*user != NULL && (*user)[0] == '-')) {
        fprintf(stderr, "posthorn passwd: bad arguments\n%s", passwd_help);
        return 2;
    }
    const char *problem = *user != NULL ? passwd_user_problem(*user, strlen(*user)) : NULL;
    if (problem != NULL) {
        fprintf(stderr, "posthorn passwd: %s\n", problem);
        return 2;
    }
    return -1; /* go on */
}

int cmd_passwd(int argc, char **argv)
{
    const char *user;
    int rc = usage_check(argc, argv, &user);
    if (rc >= 0)
        return rc;
    char pw[SECRET_CAP], again[SECRET_CAP], hash[PASSWD_HASH_CAP];
    rc = 1;
    if (get_password(pw, again) == 0) {
        int h = passwd_hash_new(pw, hash, sizeof hash);
        if (h == 0)
            rc = print_line(user, hash);
        else
            fprintf(stderr, "posthorn passwd: %s\n", hash_error(h));
    }
    explicit_bzero(pw, sizeof pw);
    explicit_bzero(again, sizeof again);
    return rc;
}
