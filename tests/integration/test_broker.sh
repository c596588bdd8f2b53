# bulkheadd on a private socket: three VMs, each driven through create,
# start, pause, resume, reset, poweroff and destroy, with `list` and
# `status` (text and --json) checked at every step. Also: the CLI without
# a broker, a stale socket file, a second broker on the same socket, wrong
# operations, and SIGTERM powering every VM off and removing the socket.
. tests/integration/lib.sh
. tests/integration/broker_lib.sh
need_kvm

# No broker yet: a clear error, exit status 3.
bh_fails 3 "cannot reach bulkheadd at $SOCK" list

# A stale socket file (a broker killed with SIGKILL) is replaced.
start_broker
kill -9 "$BRK_PID"
wait "$BRK_PID" 2>/dev/null
bg_done "$BRK_PID"
[ -S "$SOCK" ] || fail "expected a stale socket file after SIGKILL"
start_broker
grep -q "removing stale socket" "$BRK_LOG" || fail "stale socket not reported"
# A second broker on a live socket refuses; a non-socket path is refused.
st=0
"$BIN/bulkheadd" --socket "$SOCK" --config "$BRK_CONF" 2>"$TMP/e2" || st=$?
cat "$TMP/e2"
[ $st -ne 0 ] || fail "a second bulkheadd started on a live socket"
grep -q "another bulkheadd is already serving" "$TMP/e2" || fail "no message for a live socket"
: >"$TMP/plain"
st=0
"$BIN/bulkheadd" --socket "$TMP/plain" --config "$BRK_CONF" 2>"$TMP/e2" || st=$?
[ $st -ne 0 ] && grep -q "is not a socket" "$TMP/e2" || fail "a plain file was taken for a socket"
[ -f "$TMP/plain" ] || fail "bulkheadd removed a plain file"

bh_ok list
expect_line "$TMP/o" "no VMs"

VMS="vm1 vm2 vm3"
for v in $VMS; do
	bh_ok create "$v" --mem 32M --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
	expect_text "$TMP/o" "VM '$v' created"
done
for v in $VMS; do
	expect_state "$v" CREATED
	grep -q "^processes:" "$TMP/o" && fail "$v has processes before start"
done
bh_ok --json status vm2
expect_text "$TMP/o" '"mem":33554432'
expect_text "$TMP/o" '"exit_status":null'
# Disks (opened by the CLI, one read-only here) and an rng are recorded
# in the order given.
truncate -s 1M "$TMP/disk.img" "$TMP/disk2.img"
bh_ok create withdisk --disk "$TMP/disk.img,ro" --rng --disk "$TMP/disk2.img" \
	"$GUESTS/echo.elf"
bh_ok status withdisk
expect_text "$TMP/o" "device:     virtio-blk $TMP/disk.img (read-only)"
expect_text "$TMP/o" "device:     virtio-rng"
expect_text "$TMP/o" "device:     virtio-blk $TMP/disk2.img"
[ "$(grep -c '^device:' "$TMP/o")" = 3 ] || fail "withdisk: not 3 devices listed"
bh_ok --json status withdisk
tr -d ' \n' <"$TMP/o" >"$TMP/oj"  # json-c pretty-prints
expect_text "$TMP/oj" "\"devices\":[{\"kind\":\"virtio-blk\",\"backend\":\"$TMP/disk.img\",\"ro\":true},{\"kind\":\"virtio-rng\",\"backend\":null,\"ro\":false},{\"kind\":\"virtio-blk\",\"backend\":\"$TMP/disk2.img\",\"ro\":false}]"
bh_ok destroy withdisk
# Past a device's limit (the manifest's), a usage error names it.
bh_fails 2 "at most 1 virtio-rng device" create tworng --rng --rng "$GUESTS/echo.elf"
bh_fails 4 "cannot open disk image" create nodisk --disk "$TMP/none.img" "$GUESTS/echo.elf"
# A bzImage on KVM on PVM: create says at once that a full Linux kernel
# would take hours there (bulkhead run does too: test_bzimage); elsewhere
# nothing. The multiboot guests above never get the note.
grep -q "KVM on PVM" "$TMP/e" && fail "a PVM note for a multiboot guest"
bh_ok create bz --mem 64M "$GUESTS/bzImage"
if [ -d /sys/module/kvm_pvm ]; then
	expect_text "$TMP/e" "bulkhead: note: this host's KVM is KVM on PVM (kvm_pvm)"
