# SIGTERM powers the VM off: exit status 0, all children gone. The guest's
# own debug-exit codes come through as (v << 1) | 1.
. tests/integration/lib.sh
need_kvm
echo_vm_start
kill -TERM $vmm
status=0
wait $vmm || status=$?
exec 4>&-
cat "$TMP/err"
expect_status 0
expect_text "$TMP/err" "powering the VM off"

# "x5" makes the echo guest write 5 to debug-exit: status 11.
printf 'x5' >"$TMP/in5"
status=0
"$BIN/bulkhead" run "$GUESTS/echo.elf" <"$TMP/in5" >"$TMP/out" 2>"$TMP/err" || status=$?
expect_status 11
exit 0
