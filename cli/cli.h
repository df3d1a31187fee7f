/* cli/ — the `vidx` program: parses the command line and wires the modules together. Each
 * subcommand lives in its own cmd_*.c file and returns one of the exit codes below. */
#ifndef VIDX_CLI_H
#define VIDX_CLI_H

#include "vx.h"

#include "qry.h"
#include "srch.h"

/* Exit codes, documented in `vidx help`. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,   /* the command ran and failed (message on stderr) */
    CLI_EXIT_USAGE = 2,     /* bad command line */
    CLI_EXIT_PROBLEMS = 3,  /* verify found problems it did not repair */
    CLI_EXIT_BUSY = 4,      /* another vidx holds the data directory's writer lock */
    CLI_EXIT_INTERRUPTED = 130
};

/* Options every command shares. */
typedef struct cli_globals {
    const char *data_dir; /* --data, VIDX_DATA, or ./vidx-data */
    const char *model_dir; /* --model or VIDX_MODEL; NULL when none */
    int json;              /* --json: machine-readable output on stdout */
} cli_globals;

/* A subcommand: argv[0] is the command name; options after it are its own. */
typedef int (*cli_command_fn)(const cli_globals *g, int argc, char **argv);

int cmd_status(const cli_globals *g, int argc, char **argv);
int cmd_verify(const cli_globals *g, int argc, char **argv);
int cmd_model(const cli_globals *g, int argc, char **argv);
int cmd_embed(const cli_globals *g, int argc, char **argv);
int cmd_index(const cli_globals *g, int argc, char **argv);
int cmd_search(const cli_globals *g, int argc, char **argv);
int cmd_serve(const cli_globals *g, int argc, char **argv);
int cmd_similar(const cli_globals *g, int argc, char **argv);

/* Prints "vidx: error: MESSAGE" for err and returns the exit code that fits its status. */
int cli_fail(const vx_err *err);
/* Prints a usage error and a hint to run `vidx help COMMAND`; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when argv[i] is -h or --help. */
int cli_is_help(const char *arg);

/* Prints r as text or JSON (the one result schema) on stdout; returns the exit code. With stats of
 * a re-ranked query, the JSON gets the "rerank" object the HTTP API adds (docs/api.md). Shared by
 * `vidx search` and `vidx similar` (cmd_search.c). */
int cli_print_results(const cli_globals *g, const srch_results *r, const qry_stats *stats,
                      int rerank_asked);

#endif
