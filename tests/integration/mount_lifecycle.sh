#!/bin/bash
# mount_lifecycle.sh — the server's life: ready when `mount` returns, a
# stale mount (server killed) is replaced by the next `mount`, SIGTERM and
# SIGINT unmount cleanly, `umount` refuses a busy mount unless --lazy, and
# open files keep working after a lazy unmount.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

S="$WORK/src"
mkdir -p "$S/content"
echo hello >"$S/content/post.md"
head -c 2000000 /dev/urandom >"$S/content/big.bin"
sd init >/dev/null
sd backup "$S/content" >/dev/null
M="$WORK/mnt"

# ready on return: the very next stat answers from the server
do_mount "$M"
[ "$(stat -c %i "$M")" = 1 ] || fail "mount returned before the filesystem answered"
[ "$(cat "$M/latest/content/post.md")" = hello ] || fail "first read"
first_pid=$MOUNT_PID

# the server dies: the mount goes stale, the next `mount` replaces it
kill -9 "$first_pid"
wait_gone "$first_pid" || fail "server did not die"
out=$(stat "$M" 2>&1) && fail "stale mount still answers"
grep -q "not connected" <<<"$out" || fail "expected ENOTCONN from a stale mount: $out"
do_mount "$M"
[ "$MOUNT_PID" != "$first_pid" ] || fail "same server?"
[ "$(cat "$M/latest/content/post.md")" = hello ] || fail "read after recovering a stale mount"
[ "$(grep -cF " $(cd "$WORK" && pwd -P)/mnt " /proc/self/mountinfo)" = 1 ] ||
	fail "more than one mount on $M"

# SIGTERM: clean unmount, the server exits, the directory is usable again
kill -TERM "$MOUNT_PID"
wait_gone "$MOUNT_PID" || fail "server ignored SIGTERM"
is_mounted "$M" && fail "still mounted after SIGTERM"
[ -z "$(ls -A "$M")" ] || fail "mountpoint not empty after SIGTERM"

# SIGINT to a foreground server
do_mount_fg "$M" "$WORK/fg.log"
kill -INT "$MOUNT_PID"
wait_gone "$MOUNT_PID" || fail "foreground server ignored SIGINT"
wait "$MOUNT_PID" 2>/dev/null || fail "foreground server exited with an error: $(cat "$WORK/fg.log")"
is_mounted "$M" && fail "still mounted after SIGINT"

# umount of a busy mount: refused, then lazy; open files keep reading
do_mount "$M"
exec 3<"$M/latest/content/big.bin"
head -c 100 <&3 >/dev/null
expect_exit 1 sd umount "$M"
expect_stderr 'busy'
is_mounted "$M" || fail "a refused umount unmounted"
sd umount --lazy "$M" || fail "umount --lazy failed"
is_mounted "$M" && fail "still mounted after a lazy umount"
rest=$(cat <&3 | wc -c)
[ "$rest" = $((2000000 - 100)) ] || fail "open file stopped reading after a lazy umount ($rest)"
! is_gone "$MOUNT_PID" || fail "server exited while a file was open"
exec 3<&-
wait_gone "$MOUNT_PID" || fail "server did not exit after the last file closed"

# a plain umount of an idle mount, and fusermount3 -u work the same way
do_mount "$M"
sd umount "$M" || fail "umount"
wait_gone "$MOUNT_PID" || fail "server did not exit after umount"
do_mount "$M"
fusermount3 -u "$M" || fail "fusermount3 -u"
wait_gone "$MOUNT_PID" || fail "server did not exit after fusermount3 -u"
is_mounted "$M" && fail "still mounted"
echo "ok"
