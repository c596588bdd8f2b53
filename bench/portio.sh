#!/bin/sh
# Port I/O round trip: (a) a port handled inside the worker (an unclaimed
# port: the worker drops the write) against (b) the same port claimed by the
# null device in its own process. Same guest, same port, runs interleaved.
# Per-access cost = (time with COUNT writes - time with 0 writes) / COUNT,
# medians over REPS runs of each.
set -eu
build=${1:-build}
count=${COUNT:-200000}
reps=${REPS:-5}
port=0x510
bin=$build/bin/bulkhead
guest=$build/guests/nullio.elf

if [ ! -c /dev/kvm ]; then
	echo "bench: /dev/kvm is missing; nothing to measure" >&2
	exit 1
fi

now_ns() { date +%s%N; }

# run_ns EXTRA_ARGS COUNT CPL: wall time of one run in ns (fails loudly)
run_ns() {
	t0=$(now_ns)
	st=0
	# shellcheck disable=SC2086
	"$bin" run --serial null $1 --cmdline "port=$port count=$2 cpl=$3" "$guest" || st=$?
	t1=$(now_ns)
	if [ "$st" -ne 1 ]; then
		echo "bench: guest run failed with status $st" >&2
		exit 1
	fi
	echo $((t1 - t0))
}

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure CPL LABEL: one row pair; the guest loop runs at CPL 3 (natively
# here, but exits from CPL 3 are dear on this host) or CPL 0 (in KVM's
# instruction emulator on hosts without VT-x/AMD-V).
measure() {
	rm -f "$tmp"/a* "$tmp"/b*
	i=0
	while [ $i -lt "$reps" ]; do
		run_ns "" "$count" "$1" >>"$tmp/a"
		run_ns "" 0 "$1" >>"$tmp/a0"
		run_ns "--null-dev" "$count" "$1" >>"$tmp/b"
		run_ns "--null-dev" 0 "$1" >>"$tmp/b0"
		i=$((i + 1))
	done
	a=$(median <"$tmp/a"); a0=$(median <"$tmp/a0")
	b=$(median <"$tmp/b"); b0=$(median <"$tmp/b0")
	awk -v a="$a" -v a0="$a0" -v b="$b" -v b0="$b0" -v n="$count" -v cpl="$1" '
	BEGIN {
		ua = (a - a0) / n / 1000; ub = (b - b0) / n / 1000
		printf "guest loop at CPL %d:\n", cpl
		printf "  (a) handled inside the worker      %7.3f us/access\n", ua
		printf "  (b) null device in its own process %7.3f us/access\n", ub
		printf "  ratio b/a                          %7.3f   (target <= 1.10)\n", ub / ua
		printf "  start-up to exit with no accesses: (a) %.1f ms, (b) %.1f ms\n", a0 / 1e6, b0 / 1e6
	}'
}

echo "port I/O round trip: $count guest writes to port $port, medians of $reps runs"
echo "commands: $bin run --serial null [--null-dev] --cmdline 'port=$port count=N cpl=C' $guest"
measure 3
measure 0
