#!/bin/sh
# Bulkhead against QEMU, side by side: `make bench` runs this. Every row
# runs Bulkhead and QEMU interleaved in the same invocation (so both see
# the same host load) and reports medians; the table ends with the
# commands it used. docs/performance.md explains the rows and the targets.
#
# Where it measures: on this machine's /dev/kvm when it can be opened;
# otherwise the whole bench runs inside a nested KVM host booted under
# QEMU's emulation (scripts/kvm-nest), saying so on stderr, with sizes
# and runs cut down for a machine 10-50x slower (BENCH_NEST_* below), and
# QEMU with -accel kvm inside the nest too. The table then says that its
# figures come from a nested, emulated host: only the ratios count.
# BULKHEAD_NEST=1 always uses the nest, BULKHEAD_NEST=0 never does (and
# refuses without /dev/kvm).
#
# Usage: sh bench/run-bench.sh [BUILD]        (default build)
# Environment: REPS (runs per variant, default 7; 5 in the nest), ROWS
# (which rows, default "exits startup idle blk save"), BENCH_OUT (where the
# table is also written, default BUILD/bench/results.md), and per row
# EXIT_COUNT3, EXIT_COUNT0, EXIT_HOGS, STARTUP_REPS_PC, IDLE_REPS,
# IDLE_SECONDS, BLK_MIB, BLK_SEQKB, BLK_RAND, BLK_QD, SAVE_ARGS, SAVE_REPS
# (see bench/row-*.sh).
set -u

BUILD=${1:-build}
BIN=$BUILD/bin
GUESTS_DIR=$BUILD/guests
TOOL=$BUILD/bench/benchtool
BENCH_OUT=${BENCH_OUT:-$BUILD/bench/results.md}
here=$(dirname "$0")
top=$(cd "$here/.." && pwd)

for f in "$BIN/bulkhead" "$BIN/bulkheadd" "$TOOL" "$GUESTS_DIR/nullio.elf" \
	 "$GUESTS_DIR/hello.elf" "$GUESTS_DIR/idle.elf" "$GUESTS_DIR/blkbench.elf" \
	 "$GUESTS_DIR/memfill.elf"; do
	if [ ! -e "$f" ]; then
		echo "bench: $f is missing; run make first" >&2
		exit 1
	fi
done

# ---- here, or in the nest ---------------------------------------------
# Every knob a row reads, passed into the nest as set here.
BENCH_KNOBS="REPS ROWS BENCH_OUT BENCH_KEEP QEMU_BIN EXIT_COUNT3 EXIT_COUNT0 \
EXIT_HOGS STARTUP_REPS_PC IDLE_REPS IDLE_SECONDS IDLE_SETTLE BLK_MIB \
BLK_SEQKB BLK_RAND BLK_QD BLK_DISK_MIB SAVE_ARGS SAVE_REPS SAVE_WARM"

