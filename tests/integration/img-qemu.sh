#!/usr/bin/env bash
# kumo img against qemu-img, the oracle: images one makes the other reads,
# outputs (raw bytes, JSON fields, messages) and exit codes agree.
# usage: img-qemu.sh KUMO CASE
#   foreign  VHD (fixed, dynamic) and VMDK (monolithicSparse, streamOptimized)
#            made by qemu-img: kumo's raw conversion is byte-identical
#   convert  raw <-> qcow2 (cluster sizes, -c zlib/zstd, -S, -p), sparse output
#   create   create + info (human and JSON) against qemu-img's
#   check    clean, leaked and corrupted qcow2: reports, exit codes, -r leaks
#   compare  identical, different, strict, errors: messages and exit codes
#   map      human and JSON map through a backing chain, as qemu-img's
#   chain    commit, rebase (safe, unsafe, to none), resize
#   errors   bad input: one line on stderr, exit 1, no crash; --help
set -uo pipefail
kumo=$(realpath "$1") case=$2
command -v qemu-img >/dev/null || { echo "SKIP: no qemu-img"; exit 77; }
command -v qemu-io >/dev/null || { echo "SKIP: no qemu-io"; exit 77; }
tmp=$(mktemp -d)
qio=
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "$qio" ] && kill "$qio" 2>/dev/null && wait "$qio" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

fail() { echo "FAIL $case: $*"; exit 1; }
# k ARGS...: kumo img, stdout in out, stderr in err, status in $rc;
# a sanitizer report fails the test.
k() {
	timeout 120 "$kumo" img "$@" >out 2>err
	rc=$?
	if grep -q -E 'AddressSanitizer|runtime error|LeakSanitizer' err; then
		cat err; fail "sanitizer report on: kumo img $*"
	fi
	return 0
}
# want STATUS ARGS...: kumo img must exit with STATUS.
want() {
	local s=$1; shift
	k "$@"
	[ "$rc" -eq "$s" ] || { cat out err; fail "kumo img $* exited $rc, want $s"; }
}
qcheck() { qemu-img check "$@" >qc.out 2>&1 || { cat qc.out; fail "qemu-img check $* failed"; }; }
qsame() { qemu-img compare "$1" "$2" >/dev/null || fail "qemu-img compare $1 $2: different"; }

# A 6 MiB + 4 KiB disk: scattered data (some across 2 MiB boundaries), a
# run of zeros written as data, holes.
mksrc() {
	python3 - "$1" <<'PY'
import sys
f = open(sys.argv[1], 'wb')
f.truncate(6 * 1024 * 1024 + 4096)
for k in range(9):
    f.seek(k * 700001)
    f.write(bytes((i * 31 + k + 1) & 255 for i in range(90000)))
f.seek(5 * 1024 * 1024)
f.write(bytes(128 * 1024))
f.close()
PY
}

# jfield FILE KEY...: a value from JSON (nested keys), printed.
jfield() {
	python3 - "$@" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(json.dumps(v))
PY
}

