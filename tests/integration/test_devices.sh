# The device guests against the real device processes: the RTC (date, time
# and periodic interrupts through the I/O APIC), the i8042 (probe, then a
# reset through its reset line), virtio-rng, and virtio-blk, whose writes
# are checked from the host (and a read-only disk must stay unchanged);
# first the null device, whose posted writes a later read must all see.
. tests/integration/lib.sh
need_kvm

# ---- null: posted writes, then a read that must see every one of them -------
# The null device's writes are posted (the EMT does not wait for them); the
# read after the loop goes through the same ring and answers the count of
# writes the device has handled.
for where in "port=0x510 width=4" "mmio=0xd0100000"; do
	run_vm "$TMP/out" -v --null-dev --cmdline "$where count=1000 check=1" "$GUESTS/nullio.elf"
	expect_status 1
	expect_line "$TMP/out" "nullio: read back 1000"
	grep -q 'posted-writes:null#0[^0-9]*1000' "$TMP/out.err" ||
		fail "the 1000 writes were not posted (no posted-writes:null#0 = 1000 in the counters)"
done

# ---- rtc: date and time, then 16 periodic interrupts at 32 Hz ------------
run_vm "$TMP/out" --cmdline "now=$(date +%s)" "$GUESTS/rtc.elf"
expect_status 1
tr -d '\r' <"$TMP/out" | grep -qE '^rtc: 20[2-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$' ||
	fail "no 'rtc: YYYY-MM-DD HH:MM:SS' line"
expect_text "$TMP/out" "rtc: within "
expect_text "$TMP/out" "rtc: rate "
expect_line "$TMP/out" "rtc: 16 periodic interrupts"

# ---- i8042: probe, pulse the reset line, boot again ------------------------
run_vm "$TMP/out" --mem 32M "$GUESTS/i8042.elf"
expect_status 1
[ "$(grep -cxF "i8042: controller ok" "$TMP/out")" -eq 2 ] ||
	fail "expected 'i8042: controller ok' once per boot"
expect_line "$TMP/out" "i8042: pulsing the reset line"
expect_line "$TMP/out" "i8042: second boot after the reset line"

# ---- virtio-rng: polled, then with interrupts --------------------------------
for mode in 0 1; do
	run_vm "$TMP/out" --rng --cmdline "irq=$mode" "$GUESTS/rng.elf"
	expect_status 1
	expect_line "$TMP/out" "rng: ok 256 bytes"
done

# ---- virtio-blk ----------------------------------------------------------------
pattern=$BUILD/tests/bin/blkpattern
[ -x "$pattern" ] || fail "$pattern is missing (make check builds it)"
img=$TMP/disk.img
truncate -s 1M "$img" || fail "cannot create $img"
printf 'BULKHEAD-SECTOR0' | dd of="$img" conv=notrunc status=none
cp "$img" "$TMP/blank.img"
sector0="blk: sector 0: 42 55 4c 4b 48 45 41 44 2d 53 45 43 54 4f 52 30"
# expect_blk_ok: blk.elf read sector 0 back as the host wrote it and ended
# with its ok line.
expect_blk_ok() {
	expect_line "$TMP/out" "$sector0"
	tr -d '\r' <"$TMP/out" | grep -q "^blk: ok capacity=2048 id='.*'\$" ||
		fail "no 'blk: ok capacity=2048 id=...' line"
}

# Twice, with different seeds (the second overwrites the first), polled
# and with interrupts; the whole image must be what the guest wrote.
for run in "$(( $$ % 1000 + 2 )) 0" "$(( $$ % 1000 + 1003 )) 1"; do
	set -- $run
	seed=$1 mode=$2
	run_vm "$TMP/out" --disk "$img" --cmdline "seed=$seed irq=$mode" "$GUESTS/blk.elf"
	expect_status 1
	expect_line "$TMP/out" "blk: wrote, flushed and read back sectors 1-64 (seed $seed)"
	expect_blk_ok
	cp "$TMP/blank.img" "$TMP/expect.img"
	"$pattern" "$seed" 1 64 >"$TMP/pattern" || fail "blkpattern failed"
	dd if="$TMP/pattern" of="$TMP/expect.img" bs=512 seek=1 conv=notrunc status=none
	cmp "$img" "$TMP/expect.img" ||
		fail "the image does not hold what blk.elf wrote with seed=$seed"
	echo "image checked from the host: sectors 1-64 hold seed $seed's pattern, the rest is unchanged"
done

# Read-only: the write must be refused and the image stay as it was.
cp "$img" "$TMP/before.img"
run_vm "$TMP/out" --disk "$img,ro" --cmdline "ro=1" "$GUESTS/blk.elf"
expect_status 1
expect_line "$TMP/out" "blk: read-only disk refused the write"
expect_blk_ok
cmp "$img" "$TMP/before.img" || fail "the read-only image changed"
echo "read-only image unchanged"

# ---- four disks and an rng, each device in its own process ------------------
# The disks take virtio slots in the order given, the rng (a later kind of
# the manifest) after them; the guest tests the fourth disk only, so only
# its image may change, and its id names it.
seed=$(( $$ % 1000 + 7 ))
set --
for i in 0 1 2 3; do
	cp "$TMP/blank.img" "$TMP/d$i.img"
	set -- "$@" --disk "$TMP/d$i.img"
	[ "$i" = 1 ] && set -- "$@" --rng
done
run_vm "$TMP/out" -v "$@" --cmdline "disk=3 irq=1 seed=$seed" "$GUESTS/blk.elf"
expect_status 1
[ "$(grep -c '^blk: virtio-mmio at .* device 2' "$TMP/out")" = 4 ] ||
	fail "the guest did not probe four block devices before the one it tests"
expect_text "$TMP/out" "blk: virtio-mmio at 0xd0000600 size 0x200 irq 9: magic 0x74726976 version 2 device 2"
expect_line "$TMP/out" "blk: ok capacity=2048 id='bulkhead-disk3'"
for dev in virtio-blk#0 virtio-blk#1 virtio-blk#2 virtio-blk#3 virtio-rng#0; do
	grep -q "accesses:$dev=" "$TMP/out.err" || fail "no device process $dev"
done
cp "$TMP/blank.img" "$TMP/expect.img"
"$pattern" "$seed" 1 64 >"$TMP/pattern" || fail "blkpattern failed"
dd if="$TMP/pattern" of="$TMP/expect.img" bs=512 seek=1 conv=notrunc status=none
cmp "$TMP/d3.img" "$TMP/expect.img" || fail "disk 3 does not hold what blk.elf wrote"
for i in 0 1 2; do
	cmp "$TMP/d$i.img" "$TMP/blank.img" || fail "disk $i changed: the guest wrote the wrong disk"
done
echo "four disks: the fourth holds seed $seed's pattern, the other three are unchanged"
# A seventh disk is one past the manifest's limit.
set -- --disk "$TMP/d0.img" --disk "$TMP/d0.img" --disk "$TMP/d0.img" \
	--disk "$TMP/d0.img" --disk "$TMP/d0.img" --disk "$TMP/d0.img" --disk "$TMP/d0.img"
run_vm "$TMP/out" "$@" "$GUESTS/blk.elf"
expect_status 2
expect_text "$TMP/out.err" "--disk: at most 6 virtio-blk devices"
