# Bad arguments and bad images get clear errors and documented exit codes.
. tests/integration/lib.sh

# Usage errors (2) need no KVM.
for args in "" "--mem" "--cpus 0 x" "--cpus 17 x" "--mem 1M x" "--mem lots x" \
	    "--serial tty x" "--bogus x" "a b"; do
	status=0
	# shellcheck disable=SC2086
	"$BIN/bulkhead" run $args >"$TMP/o" 2>"$TMP/e" || status=$?
	cat "$TMP/e"
	[ $status -eq 2 ] || fail "'run $args' exited $status, expected 2"
	grep -q "bulkhead" "$TMP/e" || fail "'run $args' gave no message"
done
status=0
"$BIN/bulkhead" frobnicate >/dev/null 2>"$TMP/e" || status=$?
[ $status -eq 2 ] || fail "unknown command exited $status"
grep -q "unknown command 'frobnicate'" "$TMP/e" || fail "no message for unknown command"

# A missing file (4).
run_vm "$TMP/out" "$TMP/does-not-exist"
expect_status 4
expect_text "$TMP/out.err" "cannot open image '$TMP/does-not-exist'"

need_kvm
# An ELF that is not multiboot, a corrupt ELF, an empty file, a too-big raw
# image: all refused by the loader (8) with a reason.
run_vm "$TMP/out" /bin/true
expect_status 8
expect_text "$TMP/out.err" "cannot load the image: ELF type 3 is not an executable"
printf '\177ELF' >"$TMP/notmb.elf"; head -c 9000 /dev/zero >>"$TMP/notmb.elf"
run_vm "$TMP/out" "$TMP/notmb.elf"
expect_status 8
# Devices quietly stand down when the worker refuses the image.
[ "$(wc -l <"$TMP/out.err")" -eq 1 ] || fail "expected exactly one error line"
head -c 64 "$GUESTS/hello.elf" >"$TMP/trunc.elf"
run_vm "$TMP/out" "$TMP/trunc.elf"
expect_status 8
: >"$TMP/empty"
run_vm "$TMP/out" "$TMP/empty"
expect_status 8
head -c 700000 /dev/zero >"$TMP/big.bin"
run_vm "$TMP/out" "$TMP/big.bin"
expect_status 8
# --initrd makes no sense with a raw image.
run_vm "$TMP/out" --initrd /etc/hostname "$GUESTS/bootsect.bin"
expect_status 8
expect_text "$TMP/out.err" "initrd"
