#!/bin/sh
# The one place that lists the Debian packages Bulkhead needs.
# Usage: scripts/install-deps.sh [build|bench]
# Installs what is missing (as root, through apt-get); otherwise prints the
# command to run and fails.
set -eu

build_pkgs="gcc make binutils pkg-config libseccomp-dev libcap-dev \
libprotobuf-c-dev protobuf-c-compiler liblzf-dev zlib1g-dev check libjson-c-dev"
bench_pkgs="qemu-system-x86"

case "${1:-build}" in
build) want="$build_pkgs" ;;
bench) want="$build_pkgs $bench_pkgs" ;;
*) echo "usage: $0 [build|bench]" >&2; exit 2 ;;
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
