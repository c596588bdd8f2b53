#!/bin/sh
# The one place that lists the Debian packages Bulkhead needs.
# Usage: scripts/install-deps.sh [build|check|nest|bench|fuzz]
#
#   build  what `make` needs to build everything
#   check  build, plus what the integration tests use on the host: Debian's
#          own kernel (linux-image-amd64, whose /boot/vmlinuz-* the Linux
#          tests boot) and busybox-static and cpio (their initramfs)
#   nest   check, plus QEMU: scripts/kvm-nest boots that same kernel under
#          QEMU's emulation to get a /dev/kvm on machines without one
#   bench  nest (the bench compares against QEMU, and runs in the nest
#          where there is no /dev/kvm)
#   fuzz   build, plus clang with libFuzzer and the sanitizers, and AFL++
#
# Installs what is missing (as root, through apt-get); otherwise prints the
# command to run and fails.
set -eu

build_pkgs="gcc make binutils pkg-config procps libseccomp-dev libcap-dev \
libprotobuf-c-dev protobuf-c-compiler liblzf-dev zlib1g-dev check libjson-c-dev"
check_pkgs="$build_pkgs linux-image-amd64 busybox-static cpio kmod util-linux \
	acpica-tools e2fsprogs"
nest_pkgs="$check_pkgs qemu-system-x86"
fuzz_pkgs="$build_pkgs clang libclang-rt-14-dev afl++"

case "${1:-build}" in
build) want="$build_pkgs" ;;
check) want="$check_pkgs" ;;
nest | bench) want="$nest_pkgs" ;;
fuzz) want="$fuzz_pkgs" ;;
*) echo "usage: $0 [build|check|nest|bench|fuzz]" >&2; exit 2 ;;
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
