# bench/row-save.sh: save and restore (sourced by run-bench.sh).
# memfill.elf fills a 256 MiB guest with SAVE_ARGS (MiB of zero-written,
# compressible and random pages; the rest of RAM is never touched), prints
# "memfill: ready" and halts. Then, timed from the user's side:
#
#   Bulkhead  `bulkhead save --keep-running NAME FILE` (bulkheadd; the VM
#             is suspended, written and resumed): the save-time row; then
#             `bulkhead save NAME FILE` (written and powered off, every
#             process gone), then `bulkhead restore NAME FILE` until the
#             command returns with the VM running again;
#   QEMU      the same guest (-M microvm -m 256) over QMP: stop, then
#             migrate to "exec:cat > FILE" until query-migrate says
#             completed (max-bandwidth raised first so QEMU's default
#             throttle does not count against it): the save-time row; then
#             quit, timed until the process has exited (against Bulkhead's
#             save and power-off); restore: a new QEMU with -incoming
#             "exec:cat FILE", from exec until query-status says running.
#
# Until `bulkhead save` exists (the CLI's help names it) the Bulkhead
# columns say so and only QEMU is measured; nothing else changes.

SAVE_ARGS=${SAVE_ARGS:-zero=64 pattern=64 random=64}
SAVE_MEM=256
SAVE_REPS=${SAVE_REPS:-5}

save_available() {
	"$BIN/bulkhead" --help 2>&1 | grep -q '^ *save .*NAME'
}

save_cleanup() {
	stop_pid "$save_qpid"
	if [ -n "$save_bhd" ]; then
		"$BIN/bulkhead" --socket "$save_sock" destroy mf >/dev/null 2>&1 || true
		stop_pid "$save_bhd"
	fi
	save_qpid='' save_bhd=''
}

# Just before each timed save (both VMMs): write and delete a file of
# the guest's size next to the save file. Hosts that hand free memory back
# to their hypervisor (virtio-balloon free page reporting: on the
# development host every free block of 128 KiB or more, 2 s after it was
# freed) make the first touch of such memory cost a host fault, and a save
# file is tens of MiB of newly allocated tmpfs pages. Without this, either
# VMM's save takes up to 150 ms longer, depending on what the host freed
# and when (docs/performance.md, "Save"); with it, both write into memory
# the host has just backed. SAVE_WARM=0 leaves it out.
save_warm_host() {
	[ "${SAVE_WARM:-1}" = 1 ] || return 0
	dd if=/dev/zero of="$1/warm" bs=1M count="$SAVE_MEM" status=none 2>/dev/null
	rm -f "$1/warm"
}

save_bulkhead_one() {
	d=$1
	rm -f "$d/b.out" "$d/b2.out" "$d/bh.sav"
	bh="$BIN/bulkhead --socket $save_sock"
	if ! $bh create mf --mem ${SAVE_MEM}M --serial "file:$d/b.out" --cmdline "$SAVE_ARGS" \
		"$GUESTS_DIR/memfill.elf" >/dev/null 2>>"$d/b.err" ||
	   ! $bh start mf >/dev/null 2>>"$d/b.err"; then
		bench_log "bulkheadd: cannot create or start the memfill VM: $(tail -n 1 "$d/b.err")"
		return 0
	fi
	if ! wait_for_line "$d/b.out" "memfill: ready" 120; then
		bench_log "Bulkhead memfill guest did not get ready"
		$bh destroy mf >/dev/null 2>&1
		return 0
	fi
	# The state in the file, the VM kept (as QEMU's stop + migrate)...
	save_warm_host "$d"
	t0=$(now_ns)
	if $bh save --keep-running mf "$d/bh.sav" >/dev/null 2>>"$d/b.err"; then
		t1=$(now_ns)
		echo "$(((t1 - t0) / 1000)) $(stat -c %s "$d/bh.sav")" >>"$d/bh-save"
	else
		bench_log "bulkhead save --keep-running failed: $(tail -n 1 "$d/b.err")"
		echo "save failed: $(tail -n 1 "$d/b.err")" >"$d/bh-fail"
		$bh destroy mf >/dev/null 2>&1
		return 0
	fi
	# ...and the default save: then powered off, every process gone (as
	# QEMU's stop + migrate + quit until the process has exited).
	rm -f "$d/bh.sav"
	t0=$(now_ns)
	if $bh save mf "$d/bh.sav" >/dev/null 2>>"$d/b.err"; then
		t1=$(now_ns)
		echo "$(((t1 - t0) / 1000))" >>"$d/bh-save-off"
	else
		bench_log "bulkhead save failed: $(tail -n 1 "$d/b.err")"
		echo "save failed: $(tail -n 1 "$d/b.err")" >"$d/bh-fail"
		$bh destroy mf >/dev/null 2>&1
		return 0
	fi
	$bh destroy mf >/dev/null 2>&1 || true
	t0=$(now_ns)
	if $bh restore mf "$d/bh.sav" --mem ${SAVE_MEM}M --serial "file:$d/b2.out" \
		>/dev/null 2>>"$d/b.err"; then
		t1=$(now_ns)
		echo "$(((t1 - t0) / 1000))" >>"$d/bh-restore"
	else
		bench_log "bulkhead restore failed: $(tail -n 1 "$d/b.err")"
	fi
	$bh destroy mf >/dev/null 2>&1 || true
}

