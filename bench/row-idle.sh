# bench/row-idle.sh: memory and CPU of an idle 64 MiB guest (sourced by
# run-bench.sh). idle.elf prints "idle: ready" and halts with interrupts
# enabled and nothing to wake it.
#
# Per run, at the same time (so they share the host's load):
#   A  bulkhead run idle.elf: the CLI (which plays the broker), the worker
#      and the four device processes;
#   B  bulkheadd with the same guest created and started through the CLI:
#      the broker, the worker and the device processes;
#   Q  qemu-system-x86_64 -M microvm -m 64 with the same guest.
# IDLE_SETTLE seconds after every guest said it is ready, PSS is summed
# from /proc/PID/smaps_rollup over each group, and CPU time (all threads,
# from schedstat) over the next IDLE_SECONDS seconds.

IDLE_SECONDS=${IDLE_SECONDS:-5}
IDLE_SETTLE=${IDLE_SETTLE:-1}
IDLE_REPS=${IDLE_REPS:-3}

idle_cleanup() {
	stop_pid "$idle_qpid"
	stop_pid "$idle_apid"
	if [ -n "$idle_bhd" ]; then
		"$BIN/bulkhead" --socket "$idle_sock" destroy idle >/dev/null 2>&1 || true
		stop_pid "$idle_bhd"
	fi
	idle_qpid='' idle_apid='' idle_bhd=''
}

idle_one() {
	d=$1
	guest="$GUESTS_DIR/idle.elf"
	rm -f "$d"/*.out "$idle_sock"
	"$BIN/bulkheadd" --socket "$idle_sock" 2>>"$d/bulkheadd.err" &
	idle_bhd=$!
	$BIN/bulkhead run --serial "file:$d/a.out" "$guest" 2>>"$d/a.err" &
	idle_apid=$!
	$QEMU_BASE -M microvm -m 64 -serial "file:$d/q.out" -kernel "$guest" 2>>"$d/q.err" &
	idle_qpid=$!
	n=0
	while [ ! -S "$idle_sock" ] && [ $n -lt 1000 ]; do
		sleep 0.01
		n=$((n + 1))
	done
	if ! "$BIN/bulkhead" --socket "$idle_sock" create idle --serial "file:$d/b.out" \
		"$guest" >/dev/null 2>>"$d/b.err" ||
	   ! "$BIN/bulkhead" --socket "$idle_sock" start idle >/dev/null 2>>"$d/b.err"; then
		bench_log "bulkheadd: cannot create or start the idle VM: $(tail -n 1 "$d/b.err")"
	fi
	for f in a b q; do
		if ! wait_for_line "$d/$f.out" "idle: ready" 60; then
			bench_log "idle guest $f did not get ready"
		fi
	done
	sleep "$IDLE_SETTLE"
	pa=$(descendants "$idle_apid")
	pb=$(descendants "$idle_bhd")
	pq=$idle_qpid
	pss_kib $pa >>"$d/pss-a"
	pss_kib $pb >>"$d/pss-b"
	pss_kib $pq >>"$d/pss-q"
	# Per process of B, for the breakdown.
	for p in $pb; do
		echo "$(cat /proc/$p/comm 2>/dev/null) $(pss_kib $p)"
	done >>"$d/pss-b-procs"
	ca=$(cpu_ns $pa) cb=$(cpu_ns $pb) cq=$(cpu_ns $pq)
	cbd=$(cpu_ns "$idle_bhd")
	cdev=$(cpu_ns $(echo "$pb" | sed 1d))
	t0=$(now_ns)
	sleep "$IDLE_SECONDS"
	ca2=$(cpu_ns $pa) cb2=$(cpu_ns $pb) cq2=$(cpu_ns $pq)
	cbd2=$(cpu_ns "$idle_bhd")
	cdev2=$(cpu_ns $(echo "$pb" | sed 1d))
	t1=$(now_ns)
	# CPU time per wall second, in ms/s (= 0.1 %).
	pct() { awk -v a="$1" -v b="$2" -v t="$((t1 - t0))" 'BEGIN { printf "%.4f\n", (b - a) / t * 1000 }'; }
	pct "$ca" "$ca2" >>"$d/cpu-a"
	pct "$cb" "$cb2" >>"$d/cpu-b"
	pct "$cq" "$cq2" >>"$d/cpu-q"
	pct "$cbd" "$cbd2" >>"$d/cpu-broker"
	pct "$cdev" "$cdev2" >>"$d/cpu-vm"
	idle_cleanup
}

row_idle() {
	bench_log "idle 64 MiB guest: PSS and CPU ($IDLE_REPS runs, ${IDLE_SECONDS} s each)"
	d="$TMP/idle"
	mkdir -p "$d"
	idle_sock="$TMP/bulkheadd.sock"
	idle_qpid='' idle_apid='' idle_bhd=''
	i=0
	while [ $i -lt "$IDLE_REPS" ]; do
		idle_one "$d"
		i=$((i + 1))
	done
	mib() { awk '{ print $1 / 1024 }' "$1" 2>/dev/null | median; }
	bench_row "Memory (PSS), idle 64 MiB guest: bulkhead run (CLI, worker, fixed devices)" \
		"$(mib "$d/pss-a")" "$(mib "$d/pss-q")" MiB "<=" 0.5
	bench_row "Memory (PSS), idle 64 MiB guest: bulkheadd, worker, fixed devices" \
		"$(mib "$d/pss-b")" "$(mib "$d/pss-q")" MiB "<=" 0.5
	bench_row "Idle CPU: bulkheadd, worker, devices (ms of CPU per s)" \
		"$(median <"$d/cpu-b")" "$(median <"$d/cpu-q")" "ms/s" - - 3
	bench_row "Idle CPU: bulkhead run (ms of CPU per s)" \
		"$(median <"$d/cpu-a")" "$(median <"$d/cpu-q")" "ms/s" - - 3
	bench_note "- Idle CPU, bulkheadd alone: $(median <"$d/cpu-broker") ms/s; the VM's worker and devices: $(median <"$d/cpu-vm") ms/s (medians)"
	bench_note "- PSS per process under bulkheadd (KiB, last run): $(tail -n "$(($(wc -l <"$d/pss-b-procs") / IDLE_REPS))" "$d/pss-b-procs" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
	bench_cmd "Idle, Bulkhead A: $BIN/bulkhead run --serial file:OUT idle.elf"
	bench_cmd "Idle, Bulkhead B: bulkheadd --socket S; bulkhead --socket S create idle --serial file:OUT idle.elf; bulkhead --socket S start idle"
	bench_cmd "Idle, QEMU:       $QEMU_BASE -M microvm -m 64 -serial file:OUT -kernel idle.elf"
	bench_cmd "Idle: PSS = sum of Pss in /proc/PID/smaps_rollup over the process tree; CPU = sum over /proc/PID/task/*/schedstat across ${IDLE_SECONDS} s"
}
