# The VM lifecycle driven from outside through the real processes:
# - 1000 suspend/resume cycles of a 2-vCPU guest counting in memory; after
#   every resume the count rises again and never goes back, no hang;
# - a guest spinning with interrupts off is suspended within 100 ms of the
#   request (the figures are printed);
# - killing a device process suspends the VM with a runtime error naming
#   the device and the signal, and the worker stays up.
. tests/integration/lib.sh
need_kvm
LC=$BIN/bulkhead-lifecycle
"$LC" stress "$GUESTS/count.elf" 1000 || fail "stress"
"$LC" latency "$GUESTS/spin.elf" 20 || fail "suspend latency"
"$LC" kill "$GUESTS/echo.elf" || fail "device kill"