save_qemu_one() {
	d=$1
	rm -f "$d/q.out" "$d/q.sav" "$d/qmp.sock" "$d/qmp2.sock"
	q="$QEMU_BASE -M microvm -m $SAVE_MEM -serial file:$d/q.out -kernel $GUESTS_DIR/memfill.elf"
	$q -append "$SAVE_ARGS" -qmp "unix:$d/qmp.sock,server=on,wait=off" 2>>"$d/q.err" &
	save_qpid=$!
	if ! wait_for_line "$d/q.out" "memfill: ready" 120; then
		bench_log "QEMU memfill guest did not get ready"
		save_cleanup
		return 0
	fi
	"$TOOL" qmp "$d/qmp.sock" \
		'{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":107374182400}}' \
		2>>"$d/q.err" || true
	save_warm_host "$d"
	t0=$(now_ns)
	if "$TOOL" qmp "$d/qmp.sock" '{"execute":"stop"}' @migrate "exec:cat > $d/q.sav" \
		>/dev/null 2>>"$d/q.err"; then
		t1=$(now_ns)
		echo "$(((t1 - t0) / 1000)) $(stat -c %s "$d/q.sav")" >>"$d/q-save"
		"$TOOL" qmp "$d/qmp.sock" '{"execute":"quit"}' >/dev/null 2>&1 || true
		wait "$save_qpid" 2>/dev/null
		t2=$(now_ns)
		echo "$(((t2 - t0) / 1000))" >>"$d/q-save-off"
	else
		bench_log "QEMU migration failed: $(tail -n 1 "$d/q.err")"
		"$TOOL" qmp "$d/qmp.sock" '{"execute":"quit"}' >/dev/null 2>&1 || true
	fi
	stop_pid "$save_qpid"
	save_qpid=
	[ -s "$d/q.sav" ] || return 0
	line=$("$TOOL" run -k -t 120 -q "$d/qmp2.sock" -- $q -append "$SAVE_ARGS" \
		-qmp "unix:$d/qmp2.sock,server=on,wait=off" -incoming "exec:cat $d/q.sav" \
		2>>"$d/q.err")
	m=$(kv match_ns "$line")
	if [ -n "$m" ] && [ "$m" -ge 0 ]; then
		echo "$((m / 1000))" >>"$d/q-restore"
	else
		bench_log "QEMU restore did not reach running: $line"
	fi
}

