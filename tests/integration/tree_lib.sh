# tree_lib.sh — generated test trees and repository helpers for the
# integration scripts (sourced after lib.sh, not run).
#
# make_tree builds a tree holding every file type and the awkward cases a
# backup tool gets wrong (names, links, modes, owners, xattrs, holes,
# nanosecond times, depth). Content is generated from a seed, so two trees
# made with the same seed have the same bytes; times of entries not set
# explicitly are whatever the clock says.

: "${WORK:?source lib.sh first}"

# The system Python: a version manager's shim costs a second per start.
PY=python3
[ ! -x /usr/bin/python3 ] || PY=/usr/bin/python3

# _gen KIND PATH BYTES SEED: deterministic content.
#   random: incompressible bytes; text: words (ASCII and Korean), compressible;
#   mixed: alternating text and random runs of 64-512 KiB.
_gen() {
	"$PY" - "$@" <<'EOF'
import random, sys
kind, path, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(f"{kind}:{seed}")
words = ("the of and a to in is you that it he was for on are as with his "
         "they I at be this have from or one had by word but not what all "
         "backup chunk snapshot draft hugo notion markdown restore deploy "
         "기술 미래 초안 글쓰기 백업 복원 인공지능 문서 저장소 변경").split()
def text(n):
    out = bytearray()
    while len(out) < n:
        line = " ".join(rng.choices(words, k=rng.randint(4, 16)))
        out += line.encode() + (b".\n" if rng.random() < 0.8 else b"\n\n")
    return bytes(out[:n])
def rand(n):
    return rng.randbytes(n)
with open(path, "wb") as f:
    left = size
    while left > 0:
        if kind == "random":
            n = min(left, 1 << 20); f.write(rand(n))
        elif kind == "text":
            n = min(left, 1 << 20); f.write(text(n))
        else:
            n = min(left, rng.randint(64 << 10, 512 << 10))
            f.write(text(n) if rng.random() < 0.5 else rand(n))
        left -= n
EOF
}

# rand_file PATH BYTES [SEED] / text_file PATH BYTES [SEED] / mixed_file ...
rand_file() { _gen random "$1" "$2" "${3:-1}"; }
text_file() { _gen text "$1" "$2" "${3:-1}"; }
mixed_file() { _gen mixed "$1" "$2" "${3:-1}"; }

# make_big_file PATH MIB [SEED]: MIB MiB, half compressible text, half random,
# in runs of 64-512 KiB.
make_big_file() {
	mixed_file "$1" $(($2 * 1024 * 1024)) "${3:-7}"
}

# A unix socket file left behind by a process that bound it and exited.
_make_socket() {
	(cd "$(dirname "$1")" && "$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$(basename "$1")")
}

