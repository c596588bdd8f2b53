# bench/row-exits.sh: port I/O and MMIO round trips (sourced by
# run-bench.sh). nullio.elf does COUNT accesses (writes, or with read=1
# reads) in a tight loop and reports the TSC ticks the loop took; per
# access = ticks / COUNT / TSC rate.
#
# Bulkhead, the same guest and address twice:
#   in-worker       nothing claims it: the worker's EMT drops the write or
#                   answers the read with all ones (port 0x510, MMIO
#                   0xd0100000 without --null-dev);
#   own process     the null device claims it (--null-dev): the EMT puts
#                   the access on the device's ring; a read waits for the
#                   answer, a write is posted (the null device's writes
#                   may be: the EMT does not wait; docs/design.md).
# QEMU (-M microvm): an unassigned port or address, handled in QEMU's own
# process (unassigned_io/unassigned_mem). Port 0x520 rather than 0x510,
# because microvm has fw_cfg at 0x510.
#
# Each at CPL 3 (64-bit code that runs natively on every host) and CPL 0
# (KVM's instruction emulator on hosts without VT-x/AMD-V, such as PVM).
# Writes at both, reads at CPL 3.
#
# CPU contention: for each count N in EXIT_HOGS other than 0, the CPL 3
# rows run again with N busy-loop processes started by the bench beside
# the guests (in the nest when the bench runs there), so that the three
# variants compete for the same CPUs.
#
# About 0.1 s of accesses per run at either level: 2000 at CPL 0 (20 ms)
# left the cross-process rows at the mercy of single host hiccups.
EXIT_COUNT3=${EXIT_COUNT3:-5000}
EXIT_COUNT0=${EXIT_COUNT0:-10000}
EXIT_HOGS=${EXIT_HOGS:-0 2}
BH_PORT=0x510
QEMU_PORT=0x520
NULL_MMIO=0xd0100000

# The busy loops of the current rows (their pids), stopped by hogs_stop
# and by run-bench.sh's cleanup.
exit_hogs=''

hogs_start() {
	n=0
	while [ $n -lt "$1" ]; do
		sh -c 'while :; do :; done' &
		exit_hogs="$exit_hogs $!"
		n=$((n + 1))
	done
}

hogs_stop() {
	for p in $exit_hogs; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	exit_hogs=''
}

# exits_ticks OUTFILE CMD...: run CMD, append the guest's tsc_delta.
exits_ticks() {
	f=$1
	shift
	out=$("$@" 2>>"$TMP/exits.err") || true
	t=$(echo "$out" | sed -n 's/^nullio: tsc_delta=\([0-9]*\).*/\1/p')
	if [ -z "$t" ]; then
		bench_log "no tsc_delta from: $*"
		echo "$out" | tail -n 3 >&2
		return 0
	fi
	echo "$t" >>"$f"
}

