# SMP: every vCPU is started by the guest through INIT/SIPI, found through
# the MP table the worker builds, and prints one line.
. tests/integration/lib.sh
need_kvm
for n in 1 4 16; do
	run_vm "$TMP/out" --cpus $n "$GUESTS/smp.elf"
	expect_status 1
	expect_text "$TMP/out" "smp: mp table at 0xf0000, $n cpus"
	i=0
	while [ $i -lt $n ]; do
		expect_line "$TMP/out" "cpu $i: hello"
		i=$((i + 1))
	done
	[ "$(grep -c ': hello$' "$TMP/out")" -eq $n ] || fail "not exactly $n hello lines"
	expect_line "$TMP/out" "smp: all $n cpus up"
done