# make_tree DIR [SEED]: creates DIR (missing or empty) with the awkward tree.
# Needs root (device nodes, chown, setuid bits).
make_tree() {
	local d=$1 seed=${2:-1} i p
	mkdir -p "$d"
	[ -z "$(ls -A "$d")" ] || fail "make_tree: $d is not empty"

	# Regular files around the chunker's limits (min 256 KiB, avg 1 MiB,
	# max 4 MiB): several chunks for the larger ones.
	: >"$d/empty.txt"
	printf 'x' >"$d/one.txt"
	rand_file "$d/under-256k.bin" $((256 * 1024 - 1)) "$seed.1"
	rand_file "$d/exact-256k.bin" $((256 * 1024)) "$seed.2"
	rand_file "$d/over-256k.bin" $((256 * 1024 + 1)) "$seed.3"
	mixed_file "$d/mixed-6m.dat" $((6 * 1024 * 1024 + 12345)) "$seed.4"
	text_file "$d/text-3m.md" $((3 * 1024 * 1024 + 7)) "$seed.5"
	rand_file "$d/random-9m.bin" $((9 * 1024 * 1024 + 3)) "$seed.6"

	# Names: Korean, spaces, quotes, odd bytes (no newline, no '/').
	text_file "$d/AI와 미래 기술.md" 5000 "$seed.7"
	mkdir "$d/초안"
	text_file "$d/초안/첫 번째 초안.md" 3000 "$seed.8"
	text_file "$d/초안/notes.txt" 1200 "$seed.9"
	mkdir "$d/초안/하위 폴더"
	text_file "$d/초안/하위 폴더/깊은 글.md" 800 "$seed.10"
	echo spaces >"$d/name with  spaces .txt"
	echo quotes >"$d/it's \"quoted\" \`back\`.txt"
	mkdir "$d/odd"
	echo ctl >"$d/odd/$(printf 'ctl\001\002\033[0m')"
	echo del >"$d/odd/$(printf 'del\177')"
	echo latin1 >"$d/odd/$(printf 'caf\351-not-utf8\377\376')"
	echo tab >"$d/odd/$(printf 'tab\there')"
	echo bs >"$d/odd/back\\slash"
	echo dash >"$d/odd/-leading-dash"
	echo glob >"$d/odd/*glob?[x]"
	echo pct >"$d/odd/%s%n%d"
	echo hidden >"$d/odd/.hidden"
	echo trail >"$d/odd/trailing space "
	echo tilde >"$d/odd/~tilde"
	echo colon >"$d/odd/a:b;c|d&e\$f"
	echo long >"$d/odd/$(printf 'L%.0s' $(seq 1 255))"
	echo emoji >"$d/odd/$(printf '\360\237\230\200 emoji')"
	echo nfd >"$d/odd/$(printf '\341\204\222\341\205\241\341\206\253')" # NFD 한

	# Hard links: a pair, and a triple across directories.
	mkdir "$d/links" "$d/links/other"
	text_file "$d/links/pair-a" 4000 "$seed.11"
	ln "$d/links/pair-a" "$d/links/pair-b"
	rand_file "$d/links/triple-1" 300000 "$seed.12"
	ln "$d/links/triple-1" "$d/links/triple-2"
	ln "$d/links/triple-1" "$d/links/other/triple-3"
	setfattr -n user.linked -v shared "$d/links/pair-a"
	# Symlinks: relative, absolute, dangling, to a directory, odd target.
	ln -s ../one.txt "$d/links/rel"
	ln -s /etc/hostname "$d/links/abs"
	ln -s does/not/exist "$d/links/dangling"
	ln -s ../초안 "$d/links/to-dir"
	ln -s "$(printf 'odd target \001 with spaces/한')" "$d/links/odd-target"
	ln -s "$(printf 'x%.0s' $(seq 1 1000))" "$d/links/long-target"
	ln -s rel "$d/links/chain"

	mkdir "$d/empty-dir"

	# Deep nesting: 60 levels.
	p="$d/deep"
	for ((i = 1; i <= 60; i++)); do p="$p/level-$i"; done
	mkdir -p "$p"
	echo bottom >"$p/bottom.txt"

	# Special files.
	mkdir "$d/special"
	mkfifo "$d/special/fifo"
	mknod "$d/special/null-like" c 1 3
	mknod "$d/special/block-dev" b 7 200
	_make_socket "$d/special/socket"

	# A sparse file: 64 MiB apparent, three written blocks.
	truncate -s 64M "$d/sparse.img"
	for i in 0 10 63; do
		rand_file "$WORK/.blk" 65536 "$seed.sparse.$i"
		dd if="$WORK/.blk" of="$d/sparse.img" bs=1M seek="$i" conv=notrunc \
			status=none
	done
	rm -f "$WORK/.blk"

	# Xattrs: binary, empty, large, on a directory.
	mkdir "$d/xattr"
	echo x >"$d/xattr/file"
	setfattr -n user.binary -v 0x00ff7f80010a0d00 "$d/xattr/file"
	setfattr -n user.empty "$d/xattr/file"
	setfattr -n user.text -v "한국어 value with spaces" "$d/xattr/file"
	setfattr -n user.big -v "0s$(head -c 1500 /dev/zero | tr '\0' 'A' | base64 -w0)" \
		"$d/xattr/file"
	mkdir "$d/xattr/dir"
	setfattr -n user.on-dir -v 0x0102 "$d/xattr/dir"

	# Owners (chown first: it clears setuid/setgid bits).
	mkdir "$d/owners"
	echo o >"$d/owners/other-owner"
	chown 1234:5678 "$d/owners/other-owner"
	echo n >"$d/owners/nobody"
	chown 65534:65534 "$d/owners/nobody"
	mkdir "$d/owners/dir"
	echo i >"$d/owners/dir/inner"
	chown -R 4321:8765 "$d/owners/dir"
	ln -s other-owner "$d/owners/link"
	chown -h 1234:5678 "$d/owners/link"

	# Modes.
	mkdir "$d/modes"
	echo s >"$d/modes/setuid"
	chown 1234:5678 "$d/modes/setuid"
	chmod 4755 "$d/modes/setuid"
	echo g >"$d/modes/setgid"
	chmod 2750 "$d/modes/setgid"
	echo n >"$d/modes/no-perms"
	chmod 0000 "$d/modes/no-perms"
	echo w >"$d/modes/world-write"
	chmod 0666 "$d/modes/world-write"
	mkdir "$d/modes/sticky"
	chmod 1777 "$d/modes/sticky"
	mkdir "$d/modes/setgid-dir"
	echo i >"$d/modes/setgid-dir/inner"
	chown -R 0:5678 "$d/modes/setgid-dir"
	chmod 2775 "$d/modes/setgid-dir"
	mkdir "$d/modes/private"
	echo secret >"$d/modes/private/secret"
	chmod 0600 "$d/modes/private/secret"
	chmod 0700 "$d/modes/private"
	mkdir "$d/modes/readonly"
	echo r >"$d/modes/readonly/inside"
	chmod 0444 "$d/modes/readonly/inside"
	chmod 0555 "$d/modes/readonly"

	# Times last: nanosecond mtimes and atimes, pre-1970 and post-2038.
	mkdir "$d/times"
	echo a >"$d/times/ns"
	touch -m -d '2021-03-04 05:06:07.123456789 UTC' "$d/times/ns"
	touch -a -d '2020-01-02 03:04:05.987654321 UTC' "$d/times/ns"
	echo b >"$d/times/old"
	touch -m -d '1969-07-20 20:17:40.000000001 UTC' "$d/times/old"
	touch -a -d '1970-01-01 00:00:00.5 UTC' "$d/times/old"
	echo c >"$d/times/future"
	touch -m -d '2200-12-31 23:59:59.999999999 UTC' "$d/times/future"
	touch -a -d '2100-06-15 12:00:00.000000123 UTC' "$d/times/future"
	ln -s ns "$d/times/link"
	touch -h -m -d '2019-05-06 07:08:09.111111111 UTC' "$d/times/link"
	touch -m -d '2018-01-01 00:00:00.424242424 UTC' "$d/times"
	touch -m -d '2017-02-03 04:05:06.000000007 UTC' "$d/empty-dir"
	touch -m -d '2016-01-01 01:01:01.010101010 UTC' "$d/modes/readonly"
	touch -m -d '2015-01-01 00:00:00.999999999 UTC' "$d/special"
}

