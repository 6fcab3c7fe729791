/*
 * cmd_restore.c — `snapdraft restore`: a backup point, or paths of it,
 * back onto disk with all metadata.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

struct restore_ui {
	bool tty;
	bool refused;	/* an existing file stopped the restore */
};

static void on_progress(uint64_t files, uint64_t bytes, void *ctx)
{
	struct restore_ui *ui = ctx;
	if (!ui->tty)
		return;
	char b[32];
	tools_format_bytes(bytes, b, sizeof(b));
	fprintf(stderr, "\r\033[K%llu files, %s", (unsigned long long)files, b);
}

static void on_warn(const char *path, int err, void *ctx)
{
	struct restore_ui *ui = ctx;
	if (ui->tty)
		fputs("\r\033[K", stderr);
	if (err == SD_EEXIST) {
		ui->refused = true;
		tools_error("%s exists; nothing was restored (use --overwrite "
			    "to replace existing files)", path);
		return;
	}
	tools_warn("%s: %s", path, sd_strerror(err));
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "point", required_argument, NULL, 'p' },
		{ "target", required_argument, NULL, 't' },
		{ "overwrite", no_argument, NULL, 'o' },
		{ 0 },
	};
	const char *point = "latest", *target = NULL;
	bool overwrite = false;
	int c;
	while ((c = getopt_long(argc, argv, "qhp:t:", opts, NULL)) != -1) {
		int k = tools_common_option(c, "restore");
		if (k < 0)
			return EXIT_OK;
		if (k > 0)
			continue;
		if (c == 'p')
			point = optarg;
		else if (c == 't')
			target = optarg;
		else if (c == 'o')
			overwrite = true;
		else
			return tools_bad_option("restore", argv);
	}
	if (!target)
		return tools_usage_error("restore", "--target DIR is required");

	struct store_repo *repo;
	int rc = tools_repo_open(0, &repo);
	if (rc)
		return rc;
	struct store_snapshot snap = { 0 };
	int r = store_snapshot_resolve(repo, point, &snap);
	if (r < 0) {
		if (r == SD_ENOTFOUND)
			tools_error("no backup point matches '%s' (see "
				    "'snapdraft snapshots')", point);
		else if (r == SD_EAMBIGUOUS)
			tools_error("'%s' matches several backup points; give "
				    "more of the id", point);
		else
			tools_error("--point %s: %s", point, sd_strerror(r));
		store_repo_close(repo);
		return r == SD_EUSAGE ? EXIT_USAGE : EXIT_FAILURE_;
	}
	struct restore_ui ui = {
		.tty = !tools_globals.quiet && isatty(STDERR_FILENO),
	};
	struct store_restore_options o = {
		.snapshot = &snap,
		.target = target,
		.includes = (const char *const *)(argv + optind),
		.nincludes = (size_t)(argc - optind),
		.overwrite = overwrite,
		.progress = on_progress,
		.warn = on_warn,
		.ctx = &ui,
	};
	struct store_restore_result res = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = store_restore_run(repo, &o, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ui.tty)
		fputs("\r\033[K", stderr);
	char id[SD_ID_HEX_LEN + 1], when[32], bytes[32];
	sd_id_hex(&snap.id, id);
	store_time_format(snap.time_ns, when);
	tools_format_bytes(res.bytes, bytes, sizeof(bytes));
	if (r == SD_ENOTFOUND)
		tools_error("a path to restore is not in backup point %.8s (%s)",
			    id, when);
	else if (r == SD_EEXIST && !ui.refused)
		tools_error("files to restore exist in %s; nothing was restored "
			    "(use --overwrite)", target);
	else if (r < 0 && r != SD_EPARTIAL && r != SD_EEXIST)
		tools_error("restore to %s failed: %s", target, sd_strerror(r));
	else if (!tools_globals.quiet && r != SD_EEXIST)
		printf("restored %.8s (%s) to %s: %llu files, %llu dirs, "
		       "%llu others, %s in %.2f s%s\n", id, when, target,
		       (unsigned long long)res.files,
		       (unsigned long long)res.dirs,
		       (unsigned long long)res.others, bytes,
		       (double)(t1.tv_sec - t0.tv_sec) +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		       res.failed ? "; some files FAILED (named above)" : "");
	store_snapshot_clear(&snap);
	store_repo_close(repo);
	return r == SD_EEXIST ? EXIT_FAILURE_ : tools_exit_code(r);
}