row_save() {
	# The files on tmpfs where there is one: Bulkhead's save ends with an
	# fsync, QEMU's "exec:cat > FILE" does not; on tmpfs neither touches a
	# disk, so both are timed for the VMM's work alone.
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		d=$(mktemp -d /dev/shm/bulkhead-bench-save.XXXXXX)
	else
		d="$TMP/save"
		mkdir -p "$d"
	fi
	SAVE_DIR=$d
	save_sock="$TMP/bulkheadd-save.sock"
	save_qpid='' save_bhd=''
	have=0
	if save_available; then
		have=1
		"$BIN/bulkheadd" --socket "$save_sock" 2>>"$d/bulkheadd.err" &
		save_bhd=$!
		n=0
		while [ ! -S "$save_sock" ] && [ $n -lt 1000 ]; do
			sleep 0.01
			n=$((n + 1))
		done
	fi
	bench_log "save/restore of a ${SAVE_MEM} MiB guest ($SAVE_ARGS; $SAVE_REPS runs)"
	i=0
	while [ $i -lt "$SAVE_REPS" ]; do
		# Alternate who goes first: a host reuses the memory the
		# previous run freed more cheaply than it finds fresh memory.
		if [ $((i % 2)) = 0 ]; then
			[ $have = 1 ] && save_bulkhead_one "$d"
			save_qemu_one "$d"
		else
			save_qemu_one "$d"
			[ $have = 1 ] && save_bulkhead_one "$d"
		fi
		i=$((i + 1))
	done
	save_cleanup
	cp "$d"/*.err "$TMP/" 2>/dev/null
	rm -f "$d"/*.sav
	ms() { awk -v c="$2" '{ print $c / 1000 }' "$1" 2>/dev/null | median; }
	mib() { awk -v c="$2" '{ print $c / 1048576 }' "$1" 2>/dev/null | median; }
	if [ $have = 0 ]; then
		why="n/a (no bulkhead save yet)"
		bs=$why bz=$why br=$why bo=$why
	elif [ ! -s "$d/bh-save" ]; then
		why="n/a ($(cat "$d/bh-fail" 2>/dev/null || echo "save failed"))"
		bs=$why bz=$why br=$why bo=$why
	else
		bs=$(ms "$d/bh-save" 1) bz=$(mib "$d/bh-save" 2) br=$(ms "$d/bh-restore" 1)
		bo=$(ms "$d/bh-save-off" 1)
	fi
	what="${SAVE_MEM} MiB guest, $(echo "$SAVE_ARGS" | sed 's/=\([0-9]*\)/ \1 MiB/g; s/ random/, random/; s/ pattern/, compressible/; s/zero/zero-written/')"
	bench_row "Save time, $what (the VM kept)" "$bs" "$(ms "$d/q-save" 1)" ms "<=" 1.0 0
	bench_row "Save, then power off / quit until every process is gone" "$bo" "$(ms "$d/q-save-off" 1)" ms - - 0
	bench_row "Save file size, same guest" "$bz" "$(mib "$d/q-save" 2)" MiB - - 1
	bench_row "Restore time (command to running guest), same file" "$br" "$(ms "$d/q-restore" 1)" ms - - 0
	bench_cmd "Save, Bulkhead: bulkheadd --socket S; bulkhead --socket S create mf --mem ${SAVE_MEM}M --cmdline '$SAVE_ARGS' memfill.elf; ... start mf; time bulkhead --socket S save --keep-running mf FILE; time bulkhead --socket S save mf FILE (then powered off)"
	bench_cmd "Restore, Bulkhead: bulkhead --socket S destroy mf; time bulkhead --socket S restore mf FILE --mem ${SAVE_MEM}M --serial file:OUT"
	bench_cmd "Save, QEMU: $QEMU_BASE -M microvm -m $SAVE_MEM -kernel memfill.elf -append '$SAVE_ARGS' -qmp unix:QMP,server=on,wait=off; QMP: migrate-set-parameters max-bandwidth=100 GiB/s; time { stop; migrate exec:cat > FILE; poll query-migrate until completed } (the VM kept), then quit: time until the process has exited (then powered off)"
	bench_cmd "Restore, QEMU: time (exec to query-status running; a paused VM is sent cont) of the same command with -incoming 'exec:cat FILE'"
	bench_cmd "Save/restore: FILE on $(dirname "$d") (bulkhead save fsyncs its file; QEMU's exec:cat does not)"
	[ "${SAVE_WARM:-1}" = 1 ] &&
		bench_cmd "Save, both: just before each timed save, dd if=/dev/zero of=WARM bs=1M count=$SAVE_MEM next to FILE, then rm WARM (memory the host has just backed; SAVE_WARM=0 leaves it out)"
	rm -rf "$d"
	SAVE_DIR=
}
