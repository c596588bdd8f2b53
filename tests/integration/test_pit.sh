# The in-kernel 8254 PIT: channel 0 raises IRQ 0 through the I/O APIC at
# its programmed rate, and ticks the guest misses with interrupts off are
# dropped, not made up in a burst afterwards (the worker switches KVM's
# PIT out of its "reinject" mode; emt-worker/main.c says why).
. tests/integration/lib.sh
need_kvm
run_vm "$TMP/out" --cmdline "hz=100 count=8 miss=20" "$GUESTS/pit.elf"
expect_status 1
expect_text "$TMP/out" "pit: 8 periodic interrupts, intervals "
expect_text "$TMP/out" " after missing 20"
expect_line "$TMP/out" "pit: lost ticks are dropped"
