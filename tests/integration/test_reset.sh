# A guest reset (triple fault) resets vCPUs, devices and the state machine
# and boots the image again; also with application processors.
. tests/integration/lib.sh
need_kvm
for cpus in 1 2; do
	run_vm "$TMP/out" --mem 32M --cpus $cpus "$GUESTS/reset.elf"
	expect_status 1
	expect_line "$TMP/out" "reset: first boot"
	expect_line "$TMP/out" "reset: second boot, the machine was reset"
done
