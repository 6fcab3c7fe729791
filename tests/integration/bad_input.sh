#!/bin/bash
# bad_input.sh — wrong arguments, wrong places and damaged repositories: each
# gives one clear line and a non-zero exit, and leaves the repository as it
# was (or, for damage, names the pack and the files, and restores the rest).
here=$(dirname "${BASH_SOURCE[0]}")
source "${TESTLIB:-$here/lib.sh}"
source "$here/tree_lib.sh"
need_root

# expect_exit_in "CODES" CMD...: like expect_exit, any of CODES.
expect_exit_in() {
	local want=" $1 " rc=0
	shift
	"$@" >"$WORK/.out" 2>"$WORK/.err" || rc=$?
	if [[ "$want" != *" $rc "* ]]; then
		cat "$WORK/.out" "$WORK/.err" >&2
		fail "expected exit in {$want}, got $rc: $*"
	fi
}

# use_repo DIR: later commands work on DIR.
use_repo() { export SNAPDRAFT_REPO=$1; }

# locker: holds the writer lock of the main repository from another process
# (flock, as store/repo.c takes it) until killed; its pid in $lpid.
locker() {
	"$PY" -c 'import fcntl, sys, time; f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(120)' \
		"$main/lock" >"$WORK/locker.out" &
	lpid=$!
	cleanup_add "kill $lpid 2>/dev/null"
	wait_for grep -q locked "$WORK/locker.out" || fail "could not take the lock"
}

