# Killing a device process of one VM under bulkheadd leaves the other VMs
# running; the broker reports the failure, with how the device died, in
# that VM's status (text and --json) and in list. Killing a worker ends
# only its VM, reported the same way. The broker survives both.
. tests/integration/lib.sh
. tests/integration/broker_lib.sh
need_kvm
start_broker
for v in a b c; do
	bh_ok create "$v" --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
	bh_ok start "$v"
done

uart=$(vm_pid b uart#0)
[ -n "$uart" ] || fail "no uart#0 pid for b"
[ "$(basename "$(readlink /proc/$uart/exe)")" = bulkhead-dev-uart ] || fail "pid $uart is not the UART"
kill -9 "$uart"
# The worker suspends the VM and reports; the broker adds how it died.
status_until b "^error: *device uart#0 was killed by signal 9" 50 \
	"b's status does not report the dead UART"
expect_text "$TMP/o" "uart#0 $uart (was killed by signal 9 (Killed))"
bh_ok --json status b
expect_text "$TMP/o" '"error":"device uart#0 was killed by signal 9 (Killed)"'
bh_ok list
awk '$2 == "b"' "$TMP/o" | grep -q "device uart#0 was killed by signal 9" || \
	fail "list does not show b's error"
expect_state a RUNNING
expect_state c RUNNING
broker_alive
# The other VMs still obey.
bh_ok pause a
bh_ok resume a
# b can still be powered off and destroyed; its error stays until then.
bh_ok poweroff b
expect_state b OFF
bh_ok status b
expect_text "$TMP/o" "error:      device uart#0 was killed by signal 9 (Killed)"
bh_ok destroy b

# A worker killed: only its VM ends, and status says so.
w=$(vm_pid c worker)
kill -9 "$w"
status_until c "^state: *OFF" 100 \
	"c did not end after its worker was killed"
expect_text "$TMP/o" "the worker was killed by signal 9 (Killed)"
expect_state a RUNNING
broker_alive
stop_broker
exit 0
