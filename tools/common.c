/*
 * common.c — what every subcommand shares: the repository path, opening
 * it with one clear line on failure, error printing and exit codes.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

struct tools_globals tools_globals;

const char *tools_repo_path(void)
{
	static char buf[4096];
	if (tools_globals.repo)
		return tools_globals.repo;
	const char *env = getenv("SNAPDRAFT_REPO");
	if (env && env[0])
		return env;
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && xdg[0]) {
		snprintf(buf, sizeof(buf), "%s/snapdraft", xdg);
		return buf;
	}
	const char *home = getenv("HOME");
	snprintf(buf, sizeof(buf), "%s/.local/share/snapdraft",
		 home && home[0] ? home : "/root");
	return buf;
}

int tools_exit_code(int err)
{
	switch (err) {
	case 0:
		return EXIT_OK;
	case SD_EPARTIAL:
		return EXIT_PARTIAL;
	case SD_ENOREPO:
		return EXIT_NOREPO;
	case SD_ELOCKED:
		return EXIT_LOCKED;
	case SD_EUSAGE:
		return EXIT_USAGE;
	default:
		return EXIT_FAILURE_;
	}
}

int tools_repo_open(unsigned flags, struct store_repo **out)
{
	char err[1024];
	const char *path = tools_repo_path();
	int r = store_repo_open(path, flags, out, err, sizeof(err));
	if (r < 0) {
		if (err[0])
			tools_error("%s", err);
		else
			tools_error("%s: %s", path, sd_strerror(r));
		return tools_exit_code(r);
	}
	return 0;
}

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One line, always: a library message never spans several. */
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	fprintf(stderr, "snapdraft: %s%s\n", prefix, msg);
}

void tools_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("", fmt, ap);
	va_end(ap);
}

void tools_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("warning: ", fmt, ap);
	va_end(ap);
}

int tools_usage_error(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "snapdraft %s: %s (see 'snapdraft help %s')\n", cmd,
		msg, cmd);
	return EXIT_USAGE;
}

void tools_format_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

int tools_common_option(int c, const char *cmd)
{
	switch (c) {
	case TOOLS_OPT_REPO:
		tools_globals.repo = optarg;
		return 1;
	case TOOLS_OPT_JSON:
		tools_globals.json = true;
		return 1;
	case 'q':
		tools_globals.quiet = true;
		return 1;
	case 'h':
		fputs(tools_help_text(cmd), stdout);
		return -1;
	default:
		return 0;
	}
}

int tools_bad_option(const char *cmd, char **argv)
{
	if (optopt && isalpha(optopt))
		return tools_usage_error(cmd, "option -%c is unknown or needs "
					 "a value", optopt);
	return tools_usage_error(cmd, "option '%s' is unknown or needs a value",
				 argv[optind - 1]);
}

void tools_sources_json(cJSON *obj, const struct store_snapshot *s)
{
	cJSON *srcs = cJSON_AddArrayToObject(obj, "sources");
	for (size_t i = 0; i < s->nsources; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "name", s->sources[i].name);
		cJSON_AddStringToObject(x, "path", s->sources[i].path);
		cJSON_AddNumberToObject(x, "files", (double)s->sources[i].files);
		cJSON_AddNumberToObject(x, "bytes", (double)s->sources[i].bytes);
		cJSON_AddItemToArray(srcs, x);
	}
}
