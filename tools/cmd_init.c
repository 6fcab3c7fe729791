/*
 * cmd_init.c — `snapdraft init`.
 */
#include <stdlib.h>

#include "tools.h"

static int parse_size(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (!s[0] || *end || v == 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "chunk-min", required_argument, NULL, 'm' },
		{ "chunk-avg", required_argument, NULL, 'a' },
		{ "chunk-max", required_argument, NULL, 'x' },
		{ 0 },
	};
	struct store_repo_init_options o = {
		.chunker = STORE_CHUNKER_PARAMS_DEFAULT,
	};
	int c;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		int k = tools_common_option(c, "init");
		if (k < 0)
			return EXIT_OK;
		if (k > 0)
			continue;
		uint32_t *field = c == 'm' ? &o.chunker.min_size :
				  c == 'a' ? &o.chunker.avg_size :
				  c == 'x' ? &o.chunker.max_size : NULL;
		if (!field)
			return tools_bad_option("init", argv);
		if (parse_size(optarg, field) < 0)
			return tools_usage_error("init", "'%s' is not a size in "
						 "bytes", optarg);
	}
	if (optind < argc)
		return tools_usage_error("init", "unexpected argument '%s'",
					 argv[optind]);
	if (store_chunker_params_check(&o.chunker) < 0)
		return tools_usage_error("init", "chunk sizes need 64 <= min <= "
					 "avg <= max and avg a power of two");
	const char *path = tools_repo_path();
	int r = store_repo_init(path, &o);
	if (r == SD_EEXIST) {
		tools_error("%s already exists and is not empty; not creating a "
			    "repository there", path);
		return EXIT_FAILURE_;
	}
	if (r < 0) {
		tools_error("cannot create a repository at %s: %s", path,
			    sd_strerror(r));
		return tools_exit_code(r);
	}
	if (!tools_globals.quiet)
		printf("created snapdraft repository at %s\n", path);
	return EXIT_OK;
}
