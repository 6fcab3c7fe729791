/*
 * cmd_mount.c — `snapdraft mount` and `snapdraft umount`.
 *
 * The work is in fs/: this file parses the flags, hands the repository
 * path and mountpoint to fs_mount_run(), and turns its result into one
 * line and an exit code. In the background case fs_mount_run() returns
 * twice, like daemon(3): in this process once the mount answers, and in
 * the server process when it is unmounted; the server exits quietly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "tools.h"

/* Help texts, collected by help.c (declared in tools.h). */
static const char mount_help[] =
	"usage: snapdraft mount MOUNTPOINT [--foreground] [--allow-other]\n"
	"                       [--debug]\n"
	"\n"
	"Mounts the repository read-only with FUSE and returns once the mount\n"
	"answers; the server keeps running in the background:\n"
	"\n"
	"  MOUNTPOINT/snapshots/<UTC time>/<source>/...  one folder per backup\n"
	"                                                point\n"
	"  MOUNTPOINT/latest -> snapshots/<newest>\n"
	"  MOUNTPOINT/ids/<short id> -> ../snapshots/<UTC time>\n"
	"  MOUNTPOINT/.snapdraft/status.json, metrics.prom\n"
	"\n"
	"Restore with cp -a or rsync -a out of the mount. Backups and forget\n"
	"may run while it is mounted; new backup points appear in snapshots/\n"
	"and latest at once. A chunk that fails verification is an I/O error\n"
	"for the file that holds it (logged to syslog), never wrong bytes.\n"
	"\n"
	"MOUNTPOINT must be an existing, empty directory. A mount left behind\n"
	"by a server that died is replaced.\n"
	"\n"
	"  -f, --foreground  stay in the foreground, log to stderr\n"
	"  --allow-other     let other users see the mount (needs\n"
	"                    user_allow_other in /etc/fuse.conf unless root)\n"
	"  -d, --debug       trace every FUSE request on stderr (implies\n"
	"                    --foreground)\n"
	"\n"
	"Stop it with 'snapdraft umount MOUNTPOINT', fusermount3 -u, or\n"
	"SIGTERM to the server (its pid is in .snapdraft/status.json).\n";

static const char umount_help[] =
	"usage: snapdraft umount MOUNTPOINT [--lazy]\n"
	"\n"
	"Unmounts a snapdraft (or any FUSE) mount, like fusermount3 -u; the\n"
	"server then exits. It fails when files in the mount are open or a\n"
	"shell is inside it, unless --lazy is given.\n"
	"\n"
	"  -z, --lazy  detach now; open files keep working until closed\n";

const char *cmd_mount_help = mount_help;
const char *cmd_umount_help = umount_help;

/* Mountpoint errors are the command failing; repository errors keep the
 * exit codes of the other commands (10: no repository). */
static int mount_exit_code(int r)
{
	if (r > -4096)
		return EXIT_FAILURE_;
	return tools_exit_code(r);
}

int cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "foreground", no_argument, NULL, 'f' },
		{ "allow-other", no_argument, NULL, 'o' },
		{ "debug", no_argument, NULL, 'd' },
		{ 0 },
	};
	struct fs_options o = FS_OPTIONS_INIT;
	enum fs_role role;
	char err[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "qhfd", opts, NULL)) != -1) {
		int k = tools_common_option(c, "mount");
		if (k < 0)
			return EXIT_OK;
		if (k > 0)
			continue;
		switch (c) {
		case 'f':
			o.foreground = true;
			break;
		case 'o':
			o.allow_other = true;
			break;
		case 'd':
			o.debug = true;
			break;
		default:
			return tools_bad_option("mount", argv);
		}
	}
	if (optind >= argc)
		return tools_usage_error("mount", "missing MOUNTPOINT");
	if (optind + 1 < argc)
		return tools_usage_error("mount", "unexpected argument '%s'",
					 argv[optind + 1]);
	o.mountpoint = argv[optind];
	o.repo_path = tools_repo_path();

	r = fs_mount_run(&o, &role, err, sizeof(err));
	if (role == FS_ROLE_SERVER)
		return r < 0 ? mount_exit_code(r) : EXIT_OK;
	if (r < 0) {
		tools_error("%s", err[0] ? err : sd_strerror(r));
		return mount_exit_code(r);
	}
	return EXIT_OK;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "lazy", no_argument, NULL, 'z' },
		{ 0 },
	};
	bool lazy = false;
	char err[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "qhz", opts, NULL)) != -1) {
		int k = tools_common_option(c, "umount");
		if (k < 0)
			return EXIT_OK;
		if (k > 0)
			continue;
		if (c != 'z')
			return tools_bad_option("umount", argv);
		lazy = true;
	}
	if (optind >= argc)
		return tools_usage_error("umount", "missing MOUNTPOINT");
	if (optind + 1 < argc)
		return tools_usage_error("umount", "unexpected argument '%s'",
					 argv[optind + 1]);
	r = fs_unmount(argv[optind], lazy, err, sizeof(err));
	if (r < 0) {
		tools_error("%s", err[0] ? err : strerror(-r));
		return EXIT_FAILURE_;
	}
	return EXIT_OK;
}
