/*
 * cmd_config.c — `snapdraft config` and `snapdraft config set KEY VALUE`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

int cmd_config(int argc, char **argv)
{
	static const struct option opts[] = { TOOLS_COMMON_LONGOPTS, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		int k = tools_common_option(c, "config");
		if (k < 0)
			return EXIT_OK;
		if (k == 0)
			return tools_bad_option("config", argv);
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	const char *repo_path = tools_repo_path();
	char path[4096], err[1024] = "";
	snprintf(path, sizeof(path), "%s/config.yaml", repo_path);

	if (nargs == 0) {
		/* Open the repository so a missing one is named as such. */
		struct store_repo *repo;
		int rc = tools_repo_open(0, &repo);
		if (rc)
			return rc;
		char *text = NULL;
		int r = store_config_render(store_repo_config(repo), &text);
		store_repo_close(repo);
		if (r < 0) {
			tools_error("cannot render the configuration: %s",
				    sd_strerror(r));
			return EXIT_FAILURE_;
		}
		fputs(text, stdout);
		free(text);
		return EXIT_OK;
	}
	if (!strcmp(args[0], "set")) {
		if (nargs != 3)
			return tools_usage_error("config", "usage: config set "
						 "KEY VALUE");
		struct store_repo *repo;
		int rc = tools_repo_open(0, &repo);
		if (rc)
			return rc;
		store_repo_close(repo);
		int r = store_config_set(path, args[1], args[2], err,
					 sizeof(err));
		if (r < 0) {
			tools_error("%s", err[0] ? err : sd_strerror(r));
			return r == SD_ECONFIG ? EXIT_USAGE : EXIT_FAILURE_;
		}
		if (!tools_globals.quiet)
			printf("%s = %s\n", args[1], args[2]);
		return EXIT_OK;
	}
	return tools_usage_error("config", "unknown action '%s' (use 'set')",
				 args[0]);
}
