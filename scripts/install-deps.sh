#!/usr/bin/env bash
# Installs what kumo needs to build, test and benchmark, from Debian's
# packages, only when something is missing. Run as root (or with sudo).
set -euo pipefail

packages=(
	gcc make meson ninja-build pkg-config libc6-dev linux-libc-dev
	libcmocka-dev                   # unit tests
	liblzma-dev libzstd-dev zlib1g-dev liblz4-dev libbz2-dev  # kernel payloads unpacked on the host
	clang libclang-rt-14-dev        # libFuzzer targets
	cpio kmod gzip                  # guest image (guest/build.sh)
	zstd                            # the zstd variant of the bzimage test guest
	qemu-system-x86 qemu-utils      # benchmarks and test oracles
	iperf3 iproute2                 # bench/io (host side), network tests
	e2fsprogs procps util-linux python3  # tests, benchmarks
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; an old list may lack a package.
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
