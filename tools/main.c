/*
 * main.c — the snapdraft command: global options, then one subcommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tools.h"

static const struct {
	const char *name;
	tools_command_fn fn;
} commands[] = {
	{ "init", cmd_init },         { "backup", cmd_backup },
	{ "snapshots", cmd_snapshots }, { "restore", cmd_restore },
	{ "check", cmd_check },       { "repair", cmd_repair },
	{ "config", cmd_config },     { "mount", cmd_mount },
	{ "umount", cmd_umount },     { "help", cmd_help },
};

static void log_to_stderr(enum sd_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= SD_LOG_WARN)
		fprintf(stderr, "snapdraft: %s%s\n",
			level == SD_LOG_WARN ? "warning: " : "", msg);
}

/* A deep tree is walked with one descriptor per level. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--version")) {
			printf("snapdraft %s (repository format %d)\n",
			       SNAPDRAFT_VERSION, STORE_FORMAT_VERSION);
			return EXIT_OK;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(tools_help_text(NULL), stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			tools_globals.json = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			tools_globals.quiet = true;
		} else if (!strcmp(a, "--repo") && i + 1 < argc) {
			tools_globals.repo = argv[++i];
		} else if (!strncmp(a, "--repo=", 7)) {
			tools_globals.repo = a + 7;
		} else {
			fprintf(stderr, "snapdraft: unknown option '%s' "
				"(see 'snapdraft help')\n", a);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		fputs(tools_help_text(NULL), stderr);
		return EXIT_USAGE;
	}
	opterr = 0;
	sd_log_set_sink(log_to_stderr, NULL);
	raise_fd_limit();
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(argv[i], commands[k].name))
			return commands[k].fn(argc - i, argv + i);
	fprintf(stderr, "snapdraft: unknown command '%s' (see 'snapdraft help')\n",
		argv[i]);
	return EXIT_USAGE;
}
