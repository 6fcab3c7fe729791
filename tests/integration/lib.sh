# lib.sh — shared helpers for the integration scripts (sourced, not run).
#
# Every script gets a fresh $WORK directory and a repository path in
# $SNAPDRAFT_REPO; at exit (pass or fail) registered cleanups run in reverse
# order (unmounts first), then $WORK is removed.
set -euo pipefail

: "${SNAPDRAFT:?SNAPDRAFT must name the snapdraft binary}"
WORK=$(mktemp -d /tmp/snapdraft-test.XXXXXX)
export SNAPDRAFT_REPO="$WORK/repo"
export LC_ALL=C.UTF-8
_cleanups=()

on_exit() { _cleanups+=("$1"); }

_run_cleanups() {
	local rc=$?
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[$i]}" || true
	done
	rm -rf "$WORK" 2>/dev/null || true
	exit "$rc"
}
trap _run_cleanups EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

sd() { "$SNAPDRAFT" "$@"; }

# expect_exit CODE CMD...: runs CMD, fails unless it exits with CODE.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$WORK/.out" 2>"$WORK/.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		cat "$WORK/.out" "$WORK/.err" >&2
		fail "expected exit $want, got $rc: $*"
	fi
}

# expect_stderr REGEX: the last expect_exit's stderr matches REGEX, in one line.
expect_stderr() {
	grep -Eq -e "$1" "$WORK/.err" || { cat "$WORK/.err" >&2; fail "stderr does not match /$1/"; }
	[ "$(wc -l <"$WORK/.err")" -le 2 ] || { cat "$WORK/.err" >&2; fail "error is not short"; }
}

# same_tree A B: content and metadata of two trees agree: rsync itemizes
# nothing with checksums, hard links, xattrs, and times to the nanosecond
# (including directories and symlinks).
same_tree() {
	local diffs
	diffs=$(rsync -a -H -X --checksum --modify-window=-1 --dry-run --itemize-changes --delete \
		"$1"/ "$2"/ | grep -v '^\.d\.\.t\.\.\.\.\.\. \./$' || true)
	if [ -n "$diffs" ]; then
		echo "$diffs" | head -30 >&2
		fail "trees differ: $1 vs $2"
	fi
}

# stat_list DIR: one line per entry with type, mode, owner, size, mtime ns,
# link count and target, sorted; compare two with diff.
stat_list() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %T@ %n %l\n' | sort)
}

# wait_for CMD...: polls CMD for up to 10 s.
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	return 1
}