# snapshot_count: backup points of the current repository.
snapshot_count() {
	sd --json snapshots | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

src=$WORK/src
mkdir -p "$src/posts"
text_file "$src/posts/a.md" 20000 a
text_file "$src/posts/b.md" 30000 b
text_file "$src/victim.md" $((100 * 1024)) victim-text
rand_file "$src/victim.bin" $((200 * 1024)) victim-random
rand_file "$src/data.bin" $((3 * 1024 * 1024)) data
text_file "$src/notes.txt" 700000 notes
ln -s posts/a.md "$src/link"
mkdir "$src/empty"

main=$WORK/repo
use_repo "$main"
expect_exit 0 sd init
expect_exit 0 sd backup --time 2026-02-01T00:00:00Z "$src"
repo_digest "$main" >"$WORK/repo0"

# arguments
test_arguments() {
	expect_exit 2 sd backup --bogus "$src"
	expect_stderr "'--bogus'"
	expect_exit 2 sd --bogus snapshots
	expect_stderr "'--bogus'"
	expect_exit 2 sd restore --point latest --target "$WORK/x" --frobnicate
	expect_stderr "'--frobnicate'"
	expect_exit 2 sd check --read-dta
	expect_stderr "'--read-dta'"
	expect_exit 2 sd frobnicate
	expect_stderr "unknown command 'frobnicate'"
	expect_exit 2 sd
	expect_exit 2 sd restore --point latest
	expect_stderr 'target'
	expect_exit 2 sd backup --time yesterday "$src"
	expect_stderr "'yesterday'"
	expect_exit 2 sd repair
	expect_stderr 'rebuild-index'
	expect_exit 2 sd snapshots extra-arg
	expect_stderr 'extra-arg'
	[ ! -e "$WORK/x" ] || fail "a refused restore created its target"
	repo_unchanged_since "$WORK/repo0" "after argument errors"
}

# missing paths
test_missing_paths() {
	expect_exit_in "1 2" sd backup "$WORK/no/such/dir"
	expect_stderr "$WORK/no/such/dir.*(No such file|not found)"
	expect_exit_in "1 2" sd backup "$src" "$WORK/also-missing"
	expect_stderr 'also-missing'
	expect_exit 1 sd restore --point latest --target "$WORK/x" src/no-such-file.md
	expect_stderr 'not in backup point'
	[ ! -e "$WORK/x/src" ] || fail "a restore of a missing path created files"
	expect_exit 1 sd restore --point 2020-01-01 --target "$WORK/x"
	expect_stderr 'no backup point matches'
	expect_exit_in "1 2" sd restore --point zzzz --target "$WORK/x"
	expect_stderr 'zzzz'
	echo file >"$WORK/afile"
	expect_exit_in "1 3" sd restore --point latest --target "$WORK/afile"
	expect_stderr 'afile'
	[ "$(cat "$WORK/afile")" = file ] || fail "restore onto a file changed it"
	repo_unchanged_since "$WORK/repo0" "after missing paths"
}

# not a repository
test_not_a_repository() {
	mkdir "$WORK/notrepo"
	echo keep >"$WORK/notrepo/file"
	for cmd in snapshots check "backup $src" "restore --target $WORK/x" config; do
		# shellcheck disable=SC2086
		SNAPDRAFT_REPO=$WORK/notrepo expect_exit 10 sd $cmd
		expect_stderr "$WORK/notrepo.*not a snapdraft repository"
	done
	expect_exit 10 sd --repo "$WORK/missing-repo" snapshots
	expect_stderr 'missing-repo'
	expect_exit 10 sd check --repo "$WORK/missing-repo"
	[ "$(ls -A "$WORK/notrepo")" = file ] || fail "commands wrote into a non-repository"
	[ ! -e "$WORK/missing-repo" ] || fail "a command created a missing repository"
}

# init where it must not
test_init_refused() {
	mkdir "$WORK/nonempty"
	echo keep >"$WORK/nonempty/file"
	SNAPDRAFT_REPO=$WORK/nonempty expect_exit 1 sd init
	expect_stderr 'nonempty.*not empty'
	[ "$(ls -A "$WORK/nonempty")" = file ] || fail "init wrote into a non-empty directory"
	expect_exit 1 sd init
	expect_stderr 'not empty|already'
	repo_unchanged_since "$WORK/repo0" "after init over the repository"
}

# format version
test_format_version() {
	repo_digest "$main" >"$WORK/repo-fmt0"
	cp "$main/format" "$WORK/format.orig"
	for v in 99 0; do
		"$PY" - "$main/format" "$v" <<-'EOF'
	import json, sys
	p, v = sys.argv[1], int(sys.argv[2])
	j = json.load(open(p)); j["snapdraft_repository"] = v
	open(p, "w").write(json.dumps(j))
	EOF
		expect_exit 1 sd snapshots
		expect_stderr "format $v.*(newer|older)"
		expect_exit 1 sd backup "$src"
		expect_stderr "format $v"
	done
	cp "$WORK/format.orig" "$main/format"
	repo_unchanged_since "$WORK/repo-fmt0" "after format version errors"
}

# read-only target
test_readonly_target() {
	tmpfs_mount "$WORK/ro" ro,size=1m
	expect_exit 1 sd restore --point latest --target "$WORK/ro/out"
	expect_stderr 'Read-only file system|read-only'
	expect_exit_in "1 3" sd restore --point latest --target "$WORK/ro"
	expect_stderr 'Read-only file system|read-only'
	repo_unchanged_since "$WORK/repo0" "after read-only targets"
}

# lock
test_lock() {
	locker
	expect_exit 11 sd backup "$src"
	expect_stderr 'locked'
	expect_exit 11 sd repair --rebuild-index
	expect_stderr 'locked'
	# Readers take no lock.
	expect_exit 0 sd snapshots
	expect_exit 0 sd check
	expect_exit 0 sd restore --point latest --target "$WORK/while-locked"
	same_tree "$src" "$WORK/while-locked/src"
	repo_unchanged_since "$WORK/repo0" "after a refused locked backup"
	n0=$(snapshot_count)
	"$SNAPDRAFT" backup --wait --time 2026-02-02T00:00:00Z "$src" >"$WORK/wait.out" 2>"$WORK/wait.err" &
	wpid=$!
	sleep 1.5
	kill -0 "$wpid" 2>/dev/null || { cat "$WORK/wait.err" >&2; fail "backup --wait did not wait"; }
	[ "$(snapshot_count)" = "$n0" ] || fail "backup --wait wrote a point while locked"
	kill "$lpid"
	wait "$lpid" 2>/dev/null || true
	rc=0
	wait "$wpid" || rc=$?
	[ "$rc" = 0 ] || { cat "$WORK/wait.err" >&2; fail "backup --wait exited $rc"; }
	[ "$(snapshot_count)" = $((n0 + 1)) ] || fail "backup --wait saved no point"

	# Two real writers: the second one started while the first runs.
	mkdir "$WORK/bigsrc"
	head -c $((192 * 1024 * 1024)) /dev/urandom >"$WORK/bigsrc/big"
	"$SNAPDRAFT" backup --time 2026-02-03T00:00:00Z "$WORK/bigsrc" >"$WORK/b1.out" 2>"$WORK/b1.err" &
	b1=$!
	while kill -0 "$b1" 2>/dev/null && ! lock_held "$main/lock"; do sleep 0.005; done
	rc2=0
	sd backup --time 2026-02-04T00:00:00Z "$src" >"$WORK/b2.out" 2>"$WORK/b2.err" || rc2=$?
	if kill -0 "$b1" 2>/dev/null; then
		[ "$rc2" = 11 ] || { cat "$WORK/b2.err" >&2; fail "second writer exited $rc2, not 11"; }
		grep -q 'locked' "$WORK/b2.err" || fail "second writer does not say the repository is locked"
	else
		echo "note: first writer finished before the second started ($rc2)" >&2
	fi
	rc1=0
	wait "$b1" || rc1=$?
	[ "$rc1" = 0 ] || { cat "$WORK/b1.err" >&2; fail "first writer exited $rc1"; }
	"$SNAPDRAFT" backup --time 2026-02-05T00:00:00Z --force "$WORK/bigsrc" >"$WORK/b3.out" 2>"$WORK/b3.err" &
	b3=$!
	while kill -0 "$b3" 2>/dev/null && ! lock_held "$main/lock"; do sleep 0.005; done
	rc4=0
	sd backup --wait --time 2026-02-06T00:00:00Z "$src" >"$WORK/b4.out" 2>"$WORK/b4.err" || rc4=$?
	rc3=0
	wait "$b3" || rc3=$?
	[ "$rc3" = 0 ] && [ "$rc4" = 0 ] ||
		{ cat "$WORK/b3.err" "$WORK/b4.err" >&2; fail "concurrent writers with --wait: $rc3 $rc4"; }
	expect_exit 0 sd check --read-data
	expect_exit 0 sd restore --point 2026-02-03T00:00:00Z --target "$WORK/rbig"
	cmp "$WORK/bigsrc/big" "$WORK/rbig/bigsrc/big" || fail "big file differs after concurrent writers"
	expect_exit 0 sd restore --point 2026-02-06 --target "$WORK/rsrc"
	same_tree "$src" "$WORK/rsrc/src"
	rm -rf "$WORK/bigsrc" "$WORK/rbig"
}

# full disk
test_full_disk() {
	tmpfs_mount "$WORK/small" size=12m
	use_repo "$WORK/small/repo"
	expect_exit 0 sd init
	mkdir -p "$WORK/few/posts"
	text_file "$WORK/few/posts/one.md" 300000 few1
	text_file "$WORK/few/two.md" 2000 few2
	expect_exit 0 sd backup --time 2026-03-01T00:00:00Z "$WORK/few"
	mkdir "$WORK/huge"
	rand_file "$WORK/huge/a.bin" $((10 * 1024 * 1024)) huge-a
	rand_file "$WORK/huge/b.bin" $((14 * 1024 * 1024)) huge-b
	used_before=$(df -k --output=used "$WORK/small" | tail -n1)
	ls "$WORK/small/repo/snapshots" >"$WORK/snaps.before"
	expect_exit 1 sd backup --time 2026-03-02T00:00:00Z "$WORK/huge"
	expect_stderr 'No space left on device'
	ls "$WORK/small/repo/snapshots" | diff "$WORK/snaps.before" - >&2 ||
		fail "a failed backup left a snapshot"
	used_after=$(df -k --output=used "$WORK/small" | tail -n1)
	[ "$used_after" -le $((used_before + 2048)) ] ||
		fail "a failed backup left $((used_after - used_before)) KiB behind"
	expect_exit 0 sd check --read-data
	expect_exit 0 sd restore --point latest --target "$WORK/rfew"
	same_tree "$WORK/few" "$WORK/rfew/few"
	echo more >"$WORK/few/three.md"
	expect_exit 0 sd backup --time 2026-03-03T00:00:00Z "$WORK/few"
	expect_exit 0 sd check --read-data
	rm -rf "$WORK/huge"
}

# flipped bytes
test_flipped_bytes() {
	use_repo "$WORK/dmg"
	expect_exit 0 sd init
	expect_exit 0 sd backup --time 2026-04-01T00:00:00Z "$src"
	for v in victim.md victim.bin; do
		id=$(sha256sum <"$src/$v" | cut -d' ' -f1)
		loc=$(pack_locate "$SNAPDRAFT_REPO" "$id") ||
			fail "test set-up: the blob of $v ($id) is in no pack trailer"
		read -r pack off len flags <<<"$loc"
		echo "$v: blob ${id:0:12} in $(basename "$pack") at $off, $len bytes, flags $flags"
		flip_byte "$pack" $((off + len / 2))
		echo "$(basename "$pack")" >>"$WORK/damaged-packs"
	done
	repo_digest "$SNAPDRAFT_REPO" >"$WORK/dmg0"
	expect_exit 1 sd check --read-data
	expect_stderr 'problem'
	for p in $(sort -u "$WORK/damaged-packs"); do
		grep -q "$p" "$WORK/.out" || { cat "$WORK/.out" >&2; fail "check does not name pack $p"; }
	done
	for v in victim.md victim.bin; do
		grep -q "src/$v" "$WORK/.out" || { cat "$WORK/.out" >&2; fail "check does not name the file $v"; }
	done
	expect_exit 3 sd restore --point latest --target "$WORK/rdmg"
	grep -q 'victim\.md' "$WORK/.err" && grep -q 'victim\.bin' "$WORK/.err" ||
		{ cat "$WORK/.err" >&2; fail "restore does not name the damaged files"; }
	rsync -a -H -X --exclude=victim.md --exclude=victim.bin "$src/" "$WORK/exp-dmg/"
	same_tree "$WORK/exp-dmg" "$WORK/rdmg/src"
	expect_exit 3 sd restore --point latest --target "$WORK/rdmg1" src/victim.md
	grep -q 'victim\.md' "$WORK/.err" || fail "one-file restore does not name the damaged file"
	[ ! -e "$WORK/rdmg1/src/victim.md" ] || fail "a damaged file was restored"
	expect_exit 0 sd restore --point latest --target "$WORK/rdmg2" src/posts
	same_tree "$src/posts" "$WORK/rdmg2/src/posts"
	repo_unchanged_since "$WORK/dmg0" "after check and restore of a damaged repository"
}

# truncated pack
test_truncated_pack() {
	use_repo "$WORK/trunc"
	expect_exit 0 sd init
	expect_exit 0 sd backup --time 2026-05-01T00:00:00Z "$src"
	big=$(find "$SNAPDRAFT_REPO/packs" -type f -printf '%s %p\n' | sort -n | tail -n1 | cut -d' ' -f2)
	truncate -s $(($(stat -c %s "$big") / 2)) "$big"
	repo_digest "$SNAPDRAFT_REPO" >"$WORK/trunc0"
	expect_exit 1 sd check
	grep -q "$(basename "$big")" "$WORK/.out" || { cat "$WORK/.out" >&2; fail "check does not name the truncated pack"; }
	expect_exit 1 sd check --read-data
	grep -q "$(basename "$big")" "$WORK/.out" || { cat "$WORK/.out" >&2; fail "check --read-data does not name the truncated pack"; }
	repo_unchanged_since "$WORK/trunc0" "after checking a truncated pack"
	expect_exit_in "1 3" sd repair --rebuild-index
	grep -q "$(basename "$big")" "$WORK/.out" "$WORK/.err" ||
		fail "repair does not name the unreadable pack"
}

# lost or damaged index: DAMAGE is "delete" (index/ gone) or "garbage"
# (index/data.mdb overwritten).
index_damage() {
	if [ "$1" = delete ]; then
		rm -rf "$SNAPDRAFT_REPO/index"
	else
		head -c 65536 /dev/urandom >"$SNAPDRAFT_REPO/index/data.mdb"
	fi
}
test_index() {
	use_repo "$WORK/idx-$1"
	expect_exit 0 sd init
	expect_exit 0 sd backup --time 2026-06-01T00:00:00Z "$src"
	cp -a "$src" "$WORK/idx-src-$1"
	echo changed >>"$WORK/idx-src-$1/posts/a.md"
	expect_exit 0 sd backup --time 2026-06-02T00:00:00Z "$WORK/idx-src-$1"
	index_damage "$1"
	repo_digest "$SNAPDRAFT_REPO" >"$WORK/idx0-$1"
	expect_exit 1 sd check
	expect_stderr 'repair --rebuild-index'
	expect_exit 1 sd restore --point latest --target "$WORK/ridx-$1"
	expect_stderr 'repair --rebuild-index'
	[ ! -e "$WORK/ridx-$1/idx-src-$1" ] || fail "restore without an index wrote files"
	repo_unchanged_since "$WORK/idx0-$1" "after commands on a repository whose index is lost ($1)"
	expect_exit 0 sd repair --rebuild-index
	expect_exit 0 sd check --read-data
	expect_exit 0 sd restore --point latest --target "$WORK/ridx-$1"
	same_tree "$WORK/idx-src-$1" "$WORK/ridx-$1/idx-src-$1"
	expect_exit 0 sd restore --point 2026-06-01 --target "$WORK/ridx1-$1"
	same_tree "$src" "$WORK/ridx1-$1/src"
	expect_exit 0 sd backup --json --time 2026-06-03T00:00:00Z "$src"
	json_ok "$WORK/.out" 'j["blobs_added"] <= 2 and j["bytes_read"] == 0'
	# A writer, too, must not silently start a new, empty index (which
	# would store every chunk again).
	index_damage "$1"
	repo_digest "$SNAPDRAFT_REPO" >"$WORK/idx1-$1"
	expect_exit 1 sd backup --force "$src"
	expect_stderr 'repair --rebuild-index'
	repo_unchanged_since "$WORK/idx1-$1" "after backup on a repository whose index is lost ($1)"
}
test_lost_index() { test_index delete; }
test_damaged_index() { test_index garbage; }

section "arguments" test_arguments
section "missing paths" test_missing_paths
section "not a repository" test_not_a_repository
section "init where it must not" test_init_refused
section "read-only target" test_readonly_target
section "lock" test_lock
section "format version" test_format_version
section "full disk" test_full_disk
section "flipped bytes" test_flipped_bytes
section "truncated pack" test_truncated_pack
section "lost index" test_lost_index
section "damaged index" test_damaged_index
sections_done
echo "bad_input: ok"