else
	grep -q "KVM on PVM" "$TMP/e" && fail "a PVM note without kvm_pvm"
fi
bh_ok destroy bz
# Names are unique per owner; wrong operations say what to do.
bh_fails 1 "already have a VM named 'vm1'" create vm1 "$LONG_GUEST"
bh_fails 1 "is not running (state CREATED)" pause vm1
bh_fails 1 "is already off" poweroff vm1
bh_fails 1 "no VM named 'nosuch'" status nosuch
bh_fails 2 "not a VM name" status 'bad name!'

step() {  # OP STATE: OP on every VM, then every VM must be in STATE
	for v in $VMS; do
		bh_ok "$1" "$v"
	done
	for v in $VMS; do
		expect_state "$v" "$2"
	done
}

step start RUNNING
workers=""
for v in $VMS; do
	w=$(vm_pid "$v" worker)
	[ -n "$w" ] || fail "$v: no worker pid in status"
	[ "$(basename "$(readlink /proc/$w/exe)")" = bulkhead-worker ] || \
		fail "$v: pid $w is not a bulkhead-worker"
	[ -n "$(vm_pid "$v" uart#0)" ] || fail "$v: no uart#0 in status"
	workers="$workers $w"
done
bh_fails 1 "already started" start vm1
bh_ok --json status vm3
expect_text "$TMP/o" '"label":"worker"'
expect_text "$TMP/o" '"running":true'

step pause SUSPENDED
step resume RUNNING
step reset RUNNING
# The guests keep running after all that.
bh_ok stats vm1
expect_text "$TMP/o" "worker"
expect_text "$TMP/o" "uart#0"
bh_ok --json stats vm2
expect_text "$TMP/o" '"user_ms"'

step poweroff OFF
for w in $workers; do
	[ -e "/proc/$w" ] && [ "$(cut -d' ' -f3 /proc/$w/stat)" != Z ] && \
		fail "worker $w still runs after poweroff"
done
bh_ok status vm1
grep -q "^processes:" "$TMP/o" && fail "vm1 has processes when OFF"
expect_text "$TMP/o" "last exit:  powered off"
bh_ok --json status vm1
expect_text "$TMP/o" '"exit_status":0'

for v in $VMS; do
	bh_ok destroy "$v"
	expect_text "$TMP/o" "VM '$v' destroyed"
	bh_fails 1 "no VM named '$v'" status "$v"
done
bh_ok list
expect_line "$TMP/o" "no VMs"
bh_ok --json list
tr -d ' \n' <"$TMP/o" | grep -q '"vms":\[\]' || fail "list --json is not empty"

# Destroy powers a running VM off first; start works again after OFF.
bh_ok create vm4 --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
bh_ok start vm4
bh_ok poweroff vm4
bh_ok start vm4
expect_state vm4 RUNNING
w=$(vm_pid vm4 worker)
bh_ok destroy vm4
[ -e "/proc/$w" ] && [ "$(cut -d' ' -f3 /proc/$w/stat)" != Z ] && fail "destroy left worker $w"

# SIGTERM: every VM is powered off cleanly, the socket goes, status 0.
bh_ok create vm5 --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
bh_ok start vm5
bh_ok create vm6 --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
bh_ok start vm6
kids="$(vm_pid vm5 worker) $(vm_pid vm5 uart#0) $(vm_pid vm6 worker) $(vm_pid vm6 uart#0)"
[ "$(echo $kids | wc -w)" -eq 4 ] || fail "vm5 and vm6 lack processes"
stop_broker
cat "$BRK_LOG"
expect_text "$BRK_LOG" "powering off every VM"
for v in vm5 vm6; do
	grep -q "VM $v (id [0-9]*, uid 0) is off: powered off" "$BRK_LOG" || \
		fail "$v was not powered off at SIGTERM"
done
for p in $kids; do
	[ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 /proc/$p/stat)" != Z ] && fail "child $p outlived bulkheadd"
done
exit 0
