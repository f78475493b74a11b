#!/bin/bash
# guest/build.sh: build the default kumo Linux guest (Debian kernel + busybox
# initramfs + e2fsprogs) into ${KUMO_GUEST_DIR:-/var/cache/kumo/guest}. See
# guest/README.md.
#
#   guest/build.sh [--force] [--bench]
#
# Outputs: vmlinuz (bzImage), initrd.img (gzip newc cpio), version (kernel
# release), stamp (written last; says the three above are complete and were
# built by this build.sh + init). With a valid stamp the script exits 0 at once.
# --bench also builds initrd-bench.img (initrd.img + fio, iperf3 and their
# libraries) and stamp-bench, for bench/io.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${KUMO_GUEST_DIR:-/var/cache/kumo/guest}
kernel_pkg=${KUMO_GUEST_KERNEL:-}   # e.g. linux-image-6.1.0-56-amd64; default: what linux-image-amd64 depends on
# Modules wanted in the guest; their dependencies (and soft dependencies) are
# resolved from the kernel's own modules.dep, built-in ones are skipped.
modules=(virtio_pci virtio_blk virtio_net virtio_rng virtio_balloon ext4)
# Dynamically linked programs from Debian packages: the packages, then the
# programs (paths inside them). Their libraries and the loader come from the
# library packages these depend on (resolved by ELF NEEDED, see stage_elf).
tools_pkgs=(e2fsprogs)
tools=(/sbin/mke2fs /sbin/e2fsck)
bench_pkgs=(fio iperf3)
bench_tools=(/usr/bin/fio /usr/bin/iperf3)
export PATH=$PATH:/usr/sbin:/sbin LC_ALL=C

me=guest/build.sh
die() { echo "$me: error: $*" >&2; exit 1; }
log() { echo "$me: $*" >&2; }

force=0 bench=0
for arg in "$@"; do
	case $arg in
	-f | --force) force=1 ;;
	--bench) bench=1 ;;
	-h | --help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "usage: $me [--force] [--bench]" >&2; exit 2 ;;
	esac
done

[[ -r $here/init ]] || die "$here/init is missing"
key=$(cat "$here/build.sh" "$here/init" <(echo "$kernel_pkg ${modules[*]}") | sha256sum | cut -d' ' -f1)
complete() {
	[[ -s $out/vmlinuz && -s $out/initrd.img && -s $out/version && -f $out/stamp ]] &&
		[[ $(head -n1 "$out/stamp") == "$key" ]]
}
# The bench image extends initrd.img, so its key covers that file too.
bench_key() { cat <(echo "$key bench ${bench_pkgs[*]}") "$out/initrd.img" | sha256sum | cut -d' ' -f1; }
bench_complete() {
	complete && [[ -s $out/initrd-bench.img && -f $out/stamp-bench ]] &&
		[[ $(head -n1 "$out/stamp-bench") == "$(bench_key)" ]]
}
all_complete() { complete && { ((!bench)) || bench_complete; }; }
((force)) || ! all_complete || exit 0

mkdir -p "$out" 2>/dev/null || die "cannot create $out (run as root or set KUMO_GUEST_DIR)"
exec 9>"$out/.lock" || die "cannot write to $out"
flock 9 # one build at a time; a concurrent run waits and then finds the cache
((force)) || ! all_complete || exit 0

# --- host tools (installed only if missing; kernel/busybox are never installed)
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null && return
	[[ $(id -u) == 0 ]] || die "'$1' not found: install the Debian package $2 (or run as root)"
	log "installing $2"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >"$out/.apt.log" 2>&1 ||
		{ cat "$out/.apt.log" >&2; die "apt-get install $2 failed"; }
	rm -f "$out/.apt.log"
}
need apt-get apt
need dpkg-deb dpkg
need cpio cpio
need gzip gzip
need depmod kmod
need modprobe kmod
need readelf binutils

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$work" # apt's _apt sandbox user must be able to write the downloads

# --- Debian packages' programs with their shared libraries
libdirs=(/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib)