case $case in
foreign)
	mksrc src.raw
	# force_size: the "qem2" creator, sized by the footer, not by CHS.
	for spec in vpc:dynamic vpc:fixed vmdk:monolithicSparse vmdk:streamOptimized \
		    vpc:dynamic,force_size=on vpc:fixed,force_size=on; do
		fmt=${spec%%:*} sub=${spec#*:}
		img=${sub/,force_size=on/-fs}.$fmt
		sub=${sub%%,*}
		qemu-img convert -O "$fmt" -o subformat="${spec#*:}" src.raw "$img" || fail "qemu-img made no $img"
		qemu-img convert -f "$fmt" -O raw "$img" q.raw
		want 0 convert -f "$fmt" -O raw "$img" k.raw
		cmp q.raw k.raw || fail "$img: raw conversion differs from qemu-img's"
		# Probed (a fixed VHD is raw to the probe, as in qemu).
		if [ "$sub" != fixed ]; then
			want 0 convert -O raw "$img" k2.raw
			cmp q.raw k2.raw || fail "$img: probed conversion differs"
			want 0 info --output=json "$img"
			[ "$(jfield out format)" = "\"$fmt\"" ] || fail "$img: format $(jfield out format)"
			qemu-img info --output=json "$img" >q.json
			for key in virtual-size cluster-size; do
				[ "$(jfield out $key)" = "$(jfield q.json $key)" ] || fail "$img: $key differs"
			done
		fi
		want 0 convert -f "$fmt" -O qcow2 "$img" k.qcow2
		qcheck k.qcow2
		qsame k.qcow2 q.raw
		want 0 map --output=json -f "$fmt" "$img"
		qemu-img map --output=json -f "$fmt" "$img" >q.map
		python3 -c 'import json,sys; a=json.load(open("out")); b=json.load(open("q.map")); sys.exit(a!=b)' \
			|| fail "$img: map differs from qemu-img's"
		echo "ok $img"
	done
	# Large and empty: only the allocated blocks are read (a 100 GiB disk
	# converts in moments, and stays empty).
	qemu-img create -f vpc big.vpc 100G >/dev/null
	qemu-img create -f vmdk -o subformat=streamOptimized big.vmdk 100G >/dev/null
	for img in big.vpc big.vmdk; do
		want 0 convert -O qcow2 "$img" big.qcow2
		qemu-img compare "$img" big.qcow2 >/dev/null || fail "$img: content differs"
		[ "$(stat -c %s big.qcow2)" -lt 1048576 ] || fail "$img: output not sparse"
		want 0 convert -O raw "$img" big.raw
		[ "$(stat -c %b big.raw)" -eq 0 ] || fail "$img: raw output not sparse"
		rm -f big.qcow2 big.raw
	done
	# Written only by kumo's own tools: refused for writing.
	want 1 resize dynamic.vpc +1M
	grep -q 'read-only' err || fail "resize of a VHD: $(cat err)"
	;;
convert)
	mksrc src.raw
	for cs in 512 4k 64k 2M; do
		want 0 convert -O qcow2 -o cluster_size=$cs src.raw c$cs.qcow2
		qcheck c$cs.qcow2
		qsame c$cs.qcow2 src.raw
		[ "$(qemu-img info --output=json c$cs.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster-size"])')" = \
		  "$(python3 -c "print({'512':512,'4k':4096,'64k':65536,'2M':2097152}['$cs'])")" ] || fail "cluster size $cs"
	done
	for ct in zlib zstd; do
		want 0 convert -c -O qcow2 -o compression_type=$ct src.raw z$ct.qcow2
		qcheck z$ct.qcow2
		qsame z$ct.qcow2 src.raw
		grep -q 'compressed' <(qemu-img check z$ct.qcow2) || fail "$ct: no compressed clusters"
		qemu-img info z$ct.qcow2 | grep -q "compression type: $ct" || fail "compression type $ct"
	done
	# Compressed by qemu-img (both types), read by kumo.
	for ct in zlib zstd; do
		qemu-img convert -c -O qcow2 -o compression_type=$ct src.raw qz$ct.qcow2
		want 0 convert -O raw qz$ct.qcow2 kz.raw
		cmp src.raw kz.raw || fail "qemu-img's $ct-compressed image read differently"
	done
	# qcow2 -> raw, byte for byte qemu-img's, and as sparse.
	qemu-img convert -O qcow2 src.raw q.qcow2
	qemu-img convert -O raw q.qcow2 q.raw
	want 0 convert -O raw q.qcow2 k.raw
	cmp q.raw k.raw || fail "qcow2 -> raw differs from qemu-img's"
	[ "$(stat -c %b k.raw)" -le $(( $(stat -c %b q.raw) + 64 )) ] ||
		fail "raw output not sparse: $(stat -c %b k.raw) blocks, qemu-img $(stat -c %b q.raw)"
	want 0 convert -S 0 -O raw q.qcow2 full.raw
	cmp q.raw full.raw || fail "-S 0 output differs"
	# The all-zero 128 KiB written as data is left out (a hole, no cluster).
	want 0 map --output=json c64k.qcow2
	python3 -c '
