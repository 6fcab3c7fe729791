#!/bin/bash
# mount_corrupt.sh — a flipped byte in one data pack is EIO for exactly the
# file whose chunk it hits (with a log line naming file and chunk); every
# other file still reads, and the server keeps serving.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

S="$WORK/src"
mkdir -p "$S/site/posts"
for ((i = 0; i < 30; i++)); do
	head -c $((1000 + i * 300)) /dev/urandom | base64 >"$S/site/posts/p$i.md"
done
head -c 2000000 /dev/urandom >"$S/site/other.bin"
sd init >/dev/null
sd backup "$S/site" >/dev/null
# The second point adds one file: its chunks land in a data pack of their
# own, the only pack of that size written after the marker.
head -c 1500000 /dev/urandom >"$S/site/victim.bin"
touch "$WORK/marker"
sleep 0.01
sd backup "$S/site" >/dev/null
mapfile -t packs < <(find "$SNAPDRAFT_REPO/packs" -type f -newer "$WORK/marker" -size +1000k)
[ "${#packs[@]}" = 1 ] || fail "expected one new data pack, found ${#packs[@]}"
pack=${packs[0]}
size=$(stat -c %s "$pack")
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$pack" | tr -d ' ')
chmod u+w "$pack"
printf "\\$(printf %03o $((byte ^ 0x5a)))" | dd of="$pack" bs=1 seek="$off" conv=notrunc status=none
[ "$(od -An -tu1 -j "$off" -N1 "$pack" | tr -d ' ')" != "$byte" ] || fail "byte not flipped"

M="$WORK/mnt"
LOG="$WORK/server.log"
do_mount_fg "$M" "$LOG"
P=$(readlink -f "$M/latest")

out=$(cat "$P/site/victim.bin" 2>&1 >/dev/null) && fail "reading the damaged file succeeded"
grep -q "Input/output error" <<<"$out" || fail "damaged file: expected EIO, got: $out"
# again: nothing wrong was cached, and it is still EIO
out=$(cat "$P/site/victim.bin" 2>&1 >/dev/null) && fail "second read of the damaged file succeeded"
grep -q "Input/output error" <<<"$out" || fail "second read: expected EIO, got: $out"

# every other file of both points reads, byte for byte
for snap in "$M"/snapshots/*; do
	cmp "$S/site/other.bin" "$snap/site/other.bin" || fail "other.bin in $snap"
	for ((i = 0; i < 30; i++)); do
		cmp "$S/site/posts/p$i.md" "$snap/site/posts/p$i.md" || fail "p$i.md in $snap"
	done
done
# and the damaged file's metadata is still there
[ "$(stat -c %s "$P/site/victim.bin")" = 1500000 ] || fail "metadata of the damaged file"

wait_for grep -Eq "snapshots/[^ ]+/site/victim\.bin: chunk [0-9a-f]{64}" "$LOG" || {
	cat "$LOG" >&2
	fail "no log line naming the file and the chunk"
}
[ "$(grep -c 'victim.bin: chunk' "$LOG")" = 1 ] || fail "the damaged file was logged more than once"
S_JSON="$M/.snapdraft/status.json"
[ "$(jq .requests.read_errors "$S_JSON")" -ge 1 ] || fail "read_errors not counted"
[ "$(jq .cache.errors "$S_JSON")" -ge 1 ] || fail "chunk errors not counted"
! is_gone "$MOUNT_PID" || fail "server died"

# a damaged directory (tree blob) of the second point: listing it is EIO,
# the first point is untouched
P1=$(ls -d "$M"/snapshots/* | head -1)
P2=$(readlink -f "$M/latest")
[ "$P1" != "$P2" ] || fail "expected two points"
n1=$(basename "$P1")
n2=$(basename "$P2")
kill -TERM "$MOUNT_PID"
wait_gone "$MOUNT_PID" || fail "server did not stop"
mapfile -t tpacks < <(find "$SNAPDRAFT_REPO/packs" -type f -newer "$WORK/marker" -size -1000k)
[ "${#tpacks[@]}" -ge 1 ] || fail "no tree pack from the second backup"
for tp in "${tpacks[@]}"; do
	size=$(stat -c %s "$tp")
	off=$((size / 2))
	byte=$(od -An -tu1 -j "$off" -N1 "$tp" | tr -d ' ')
	chmod u+w "$tp"
	printf "\\$(printf %03o $((byte ^ 0x5a)))" | dd of="$tp" bs=1 seek="$off" conv=notrunc status=none
done
do_mount_fg "$M" "$WORK/server2.log"
out=$(ls -R "$M/snapshots/$n2" 2>&1) && fail "listing a damaged directory succeeded"
grep -q "Input/output error" <<<"$out" || fail "damaged directory: expected EIO, got: $out"
ls -R "$M/snapshots/$n1" >/dev/null || fail "the intact point does not list"
for ((i = 0; i < 30; i++)); do
	cmp "$S/site/posts/p$i.md" "$M/snapshots/$n1/site/posts/p$i.md" || fail "p$i.md in the intact point"
done
grep -q "cannot read directory tree" "$WORK/server2.log" || fail "no log line for the damaged tree"
jq -e . "$M/.snapdraft/status.json" >/dev/null || fail "status.json after a damaged tree"
echo "ok"
