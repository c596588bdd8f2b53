# The real-mode boot sector guest prints its line and exits 1.
. tests/integration/lib.sh
need_kvm
run_vm "$TMP/out" "$GUESTS/bootsect.bin"
expect_status 1
expect_line "$TMP/out" "Hello from a Bulkhead boot sector!"
