# The Linux bzImage loader (x86 boot protocol, 64-bit entry): the test
# bzImage (tests/guests/bzimage/) checks from inside what it was handed
# (boot_params and its setup header, CPU state, command line, e820 map,
# initrd) and reports through debug-exit; refusals end with status 8. On
# KVM on PVM the run says first that a full Linux kernel would be slow.
. tests/integration/lib.sh
need_kvm
img=$GUESTS/bzImage
initrd_make "$TMP/initrd" "initial ramdisk for the bzImage guest" 20000

run_vm "$TMP/out" --mem 64M --cmdline "console=ttyS0 answer=42" \
	--initrd "$TMP/initrd" "$img"
expect_status 1
expect_line "$TMP/out" "bzimage: 64-bit entry, boot_params at 0x1000"
expect_line "$TMP/out" "bzimage: loaded at 0x1000000"
expect_line "$TMP/out" "bzimage: protocol 2.15, loader 0xff, loadflags 0x81"
expect_line "$TMP/out" "cpu: cs=0x10 ds=0x18 es=0x18 ss=0x18 if=0 long mode"
# The user's command line comes first (Bulkhead may append its own).
grep -q '^cmdline: console=ttyS0 answer=42\( .*\)\{0,1\}$' "$TMP/out" ||
	fail "the command line does not start with the user's"
expect_line "$TMP/out" "e820: 3 entries"
expect_line "$TMP/out" "e820: base=0x0 len=0x9fc00 type=1"
expect_line "$TMP/out" "e820: base=0x9fc00 len=0x60400 type=2"
expect_line "$TMP/out" "e820: base=0x100000 len=0x3f00000 type=1"
# The initrd goes as high as it may: page-aligned, ending below 64 MiB.
addr=$(printf '0x%x' $(( (0x4000000 - size) / 4096 * 4096 )))
expect_line "$TMP/out" "initrd: addr=$addr size=$size sum=$sum"
expect_line "$TMP/out" "bzimage: all checks passed"
# Where KVM emulates guest kernel code (KVM on PVM), `bulkhead run` says at
# once that a full Linux kernel will be slow; elsewhere it says nothing.
if [ -d /sys/module/kvm_pvm ]; then
	expect_text "$TMP/out.err" "bulkhead: note: this host's KVM is KVM on PVM (kvm_pvm)"
else
	grep -q "KVM on PVM" "$TMP/out.err" && fail "a PVM note without kvm_pvm"
fi

# No initrd, no command line; the map follows --mem.
run_vm "$TMP/out2" --mem 32M "$img"
expect_status 1
expect_line "$TMP/out2" "initrd: none"
expect_line "$TMP/out2" "e820: base=0x100000 len=0x1f00000 type=1"
expect_line "$TMP/out2" "bzimage: all checks passed"

# The kernel runs at its pref_address (16 MiB): 16 MiB of RAM is too little.
run_vm "$TMP/out3" --mem 16M "$img"
expect_status 8
expect_text "$TMP/out3.err" "needs 17 MiB of guest RAM but the VM has 16 MiB"

# An initrd with room neither above nor below the kernel.
head -c 20M /dev/zero >"$TMP/big"
run_vm "$TMP/out4" --mem 32M --initrd "$TMP/big" "$img"
expect_status 8
expect_text "$TMP/out4.err" "initrd is 20971520 bytes but does not fit"

# A command line longer than the kernel's cmdline_size (2047).
long=$(head -c 2100 /dev/zero | tr '\0' 'x')
run_vm "$TMP/out5" --mem 32M --cmdline "$long" "$img"
expect_status 8
expect_text "$TMP/out5.err" "its cmdline_size allows 2047"