import json, sys
m = json.load(open("out"))
at = 5 * 1024 * 1024
for e in m:
    if e["start"] <= at < e["start"] + e["length"] and e["data"]:
        sys.exit(1)' || fail "zeros written as data were allocated"
	# -p: progress on stdout, ending at 100%.
	want 0 convert -p -O qcow2 src.raw p.qcow2
	grep -q '100.00/100%' out || fail "-p printed no progress"
	# -n: into an existing image.
	qemu-img create -f qcow2 n.qcow2 8M >/dev/null
	want 0 convert -n -O qcow2 src.raw n.qcow2
	qemu-img compare src.raw n.qcow2 >/dev/null || fail "-n output differs"
	# -t: unsafe (the default) syncs the output only when create makes it
	# (once); writeback also keeps qcow2's ordered metadata flushes (512-byte
	# clusters: several) and the last flush. (LeakSanitizer cannot run
	# under ptrace.)
	if command -v strace >/dev/null; then
		for t in unsafe writeback; do
			rm -f t.qcow2
			ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			strace -f -qq -e trace=fdatasync,fsync -o trace.$t \
				"$kumo" img convert -t $t -O qcow2 -o cluster_size=512 src.raw t.qcow2 ||
				fail "convert -t $t failed"
			qcheck t.qcow2
			qsame t.qcow2 src.raw
		done
		u=$(grep -c -E 'f(data)?sync' trace.unsafe) w=$(grep -c -E 'f(data)?sync' trace.writeback)
		[ "$u" -le 1 ] || fail "-t unsafe synced the output $u times"
		[ "$w" -ge $((u + 2)) ] || fail "-t writeback synced $w times (unsafe: $u)"
	fi
	;;
create)
	for args in "-f raw r.img 1.5M" "r0.img 0" "r1.img 1000" "r2.img 1000b" "r3.img 3k" \
		    "r4.img 2T" "r5.img 0.5G" "-f qcow2 a.qcow2 1G" \
		    "-f qcow2 -o cluster_size=4k,lazy_refcounts=on,refcount_bits=8 b.qcow2 100M" \
		    "-f qcow2 -o compression_type=zstd c.qcow2 64k"; do
		# shellcheck disable=SC2086
		qemu-img create $args >q.out 2>&1
		# shellcheck disable=SC2086
		want 0 create $args
		diff q.out out >/dev/null || { diff q.out out; fail "create $args: message differs"; }
	done
	qcheck a.qcow2; qcheck b.qcow2; qcheck c.qcow2
	want 0 create -f qcow2 -b b.qcow2 -F qcow2 o.qcow2
	qemu-img create -f qcow2 -b b.qcow2 -F qcow2 qo.qcow2 >q.out
	sed 's/qo.qcow2/o.qcow2/' q.out | diff - out >/dev/null || fail "overlay message: $(cat out)"
	qcheck o.qcow2
	for img in b.qcow2 o.qcow2 r.img; do
		want 0 info --output=json "$img"
		mv out k.json
		qemu-img info --output=json "$img" >q.json
		for key in virtual-size format cluster-size backing-filename full-backing-filename \
			   backing-filename-format dirty-flag format-specific; do
			[ "$(jfield k.json $key)" = "$(jfield q.json $key)" ] ||
				fail "info $img: $key $(jfield k.json $key), qemu-img $(jfield q.json $key)"
		done
		want 0 info "$img"
		qemu-img info "$img" | grep -v '^disk size' >q.out
		grep -v '^disk size' out | diff q.out - || fail "info $img: human output differs"
	done
	want 0 info --json o.qcow2
	[ "$(jfield out backing-filename)" = '"b.qcow2"' ] || fail "--json: $(cat out)"
	want 0 info --backing-chain --output=json o.qcow2
	[ "$(jfield out 1 filename)" = '"b.qcow2"' ] || fail "backing chain: $(cat out)"
	want 1 create -f qcow2 -b b.qcow2 x.qcow2
	grep -q 'without backing format' err || fail "-b without -F: $(cat err)"
	want 1 create -f qcow2 x.qcow2
	grep -q 'needs a size' err || fail "no size: $(cat err)"
	want 1 create -f qcow2 -o cluster_size=3k x.qcow2 1M
	want 1 create -f qcow2 x.qcow2 12Q
	;;
