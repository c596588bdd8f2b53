# Debian's own kernel (linux-image-amd64's /boot/vmlinuz-*) boots to user
# space under `bulkhead run`:
#   1. the bzImage loader places it and its initrd where the boot protocol
#      says (tests/tools/load-image, outside any VM);
#   2. too little RAM for it is refused before the VM starts, saying why;
#   3. with --cpus 2 it boots a busybox initramfs built here, whose /init
#      prints (through the kernel log) a marker, the CPUs the kernel brought
#      up and its command line, then writes 42 to
#      the debug-exit port through /dev/port: `bulkhead run` must exit with
#      (42 << 1) | 1 = 85, with both CPUs online and no guest fault.
# On a machine without /dev/kvm, or where its KVM emulates guest kernel
# code (KVM on PVM), make check runs this in a nested KVM host (about 20 s
# to user space there, and over 120 s where that host's CPUs are busy: the
# boot is stopped only when its log stops growing, see run_vm_watched).
. tests/integration/lib.sh
need_kvm cpl0
debian_kernel

# ---- the initramfs: static busybox and an /init --------------------------
ir=$TMP/initramfs
busybox_initramfs "$ir" sh mount echo cat grep printf dd poweroff
cat >"$ir/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The markers go through the kernel log: printk writes the console
# synchronously, where a tty write returns with the bytes still queued for
# the UART, and the debug-exit below would end the VM before they are sent.
say() { echo "bulkhead-initramfs: $*" >/dev/kmsg; }
say "user space reached, pid $$"
say "cpus online $(cat /sys/devices/system/cpu/online)"
say "cmdline $(cat /proc/cmdline)"
# debug-exit (port 0xf4): run exits with (42 << 1) | 1
printf '\052' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
say "still running after debug-exit"
poweroff -f
INIT
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$TMP/initrd.gz" ||
	fail "cannot build the initramfs"
isize=$(stat -c %s "$TMP/initrd.gz")
echo "initramfs: $isize bytes"

# ---- 1. placement, by the loader itself, outside any VM ------------------
"$BUILD/tests/load-image" --mem 256 --cmdline "console=ttyS0" \
	--initrd "$TMP/initrd.gz" "$kernel" >"$TMP/place" 2>&1 ||
	{ cat "$TMP/place"; fail "the loader refused Debian's kernel"; }
sed 's/^/  load-image: /' "$TMP/place"
expect_text "$TMP/place" "kind=bzImage mode=3 "
expect_line "$TMP/place" "kernel bytes: match"
expect_line "$TMP/place" "cmdline=0x7000 'console=ttyS0'"
pref=$(sed -n 's/^kernel=.* pref_address=\(0x[0-9a-f]*\) .*$/\1/p' "$TMP/place")
init_size=$(sed -n 's/^kernel=.* init_size=\(0x[0-9a-f]*\)$/\1/p' "$TMP/place")
[ -n "$pref" ] && [ -n "$init_size" ] || fail "no placement reported"
expect_text "$TMP/place" "kernel=$pref "
expect_text "$TMP/place" "rip=$(printf '0x%x' $((pref + 0x200))) rsi=0x1000 "
initrd=$(sed -n 's/^initrd=\(0x[0-9a-f]*\) size=.*$/\1/p' "$TMP/place")
expect_text "$TMP/place" "initrd=$initrd size=$isize"
# page aligned, clear of the kernel's init_size, inside RAM and below 2 GiB
[ $((initrd % 4096)) -eq 0 ] || fail "initrd $initrd is not page aligned"
[ $((initrd)) -ge $((pref + init_size)) ] || [ $((initrd + isize)) -le $((pref)) ] ||
	fail "initrd $initrd overlaps the kernel ($pref + $init_size)"
[ $((initrd + isize)) -le $((256 << 20)) ] || fail "initrd beyond RAM"

# ---- 2. too little RAM for pref_address + init_size: refused -------------
run_vm "$TMP/small" --mem 32M "$kernel"
expect_status 8
expect_text "$TMP/small.err" "MiB of guest RAM but the VM has 32 MiB; raise --mem"

# ---- 3. it boots to user space on 2 vCPUs and exits through debug-exit ---
boot() {
	start=$(date +%s%N)
	run_vm_watched "$TMP/boot" --cpus 2 --mem 256M --initrd "$TMP/initrd.gz" \
		--cmdline "console=ttyS0 panic=-1" "$kernel"
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	echo "bulkhead run of Debian's kernel to its exit from user space: $ms ms"
}
boot_watched "$TMP/boot" boot 85
expect_text "$TMP/boot" "bulkhead-initramfs: user space reached, pid 1"
tr -d '\r' <"$TMP/boot" | grep -q "bulkhead-initramfs: cpus online 0-1$" ||
	fail "the guest did not report cpus 0-1 online"
expect_text "$TMP/boot" "bulkhead-initramfs: cmdline console=ttyS0 panic=-1"
grep -q "still running after debug-exit" "$TMP/boot" &&
	fail "the guest ran on after writing to debug-exit"
grep -q -e "guest-fault" -e "KVM internal error" -e "cannot load" "$TMP/boot.err" &&
	fail "the kernel did not run cleanly"
grep -q "Kernel panic" "$TMP/boot" && fail "the kernel panicked"
# The kernel itself saw both CPUs come up (through the MP table).
expect_text "$TMP/boot" "smp: Brought up 1 node, 2 CPUs"
exit 0
