# Debian's own kernel on the machine a stock kernel expects: it finds its
# devices through the ACPI tables and powers off and reboots through the
# ACPI PM device (docs/linux-boot.md, "ACPI"). One `bulkhead run`, two
# boots, with two disks and an rng, on a busybox initramfs built here
# with the kernel's own virtio modules:
#   1. the kernel finds the RSDP, takes kvm-clock as its clocksource, and
#      its ACPI bus has the UART, the RTC, each virtio-mmio device
#      (LNRO0005), the power button and the event device;
#   2. virtio_mmio binds both disks (vda, vdb) and the rng, which becomes
#      the current hw_random;
#   3. the first boot marks the first disk and runs `reboot -f`: the ACPI
#      reset register resets the VM, and the kernel boots a second time
#      (with reboot=force: without it Debian's kernel stops in
#      machine_shutdown() before it writes the register, a known problem,
#      docs/linux-boot.md);
#   4. the second boot finds the mark and runs `poweroff -f`: \_S5 through
#      the sleep control register ends `bulkhead run` with status 0.
. tests/integration/lib.sh
need_kvm cpl0
debian_kernel

ir=$TMP/initramfs
busybox_initramfs "$ir" sh mount echo cat ls tr dd insmod sync reboot \
	poweroff sleep
debian_modules "$ir/mod" virtio_ring virtio virtio_mmio virtio_blk virtio-rng button
cat >"$ir/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "bulkhead-power: $*" >/dev/kmsg; }
for m in virtio_ring virtio virtio_mmio virtio_blk virtio-rng button; do
	insmod /mod/$m.ko || say "cannot load $m"
done
# virtio_mmio probes as the modules load; give the disks a moment
for i in 1 2 3 4 5 6 7 8 9 10; do
	[ -e /sys/block/vdb ] && break
	sleep 1
done
say "acpi $(ls /sys/bus/acpi/devices | tr '\n' ' ')"
say "block $(ls /sys/block | tr '\n' ' ')"
say "hwrng $(cat /sys/class/misc/hw_random/rng_current)"
say "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
mark=$(dd if=/dev/vda bs=1 count=4 2>/dev/null)
if [ "$mark" = BOOT ]; then
	say "second boot: powering off"
	poweroff -f
else
	say "first boot: rebooting"
	printf BOOT | dd of=/dev/vda bs=1 conv=notrunc 2>/dev/null
	sync
	reboot -f
fi
say "still running"
INIT
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$TMP/initrd.gz" ||
	fail "cannot build the initramfs"
truncate -s 8M "$TMP/vda.img" "$TMP/vdb.img"

boot() {
	truncate -s 0 "$TMP/vda.img" && truncate -s 8M "$TMP/vda.img"
	start=$(date +%s%N)
	run_vm_watched "$TMP/boot" --cpus 1 --mem 256M --initrd "$TMP/initrd.gz" \
		--disk "$TMP/vda.img" --disk "$TMP/vdb.img" --rng \
		--cmdline "console=ttyS0 panic=-1 reboot=force" "$kernel"
	echo "two boots of Debian's kernel, reboot and power-off: $(( ($(date +%s%N) - start) / 1000000 )) ms"
}
boot_watched "$TMP/boot" boot 0
log=$TMP/log
tr -d '\r' <"$TMP/boot" >"$log"
grep -q "Kernel panic" "$log" && fail "the kernel panicked"
grep -q "still running" "$log" && fail "the guest ran on after reboot or poweroff"
grep -q "cannot load" "$log" && fail "a module did not load"

# 1. ACPI, on both boots
[ "$(grep -c "ACPI: RSDP 0x00000000000E0000" "$log")" -eq 2 ] ||
	fail "the kernel did not find the RSDP at 0xE0000 on both boots"
grep -q "RSDP was not found" "$log" && fail "the kernel found no RSDP"
[ "$(grep -c "bulkhead-power: clocksource kvm-clock" "$log")" -eq 2 ] ||
	fail "the guest did not run on kvm-clock"
for id in PNP0501:00 PNP0B00:00 LNRO0005:00 LNRO0005:01 LNRO0005:02 \
	  PNP0C0C:00 ACPI0013:00; do
	grep "bulkhead-power: acpi " "$log" | head -n 1 | grep -q " $id " ||
		fail "the guest's ACPI bus has no $id"
done
# 2. virtio, found through ACPI
grep -q "bulkhead-power: block vda vdb $" "$log" || fail "the guest did not find vda and vdb"
grep -q "bulkhead-power: hwrng virtio_rng.0$" "$log" || fail "virtio-rng is not the guest's hw_random"
# 3. and 4. the reboot, then the power-off
[ "$(grep -c "Linux version" "$log")" -eq 2 ] || fail "the kernel did not boot twice"
expect_text "$log" "bulkhead-power: first boot: rebooting"
expect_text "$log" "reboot: Restarting system"
expect_text "$log" "bulkhead-power: second boot: powering off"
expect_text "$log" "reboot: Power down"
[ "$(head -c 4 "$TMP/vda.img")" = BOOT ] || fail "the first boot's mark is not on the disk"
exit 0
