#!/bin/bash
# mount_layout.sh — the layout of a mount, its generated files, statfs,
# EROFS for every kind of write, and the refusals of `mount` / `umount`.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

make_tree "$WORK/src"
sd init >/dev/null
sd backup --time 2026-11-22T10:30:00Z "$WORK/src/content" "$WORK/src/hugo.toml" >/dev/null
sd backup --time 2026-11-22T11:30:00Z "$WORK/src/content" "$WORK/src/static" >/dev/null
mapfile -t ids < <(sd --json snapshots | jq -r '.[].short_id')
[ "${#ids[@]}" = 2 ] || fail "expected 2 backup points"

M="$WORK/mnt"
do_mount "$M"

# --- layout
[ "$(ls -A "$M" | tr '\n' ' ')" = ".snapdraft ids latest snapshots " ] ||
	fail "root lists: $(ls -A "$M" | tr '\n' ' ')"
[ "$(ls "$M/snapshots" | tr '\n' ' ')" = "2026-11-22T10:30:00Z 2026-11-22T11:30:00Z " ] ||
	fail "snapshots/ lists: $(ls "$M/snapshots" | tr '\n' ' ')"
[ "$(readlink "$M/latest")" = "snapshots/2026-11-22T11:30:00Z" ] ||
	fail "latest -> $(readlink "$M/latest")"
[ "$(ls "$M/latest" | tr '\n' ' ')" = "content drafts static " ] || fail "latest/ lists: $(ls "$M/latest")"
[ "$(ls "$M/snapshots/2026-11-22T10:30:00Z" | tr '\n' ' ')" = "content drafts hugo.toml " ] ||
	fail "first point lists: $(ls "$M/snapshots/2026-11-22T10:30:00Z")"
for id in "${ids[@]}"; do
	t=$(readlink "$M/ids/$id")
	[[ "$t" == ../snapshots/2026-11-22T1[01]:30:00Z ]] || fail "ids/$id -> $t"
	[ -d "$M/ids/$id/content" ] || fail "ids/$id does not lead into its point"
done
[ "$(ls "$M/ids" | wc -l)" = 2 ] || fail "ids/ lists $(ls "$M/ids")"
[ "$(stat -c %h "$M/snapshots")" = 4 ] || fail "snapshots/ nlink $(stat -c %h "$M/snapshots")"
# both points share the unchanged content/ directory, yet they are two
# directories to the kernel (different inode numbers)
a=$(stat -c %i "$M/snapshots/2026-11-22T10:30:00Z/content")
b=$(stat -c %i "$M/snapshots/2026-11-22T11:30:00Z/content")
[ "$a" != "$b" ] || fail "the same directory in two points has one inode number"
ls -lR "$M/snapshots" >/dev/null || fail "ls -lR of snapshots/ failed"
[ "$(ls -ld "$M/snapshots/2026-11-22T10:30:00Z" | cut -c1-10)" = "dr-xr-xr-x" ] ||
	fail "a backup point folder should be read-only"
[ "$(stat -c %y "$M/snapshots/2026-11-22T10:30:00Z")" = "2026-11-22 10:30:00.000000000 +0000" ] ||
	[ "$(TZ=UTC stat -c %y "$M/snapshots/2026-11-22T10:30:00Z")" = "2026-11-22 10:30:00.000000000 +0000" ] ||
	fail "a point folder is not dated at its time: $(TZ=UTC stat -c %y "$M/snapshots/2026-11-22T10:30:00Z")"

# --- generated files: real figures, fresh on every open
S="$M/.snapdraft/status.json"
jq -e . "$S" >/dev/null || fail "status.json is not JSON"
[ "$(jq .snapshots.count "$S")" = 2 ] || fail "status.json count"
[ "$(jq -r .snapshots.newest.name "$S")" = 2026-11-22T11:30:00Z ] || fail "status.json newest"
[ "$(jq -r .snapshots.oldest.name "$S")" = 2026-11-22T10:30:00Z ] || fail "status.json oldest"
[ "$(jq '.points | length' "$S")" = 2 ] || fail "status.json points"
[ "$(jq '.points[1].files' "$S")" -gt 40 ] || fail "status.json per-point files"
[ "$(jq '.totals.logical_bytes' "$S")" -gt 3000000 ] || fail "status.json totals"
[ "$(jq '.totals.stored_bytes' "$S")" -gt 0 ] || fail "status.json stored bytes"
[ "$(jq -r .repository "$S")" = "$SNAPDRAFT_REPO" ] || fail "status.json repository"
[ "$(jq .pid "$S")" = "$MOUNT_PID" ] || fail "status.json pid"
before=$(jq .requests.bytes_served "$S")
cat "$M/latest/static/img/photo.bin" >/dev/null
after=$(jq .requests.bytes_served "$S")
[ $((after - before)) -ge 3000000 ] || fail "bytes_served did not count a read ($before -> $after)"
[ "$(jq .cache.misses "$S")" -gt 0 ] || fail "cache misses not counted"
cat "$M/latest/static/img/photo.bin" >/dev/null
[ "$(stat -c %s "$S")" -gt 100 ] || fail "status.json reports no size"

