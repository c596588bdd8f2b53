#!/bin/sh
# Bulkhead against QEMU, side by side: `make bench` runs this. Every row
# runs Bulkhead and QEMU interleaved in the same invocation (so both see
# the same host load) and reports medians; the table ends with the
# commands it used. docs/performance.md explains the rows and the targets.
#
# Usage: sh bench/run-bench.sh [BUILD]        (default build)
# Environment: REPS (runs per variant, default 7), ROWS (which rows, default
# "exits startup idle blk save"), BENCH_OUT (where the table is also
# written, default BUILD/bench/results.md), and per row EXIT_COUNT3,
# EXIT_COUNT0, STARTUP_REPS_PC, IDLE_REPS, IDLE_SECONDS, BLK_MIB,
# BLK_SEQKB, BLK_RAND, BLK_QD, SAVE_ARGS, SAVE_REPS (see bench/row-*.sh).
set -u

BUILD=${1:-build}
BIN=$BUILD/bin
GUESTS_DIR=$BUILD/guests
TOOL=$BUILD/bench/benchtool
REPS=${REPS:-7}
ROWS=${ROWS:-exits startup idle blk save}
BENCH_OUT=${BENCH_OUT:-$BUILD/bench/results.md}
here=$(dirname "$0")

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
for f in "$BIN/bulkhead" "$BIN/bulkheadd" "$TOOL" "$GUESTS_DIR/nullio.elf" \
	 "$GUESTS_DIR/hello.elf" "$GUESTS_DIR/idle.elf" "$GUESTS_DIR/blkbench.elf" \
	 "$GUESTS_DIR/memfill.elf"; do
	if [ ! -e "$f" ]; then
		echo "bench: $f is missing; run make first" >&2
		exit 1
	fi
done

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
	echo "Host: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r);"
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