kvm_usable() {
	[ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null
}

nest=0 why=""
if [ "${BULKHEAD_IN_NEST:-0}" = 1 ]; then
	:
elif [ "${BULKHEAD_NEST:-}" = 1 ]; then
	nest=1 why="BULKHEAD_NEST=1"
elif kvm_usable; then
	:
elif [ "${BULKHEAD_NEST:-}" = 0 ]; then
	if [ -c /dev/kvm ]; then
		echo "bench: /dev/kvm cannot be opened by $(id -un), and BULKHEAD_NEST=0 forbids the nested KVM host; unset BULKHEAD_NEST to measure in the nest (only ratios count there), or run as a user who may open /dev/kvm" >&2
	else
		echo "bench: this machine has no /dev/kvm, and BULKHEAD_NEST=0 forbids the nested KVM host; unset BULKHEAD_NEST to measure in the nest (only ratios count there), or run on a machine with /dev/kvm" >&2
	fi
	exit 1
elif [ -c /dev/kvm ]; then
	nest=1 why="/dev/kvm cannot be opened by $(id -un)"
else
	nest=1 why="this machine has no /dev/kvm"
fi

if [ $nest = 1 ]; then
	# Everything runs 10-50x slower in the nest: fewer accesses per run,
	# smaller transfers and fewer runs, for about 10 minutes in all, with
	# medians of 5. Anything set in the environment wins.
	: "${REPS:=5}" "${EXIT_COUNT3:=3000}" "${EXIT_COUNT0:=3000}"
	: "${STARTUP_REPS_PC:=3}" "${IDLE_REPS:=3}" "${BLK_MIB:=64}"
	: "${BLK_RAND:=1024}" "${BLK_DISK_MIB:=128}" "${SAVE_REPS:=3}"
	BENCH_OUTER_HOST="$(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
	BENCH_OUTER_LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
	echo "bench: $why: running the whole bench inside a nested KVM host under QEMU's emulation (scripts/kvm-nest; QEMU -accel kvm in it too; about 10 minutes; only the ratios count there; BULKHEAD_NEST=0 refuses instead)" >&2
	sh "$top/scripts/install-deps.sh" bench || exit 1
	set --
	for v in $BENCH_KNOBS; do
		eval "set_=\${$v+x} val=\${$v-}"
		[ -n "$set_" ] && set -- "$@" "$v=$val"
	done
	t0=$(date +%s)
	st=0
	"$top/scripts/kvm-nest" --quiet --timeout 3600 env "$@" \
		BENCH_NEST_WHY="$why" BENCH_OUTER_HOST="$BENCH_OUTER_HOST" \
		BENCH_OUTER_LOAD0="$BENCH_OUTER_LOAD0" \
		sh "$top/bench/run-bench.sh" "$BUILD" || st=$?
	if [ $st = 0 ]; then
		line="Outside the nest: $(($(date +%s) - t0)) s in all (the nest's boot included); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
		echo "$line"
		echo "$line" >>"$BENCH_OUT"
	fi
	exit $st
fi

# ---- the bench --------------------------------------------------------
REPS=${REPS:-7}
ROWS=${ROWS:-exits startup idle blk save}

. "$here/lib.sh"
for r in exits startup idle blk save; do
	. "$here/row-$r.sh"
done

if [ ! -c /dev/kvm ]; then
	echo "bench: /dev/kvm is missing; nothing to measure" >&2
	exit 1
fi
if ! command -v "$QEMU_BIN" >/dev/null 2>&1; then
	echo "bench: $QEMU_BIN not found; install it with: sh scripts/install-deps.sh bench" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/bulkhead-bench.XXXXXX)
RESULTS=$TMP/results
COMMANDS=$TMP/commands
NOTES=$TMP/notes
: >"$RESULTS"
: >"$COMMANDS"
: >"$NOTES"
# What the cleanup may have to stop or remove (set by the rows).
BLK_IMG='' SAVE_DIR=''
idle_qpid='' idle_apid='' idle_bhd='' idle_sock=''
save_qpid='' save_bhd='' save_sock=''
cleanup() {
	idle_cleanup 2>/dev/null
	save_cleanup 2>/dev/null
	[ -n "$BLK_IMG" ] && rm -f "$BLK_IMG"
	[ -n "$SAVE_DIR" ] && rm -rf "$SAVE_DIR"
	hogs_stop 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TSC_HZ=$("$TOOL" tsc-hz)
started=$(now_ns)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
qver=$("$QEMU_BIN" --version | head -n 1)
bench_log "host TSC ${TSC_HZ} Hz; load average $load0; $qver"

for r in $ROWS; do
	"row_$r"
done

ended=$(now_ns)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$BENCH_OUT")"
{
	echo "Bulkhead against QEMU, measured side by side ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	if [ "${BULKHEAD_IN_NEST:-0}" = 1 ]; then
		echo "THESE FIGURES COME FROM A NESTED, EMULATED HOST: ONLY THE RATIOS COUNT."
		echo "Both VMMs ran in a nested KVM host (scripts/kvm-nest; ${BENCH_NEST_WHY:-BULKHEAD_NEST=1}):"
		echo "Debian's kernel under QEMU's TCG emulation with AMD SVM emulated, KVM in it, QEMU"
		echo "with -accel kvm. Everything there runs 10-50x slower than on hardware, and the"
		echo "nest's $(nproc) CPUs take turns on one thread of the outer host."
		echo
		echo "Nest: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r);"
		echo "outer host: ${BENCH_OUTER_HOST:-unknown}, load average ${BENCH_OUTER_LOAD0:-unknown} at the start;"
	else
		echo "Host: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r);"
	fi
	echo "$qver; load average $load0 at the start, $load1 at the end;"
	echo "medians of $REPS runs of each (fewer where noted); ratio = Bulkhead / QEMU."
	echo
	echo "| row | Bulkhead | QEMU | ratio | target | met? |"
	echo "|---|---|---|---|---|---|"
	awk -F'|' '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; print "" }' "$RESULTS"
	echo
	if [ -s "$NOTES" ]; then
		echo "Notes:"
		echo
		cat "$NOTES"
		echo
	fi
	echo "Commands (QEMU: $QEMU_BASE):"
	echo
	sed 's/^/    /' "$COMMANDS"
	echo
	echo "Whole run: $(((ended - started) / 1000000000)) s."
} >"$BENCH_OUT"
cat "$BENCH_OUT"