P="$M/.snapdraft/metrics.prom"
grep -q '^# HELP snapdraft_snapshots ' "$P" || fail "metrics.prom: no HELP"
grep -q '^# TYPE snapdraft_snapshots gauge$' "$P" || fail "metrics.prom: no TYPE"
grep -q '^snapdraft_snapshots 2$' "$P" || fail "metrics.prom: snapshot count"
grep -q '^snapdraft_mount_read_bytes_total [1-9]' "$P" || fail "metrics.prom: bytes served"
grep -q '^snapdraft_mount_cache_hits_total ' "$P" || fail "metrics.prom: cache hits"
grep -q '^snapdraft_snapshot_bytes{snapshot="2026-11-22T11:30:00Z",id="[0-9a-f]*"} [1-9]' "$P" ||
	fail "metrics.prom: per-point bytes"
# every sample line belongs to a family with HELP and TYPE
while read -r name _; do
	fam=${name%%\{*}
	grep -q "^# TYPE $fam " "$P" || fail "metrics.prom: $fam has no TYPE"
	grep -q "^# HELP $fam " "$P" || fail "metrics.prom: $fam has no HELP"
done < <(grep -v '^#' "$P")

# --- statfs
df "$M" >/dev/null || fail "df on the mount failed"
[ "$(stat -f -c %l "$M")" = 255 ] || fail "statfs namemax"

# --- every write is EROFS
f="$M/latest/content/posts/hello.md"
check_erofs() {
	local out
	out=$("$@" 2>&1) && fail "write succeeded: $*"
	grep -q "Read-only file system" <<<"$out" || fail "not EROFS: $* -> $out"
}
check_erofs sh -c "echo x >> '$f'"
check_erofs sh -c "echo x > '$M/latest/content/new.md'"
check_erofs touch "$f"
check_erofs chmod 600 "$f"
check_erofs mkdir "$M/latest/content/newdir"
check_erofs rm "$f"
check_erofs rmdir "$M/latest/content/empty-dir"
check_erofs mv "$f" "$M/latest/content/moved.md"
check_erofs ln -s x "$M/latest/content/newlink"
check_erofs ln "$f" "$M/latest/content/newhard"
check_erofs setfattr -n user.x -v 1 "$f"
check_erofs setfattr -x user.author "$f"
check_erofs truncate -s 0 "$f"
check_erofs mkdir "$M/snapshots/new"
check_erofs sh -c "echo x > '$M/.snapdraft/status.json'"
[ "$(cat "$f")" = "# hello" ] || fail "content changed"

# --- refusals: nothing is left mounted after any of them
expect_exit 1 sd mount "$WORK/nowhere"
expect_stderr 'does not exist'
mkdir -p "$WORK/full" && touch "$WORK/full/x"
expect_exit 1 sd mount "$WORK/full"
expect_stderr 'not empty'
is_mounted "$WORK/full" && fail "left a mount on a non-empty dir"
expect_exit 1 sd mount "$M"
expect_stderr 'already mounted'
mkdir -p "$WORK/m2"
expect_exit 10 env SNAPDRAFT_REPO="$WORK/no-repo" "$SNAPDRAFT" mount "$WORK/m2"
expect_stderr 'no repository'
is_mounted "$WORK/m2" && fail "left a mount after a missing repository"
cp -a "$SNAPDRAFT_REPO" "$WORK/damaged"
echo garbage >"$WORK/damaged/format"
rc=0
SNAPDRAFT_REPO="$WORK/damaged" "$SNAPDRAFT" mount "$WORK/m2" 2>"$WORK/.err" || rc=$?
[ "$rc" != 0 ] || fail "mounted a repository with a damaged format file"
[ "$(wc -l <"$WORK/.err")" = 1 ] || fail "error is not one line: $(cat "$WORK/.err")"
is_mounted "$WORK/m2" && fail "left a mount after a damaged repository"
expect_exit 2 sd mount
expect_exit 1 sd umount "$WORK/m2"
expect_stderr 'nothing is mounted'

# --- umount
sd umount "$M" || fail "umount failed"
wait_gone "$MOUNT_PID" || fail "server still running after umount"
is_mounted "$M" && fail "still mounted after umount"
[ -z "$(ls -A "$M")" ] || fail "mountpoint not empty after umount"
echo "ok"
