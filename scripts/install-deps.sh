#!/bin/sh
# The one place that lists the Debian packages Bulkhead needs.
# Usage: scripts/install-deps.sh [build|bench|fuzz|linux-kernel]
# Installs what is missing (as root, through apt-get); otherwise prints the
# command to run and fails.
#
# linux-kernel (optional; `make check` runs it once, best effort): fetch the
# kernel image of Debian's linux-image-amd64 for the Linux acceptance test
# (tests/integration/test_linux_debian.sh) into /var/cache/bulkhead/vmlinuz
# (build/linux/vmlinuz when that is not writable). Only the vmlinuz file is
# extracted from the package; nothing is installed into the system. Needs
# network this once; the test itself never does.
set -eu

fetch_linux_kernel() {
	dir=${BULKHEAD_KERNEL_DIR:-/var/cache/bulkhead}
	if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
		dir=build/linux
		mkdir -p "$dir"
	fi
	if [ -r "$dir/vmlinuz" ]; then
		echo "bulkhead: Linux kernel for the tests: $dir/vmlinuz ($(cat "$dir/vmlinuz.source" 2>/dev/null))" >&2
		return 0
	fi
	# The versioned package that linux-image-amd64 currently points at.
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
	if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
	fi
	if [ -z "$pkg" ]; then
		echo "bulkhead: cannot tell which kernel linux-image-amd64 depends on (apt lists missing?)" >&2
		return 1
	fi
	tmp=$(mktemp -d)
	chmod 755 "$tmp"  # apt-get download writes as _apt when root
	echo "bulkhead: downloading $pkg (for the Linux acceptance test)" >&2
	if ! (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) &&
	   ! { [ "$(id -u)" -eq 0 ] && apt-get update -qq >/dev/null 2>&1 &&
	       (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1); }; then
		echo "bulkhead: cannot download $pkg (no network?)" >&2
		rm -rf "$tmp"
		return 1
	fi
	deb=$(ls "$tmp"/*.deb)
	if ! dpkg-deb --fsys-tarfile "$deb" |
	     tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' ||
	   [ ! -f "$tmp"/boot/vmlinuz-* ]; then
		echo "bulkhead: $deb holds no /boot/vmlinuz-*" >&2
		rm -rf "$tmp"
		return 1
	fi
	version=$(dpkg-deb -f "$deb" Version)
	for f in "$tmp"/boot/vmlinuz-*; do
		cp "$f" "$dir/$(basename "$f")"
		ln -sfn "$(basename "$f")" "$dir/vmlinuz"
	done
	echo "$pkg $version" >"$dir/vmlinuz.source"
	rm -rf "$tmp"
	echo "bulkhead: Linux kernel for the tests: $dir/vmlinuz ($pkg $version)" >&2
}

if [ "${1:-}" = linux-kernel ]; then
	fetch_linux_kernel
	exit $?
fi

build_pkgs="gcc make binutils pkg-config procps libseccomp-dev libcap-dev \
libprotobuf-c-dev protobuf-c-compiler liblzf-dev zlib1g-dev check libjson-c-dev"
bench_pkgs="qemu-system-x86"
# make fuzz only: clang with libFuzzer and the sanitizers, and AFL++ for the
# whole-process mode.
fuzz_pkgs="clang libclang-rt-14-dev afl++"

case "${1:-build}" in
build) want="$build_pkgs" ;;
bench) want="$build_pkgs $bench_pkgs" ;;
fuzz) want="$build_pkgs $fuzz_pkgs" ;;
*) echo "usage: $0 [build|bench|fuzz]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "bulkhead: missing Debian packages:$missing" >&2
	echo "bulkhead: install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "bulkhead: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
