# bench/row-startup.sh: start-up (sourced by run-bench.sh). hello.elf
# prints its greeting first thing, then what the loader told it, then
# exits through debug-exit. benchtool times, from just before fork, the
# first complete output line and the exit of the command. Bulkhead's
# includes spawning and sandboxing the worker and all four default device
# processes (uart, debug-exit, rtc, i8042).
#
# QEMU -M microvm boots the multiboot image through its own loader and
# qboot; -M pc runs SeaBIOS first, which on hosts without VT-x/AMD-V runs
# in KVM's instruction emulator and takes seconds, so it gets fewer runs.

STARTUP_REPS_PC=${STARTUP_REPS_PC:-3}

startup_run() {
	line=$("$TOOL" run -t 120 -o "$TMP/startup.out" -- "$@" 2>>"$TMP/startup.err")
	st=$(kv status "$line")
	if [ "$st" != 1 ]; then
		bench_log "start-up run ended with status $st: $*"
		return 0
	fi
	echo "$(kv first_ns "$line") $(kv exit_ns "$line")"
}

row_startup() {
	bench_log "start-up to the first line and to exit ($REPS runs; -M pc $STARTUP_REPS_PC)"
	d="$TMP/startup"
	mkdir -p "$d"
	hello="$GUESTS_DIR/hello.elf"
	bh="$BIN/bulkhead run --serial stdio"
	qm="$QEMU_BASE -M microvm -m 64 -serial stdio"
	qp="$QEMU_BASE -M pc -m 64 -serial stdio"
	i=0
	while [ $i -lt "$REPS" ]; do
		if [ $((i % 2)) = 0 ]; then
			startup_run $bh "$hello" >>"$d/bh"
			startup_run $qm -kernel "$hello" >>"$d/qm"
		else
			startup_run $qm -kernel "$hello" >>"$d/qm"
			startup_run $bh "$hello" >>"$d/bh"
		fi
		if [ $i -lt "$STARTUP_REPS_PC" ]; then
			startup_run $qp -kernel "$hello" >>"$d/qp"
		fi
		i=$((i + 1))
	done
	ms() { awk -v c="$2" '{ print $c / 1e6 }' "$1" 2>/dev/null | median; }
	bench_row "Start-up to the first output line (vs -M microvm)" \
		"$(ms "$d/bh" 1)" "$(ms "$d/qm" 1)" ms "<=" 0.5 1
	bench_row "Start-up to exit (vs -M microvm)" \
		"$(ms "$d/bh" 2)" "$(ms "$d/qm" 2)" ms "<=" 0.5 1
	bench_row "Start-up to the first output line (vs -M pc, SeaBIOS)" \
		"$(ms "$d/bh" 1)" "$(ms "$d/qp" 1)" ms - - 1
	bench_row "Start-up to exit (vs -M pc, SeaBIOS)" \
		"$(ms "$d/bh" 2)" "$(ms "$d/qp" 2)" ms - - 1
	bench_cmd "Start-up, Bulkhead: benchtool run -- $bh hello.elf"
	bench_cmd "Start-up, QEMU:     benchtool run -- $qm -kernel hello.elf"
	bench_cmd "Start-up, QEMU pc:  benchtool run -- $qp -kernel hello.elf"
}