check)
	qemu-img create -f qcow2 c.qcow2 8M >/dev/null
	qemu-io -f qcow2 -c 'write -P 7 0 1M' c.qcow2 >/dev/null
	want 0 check c.qcow2
	grep -q 'No errors were found on the image.' out || fail "clean: $(cat out)"
	want 0 check --output=json c.qcow2
	qemu-img check --output=json c.qcow2 >q.json
	for key in check-errors image-end-offset total-clusters allocated-clusters corruptions leaks; do
		[ "$(jfield out $key)" = "$(jfield q.json $key)" ] || fail "check json $key differs"
	done
	# A leak: a cluster past the end with refcount 1 (refcount_bits 16).
	python3 - c.qcow2 <<'PY'
import struct, sys, os
f = open(sys.argv[1], 'r+b')
h = f.read(104)
cs = 1 << struct.unpack('>I', h[20:24])[0]
rt = struct.unpack('>Q', h[48:56])[0]
f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
n = (os.path.getsize(sys.argv[1]) + cs - 1) // cs
f.truncate((n + 1) * cs)
f.seek(rb + 2 * n); f.write(struct.pack('>H', 1))
PY
	cp c.qcow2 leak.qcow2
	qemu-img check leak.qcow2 >/dev/null 2>&1; qrc=$?
	want 3 check leak.qcow2
	[ "$qrc" -eq 3 ] || fail "qemu-img says $qrc for the leak"
	grep -q 'leaked clusters were found' out || fail "leak report: $(cat out)"
	want 0 check -r leaks leak.qcow2
	qcheck leak.qcow2
	# A corruption: the L1 table's cluster with refcount 0.
	python3 - c.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(104)
cb = struct.unpack('>I', h[20:24])[0]
l1 = struct.unpack('>Q', h[40:48])[0]
rt = struct.unpack('>Q', h[48:56])[0]
f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
f.seek(rb + 2 * (l1 >> cb)); f.write(struct.pack('>H', 0))
PY
	qemu-img check c.qcow2 >/dev/null 2>&1; qrc=$?
	want 2 check c.qcow2
	[ "$qrc" -eq 2 ] || fail "qemu-img says $qrc for the corruption"
	qemu-img create -f raw r.raw 1M >/dev/null
	want 63 check r.raw
	;;
compare)
	mksrc a.raw
	cp a.raw b.raw
	qemu-img convert -O qcow2 a.raw a.qcow2
	want 0 compare a.raw a.qcow2
	grep -qx 'Images are identical.' out || fail "identical: $(cat out)"
	printf 'x' | dd of=b.raw bs=1 seek=1234567 conv=notrunc 2>/dev/null
	qemu-img compare a.qcow2 b.raw >q.out; qrc=$?
	want 1 compare a.qcow2 b.raw
	[ "$qrc" -eq 1 ] && diff q.out out >/dev/null || fail "differ: $(cat out), qemu-img: $(cat q.out)"
	# Sizes: larger with zeros is equal, except in strict mode.
	cp a.raw big.raw; truncate -s +1M big.raw
	want 0 compare a.raw big.raw
	want 1 compare -s a.raw big.raw
	grep -q 'Strict mode: Image size mismatch!' out || fail "strict size: $(cat out)"
	printf 'y' | dd of=big.raw bs=1 seek=$((6 * 1024 * 1024 + 4096 + 700)) conv=notrunc 2>/dev/null
	qemu-img compare a.raw big.raw >q.out
	want 1 compare a.raw big.raw
	diff q.out out >/dev/null || fail "tail mismatch: $(cat out), qemu-img: $(cat q.out)"
	# Strict: same content, different allocation.
	qemu-img create -f qcow2 e.qcow2 1M >/dev/null
	qemu-img create -f qcow2 z.qcow2 1M >/dev/null
	qemu-io -f qcow2 -c 'write -z 0 64k' z.qcow2 >/dev/null
	want 0 compare e.qcow2 z.qcow2
	qemu-img compare -s e.qcow2 z.qcow2 >q.out
	want 1 compare -s e.qcow2 z.qcow2
	diff q.out out >/dev/null || fail "strict allocation: $(cat out), qemu-img: $(cat q.out)"
	want 2 compare a.raw missing.raw
	want 0 compare -f raw -F qcow2 a.raw a.qcow2
	;;