# atime_list DIR: path and atime (ns) of the files under DIR/times.
atime_list() {
	(cd "$1" && find times -type f -printf '%p %A@\n' | sort)
}

# tree_digest DIR: one hash over names and contents of regular files.
tree_digest() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum) |
		sha256sum | cut -d' ' -f1
}

# repo_digest REPO: a checksum line per file of the repository (mode, size,
# content), leaving out the LMDB reader-lock table and the writer lock file,
# which change on every open.
repo_digest() {
	(cd "$1" && find . \( -path ./index/lock.mdb -o -path ./lock \) -prune \
		-o -printf '%p %y %m %s\n' | sort
	 cd "$1" && find . \( -path ./index/lock.mdb -o -path ./lock \) -prune \
		-o -type f -print0 | sort -z | xargs -0r sha256sum)
}

# repo_unchanged_since FILE: the repository matches the digest saved in FILE.
repo_unchanged_since() {
	local now=$WORK/.repo-now
	repo_digest "$SNAPDRAFT_REPO" >"$now"
	if ! diff -u "$1" "$now" >&2; then
		fail "the repository changed: $*"
	fi
}

# json_get FILE EXPR: evaluates a Python expression on the JSON in FILE
# (bound to j) and prints the result.
json_get() {
	"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"
}

