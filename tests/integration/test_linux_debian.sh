# Debian's kernel (linux-image-amd64's vmlinuz) is accepted and placed by
# the bzImage loader. On a host whose KVM has no VT-x/AMD-V (KVM on PVM)
# Linux cannot boot at useful speed: its supervisor code runs in KVM's
# instruction emulator (docs/linux-boot.md). So this checks where the
# loader puts it (tests/tools/load-image), that too little RAM is refused
# clearly, and that under `bulkhead run` its decompressor starts, finds
# the command line (it echoes 'nokaslr' on the UART) and keeps the vCPU
# busy without a loader error or a guest fault; then SIGTERM powers it off.
#
# The kernel image comes from `sh scripts/install-deps.sh linux-kernel`
# (run once by `make check`, needs network then); without one this skips.
. tests/integration/lib.sh
kernel=
for k in "${BULKHEAD_LINUX_IMAGE:-}" /var/cache/bulkhead/vmlinuz \
	"$BUILD/linux/vmlinuz"; do
	if [ -n "$k" ] && [ -r "$k" ]; then
		kernel=$k
		break
	fi
done
if [ -z "$kernel" ]; then
	echo "skipped: no Debian kernel image (get one with 'sh scripts/install-deps.sh linux-kernel', which needs network once)"
	exit 77
fi
echo "kernel: $kernel ($(cat "$kernel.source" 2>/dev/null || echo unknown origin))"
printf 'initrd\n' >"$TMP/initrd"
head -c 300000 /dev/urandom >>"$TMP/initrd"
isize=$(stat -c %s "$TMP/initrd")

# 1. Placement, by the loader itself, outside any VM.
"$BUILD/tests/load-image" --mem 256 --cmdline "console=ttyS0" \
	--initrd "$TMP/initrd" "$kernel" >"$TMP/place" 2>&1 ||
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

# 2. Too little RAM for pref_address + init_size: refused, saying why.
run_vm "$TMP/small" --mem 32M "$kernel"
expect_status 8
expect_text "$TMP/small.err" "MiB of guest RAM but the VM has 32 MiB; raise --mem"

# 3. It runs: the kernel's decompressor reads the command line from
#    boot_params and, with earlyprintk, says on the UART that 'nokaslr' is
#    there; then its vCPU stays busy decompressing (in KVM's emulator on
#    such hosts) until SIGTERM powers the VM off.
"$BIN/bulkhead" run --mem 256M --serial "file:$TMP/serial" \
	--cmdline "console=ttyS0 earlyprintk=serial,ttyS0,115200 nokaslr" \
	--initrd "$TMP/initrd" "$kernel" </dev/null >"$TMP/run" 2>"$TMP/run.err" &
pid=$!
i=0
while ! grep -qF "'nokaslr' on cmdline" "$TMP/serial" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 600 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
sleep 2
if ! kill -0 "$pid" 2>/dev/null; then
	status=0
	wait "$pid" || status=$?
	sed 's/^/  stderr: /' "$TMP/run.err"
	fail "bulkhead run ended by itself with status $status"
fi
worker=
for c in $(children "$pid"); do
	[ "$(cat "/proc/$c/comm" 2>/dev/null)" = bulkhead-worker ] && worker=$c
done
[ -n "$worker" ] || fail "no bulkhead-worker under $pid"
# utime + stime of the whole worker, in clock ticks
ticks=$(awk '{ print $14 + $15 }' "/proc/$worker/stat")
hz=$(getconf CLK_TCK)
echo "worker $worker has used $ticks ticks ($hz/s) of CPU"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
echo "bulkhead run -> status $status"
sed 's/^/  stderr: /' "$TMP/run.err"
sed 's/^/  serial: /' "$TMP/serial" 2>/dev/null
expect_status 0
if grep -q -e "cannot load" -e "guest-fault" -e "KVM internal error" "$TMP/run.err"; then
	fail "the kernel did not run cleanly"
fi
grep -qF "KASLR disabled: 'nokaslr' on cmdline." "$TMP/serial" ||
	fail "the kernel's decompressor did not report the command line"
[ "$ticks" -ge $((hz / 2)) ] || fail "the vCPU was not running the kernel"
