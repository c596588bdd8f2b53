# The multiboot hello guest prints its line and exits 1 through debug-exit.
. tests/integration/lib.sh
need_kvm
run_vm "$TMP/out" "$GUESTS/hello.elf"
expect_status 1
expect_line "$TMP/out" "Hello from a Bulkhead guest!"
expect_line "$TMP/out" "cmdline: "
expect_line "$TMP/out" "modules: 0"
expect_line "$TMP/out" "bye"
