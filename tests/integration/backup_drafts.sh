#!/bin/bash
# backup_drafts.sh — every backup point holds the repository's drafts/ as
# the source "drafts", and a draft that is being written while the backup
# runs is taken whole: its content of the previous point (or nothing when
# it is new), never half of the new one. The writer here plays the mount's
# part of the drafts protocol (LOCK_EX from the first change to close).
here=$(dirname "${BASH_SOURCE[0]}")
source "${TESTLIB:-$here/lib.sh}"

D=$SNAPDRAFT_REPO/drafts
src=$WORK/src
mkdir -p "$src"
echo "site" >"$src/hugo.toml"
expect_exit 0 sd init

printf 'first version\n' >"$D/manual/post.md"
printf '요청\n' >"$D/requests/ai 미래.yaml"
expect_exit 0 sd backup --time 2026-11-22T10:00:00Z "$src"
expect_exit 0 sd restore --point latest --target "$WORK/r1" drafts
cmp "$D/manual/post.md" "$WORK/r1/drafts/manual/post.md" || fail "draft not in the point"
cmp "$D/requests/ai 미래.yaml" "$WORK/r1/drafts/requests/ai 미래.yaml" ||
	fail "request with a Korean name not in the point"

# hold_draft FILE READY: rewrites FILE under LOCK_EX, half at first, and
# keeps the lock until READY is removed; then writes the rest and closes.
hold_draft() {
	python3 - "$1" "$2" <<'PY' &
import fcntl, os, sys, time
path, ready = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, b"second version, half")
open(ready, "w").close()
while os.path.exists(ready):
    time.sleep(0.05)
os.write(fd, b" and the rest\n")
os.close(fd)
PY
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "$2" ] && return 0
		sleep 0.05
	done
	fail "the writer did not start"
}

hold_draft "$D/manual/post.md" "$WORK/ready1"
hold_draft "$D/manual/new.md" "$WORK/ready2"
expect_exit 0 sd backup --time 2026-11-22T11:00:00Z "$src"
rm -f "$WORK/ready1" "$WORK/ready2"
wait
expect_exit 0 sd restore --point 2026-11-22T11:00:00Z --target "$WORK/r2" drafts
[ "$(cat "$WORK/r2/drafts/manual/post.md")" = "first version" ] ||
	fail "a draft being written was taken as: $(cat "$WORK/r2/drafts/manual/post.md")"
[ ! -e "$WORK/r2/drafts/manual/new.md" ] ||
	fail "a new draft being written was taken half-written"

expect_exit 0 sd backup --time 2026-11-22T12:00:00Z "$src"
expect_exit 0 sd restore --point latest --target "$WORK/r3" drafts
[ "$(cat "$WORK/r3/drafts/manual/post.md")" = "second version, half and the rest" ] ||
	fail "the finished draft is not in the next point"
cmp "$D/manual/new.md" "$WORK/r3/drafts/manual/new.md" || fail "the new draft is missing later"

# --no-drafts leaves them out; a source of its own named drafts must not
# silently replace them.
expect_exit 0 sd backup --json --no-drafts "$src"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert [s["name"] for s in j["sources"]] == ["src"], j["sources"]' "$WORK/.out" ||
	fail "--no-drafts still took drafts"
mkdir -p "$WORK/other/drafts"
expect_exit 2 sd backup "$WORK/other/drafts"
grep -q "named 'drafts'" "$WORK/.err" || fail "no clear error for a source named drafts: $(cat "$WORK/.err")"
expect_exit 0 sd backup --no-drafts "$WORK/other/drafts"
echo "backup_drafts: ok"
