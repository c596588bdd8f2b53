# While a VM runs, the worker and each device are separate processes, all
# children of `bulkhead run`, each running its own binary; input typed on
# the console reaches the guest through the UART process.
. tests/integration/lib.sh
need_kvm
echo_vm_start

kids=$(children $vmm)
echo "bulkhead run is pid $vmm; children: $kids"
for want in bulkhead-worker bulkhead-dev-uart bulkhead-dev-debugexit; do
	found=""
	for k in $kids; do
		exe=$(readlink "/proc/$k/exe" | sed "s/ (deleted)$//")
		echo "  $k: $exe"
		[ "$(basename "$exe")" = "$want" ] && found=$k
	done
	[ -n "$found" ] || fail "no $want process among the children of $vmm"
	[ "$found" != "$vmm" ] || fail "$want is not a separate process"
	eval "pid_$(echo "$want" | tr '-' '_')=$found"
done
# Three distinct processes, none of them the CLI.
n=$(printf '%s\n' "$pid_bulkhead_worker" "$pid_bulkhead_dev_uart" \
	"$pid_bulkhead_dev_debugexit" "$vmm" | sort -u | wc -l)
[ "$n" -eq 4 ] || fail "worker and devices do not run in 4 distinct processes"
# The worker runs one EMT thread per vCPU (--cpus defaults to 1).
emts=$(cat /proc/$pid_bulkhead_worker/task/*/comm | grep -c '^emt-')
[ "$emts" -eq 1 ] || fail "worker has $emts EMT threads, expected 1"
# Only the worker holds /dev/kvm (the CLI closed its copy after handing it on).
for p in $vmm $pid_bulkhead_dev_uart $pid_bulkhead_dev_debugexit; do
	ls -l "/proc/$p/fd" | grep -q /dev/kvm && fail "pid $p holds /dev/kvm"
done
ls -l "/proc/$pid_bulkhead_worker/fd" | grep -q /dev/kvm || fail "worker lacks /dev/kvm"

printf 'ping\n' >&4
wait_for "$TMP/out" "ping"
printf 'q' >&4
echo_vm_wait
expect_status 1
expect_line "$TMP/out" "echo: bye"
# Every child is gone.
children_gone $kids
exit 0
