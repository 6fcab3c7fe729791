/*
 * help.c — `snapdraft help [COMMAND]` and the per-command --help texts.
 * The man page (packaging/) is written from the same texts.
 */
#include <stdio.h>
#include <string.h>

#include "tools.h"

static const char overview[] =
	"usage: snapdraft [--repo DIR] COMMAND [OPTIONS] [ARGS]\n"
	"\n"
	"Keeps every backup point of your writing in a deduplicated, compressed\n"
	"repository, and shows each point as a read-only tree in a FUSE mount.\n"
	"\n"
	"commands:\n"
	"  init       create a repository\n"
	"  backup     take a backup point of paths (or the configured sources)\n"
	"  snapshots  list backup points\n"
	"  restore    copy a backup point (or part of it) out of the repository\n"
	"  check      verify the repository (--read-data: every byte)\n"
	"  repair     rebuild the index from the packs\n"
	"  config     show or change config.yaml\n"
	"  mount      mount the repository with FUSE\n"
	"  umount     unmount it\n"
	"  help       show help for a command\n"
	"\n"
	"global options (also accepted after the command):\n"
	"  --repo DIR   repository (default: $SNAPDRAFT_REPO, else\n"
	"               ~/.local/share/snapdraft)\n"
	"  --json       machine-readable output where the command has it\n"
	"  -q, --quiet  no progress or informational output\n"
	"  --version    print the version\n"
	"\n"
	"exit codes:\n"
	"  0   success\n"
	"  1   the command failed (including problems found by check)\n"
	"  2   wrong flags or arguments\n"
	"  3   done, but some files could not be read or written (warned)\n"
	"  10  no repository at the given path\n"
	"  11  the repository is locked by another writer\n";

static const char help_init[] =
	"usage: snapdraft init [--repo DIR] [--chunk-min N] [--chunk-avg N]\n"
	"                      [--chunk-max N]\n"
	"\n"
	"Creates a repository in DIR (which must be missing or empty) with a\n"
	"commented config.yaml holding every default. Chunk sizes (bytes; the\n"
	"average a power of two) are fixed for the life of the repository;\n"
	"defaults 262144 / 1048576 / 4194304.\n";

static const char help_backup[] =
	"usage: snapdraft backup [OPTIONS] [PATH...]\n"
	"\n"
	"Takes one backup point. Each PATH becomes a source named by its base\n"
	"name at the root of the point; with no PATH, the sources of\n"
	"config.yaml are taken. Incremental: a file whose size, mtime, ctime and\n"
	"inode match the previous point of the same source is not read again.\n"
	"Every point also holds the repository's drafts/ as the source\n"
	"'drafts': a draft being saved through the mount is taken as it was\n"
	"before or after that save, never half-written.\n"
	"\n"
	"  --exclude PATTERN   leave out matching entries (glob; a pattern with a\n"
	"                      '/' matches the whole path, others the base name);\n"
	"                      repeatable, added to backup.exclude of config.yaml\n"
	"  --exclude-file F    read patterns from F, one a line (# comments)\n"
	"  --tag T             tag the point (repeatable)\n"
	"  --time T            record the point as taken at T (UTC,\n"
	"                      YYYY-MM-DDTHH:MM:SS[Z])\n"
	"  --dry-run           read everything, write nothing\n"
	"  --force             read every file, ignoring the previous point\n"
	"  --wait              wait for another writer instead of failing\n"
	"  --no-drafts         leave the repository's drafts/ out of this point\n"
	"  --json              print the summary as JSON\n"
	"\n"
	"A file that vanishes or cannot be read is a warning; the point is\n"
	"still saved and the exit code is 3.\n";

static const char help_snapshots[] =
	"usage: snapdraft snapshots [--json]\n"
	"\n"
	"Lists the backup points, oldest first: time, id, sources, files, size\n"
	"and the bytes each one added to the repository.\n";

static const char help_restore[] =
	"usage: snapdraft restore [--point P] --target DIR [--overwrite] [PATH...]\n"
	"\n"
	"Restores a backup point (P: 'latest', the default; an id prefix; or a\n"
	"UTC time such as 2026-11-22T10:30, meaning the newest point at or\n"
	"before it) into DIR, with all metadata. PATHs (inside the point, such\n"
	"as content/posts/a.md) restore only those, at the same place under\n"
	"DIR. Existing files are not overwritten unless --overwrite is given.\n"
	"A damaged file is named and left out; the rest is restored (exit 3).\n";

static const char help_check[] =
	"usage: snapdraft check [--read-data]\n"
	"\n"
	"Verifies that every blob a backup point needs is indexed and present in\n"
	"its pack. --read-data also reads every pack and re-hashes every blob.\n"
	"Each problem is named (pack, blob, and the files that use it); the exit\n"
	"code is 1 when any is found.\n";

static const char help_repair[] =
	"usage: snapdraft repair --rebuild-index\n"
	"\n"
	"Rebuilds the index from the trailers of the pack files, after the index\n"
	"was lost or damaged. Packs whose trailer cannot be read are named.\n";

static const char help_config[] =
	"usage: snapdraft config\n"
	"       snapdraft config set KEY VALUE\n"
	"\n"
	"Prints the effective configuration (config.yaml with every default\n"
	"filled in), or sets one key, given as a dotted path such as\n"
	"retention.keep_daily or sources.content, keeping the file's comments.\n"
	"An unknown key or a bad value is an error and leaves the file as it was.\n";

static const char help_help[] =
	"usage: snapdraft help [COMMAND]\n";

const char *tools_help_text(const char *cmd)
{
	static const struct {
		const char *name;
		const char *text;
	} texts[] = {
		{ "init", help_init },       { "backup", help_backup },
		{ "snapshots", help_snapshots }, { "restore", help_restore },
		{ "check", help_check },     { "repair", help_repair },
		{ "config", help_config },   { "help", help_help },
	};
	if (!cmd)
		return overview;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (!strcmp(cmd, texts[i].name))
			return texts[i].text;
	if (!strcmp(cmd, "mount"))
		return cmd_mount_help;
	if (!strcmp(cmd, "umount"))
		return cmd_umount_help;
	return NULL;
}

int cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return tools_usage_error("help", "too many arguments");
	const char *text = tools_help_text(argc == 2 ? argv[1] : NULL);
	if (!text) {
		tools_error("no such command: '%s' (see 'snapdraft help')",
			    argv[1]);
		return EXIT_USAGE;
	}
	fputs(text, stdout);
	return EXIT_OK;
}
