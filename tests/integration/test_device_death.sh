# Killing a device process ends the VM with a clear error naming the device
# and the signal; the CLI exits with 10 and no process is left behind.
. tests/integration/lib.sh
need_kvm
mkfifo "$TMP/in"
"$BIN/bulkhead" run "$GUESTS/echo.elf" <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
vmm=$!
exec 4>"$TMP/in"
wait_for "$TMP/out" "echo: ready"
kids=$(children $vmm)
uart=""
for k in $kids; do
	[ "$(basename "$(readlink /proc/$k/exe | sed "s/ (deleted)$//")")" = bulkhead-dev-uart ] && uart=$k
done
[ -n "$uart" ] || fail "no UART process"
kill -9 "$uart"
status=0
wait $vmm || status=$?
exec 4>&-
cat "$TMP/out" "$TMP/err"
expect_status 10
expect_text "$TMP/err" "device uart#0 was killed by signal 9"
sleep 0.2
for p in $kids; do
	[ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 /proc/$p/stat)" != Z ] && fail "child $p outlived the VM"
done
exit 0
