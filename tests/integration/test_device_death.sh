# Killing a device process ends the VM with a clear error naming the device
# and the signal; the CLI exits with 10 and no process is left behind.
. tests/integration/lib.sh
need_kvm
echo_vm_start
kids=$(children $vmm)
uart=""
for k in $kids; do
	[ "$(basename "$(readlink /proc/$k/exe | sed "s/ (deleted)$//")")" = bulkhead-dev-uart ] && uart=$k
done
[ -n "$uart" ] || fail "no UART process"
kill -9 "$uart"
echo_vm_wait
expect_status 10
expect_text "$TMP/err" "device uart#0 was killed by signal 9"
children_gone $kids
exit 0
