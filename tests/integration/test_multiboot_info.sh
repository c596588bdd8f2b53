# --cmdline and --initrd reach the guest through the multiboot information,
# and the memory map matches --mem.
. tests/integration/lib.sh
need_kvm
printf 'initial ramdisk contents\n' >"$TMP/initrd"
head -c 10000 /dev/urandom >>"$TMP/initrd"
size=$(stat -c %s "$TMP/initrd")
sum=$(od -An -v -tu1 "$TMP/initrd" | tr -s ' ' '\n' | awk 'NF{s=(s+$1)%4294967296} END{printf "0x%x", s}')
run_vm "$TMP/out" --mem 32M --cmdline "console=ttyS0 answer=42" \
	--initrd "$TMP/initrd" "$GUESTS/hello.elf"
expect_status 1
expect_line "$TMP/out" "cmdline: console=ttyS0 answer=42"
expect_line "$TMP/out" "modules: 1"
expect_text "$TMP/out" "module 0: $size bytes, sum $sum"
expect_text "$TMP/out" "mem: lower=639 upper=31744"
# The memory map ends at 32 MiB: 0x100000 + 0x1f00000.
expect_text "$TMP/out" "mmap: base=0x100000 len=0x1f00000 type=1"
