# bench/lib.sh: shared by bench/run-bench.sh and the row scripts
# (bench/row-*.sh), which it sources. POSIX sh.
#
# Every row script measures Bulkhead and QEMU interleaved (one run of each
# in turn, REPS times) and records medians with bench_row; the commands it
# ran go to the list printed under the table (bench_cmd).

# Set by run-bench.sh: BUILD, BIN, GUESTS_DIR, TOOL, TMP, RESULTS,
# COMMANDS, NOTES, TSC_HZ, REPS.

QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}
# The same guest-visible machine as far as QEMU allows: KVM, no default
# devices, the UART on stdio, debug-exit at 0xf4 like Bulkhead's.
QEMU_BASE="$QEMU_BIN -accel kvm -nodefaults -no-user-config -display none \
-device isa-debug-exit,iobase=0xf4,iosize=4"

bench_log() {
	echo "bench: $*" >&2
}

# median: of the numbers on stdin, one per line ("n/a" when none).
median() {
	grep -E '^-?[0-9.]+(e[-+]?[0-9]+)?$' | sort -g | awk '
		{ a[NR] = $1 }
		END {
			if (NR == 0) { print "n/a"; exit }
			if (NR % 2) print a[(NR + 1) / 2]
			else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
		}'
}

# spread FILE: "min-max" of the numbers in FILE, for the notes.
spread() {
	sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.4g-%.4g", lo, hi }'
}

# now_ns: wall clock in ns (differences only).
now_ns() {
	date +%s%N
}

# kv KEY LINE: the value of KEY=value in LINE.
kv() {
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

# bench_cmd TEXT: a command (or command pattern) shown under the table.
bench_cmd() {
	printf '%s\n' "$*" >>"$COMMANDS"
}

# bench_note TEXT: a line shown under the table (breakdowns, caveats).
bench_note() {
	printf '%s\n' "$*" >>"$NOTES"
}

# bench_row NAME BULKHEAD QEMU UNIT OP TARGET [DECIMALS]
# One table row. BULKHEAD and QEMU are numbers in UNIT or "n/a" (then the
# row says why in the value column: pass the reason as BULKHEAD, e.g.
# "n/a (no bulkhead save yet)"). OP is <= or >= (the ratio
# BULKHEAD/QEMU against TARGET) or - (no target).
bench_row() {
	awk -v name="$1" -v b="$2" -v q="$3" -v unit="$4" -v op="$5" -v t="$6" \
	    -v dec="${7:-2}" '
	function isnum(x) { return x ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ }
	function fmt(x) { return isnum(x) ? sprintf("%." dec "f %s", x, unit) : x }
	BEGIN {
		ratio = "n/a"; met = "n/a"; target = "-"
		if (op != "-") target = op " " t
		if (isnum(b) && isnum(q) && q > 0) {
			r = b / q
			ratio = sprintf("%.2f", r)
			if (op == "<=") met = (r <= t) ? "yes" : "NO"
			if (op == ">=") met = (r >= t) ? "yes" : "NO"
		} else if (op != "-") {
			met = "NO (not measured)"
		}
		printf "%s|%s|%s|%s|%s|%s\n", name, fmt(b), fmt(q), ratio, target, met
	}' >>"$RESULTS"
}

# ---- QEMU -------------------------------------------------------------------

# The eight virtio-mmio transports of QEMU's microvm (0xfeb00000 + 0x200 *
# i, IRQ 16 + i with ioapic2=off), as command-line tokens: QEMU does not
# put them on a multiboot command line itself. The guest probes each.
qemu_microvm_virtio_tokens() {
	i=0
	t=
	while [ $i -lt 8 ]; do
		t="$t virtio_mmio.device=512@$(printf 0x%x $((0xfeb00000 + i * 512))):$((16 + i))"
		i=$((i + 1))
	done
	echo "$t"
}

# ---- process trees ----------------------------------------------------------

# descendants PID: PID and every process below it, one per line.
descendants() {
	echo "$1"
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		descendants "$c"
	done
}

# pss_kib PID...: summed Pss (KiB) from /proc/PID/smaps_rollup.
pss_kib() {
	for p in "$@"; do
		cat "/proc/$p/smaps_rollup" 2>/dev/null
	done | awk '/^Pss:/ { s += $2 } END { print s + 0 }'
}

# cpu_ticks PID...: summed utime + stime (clock ticks) of the processes,
# all their threads included.
cpu_ticks() {
	for p in "$@"; do
		# The fields after the command name, which is in parentheses.
		sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null
	done | awk '{ s += $12 + $13 } END { print s + 0 }'
}

# cpu_ns PID...: CPU time (ns) of the processes, summed over their live
# threads (/proc/PID/task/*/schedstat: nanosecond resolution, where the
# utime and stime of /proc/PID/stat only count clock ticks).
cpu_ns() {
	for p in "$@"; do
		cat /proc/"$p"/task/*/schedstat 2>/dev/null
	done | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# wait_for_line FILE PREFIX SECONDS: wait until FILE has a line starting
# with PREFIX; 1 on timeout.
wait_for_line() {
	n=0
	while ! grep -q "^$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt $(($3 * 100)) ]; then
			return 1
		fi
		sleep 0.01
	done
	return 0
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it if it is ours.
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	n=0
	while kill -0 "$1" 2>/dev/null &&
	      ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt 500 ]; then
			kill -KILL "$1" 2>/dev/null
			break
		fi
		sleep 0.01
	done
	wait "$1" 2>/dev/null || true
}
