#!/bin/bash
# guest/build.sh: build the default kumo Linux guest (Debian kernel + busybox
# initramfs) into ${KUMO_GUEST_DIR:-/var/cache/kumo/guest}. See guest/README.md.
#
#   guest/build.sh [--force]
#
# Outputs: vmlinuz (bzImage), initrd.img (gzip newc cpio), version (kernel
# release), stamp (written last; says the three above are complete and were
# built by this build.sh + init). With a valid stamp the script exits 0 at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${KUMO_GUEST_DIR:-/var/cache/kumo/guest}
kernel_pkg=${KUMO_GUEST_KERNEL:-}   # e.g. linux-image-6.1.0-56-amd64; default: what linux-image-amd64 depends on
# Modules wanted in the guest; their dependencies (and soft dependencies) are
# resolved from the kernel's own modules.dep, built-in ones are skipped.
modules=(virtio_pci virtio_blk virtio_net virtio_rng virtio_balloon ext4)
export PATH=$PATH:/usr/sbin:/sbin LC_ALL=C

me=guest/build.sh
die() { echo "$me: error: $*" >&2; exit 1; }
log() { echo "$me: $*" >&2; }

force=0
for arg in "$@"; do
	case $arg in
	-f | --force) force=1 ;;
	-h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "usage: $me [--force]" >&2; exit 2 ;;
	esac
done

[[ -r $here/init ]] || die "$here/init is missing"
key=$(cat "$here/build.sh" "$here/init" <(echo "$kernel_pkg ${modules[*]}") | sha256sum | cut -d' ' -f1)
complete() {
	[[ -s $out/vmlinuz && -s $out/initrd.img && -s $out/version && -f $out/stamp ]] &&
		[[ $(head -n1 "$out/stamp") == "$key" ]]
}
((force)) || ! complete || exit 0

mkdir -p "$out" 2>/dev/null || die "cannot create $out (run as root or set KUMO_GUEST_DIR)"
exec 9>"$out/.lock" || die "cannot write to $out"
flock 9 # one build at a time; a concurrent run waits and then finds the cache
((force)) || ! complete || exit 0

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

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$work" # apt's _apt sandbox user must be able to write the downloads

t0=$SECONDS
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
	mkdir -p "$r/${applet%/*}"
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
	echo "modules: $(sed 's|.*/||; s|\.ko$||' "$r/etc/kumo-modules" | tr '\n' ' ')"
	echo "requested but built in: ${builtins[*]:-none}"
	echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$work/stamp"

# --- install: the stamp goes first out and last in, so a cache without a
# matching stamp is never taken as complete
rm -f "$out/stamp"
for f in vmlinuz initrd.img version stamp; do mv -f "$work/$f" "$out/$f"; done
log "built $out: kernel $kver, initrd $(($(stat -c %s "$out/initrd.img") / 1024)) KiB, ${#kos[@]} modules, $((SECONDS - t0)) s"
