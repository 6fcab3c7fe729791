/*
 * cmd_snapshots.c — `snapdraft snapshots`: the backup points, oldest first.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

static cJSON *snapshot_json(const struct store_snapshot *s)
{
	char id[SD_ID_HEX_LEN + 1], tree[SD_ID_HEX_LEN + 1], when[32];
	sd_id_hex(&s->id, id);
	sd_id_hex(&s->tree, tree);
	store_time_format(s->time_ns, when);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	char short_id[9];
	memcpy(short_id, id, 8);
	short_id[8] = '\0';
	cJSON_AddStringToObject(o, "short_id", short_id);
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddStringToObject(o, "tree", tree);
	cJSON_AddStringToObject(o, "hostname", s->hostname ? s->hostname : "");
	cJSON_AddStringToObject(o, "username", s->username ? s->username : "");
	cJSON *tags = cJSON_AddArrayToObject(o, "tags");
	for (size_t i = 0; i < s->ntags; i++)
		cJSON_AddItemToArray(tags, cJSON_CreateString(s->tags[i]));
	tools_sources_json(o, s);
	cJSON_AddBoolToObject(o, "partial", s->partial);
	cJSON_AddNumberToObject(o, "files", (double)s->summary.files);
	cJSON_AddNumberToObject(o, "bytes", (double)s->summary.bytes);
	cJSON_AddNumberToObject(o, "bytes_added", (double)s->summary.bytes_added);
	cJSON_AddNumberToObject(o, "stored_added",
				(double)s->summary.stored_added);
	cJSON_AddNumberToObject(o, "duration", s->summary.duration);
	return o;
}

int cmd_snapshots(int argc, char **argv)
{
	static const struct option opts[] = { TOOLS_COMMON_LONGOPTS, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		int k = tools_common_option(c, "snapshots");
		if (k < 0)
			return EXIT_OK;
		if (k == 0)
			return tools_bad_option("snapshots", argv);
	}
	if (optind < argc)
		return tools_usage_error("snapshots", "unexpected argument '%s'",
					 argv[optind]);
	struct store_repo *repo;
	int rc = tools_repo_open(0, &repo);
	if (rc)
		return rc;
	struct store_snapshot *list;
	size_t n;
	int r = store_snapshot_list(repo, &list, &n);
	if (r < 0) {
		tools_error("cannot list snapshots: %s", sd_strerror(r));
		store_repo_close(repo);
		return tools_exit_code(r);
	}
	if (tools_globals.json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, snapshot_json(&list[i]));
		char *text = cJSON_Print(arr);
		if (text)
			puts(text);
		free(text);
		cJSON_Delete(arr);
	} else {
		printf("%-21s %-8s %-24s %9s %10s %10s  %s\n", "TIME", "ID",
		       "SOURCES", "FILES", "SIZE", "ADDED", "TAGS");
		for (size_t i = 0; i < n; i++) {
			const struct store_snapshot *s = &list[i];
			char id[SD_ID_HEX_LEN + 1], when[32], size[32],
				added[32], srcs[256] = "", tags[256] = "";
			sd_id_hex(&s->id, id);
			store_time_format(s->time_ns, when);
			tools_format_bytes(s->summary.bytes, size, sizeof(size));
			tools_format_bytes(s->summary.stored_added, added,
					   sizeof(added));
			for (size_t k = 0; k < s->nsources; k++)
				snprintf(srcs + strlen(srcs),
					 sizeof(srcs) - strlen(srcs), "%s%s",
					 k ? "," : "", s->sources[k].name);
			for (size_t k = 0; k < s->ntags; k++)
				snprintf(tags + strlen(tags),
					 sizeof(tags) - strlen(tags), "%s%s",
					 k ? "," : "", s->tags[k]);
			printf("%-21s %.8s %-24s %9llu %10s %10s  %s%s\n", when,
			       id, srcs, (unsigned long long)s->summary.files,
			       size, added, tags,
			       s->partial ? " (partial)" : "");
		}
		if (!tools_globals.quiet)
			printf("%zu backup point%s\n", n, n == 1 ? "" : "s");
	}
	store_snapshot_list_free(list, n);
	store_repo_close(repo);
	return EXIT_OK;
}
