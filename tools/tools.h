/*
 * tools.h — the snapdraft command: shared pieces of the subcommands.
 *
 * tools/ is the only part of snapdraft that talks to people: it parses
 * arguments, prints results, progress and one-line errors, and maps library
 * errors to the documented exit codes below. Each subcommand lives in
 * cmd_<name>.c and has the signature of tools_command_fn; argv[0] is the
 * subcommand's name, so getopt_long works as usual.
 */
#ifndef SNAPDRAFT_TOOLS_H
#define SNAPDRAFT_TOOLS_H

#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>

#include "store.h"

/* Exit codes (documented in `snapdraft help` and the README). */
enum tools_exit {
	EXIT_OK = 0,
	EXIT_FAILURE_ = 1,	/* the command failed */
	EXIT_USAGE = 2,		/* wrong flags or arguments */
	EXIT_PARTIAL = 3,	/* done, but some files could not be read/written */
	EXIT_NOREPO = 10,	/* no repository at the given path */
	EXIT_LOCKED = 11,	/* another writer holds the repository lock */
};

typedef int (*tools_command_fn)(int argc, char **argv);

/* Set by main from global options before the subcommand runs. */
struct tools_globals {
	const char *repo;	/* --repo, or NULL: $SNAPDRAFT_REPO, default */
	bool json;		/* --json given before the subcommand */
	bool quiet;
};
extern struct tools_globals tools_globals;

/* The repository path: --repo, $SNAPDRAFT_REPO, or
 * $XDG_DATA_HOME/snapdraft (~/.local/share/snapdraft). Static buffer. */
const char *tools_repo_path(void);
/* Opens the repository; on failure prints one line and returns the exit
 * code to use (non-zero). */
int tools_repo_open(unsigned flags, struct store_repo **out);
/* Maps a library error to an exit code. */
int tools_exit_code(int err);

/* "snapdraft: <message>" on stderr, one line. */
void tools_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tools_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error for a subcommand: prints the message and a hint, returns
 * EXIT_USAGE. */
int tools_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Options every subcommand accepts; put TOOLS_COMMON_LONGOPTS in its
 * getopt_long table and "qh" in its short options, and pass every option
 * character to tools_common_option first: 1 handled, -1 help was printed
 * (exit 0), 0 not a common option. */
#define TOOLS_OPT_REPO 0x1000
#define TOOLS_OPT_JSON 0x1001
#define TOOLS_COMMON_LONGOPTS                                   \
	{ "repo", required_argument, NULL, TOOLS_OPT_REPO },    \
	{ "json", no_argument, NULL, TOOLS_OPT_JSON },          \
	{ "quiet", no_argument, NULL, 'q' },                    \
	{ "help", no_argument, NULL, 'h' }
int tools_common_option(int c, const char *cmd);
/* For getopt's '?' (opterr is 0): names the bad option, returns EXIT_USAGE. */
int tools_bad_option(const char *cmd, char **argv);

/* Adds the "sources" array (name, path, files, bytes) of s to obj, the
 * same in `backup --json` and `snapshots --json`. */
struct cJSON;
void tools_sources_json(struct cJSON *obj, const struct store_snapshot *s);

/* Human sizes: "1.5 MiB". */
void tools_format_bytes(unsigned long long n, char *buf, size_t len);

/* Subcommands. */
int cmd_init(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_help(int argc, char **argv);

/* Help texts of the mount commands (cmd_mount.c). */
extern const char *cmd_mount_help;
extern const char *cmd_umount_help;

/* Help text of one command (static), or NULL. */
const char *tools_help_text(const char *cmd);

#endif