# exits_one KIND CPL OP HOGS: KIND port or mmio, OP write or read, HOGS
# busy loops beside; three medians into rows.
exits_one() {
	kind=$1
	cpl=$2
	op=$3
	hogs=$4
	if [ "$cpl" = 3 ]; then count=$EXIT_COUNT3; else count=$EXIT_COUNT0; fi
	rd=0
	[ "$op" = read ] && rd=1
	if [ "$kind" = port ]; then
		bh_args="port=$BH_PORT count=$count cpl=$cpl read=$rd"
		q_args="port=$QEMU_PORT count=$count cpl=$cpl read=$rd"
		label="Port I/O $op"
	else
		bh_args="mmio=$NULL_MMIO count=$count cpl=$cpl read=$rd"
		q_args="mmio=$NULL_MMIO count=$count cpl=$cpl read=$rd"
		label="MMIO $op"
	fi
	case $hogs in
	0) load="" ;;
	1) load=", 1 CPU hog" ;;
	*) load=", $hogs CPU hogs" ;;
	esac
	d="$TMP/exits-$kind-$cpl-$op-$hogs"
	mkdir -p "$d"
	bh="$BIN/bulkhead run --serial stdio"
	qemu="$QEMU_BASE -M microvm -m 64 -serial stdio"
	hogs_start "$hogs"
	i=0
	while [ $i -lt "$REPS" ]; do
		# Rotate the order so no variant always runs first.
		for v in $(echo "in out qemu in out" | cut -d' ' -f$((i % 3 + 1))-$((i % 3 + 3))); do
			case $v in
			in) exits_ticks "$d/in" $bh --cmdline "$bh_args" "$GUESTS_DIR/nullio.elf" ;;
			out) exits_ticks "$d/out" $bh --null-dev --cmdline "$bh_args" "$GUESTS_DIR/nullio.elf" ;;
			qemu) exits_ticks "$d/qemu" $qemu -kernel "$GUESTS_DIR/nullio.elf" -append "$q_args" ;;
			esac
		done
		i=$((i + 1))
	done
	hogs_stop
	us() { median <"$1" | awk -v n="$count" -v hz="$TSC_HZ" '/n\/a/ { print; next } { printf "%.4f\n", $1 / n / hz * 1e6 }'; }
	a=$(us "$d/in")
	b=$(us "$d/out")
	q=$(us "$d/qemu")
	# The targets are for a quiet host; under contention, for information.
	if [ "$hogs" = 0 ]; then t_in="<= 1.0" t_out="<= 1.10"; else t_in="- -" t_out="- -"; fi
	bench_row "$label, CPL $cpl$load: in the worker" "$a" "$q" us $t_in
	bench_row "$label, CPL $cpl$load: device in its own process" "$b" "$q" us $t_out
	best() { sort -g "$1" 2>/dev/null | head -n 1 | awk -v n="$count" -v hz="$TSC_HZ" '{ printf "%.2f", $1 / n / hz * 1e6 }'; }
	awk -v a="$a" -v b="$b" -v k="$label" -v c="$cpl" -v l="$load" \
	    -v ba="$(best "$d/in")" -v bb="$(best "$d/out")" -v bq="$(best "$d/qemu")" 'BEGIN {
		if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && a > 0)
			printf "- %s, CPL %s%s: own process / in the worker %.2f; the hop to the device process adds %.2f us (medians); best runs: in the worker %s us, own process %s us, QEMU %s us\n", k, c, l, b / a, b - a, ba, bb, bq
	}' >>"$NOTES"
	bench_cmd "$label, CPL $cpl$load, Bulkhead: $bh [--null-dev] --cmdline '$bh_args' nullio.elf"
	bench_cmd "$label, CPL $cpl$load, QEMU:     $qemu -kernel nullio.elf -append '$q_args'"
	[ "$hogs" = 0 ] || bench_cmd "$label, CPL $cpl$load: $hogs x sh -c 'while :; do :; done' running beside all three"
}

# doorbell_one CPL: a virtio queue notification, the write to QueueNotify
# of the virtio-rng device (virtio-mmio slot 0, 0xd0000000 + 0x50). KVM's
# ioeventfd catches it in the kernel and signals the device process: no
# exit to user space, the worker is not involved. The exit to the worker
# (the in-worker MMIO row) is the cost it avoids.
doorbell_one() {
	cpl=$1
	if [ "$cpl" = 3 ]; then count=$EXIT_COUNT3; else count=$EXIT_COUNT0; fi
	args="mmio=0xd0000050 count=$count cpl=$cpl"
	d="$TMP/doorbell-$cpl"
	mkdir -p "$d"
	i=0
	while [ $i -lt "$REPS" ]; do
		exits_ticks "$d/bell" $BIN/bulkhead run --serial stdio --rng \
			--cmdline "$args" "$GUESTS_DIR/nullio.elf"
		exits_ticks "$d/exit" $BIN/bulkhead run --serial stdio \
			--cmdline "mmio=$NULL_MMIO count=$count cpl=$cpl" \
			"$GUESTS_DIR/nullio.elf"
		i=$((i + 1))
	done
	us() { median <"$1" | awk -v n="$count" -v hz="$TSC_HZ" '/n\/a/ { print; next } { printf "%.4f\n", $1 / n / hz * 1e6 }'; }
	bench_row "virtio doorbell through ioeventfd, CPL $cpl (vs. an MMIO exit to the worker)" \
		"$(us "$d/bell")" "n/a" us - -
	bench_note "- virtio doorbell, CPL $cpl: $(us "$d/bell") us per QueueNotify write through KVM's ioeventfd, against $(us "$d/exit") us for an MMIO write that exits to the worker (same guest, same run); QEMU not measured for this row"
	bench_cmd "Doorbell, CPL $cpl: $BIN/bulkhead run --serial stdio --rng --cmdline '$args' nullio.elf"
}

row_exits() {
	bench_log "port I/O and MMIO round trips ($REPS runs of each; CPU hogs: $EXIT_HOGS)"
	exits_one port 3 write 0
	exits_one port 0 write 0
	exits_one mmio 3 write 0
	exits_one mmio 0 write 0
	exits_one port 3 read 0
	exits_one mmio 3 read 0
	for h in $EXIT_HOGS; do
		[ "$h" = 0 ] && continue
		bench_log "the CPL 3 round trips again, with $h CPU hogs"
		exits_one port 3 write "$h"
		exits_one mmio 3 write "$h"
		exits_one port 3 read "$h"
		exits_one mmio 3 read "$h"
	done
	doorbell_one 3
}
