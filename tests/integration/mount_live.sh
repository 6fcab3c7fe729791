#!/bin/bash
# mount_live.sh — backups taken while mounted show up in snapshots/, ids/
# and latest at once (the kernel's cached views are invalidated), a
# forgotten point leaves the mount, and files open in it keep reading.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

S="$WORK/src"
mkdir -p "$S/content"
echo one >"$S/content/post.md"
head -c 3000000 /dev/urandom >"$S/content/big.bin"
sd init >/dev/null
sd backup --time 2020-01-01T00:00:00Z "$S/content" >/dev/null
M="$WORK/mnt"
do_mount "$M"

first=$(readlink "$M/latest")
# warm every cache the kernel has for the live nodes
ls -l "$M" "$M/snapshots" "$M/ids" "$M/latest/" >/dev/null
cat "$M/latest/content/post.md" >/dev/null
stat "$M/snapshots" >/dev/null

# a backup while mounted: the mount does not block it ...
echo two >"$S/content/post.md"
sd backup "$S/content" >/dev/null || fail "backup while mounted failed"
# ... and it is there without waiting or remounting
[ "$(ls "$M/snapshots" | wc -l)" = 2 ] || fail "snapshots/ does not list the new point"
[ "$(ls "$M/ids" | wc -l)" = 2 ] || fail "ids/ does not list the new point"
second=$(readlink "$M/latest")
[ "$second" != "$first" ] || fail "latest still points to $first"
[ "$(cat "$M/latest/content/post.md")" = two ] || fail "latest/ shows old content"
[ "$(cat "$M/$first/content/post.md")" = one ] || fail "the old point changed"
# attributes of snapshots/ are cached for a second, or until the watcher
# invalidates them (inotify: at once)
wait_for sh -c "test \$(stat -c %h '$M/snapshots') = 4" || fail "snapshots/ link count not updated"
[ "$(jq .snapshots.count "$M/.snapdraft/status.json")" = 2 ] || fail "status.json count"

# several points in the same second get distinct names; latest is the newest
for i in 3 4 5; do
	echo "$i" >"$S/content/post.md"
	sd backup "$S/content" >/dev/null
	[ "$(cat "$M/latest/content/post.md")" = "$i" ] || fail "latest after backup $i shows $(cat "$M/latest/content/post.md")"
done
[ "$(ls "$M/snapshots" | sort -u | wc -l)" = 5 ] || fail "points with equal names: $(ls "$M/snapshots")"
for id in $(ls "$M/ids"); do
	[ -f "$M/ids/$id/content/post.md" ] || fail "ids/$id does not resolve"
done

# forget a point while one of its files is open: it leaves the mount, the
# open file keeps reading (store.h: a point is the file snapshots/<id>)
victim=$(sd --json snapshots | jq -r '.[0].id')
short=$(sd --json snapshots | jq -r '.[0].short_id')
old_dir=$(readlink -f "$M/ids/$short")
exec 3<"$old_dir/content/big.bin"
head -c 1000 <&3 >/dev/null
rm "$SNAPDRAFT_REPO/snapshots/$victim"
[ "$(ls "$M/snapshots" | wc -l)" = 4 ] || fail "the forgotten point is still listed"
[ "$(ls "$M/ids" | wc -l)" = 4 ] || fail "the forgotten point is still in ids/"
# a path the kernel had cached goes once the watcher has told it (async:
# a request thread cannot invalidate the directory it is serving)
wait_for test ! -e "$M/ids/$short" || fail "ids/$short still there"
wait_for test ! -e "$old_dir" || fail "$old_dir still resolves"
rest=$(cat <&3 | wc -c)
[ "$rest" = $((3000000 - 1000)) ] || fail "the open file stopped reading ($rest bytes)"
exec 3<&-

# every point gone: latest goes too, and comes back with the next backup
for f in "$SNAPDRAFT_REPO"/snapshots/*; do rm "$f"; done
[ -z "$(ls "$M/snapshots")" ] || fail "snapshots/ not empty"
wait_for sh -c "test ! -e '$M/latest' && test ! -L '$M/latest'" || fail "latest exists without points"
sd backup "$S/content" >/dev/null
[ "$(cat "$M/latest/content/post.md")" = 5 ] || fail "latest did not come back"
! is_gone "$MOUNT_PID" || fail "server died"
echo "ok"
