/*
 * cmd_config.c - `posthorn config`: check a configuration file, dump its effective (or only
 * its explicitly set) values, or list the parameter table. Owns the loaded config for the
 * length of the command. Exit status: 0 fine, 1 the file has errors (all printed to stderr as
 * FILE:LINE: message) or output failed, 2 bad usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/commands.h"
#include "daemon/config.h"

static const char config_help[] =
    "usage: posthorn config check FILE      validate FILE; print every error with FILE:LINE\n"
    "       posthorn config dump [-n] FILE  print the effective settings (-n: only those set\n"
    "                                       in FILE), in the file's own syntax\n"
    "       posthorn config params          list every parameter: scope, type, default, help\n"
    "\n"
    "The file format and every parameter: man 5 posthorn.conf\n";

static int usage(void)
{
    fputs(config_help, stderr);
    return 2;
}

/* Loads path; on failure prints every error and returns NULL. */
static ph_config *load(const char *path)
{
    ph_config *cfg;
    ph_config_errors errs;
    int r = ph_config_load(path, &cfg, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.v[i].text);
    if (r == -ENOMEM)
        fprintf(stderr, "%s: out of memory\n", path);
    ph_config_errors_free(&errs);
    return cfg;
}

static int config_check(const char *path)
{
    ph_config *cfg = load(path);
    if (!cfg)
        return 1;
    printf("%s: ok\n", path);
    ph_config_free(cfg);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int config_dump(const char *path, bool only_set)
{
    ph_config *cfg = load(path);
    if (!cfg)
        return 1;
    int r = ph_config_dump(cfg, stdout, only_set);
    ph_config_free(cfg);
    if (r < 0)
        fprintf(stderr, "posthorn: config dump: cannot write the output\n");
    return r < 0 ? 1 : 0;
}

static int config_params(void)
{
    ph_config_param_info info;
    for (size_t i = 0; ph_config_param_info_get(i, &info) == 0; i++) {
        printf("%s (%s; %s%s%s; default: %s)\n    %s\n", info.name, info.scope, info.type,
               info.values[0] ? " " : "", info.values,
               !info.def ? "by role" : info.def[0] ? info.def : "empty", info.help);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_config(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(config_help, stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return config_check(argv[2]);
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return config_dump(argv[2], false);
    if (argc == 4 && strcmp(argv[1], "dump") == 0 && strcmp(argv[2], "-n") == 0)
        return config_dump(argv[3], true);
    if (argc == 2 && strcmp(argv[1], "params") == 0)
        return config_params();
    return usage();
}
