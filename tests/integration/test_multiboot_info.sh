# --cmdline and --initrd reach the guest through the multiboot information,
# and the memory map matches --mem.
. tests/integration/lib.sh
need_kvm
initrd_make "$TMP/initrd" "initial ramdisk contents" 10000
run_vm "$TMP/out" --mem 32M --cmdline "console=ttyS0 answer=42" \
	--initrd "$TMP/initrd" "$GUESTS/hello.elf"
expect_status 1
expect_line "$TMP/out" "cmdline: console=ttyS0 answer=42"
expect_line "$TMP/out" "modules: 1"
expect_text "$TMP/out" "module 0: $size bytes, sum $sum"
expect_text "$TMP/out" "mem: lower=639 upper=31744"
# The memory map ends at 32 MiB: 0x100000 + 0x1f00000.
expect_text "$TMP/out" "mmap: base=0x100000 len=0x1f00000 type=1"
