# The ACPI tables the worker writes for a VM (emt-worker/boottab.c, through
# tests/tools/acpi-dump, which runs that code on the manifest's devices and
# finds the tables as a guest does), read back by ACPICA's disassembler:
#   1. every table's checksum adds up and iasl -d decodes each one;
#   2. the FADT is hardware-reduced, with the ACPI PM device's sleep and
#      reset registers at the manifest's port;
#   3. the MADT has one local APIC per vCPU and the I/O APIC;
#   4. the DSDT has the UART (PNP0501) and RTC (PNP0B00) with their ports
#      and IRQs, each virtio-mmio device as LNRO0005 with its own slot's
#      memory and IRQ, the power button and its event device, and \_S5.
# (tests/unit/check_boottab.c has the worker's refusals.)
. tests/integration/lib.sh
command -v iasl >/dev/null ||
	fail "no iasl: sh scripts/install-deps.sh check installs acpica-tools"
out=$TMP/tables
mkdir -p "$out"
"$BUILD/tests/acpi-dump" --cpus 3 "$out" uart debug-exit rtc i8042 acpi-pm \
	virtio-blk virtio-blk virtio-blk virtio-blk virtio-rng >"$TMP/dump" 2>&1 ||
	{ cat "$TMP/dump"; fail "acpi-dump failed"; }
sed 's/^/  acpi-dump: /' "$TMP/dump"
for t in rsdp xsdt facp apic dsdt; do
	grep -q "^$t 0x[0-9a-f]* [0-9]* checksum ok$" "$TMP/dump" ||
		fail "no $t table with a good checksum"
done
# iasl -d reads each table but the RSDP (not a table with a header).
for t in xsdt facp apic dsdt; do
	(cd "$out" && iasl -d "$t.dat") >"$TMP/iasl-$t" 2>&1 ||
		{ cat "$TMP/iasl-$t"; fail "iasl -d cannot decode the $t table"; }
	grep -q -i "incorrect checksum" "$out/$t.dsl" &&
		fail "iasl finds the $t checksum wrong"
done
echo "iasl -d: $(iasl -v 2>&1 | grep -o 'version [0-9]*' | head -n 1), all four tables decoded"

# 2. FADT
f=$out/facp.dsl
grep -Eq "Hardware Reduced \(V5\) : 1" "$f" || fail "the FADT is not hardware-reduced"
grep -Eq "Reset Register Supported \(V2\) : 1" "$f" || fail "the FADT has no reset register"
# The registers' addresses: the sleep control, status and reset GAS.
for r in "Sleep Control Register" "Sleep Status Register" "Reset Register"; do
	addr=$(sed -n "/$r : \[Generic Address Structure\]/,/Address :/p" "$f" |
		sed -n 's/.*Address : \(.*\)$/\1/p')
	echo "FADT $r: $addr"
	[ -n "$addr" ] || fail "no $r in the FADT"
done
sed -n '/Sleep Control Register :/,/Address :/p' "$f" | grep -q "Address : 0000000000000600" ||
	fail "SLEEP_CONTROL_REG is not the ACPI PM device's port 0x600"
sed -n '/Reset Register :/,/Address :/p' "$f" | grep -q "Address : 0000000000000602" ||
	fail "RESET_REG is not the ACPI PM device's port 0x602"
grep -Eq "Value to cause reset : 01" "$f" || fail "the FADT's reset value is not 1"

# 3. MADT
a=$out/apic.dsl
[ "$(grep -c "Subtable Type : 00 \[Processor Local APIC\]" "$a")" -eq 3 ] ||
	fail "the MADT does not list 3 local APICs"
for id in 00 01 02; do
	grep -q "Local Apic ID : $id" "$a" || fail "no local APIC $id"
done
grep -q "Subtable Type : 01 \[I/O APIC\]" "$a" || fail "no I/O APIC in the MADT"
grep -q "I/O Apic ID : 03" "$a" || fail "the I/O APIC is not id 3 (as in the MP table)"

# 4. DSDT: each device in its own block, from Device (...) to the next.
d=$out/dsdt.dsl
block() { awk -v n="Device ($1)" 'index($0, n) { on = 1 } on && /Device \(/ && !index($0, n) { exit } on' "$d"; }
expect_block() {
	b=$(block "$1")
	[ -n "$b" ] || fail "no Device ($1) in the DSDT"
	shift
	for want in "$@"; do
		printf '%s\n' "$b" | grep -q -- "$want" ||
			fail "the DSDT's $dev lacks '$want'"
	done
}
dev=COM1; expect_block COM1 'EisaId ("PNP0501")' "0x03F8," "{4}"
dev=RTC0; expect_block RTC0 'EisaId ("PNP0B00")' "0x0070," "{8}"
# the virtio slots, as the manifest places them: 0xd0000000 + n * 0x200
n=0
for v in VBK0 VBK1 VBK2 VBK3 VRN0; do
	base=$(printf '0x%08X' $((0xd0000000 + n * 0x200)))
	irq=$(echo "5 6 7 9 10 11 14 15" | cut -d' ' -f$((n + 1)))
	dev=$v; expect_block "$v" '"LNRO0005"' "$base," "0x00000200," "{$irq}"
	n=$((n + 1))
done
dev=PWRB; expect_block PWRB 'EisaId ("PNP0C0C")'
dev=GED0; expect_block GED0 '"ACPI0013"' "_EVT" "Notify (PWRB, 0x80)"
grep -q "Name (\\\\_S5, Package" "$d" || fail "the DSDT has no \\_S5"
grep -q -e "Device (DBG" -e "PNP0303" "$d" &&
	fail "the DSDT announces debug-exit or the i8042, which have no ACPI entry"

exit 0