map)
	qemu-img create -f qcow2 b.qcow2 4M >/dev/null
	qemu-io -f qcow2 -c 'write -P 0x22 2M 128k' -c 'write -P 1 0 4k' b.qcow2 >/dev/null
	qemu-img create -f qcow2 -b b.qcow2 -F qcow2 o.qcow2 >/dev/null
	qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -z 1M 64k' o.qcow2 >/dev/null
	mksrc r.raw
	qemu-img convert -c -O qcow2 r.raw z.qcow2
	for img in o.qcow2 b.qcow2 r.raw z.qcow2; do
		want 0 map --output=json "$img"
		qemu-img map --output=json "$img" >q.json
		diff q.json out >/dev/null || { diff q.json out | head; fail "map json $img differs"; }
		python3 -c 'import json; json.load(open("out"))' || fail "map json $img not JSON"
	done
	for img in o.qcow2 b.qcow2 r.raw; do
		want 0 map "$img"
		qemu-img map "$img" >q.out
		diff q.out out >/dev/null || { diff q.out out | head; fail "map $img differs"; }
	done
	want 0 map --output=json --start-offset=1M --max-length=2M o.qcow2
	qemu-img map --output=json --start-offset=1M --max-length=2M o.qcow2 >q.json
	diff q.json out >/dev/null || fail "map with a range differs"
	;;