# debs_fetch DIR PKG...: download PKG... into DIR/deb (not installed) and
# unpack them all into DIR/tree; "PKG VERSION" lines go to DIR/versions.
debs_fetch() {
	local dir=$1 p deb
	shift
	mkdir -p "$dir/deb" "$dir/tree"
	if [[ $(id -u) == 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$dir/deb"; fi
	(cd "$dir/deb" && apt-get download -q "$@") >"$dir/apt.log" 2>&1 ||
		{ cat "$dir/apt.log" >&2; die "apt-get download $* failed"; }
	for p; do
		deb=$(echo "$dir/deb/${p}_"*.deb)
		[[ -f $deb ]] || die "downloaded package $p not found in $dir/deb"
		dpkg-deb -x "$deb" "$dir/tree"
		echo "$p $(dpkg-deb -f "$deb" Version)" >>"$dir/versions"
	done
}

# tree_file TREE PATH: PATH (absolute, inside TREE) with its symlinks
# followed inside TREE, never out of it; fails unless that is a regular file.
tree_file() {
	local tree=$1 p=$2 t n=0
	while [[ -L $tree$p ]]; do
		((++n <= 16)) || return 1
		t=$(readlink "$tree$p")
		if [[ $t == /* ]]; then p=$t; else p=${p%/*}/$t; fi
	done
	[[ -f $tree$p ]] && echo "$p"
}

# stage_elf ROOT TREE PATH...: copy the ELF files PATH... from TREE to the
# same paths in ROOT, then, transitively, their program interpreter and the
# shared libraries they need (ELF NEEDED, looked up in their RUNPATH and
# the system directories in TREE), each under the name it is asked by, as a
# file (never through a symlink already in ROOT, e.g. a busybox applet).
# The sonames it cannot find go to missing_libs.
missing_libs=()
stage_elf() {
	local root=$1 tree=$2 p real kind val so d found
	shift 2
	local -a todo=("$@") needed runpath dirs
	local -A seen=() copied=()
	while ((${#todo[@]})); do
		p=${todo[-1]}
		unset 'todo[-1]'
		[[ -z ${seen[$p]:-} ]] || continue
		seen[$p]=1
		real=$(tree_file "$tree" "$p") || die "$p is not a file in the packages"
		mkdir -p "$root${p%/*}"
		if [[ -n ${copied[$real]:-} ]]; then # one file under two names (the loader)
			ln -sfn "${copied[$real]}" "$root$p"
			continue
		fi
		cp --remove-destination "$tree$real" "$root$p"
		copied[$real]=$p
		needed=() runpath=()
		while read -r kind val; do
			case $kind in
			interp) if tree_file "$tree" "$val" >/dev/null; then todo+=("$val"); else missing_libs+=("$val"); fi ;;
			needed) needed+=("$val") ;;
			runpath) IFS=: read -ra dirs <<<"$val" && runpath+=("${dirs[@]}") ;;
			esac
		done < <(readelf -Wdl "$tree$real" 2>/dev/null | sed -n \
			-e 's/.*Requesting program interpreter: \(.*\)]$/interp \1/p' \
			-e 's/.*(NEEDED).*\[\(.*\)\]$/needed \1/p' \
			-e 's/.*(RUNPATH).*\[\(.*\)\]$/runpath \1/p' \
			-e 's/.*(RPATH).*\[\(.*\)\]$/runpath \1/p')
		for so in "${needed[@]}"; do
			found=
			for d in "${runpath[@]}" "${libdirs[@]}"; do
				[[ $d == /* && $d != *'$'* ]] || continue
				if tree_file "$tree" "$d/$so" >/dev/null; then found=$d/$so && break; fi
			done
			if [[ -n $found ]]; then todo+=("$found"); else missing_libs+=("$so"); fi
		done
	done
}

# stage_programs DIR ROOT "PKG..." PATH...: fetch PKG... into DIR and stage
# the programs PATH... with stage_elf. A library not found in the packages
# so far comes from the library packages (Debian section libs) they depend
# on: a round at a time.
stage_programs() {
	local dir=$1 root=$2 round p
	local -a want=($3) new
	local -A have=()
	shift 3
	for round in 1 2 3 4 5 6 7 8; do
		new=()
		for p in "${want[@]}"; do [[ -n ${have[$p]:-} ]] || { new+=("$p") && have[$p]=1; }; done
		((${#new[@]})) || break
		debs_fetch "$dir" "${new[@]}"
		missing_libs=()
		stage_elf "$root" "$dir/tree" "$@"
		((${#missing_libs[@]})) || return 0
		mapfile -t want < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
			--no-replaces --no-enhances "${!have[@]}" 2>/dev/null |
			awk '$1 ~ /^[|]?(Pre)?Depends:$/ && $2 !~ /^</ { print $2 }' | sort -u)
		((${#want[@]})) || break
		mapfile -t want < <(apt-cache show --no-all-versions "${want[@]}" 2>/dev/null |
			awk '/^Package:/ { p = $2 } /^Section:/ && $2 ~ /^(old)?libs$/ { print p }' | sort -u)
	done
	die "libraries not found in the packages: $(printf '%s\n' "${missing_libs[@]}" | sort -u | tr '\n' ' ')"
}

t0=$SECONDS
if ! { ((!force)) && complete; }; then
	# --- which kernel
	if [[ -z $kernel_pkg ]]; then
		kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }') || true
		[[ -n $kernel_pkg ]] || die "cannot find the kernel package linux-image-amd64 depends on (run apt-get update?)"
	fi

	# --- download (not install) the kernel and busybox-static, unpack them
	mkdir "$work/deb"
	if [[ $(id -u) == 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$work/deb"; fi
	log "downloading $kernel_pkg busybox-static"
	(cd "$work/deb" && apt-get download -q "$kernel_pkg" busybox-static) >"$work/apt.log" 2>&1 ||
		{ cat "$work/apt.log" >&2; die "apt-get download $kernel_pkg busybox-static failed"; }
	kdeb=$(echo "$work/deb/${kernel_pkg}_"*.deb)
	bdeb=$(echo "$work/deb/busybox-static_"*.deb)
	[[ -f $kdeb && -f $bdeb ]] || die "downloaded packages not found in $work/deb"
	kpkg_version=$(dpkg-deb -f "$kdeb" Version)
	bb_version=$(dpkg-deb -f "$bdeb" Version)

	log "unpacking $kernel_pkg $kpkg_version"
	k=$work/k
	dpkg-deb -x "$kdeb" "$k"
	dpkg-deb -x "$bdeb" "$work/bb"
	vmlinuz=$(echo "$k"/boot/vmlinuz-*)
	[[ -f $vmlinuz ]] || die "no /boot/vmlinuz-* in $kernel_pkg"
	kver=${vmlinuz##*/vmlinuz-}
	if [[ ! -d $k/lib/modules/$kver && -d $k/usr/lib/modules/$kver ]]; then
		mkdir -p "$k/lib" && ln -s "../usr/lib/modules" "$k/lib/modules"
	fi
	kmods=$k/lib/modules/$kver
	[[ -d $kmods ]] || die "no modules directory for $kver in $kernel_pkg"
	[[ -x $work/bb/bin/busybox ]] || die "no /bin/busybox in busybox-static"

	# --- resolve modules: modules.dep (+ softdeps) in load order, built-ins skipped
	depmod -b "$k" "$kver" 2>"$work/depmod.log" || { cat "$work/depmod.log" >&2; die "depmod on $kver failed"; }
	: >"$work/deps"
	for m in "${modules[@]}"; do
		modprobe -d "$k" -S "$kver" --show-depends "$m" >>"$work/deps" 2>"$work/modprobe.log" ||
			{ cat "$work/modprobe.log" >&2; die "module $m not found in $kver"; }
	done
	mapfile -t kos < <(awk '$1 == "insmod" { print $2 }' "$work/deps" | sed "s|^.*/lib/modules/$kver/||" | awk '!seen[$0]++')
	mapfile -t builtins < <(awk '$1 == "builtin" { print $2 }' "$work/deps" | sort -u)

	# --- stage the initramfs
	r=$work/root
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,mnt,root,etc,var/log,lib/modules/"$kver"}
	chmod 1777 "$r/tmp"
	chmod 700 "$r/root"
	install -m 755 "$work/bb/bin/busybox" "$r/bin/busybox"
	"$r/bin/busybox" --list-full | while read -r applet; do
		[[ $applet == bin/busybox || -e $r/$applet ]] && continue
		[[ $applet != */* ]] || mkdir -p "$r/${applet%/*}"
		ln -s /bin/busybox "$r/$applet"
	done
	[[ -L $r/bin/sh && -L $r/bin/cttyhack && -L $r/sbin/insmod ]] || die "busybox lacks sh/cttyhack/insmod applets"

	: >"$r/etc/kumo-modules"
	for ko in "${kos[@]}"; do
		src=$kmods/$ko dst=$r/lib/modules/$kver/${ko%.ko*}.ko
		mkdir -p "${dst%/*}"
		case $ko in
		*.ko) cp "$src" "$dst" ;;
		*.ko.xz) need xz xz-utils && xz -dc "$src" >"$dst" ;;
		*.ko.zst) need zstd zstd && zstd -qdc "$src" >"$dst" ;;
		*.ko.gz) gzip -dc "$src" >"$dst" ;;
		*) die "unknown module format: $ko" ;;
		esac
		echo "lib/modules/$kver/${ko%.ko*}.ko" >>"$r/etc/kumo-modules"
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[[ -f $kmods/$f ]] && cp "$kmods/$f" "$r/lib/modules/$kver/"
	done
	depmod -b "$r" "$kver" 2>/dev/null || die "depmod on the initramfs failed" # for modprobe inside the guest

	# e2fsprogs: the real mke2fs (busybox's makes ext2 only) and e2fsck, with
	# glibc and the other libraries they need; nothing else of glibc (its
	# programs would shadow busybox applets)
	log "downloading ${tools_pkgs[*]} and their libraries"
	stage_programs "$work/tools" "$r" "${tools_pkgs[*]}" "${tools[@]}"
	for l in mkfs.ext2 mkfs.ext3 mkfs.ext4; do ln -sfn mke2fs "$r/sbin/$l"; done
	for l in fsck.ext2 fsck.ext3 fsck.ext4; do ln -sfn e2fsck "$r/sbin/$l"; done
	cp "$work/tools/tree/etc/mke2fs.conf" "$r/etc/mke2fs.conf"
	ln -sfn /proc/self/mounts "$r/etc/mtab"

	install -m 755 "$here/init" "$r/init"
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
	echo "root:x:0:" >"$r/etc/group"
	echo "kumo-guest" >"$r/etc/hostname"
	printf 'export PS1='"'"'\\u@\\h:\\w\\$ '"'"'\n' >"$r/etc/profile"
	if [[ $(id -u) == 0 ]]; then # the kernel's built-in initramfs has these too
		mknod -m 600 "$r/dev/console" c 5 1
		mknod -m 666 "$r/dev/null" c 1 3
	fi

	log "packing initramfs"
	find "$r" -exec touch -h -d @0 {} + # fixed mtimes: same inputs, same initrd.img
	(cd "$r" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$work/initrd.img"
	cp "$vmlinuz" "$work/vmlinuz"
	echo "$kver" >"$work/version"
	{
		echo "$key"
		echo "kernel: $kernel_pkg $kpkg_version ($kver)"
		echo "busybox-static: $bb_version"
		echo "packages: $(sort "$work/tools/versions" | tr '\n' ' ')"
		echo "modules: $(sed 's|.*/||; s|\.ko$||' "$r/etc/kumo-modules" | tr '\n' ' ')"
		echo "requested but built in: ${builtins[*]:-none}"
		echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$work/stamp"

	# --- install: the stamp goes first out and last in, so a cache without a
	# matching stamp is never taken as complete
	rm -f "$out/stamp"
	for f in vmlinuz initrd.img version stamp; do mv -f "$work/$f" "$out/$f"; done
	log "built $out: kernel $kver, initrd $(($(stat -c %s "$out/initrd.img") / 1024)) KiB, ${#kos[@]} modules, $((SECONDS - t0)) s"
fi

# --- the bench image: initrd.img and a second archive with fio and iperf3
# (the kernel unpacks concatenated archives in turn), so it always matches
# vmlinuz and the modules. The second archive is not compressed: its ~90 MB
# (ceph, ICU... that fio links) take the kernel half as long to copy as to
# inflate on the emu engine (39 s against 74 s for the whole boot).
((bench)) || exit 0
t0=$SECONDS
log "downloading ${bench_pkgs[*]} and their libraries"
b=$work/bench-root
mkdir -p "$b"
stage_programs "$work/bench" "$b" "${bench_pkgs[*]}" "${bench_tools[@]}"
find "$b" -exec touch -h -d @0 {} +
(cd "$b" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 --reproducible) >"$work/bench.cpio"
# The kernel takes a second archive only at a 4-byte aligned offset (it
# skips zero padding up to one): pad the gzip member first.
pad=$(( (4 - $(stat -c %s "$out/initrd.img") % 4) % 4 ))
{ cat "$out/initrd.img"; head -c "$pad" /dev/zero; cat "$work/bench.cpio"; } >"$work/initrd-bench.img"
{
	bench_key
	echo "packages: $(sort "$work/bench/versions" | tr '\n' ' ')"
	echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$work/stamp-bench"
rm -f "$out/stamp-bench"
for f in initrd-bench.img stamp-bench; do mv -f "$work/$f" "$out/$f"; done
log "built $out/initrd-bench.img: $(($(stat -c %s "$out/initrd-bench.img") / 1024)) KiB, $((SECONDS - t0)) s"
