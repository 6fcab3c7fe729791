# mount_lib.sh — helpers for the mount_*.sh scripts (sourced after lib.sh).
#
# Every mount made here is unmounted at exit, pass or fail (on_exit), and a
# server that is still around afterwards is killed, so no daemon outlives a
# test.

# Skips (exit 77) where FUSE cannot be used.
require_fuse() {
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing"
	command -v jq >/dev/null || skip "jq is missing"
}

# server_pid MNT: pid of the server behind MNT, from .snapdraft/status.json.
server_pid() {
	jq -r .pid "$1/.snapdraft/status.json"
}

# _mount_cleanup MNT PID: unmount MNT if mounted, then make sure the server
# is gone.
_mount_cleanup() {
	local mnt=$1 pid=$2 i
	if mountpoint -q "$mnt" 2>/dev/null || [ -n "$(grep -F " $mnt " /proc/self/mountinfo)" ]; then
		fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
	if [ -n "$pid" ]; then
		for ((i = 0; i < 100; i++)); do
			is_gone "$pid" && return 0
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
}

# do_mount MNT [ARGS...]: mounts the repository on MNT (created if missing)
# in the background and registers the cleanup. Sets MOUNT_PID.
do_mount() {
	local mnt=$1
	shift
	# (mkdir fails on a stale mount, which `mount` is expected to replace)
	mkdir -p "$mnt" 2>/dev/null || true
	sd mount "$mnt" "$@" || fail "snapdraft mount $mnt failed"
	MOUNT_PID=$(server_pid "$mnt")
	[ -n "$MOUNT_PID" ] && [ "$MOUNT_PID" != null ] || fail "no server pid for $mnt"
	on_exit "_mount_cleanup '$mnt' '$MOUNT_PID'"
}

# do_mount_fg MNT LOG: mounts in the foreground (server's stderr to LOG),
# waits until it answers. Sets MOUNT_PID.
do_mount_fg() {
	local mnt=$1 log=$2
	mkdir -p "$mnt"
	"$SNAPDRAFT" mount "$mnt" --foreground 2>"$log" &
	MOUNT_PID=$!
	on_exit "_mount_cleanup '$mnt' '$MOUNT_PID'"
	wait_for test -f "$mnt/.snapdraft/status.json" || {
		cat "$log" >&2
		fail "foreground mount on $mnt did not come up"
	}
}

# is_gone PID: the process has exited (a zombie waiting for init to reap
# it counts: the daemon's parent is gone, and not every init reaps at once).
is_gone() {
	local state
	kill -0 "$1" 2>/dev/null || return 0
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$state" = Z ]
}

# wait_gone PID: waits up to 10 s for a process to exit.
wait_gone() {
	local i
	for ((i = 0; i < 200; i++)); do
		is_gone "$1" && return 0
		sleep 0.05
	done
	return 1
}

# is_mounted MNT: a filesystem is mounted exactly on MNT.
is_mounted() {
	local canon
	canon=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
	grep -qF " $canon " /proc/self/mountinfo
}

# make_tree DIR: a source tree with what a restore must get right: nested
# directories, odd names, empty and binary files, a sparse file, symlinks
# (relative, absolute, dangling, long), hard links, a fifo, xattrs,
# nanosecond times, unusual modes and owners.
make_tree() {
	local d=$1 i
	mkdir -p "$d/content/posts/2026" "$d/content/empty-dir" "$d/static/img" "$d/deep/a/b/c/d/e"
	echo "# hello" >"$d/content/posts/hello.md"
	printf 'title = "x"\n' >"$d/hugo.toml"
	: >"$d/content/empty-file"
	for ((i = 0; i < 40; i++)); do
		printf 'post %d\n%s\n' "$i" "$(head -c 300 /dev/urandom | base64 -w0)" \
			>"$d/content/posts/2026/post-$i.md"
	done
	head -c 3000000 /dev/urandom >"$d/static/img/photo.bin"
	head -c 200000 /dev/zero | tr '\0' 'a' >"$d/static/compressible.txt"
	echo "space" >"$d/content/name with spaces.md"
	echo "unicode" >"$d/content/caf$(printf '\xc3\xa9').md"
	echo "deep" >"$d/deep/a/b/c/d/e/leaf.txt"
	# sparse: holes at the start, middle and end
	truncate -s 20M "$d/static/sparse.img"
	printf 'middle' | dd of="$d/static/sparse.img" bs=1 seek=$((8 << 20)) conv=notrunc status=none
	head -c 70000 /dev/urandom | dd of="$d/static/sparse.img" bs=4096 seek=1024 conv=notrunc status=none
	ln -s posts/hello.md "$d/content/link-rel"
	ln -s /etc/hostname "$d/content/link-abs"
	ln -s does/not/exist "$d/content/link-dangling"
	ln -s "$(printf 'x%.0s' {1..100})/target" "$d/content/link-long"
	ln "$d/hugo.toml" "$d/content/hugo-hardlink.toml"
	ln "$d/hugo.toml" "$d/static/hugo-hardlink2.toml"
	mkfifo "$d/content/a-fifo"
	setfattr -n user.author -v "Ada" "$d/content/posts/hello.md"
	setfattr -n user.empty "$d/content/posts/hello.md"
	setfattr -n user.dir -v "yes" "$d/content/posts"
	chmod 0600 "$d/content/posts/2026/post-1.md"
	chmod 4755 "$d/static/compressible.txt"
	chmod 1777 "$d/content/empty-dir"
	chown 1234:5678 "$d/content/posts/2026/post-2.md"
	chown -h 4321:8765 "$d/content/link-rel"
	touch -d '2001-02-03 04:05:06.123456789' "$d/content/posts/2026/post-3.md"
	touch -h -d '1999-12-31 23:59:59.987654321' "$d/content/link-abs"
	touch -d '2010-01-01 00:00:00.5' "$d/deep/a/b"
}