chain)
	qemu-img create -f qcow2 base.qcow2 8M >/dev/null
	qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -P 0xbb 4M 1M' base.qcow2 >/dev/null
	qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 >/dev/null
	qemu-io -f qcow2 -c 'write -P 0xcc 512k 1M' -c 'write -z 4M 64k' top.qcow2 >/dev/null
	qemu-img convert -O raw top.qcow2 expect.raw
	want 0 convert -O raw top.qcow2 k.raw
	cmp expect.raw k.raw || fail "convert through the chain"
	cp base.qcow2 base0.qcow2; cp top.qcow2 top0.qcow2
	want 0 commit top.qcow2
	grep -qx 'Image committed.' out || fail "commit: $(cat out)"
	qcheck base.qcow2; qcheck top.qcow2
	qsame base.qcow2 expect.raw
	qsame top.qcow2 expect.raw
	want 0 map --output=json top.qcow2
	python3 -c 'import json,sys; sys.exit(any(e["depth"] == 0 and e["present"] for e in json.load(open("out"))))' ||
		fail "overlay not empty after commit"
	# convert -B: an overlay of the same base holding only top's own data,
	# mapped as qemu-img's.
	want 0 convert -O qcow2 -B base.qcow2 -F qcow2 top0.qcow2 kb.qcow2
	qemu-img convert -O qcow2 -B base.qcow2 -F qcow2 top0.qcow2 qb.qcow2
	qcheck kb.qcow2
	qsame kb.qcow2 expect.raw
	qemu-img map --output=json kb.qcow2 | sed 's/, "offset": [0-9]*//' >k.map
	qemu-img map --output=json qb.qcow2 | sed 's/, "offset": [0-9]*//' >q.map
	diff q.map k.map || fail "convert -B: allocation differs from qemu-img's"
	want 1 convert -O qcow2 -B base.qcow2 top0.qcow2 kb2.qcow2
	# Safe rebase onto a different base keeps the content.
	mv base0.qcow2 base.qcow2; mv top0.qcow2 top.qcow2
	qemu-img create -f qcow2 nb.qcow2 8M >/dev/null
	qemu-io -f qcow2 -c 'write -P 0xdd 0 2M' nb.qcow2 >/dev/null
	want 0 rebase -b nb.qcow2 -F qcow2 top.qcow2
	qcheck top.qcow2
	qsame top.qcow2 expect.raw
	qemu-img info --output=json top.qcow2 >q.json
	[ "$(jfield q.json backing-filename)" = '"nb.qcow2"' ] || fail "rebase: backing $(jfield q.json backing-filename)"
	# Unsafe: only the name changes (the content with it).
	want 0 rebase -u -b base.qcow2 -F qcow2 top.qcow2
	qemu-img info --output=json top.qcow2 >q.json
	[ "$(jfield q.json backing-filename)" = '"base.qcow2"' ] || fail "rebase -u"
	want 0 rebase -u -b nb.qcow2 -F qcow2 top.qcow2
	qsame top.qcow2 expect.raw
	# To none: the overlay stands alone.
	want 0 rebase -b '' top.qcow2
	qcheck top.qcow2
	qsame top.qcow2 expect.raw
	qemu-img info top.qcow2 | grep -q backing && fail "still has a backing file"
	# Resize.
	want 0 resize top.qcow2 +1M
	grep -qx 'Image resized.' out || fail "resize: $(cat out)"
	[ "$(qemu-img info --output=json top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = 9437184 ] ||
		fail "resize +1M"
	qcheck top.qcow2
	want 1 resize top.qcow2 1M
	grep -q -- '--shrink' err || fail "shrink without --shrink: $(cat err)"
	want 0 resize top.qcow2 16M
	qcheck top.qcow2

	qemu-img create -f raw r.raw 1M >/dev/null
	want 0 resize r.raw 3M
	[ "$(stat -c %s r.raw)" = 3145728 ] || fail "raw resize"
	want 1 resize r.raw -1M
	want 0 resize --shrink r.raw -1M
	[ "$(stat -c %s r.raw)" = 2097152 ] || fail "raw resize --shrink -1M"
	;;
errors)
	want 0 --help
	grep -q convert out || fail "--help: $(cat out)"
	for sub in create info check convert resize commit rebase compare map; do
		want 0 "$sub" --help
		grep -q "usage: kumo img $sub" out || fail "$sub --help"
	done
	want 1 bogus
	grep -q 'Command not found: bogus' err || fail "bogus: $(cat err)"
	want 1 info missing.img
	[ "$(wc -l <err)" -eq 1 ] && grep -q "Could not open 'missing.img'" err || fail "missing: $(cat err)"
	want 1 info
	want 1 info --output=xml x
	head -c 100000 /dev/urandom >junk.bin
	for fmt in vpc vmdk qcow2; do
		want 1 info -f "$fmt" junk.bin
		[ "$(wc -l <err)" -eq 1 ] || fail "junk as $fmt: $(cat err)"
		want 1 convert -f "$fmt" -O raw junk.bin out.raw
	done
	printf 'conectix' >short.vhd
	want 1 info short.vhd
	printf 'KDMV' >short.vmdk
	want 1 info short.vmdk
	want 1 convert -O vdi junk.bin x
	grep -q "Unknown file format 'vdi'" err || fail "vdi: $(cat err)"
	want 1 create -f raw x.raw 1X
	want 1 resize junk.bin +zz
	mkdir d
	want 1 info d
	# An image QEMU has open for writing (qemu-io, held by a fifo): refused,
	# unless -U (read-only sharing), as qemu-img does.
	qemu-img create -f qcow2 held.qcow2 1M >/dev/null
	mkfifo fifo
	qemu-io -f qcow2 held.qcow2 <fifo >/dev/null 2>&1 &
	qio=$!
	exec 3>fifo
	for _ in $(seq 100); do
		qemu-img info held.qcow2 >/dev/null 2>&1 || break
		sleep 0.1
	done
	qemu-img info held.qcow2 >/dev/null 2>&1 && fail "qemu-io did not lock the image"
	want 1 info held.qcow2
	grep -q 'in use' err || fail "locked: $(cat err)"
	want 0 info -U held.qcow2
	want 0 map -U --output=json held.qcow2
	want 1 resize held.qcow2 2M
	exec 3>&-
	wait "$qio"
	qio=
	want 0 resize held.qcow2 2M
	;;
*)
	fail "unknown case"
	;;
esac
echo "ok $case"
