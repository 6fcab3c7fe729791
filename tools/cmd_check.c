/*
 * cmd_check.c — `snapdraft check` and `snapdraft repair`.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

static void on_problem(const char *msg, void *ctx)
{
	(void)ctx;
	fprintf(stdout, "problem: %s\n", msg);
	fflush(stdout);
}

static void on_progress(uint64_t done, uint64_t total, void *ctx)
{
	bool *tty = ctx;
	if (*tty && total)
		fprintf(stderr, "\r\033[K%llu/%llu packs",
			(unsigned long long)done, (unsigned long long)total);
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "read-data", no_argument, NULL, 'r' },
		{ 0 },
	};
	struct store_check_options o = { .problem = on_problem };
	int c;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		int k = tools_common_option(c, "check");
		if (k < 0)
			return EXIT_OK;
		if (k > 0)
			continue;
		if (c != 'r')
			return tools_bad_option("check", argv);
		o.read_data = true;
	}
	if (optind < argc)
		return tools_usage_error("check", "unexpected argument '%s'",
					 argv[optind]);
	struct store_repo *repo;
	int rc = tools_repo_open(0, &repo);
	if (rc)
		return rc;
	bool tty = !tools_globals.quiet && isatty(STDERR_FILENO);
	o.progress = on_progress;
	o.ctx = &tty;
	struct store_check_result res = { 0 };
	int r = store_check_run(repo, &o, &res);
	if (tty)
		fputs("\r\033[K", stderr);
	store_repo_close(repo);
	if (r < 0 && r != SD_ECORRUPT) {
		tools_error("check could not finish: %s", sd_strerror(r));
		return EXIT_FAILURE_;
	}
	if (res.problems) {
		tools_error("%llu problem%s found", (unsigned long long)res.problems,
			    res.problems == 1 ? "" : "s");
		return EXIT_FAILURE_;
	}
	if (!tools_globals.quiet) {
		char b[32];
		tools_format_bytes(res.bytes_read, b, sizeof(b));
		printf("no problems found: %llu snapshots, %llu trees, %llu "
		       "blobs, %llu packs%s%s\n",
		       (unsigned long long)res.snapshots,
		       (unsigned long long)res.trees,
		       (unsigned long long)res.blobs,
		       (unsigned long long)res.packs,
		       o.read_data ? ", read " : "", o.read_data ? b : "");
		if (res.packs_unused)
			printf("%llu pack%s not used by the index (left by an "
			       "interrupted backup)\n",
			       (unsigned long long)res.packs_unused,
			       res.packs_unused == 1 ? " is" : "s are");
	}
	return EXIT_OK;
}

int cmd_repair(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "rebuild-index", no_argument, NULL, 'r' },
		{ 0 },
	};
	bool rebuild = false;
	int c;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		int k = tools_common_option(c, "repair");
		if (k < 0)
			return EXIT_OK;
		if (k > 0)
			continue;
		if (c != 'r')
			return tools_bad_option("repair", argv);
		rebuild = true;
	}
	if (!rebuild)
		return tools_usage_error("repair", "say what to repair: "
					 "--rebuild-index");
	struct store_repo *repo;
	int rc = tools_repo_open(STORE_OPEN_WRITE | STORE_OPEN_REPAIR, &repo);
	if (rc)
		return rc;
	struct store_check_options o = { .problem = on_problem };
	struct store_check_result res = { 0 };
	int r = store_repair_rebuild_index(repo, &o, &res);
	store_repo_close(repo);
	if (r < 0 && r != SD_EPARTIAL) {
		tools_error("rebuilding the index failed: %s", sd_strerror(r));
		return EXIT_FAILURE_;
	}
	if (!tools_globals.quiet)
		printf("index rebuilt from %llu packs: %llu blobs%s\n",
		       (unsigned long long)res.packs,
		       (unsigned long long)res.blobs,
		       r == SD_EPARTIAL ? " (some packs could not be read: "
					  "named above)" : "");
	return tools_exit_code(r);
}