# json_ok FILE EXPR: fails unless the Python expression is true.
json_ok() {
	[ "$(json_get "$1" "bool($2)")" = true ] || {
		cat "$1" >&2
		fail "JSON check failed: $2"
	}
}

# count_files DIR: regular files under DIR (0 if missing).
count_files() {
	if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}

# pack_list REPO: pack files, one path a line.
pack_list() {
	find "$1/packs" -type f | sort
}

# pack_locate REPO HEXID: "PACKPATH OFFSET STORED_LEN FLAGS" of the blob, read
# from the pack trailers as store.h lays them out (the packs are the truth).
pack_locate() {
	"$PY" - "$1" "$2" <<'EOF'
import os, struct, sys
repo, want = sys.argv[1], bytes.fromhex(sys.argv[2])
for root, _, files in os.walk(os.path.join(repo, "packs")):
    for name in files:
        p = os.path.join(root, name)
        data = open(p, "rb").read()
        if len(data) < 48 or data[-8:] != b"SDPKEND1":
            continue
        n, = struct.unpack_from("<I", data, len(data) - 48)
        tlen, = struct.unpack_from("<I", data, len(data) - 12)
        start = len(data) - 48 - tlen
        for k in range(n):
            e = data[start + 50 * k: start + 50 * (k + 1)]
            bid, typ, flags = e[:32], e[32], e[33]
            off, slen, plen = struct.unpack_from("<QII", e, 34)
            if bid == want:
                print(p, off, slen, flags)
                sys.exit(0)
sys.exit(1)
EOF
}

# flip_byte FILE OFFSET: inverts the bits of one byte in place.
flip_byte() {
	"$PY" - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xff]))
EOF
}

# cleanup_add CMD: like on_exit, and also from inside a section's subshell
# (whose own on_exit list is lost when it ends).
: >"$WORK/.late-cleanups"
on_exit 'tac "$WORK/.late-cleanups" | while IFS= read -r _c; do eval "$_c" || true; done'
cleanup_add() {
	echo "$1" >>"$WORK/.late-cleanups"
}

# tmpfs_mount DIR OPTIONS: mounts a tmpfs (root only), unmounted at exit.
tmpfs_mount() {
	mkdir -p "$1"
	mount -t tmpfs -o "$2" tmpfs "$1" || skip "cannot mount tmpfs on $1"
	cleanup_add "umount -l '$1'"
}

# section NAME FUNCTION: runs FUNCTION in a subshell so that one failing
# part does not hide the others; sections_done fails if any did.
_sections_failed=()
section() {
	local name=$1 rc
	shift
	echo "== $name"
	set +e
	(
		set -e
		"$@"
	)
	rc=$?
	set -e
	case $rc in
	0) ;;
	77) echo "-- $name: skipped" >&2 ;;
	*) echo "-- $name: FAILED" >&2; _sections_failed+=("$name") ;;
	esac
}
sections_done() {
	[ ${#_sections_failed[@]} = 0 ] || fail "failed sections: ${_sections_failed[*]}"
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root (mount, mknod, chown)"
}

# lock_held FILE: some process holds a flock/fcntl lock on FILE (read from
# /proc/locks, so probing never takes the lock itself).
lock_held() {
	local ino
	ino=$(stat -c %i "$1" 2>/dev/null) || return 1
	grep -Eq ":$ino " /proc/locks
}

# xattr_list DIR: "path<TAB>name=value" for every xattr under DIR (symlinks
# not followed), sorted, so two trees compare with diff.
xattr_list() {
	(cd "$1" && getfattr -R -h -d -m - -e hex . 2>/dev/null |
		awk '/^# file: /{f=substr($0,9); next} /=/{print f "\t" $0}' | sort)
}

# entry_stat PATH: the stat_list fields of one entry.
entry_stat() {
	find "$1" -maxdepth 0 -printf '%y %m %U:%G %s %T@ %n %l\n'
}
