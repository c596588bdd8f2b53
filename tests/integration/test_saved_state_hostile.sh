# The saved-state reader trusts nothing (issue 9): valid streams of a small
# guest are saved through bulkheadd, then copies are damaged and each is
# restored with `bulkhead run --restore` (the worker parses the stream in
# its sandbox):
#   - single bit flips spread over the header, every unit's header, first
#     record, data and terminator, the end unit, the directory and the
#     footer;
#   - truncations at the start of and inside every unit and all through the
#     end of the stream;
#   - units spliced across streams: from a later save of the same VM and
#     from a save of another guest; units swapped, dropped and repeated;
#     headers, directories and footers taken from another stream.
# Every load must fail with exit status 8 (the saved state was refused; a
# worker or device killed by a signal would be 14 or 10, a hang a timeout)
# and a message naming the unit (or the header, end unit, directory or
# footer) and the stream offset. An intact stream restores and runs.
. tests/integration/lib.sh
. tests/integration/broker_lib.sh
need_kvm
truncate -s 1M "$TMP/disk.img"
VMOPTS="--mem 8M --cpus 2 --disk $TMP/disk.img"

# ---- valid streams -----------------------------------------------------------
start_broker
bh_ok create a $VMOPTS "$GUESTS/count.elf"
bh_ok start a
"$BIN/bulkhead" console a </dev/null >"$TMP/con.a" 2>&1 &
con=$!
bg_started $con
wait_for "$TMP/con.a" "count: ready"
kill -TERM $con
wait $con 2>/dev/null
bg_done $con
bh_ok save --keep-running a "$TMP/a1.sav"
sleep 0.2
bh_ok save a "$TMP/a2.sav"
bh_ok create b $VMOPTS "$GUESTS/echo.elf"
bh_ok start b
bh_ok save b "$TMP/b.sav"
stop_broker

# The intact stream restores, runs and answers ('q': count.elf exits 0).
mkfifo "$TMP/run.in"
"$BIN/bulkhead" run -v --restore "$TMP/a1.sav" $VMOPTS --serial stdio \
	<"$TMP/run.in" >"$TMP/run.out" 2>"$TMP/run.err" &
run_pid=$!
bg_started $run_pid
exec 9>"$TMP/run.in"
wait_for "$TMP/run.err" "RESUMING -> RUNNING" 60
printf 'q' >&9
st=0
wait $run_pid || st=$?
bg_done $run_pid
exec 9>&-
[ $st -eq 1 ] || { cat "$TMP/run.out" "$TMP/run.err"; fail "the intact stream: run exited $st, expected 1"; }
expect_line "$TMP/run.out" "count: bye"

# ---- the layout of a1.sav ---------------------------------------------------------
# units: "offset name" per line, in stream order (all final passes)
layout() {  # FILE PREFIX: sets PREFIX_size, PREFIX_dir, PREFIX_foot, PREFIX_end
	"$BIN/bulkhead-ssm-dump" "$1" >"$1.dump" || { cat "$1.dump"; fail "$1 is not intact"; }
	sed -n 's/^0x\([0-9a-f]*\) *\([^ ]*\) *\([0-9]*\) .*/\1 \2 \3/p' "$1.dump" >"$1.units"
	n=$(wc -l <"$1.units")
	s=$(stat -c %s "$1")
	eval "$2_size=$s; $2_foot=$((s - 32)); $2_dir=$((s - 32 - 16 - 16 * n))"
	eval "$2_end=$((s - 32 - 16 - 16 * n - 44)); $2_n=$n"
}
layout "$TMP/a1.sav" a1
layout "$TMP/a2.sav" a2
layout "$TMP/b.sav" b
echo "a1.sav: $a1_size bytes, $a1_n units, end unit at $a1_end, directory at $a1_dir, footer at $a1_foot"

# unit FILE NAME INSTANCE: sets ustart and uend (where the next unit, or
# the end unit, starts)
unit() {
	ustart=""; uend=""
	eval "last=\$$(basename "$1" .sav)_end"
	found=0
	while read -r off name inst; do
		if [ $found -eq 1 ]; then uend=$((0x$off)); break; fi
		if [ "$name" = "$2" ] && [ "$inst" = "$3" ]; then
			ustart=$((0x$off)); found=1
		fi
	done <"$1.units"
	[ $found -eq 1 ] || fail "no unit $2#$3 in $1"
	[ -n "$uend" ] || uend=$last
}

mkdir "$TMP/cases"
ncase=0
newcase() {  # DESCRIPTION: the next case file is $case
	ncase=$((ncase + 1))
	case=$TMP/cases/$(printf %03d $ncase).sav
	echo "$1" >"$case.what"
}
flip() {  # OFFSET BIT DESCRIPTION
	newcase "bit $2 flipped at offset $1 ($3)"
	cp "$TMP/a1.sav" "$case"
	b=$(od -An -tu1 -j "$1" -N1 "$TMP/a1.sav" | tr -d ' ')
	printf "\\$(printf %o $((b ^ (1 << $2))))" |
		dd of="$case" bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null
}
cut_at() {  # LENGTH DESCRIPTION
	newcase "truncated to $1 bytes ($2)"
	head -c "$1" "$TMP/a1.sav" >"$case"
}
# bytes FILE START END: the bytes [START, END) of FILE
bytes() {
	tail -c +$(($2 + 1)) "$1" | head -c $(($3 - $2))
}

# ---- single bit flips --------------------------------------------------------------
k=0
for off in 0 15 32 36 40 48 60; do
	flip $off $((k % 8)) "file header"
	k=$((k + 1))
done
set -- 0 8 16 20 24 28 32 36 40 44
while read -r hex name inst; do
	o=$((0x$hex))
	unit "$TMP/a1.sav" "$name" "$inst"
	rec=$((o + 44 + ${#name} + 1))
	h1=$(eval echo \${$((k % 10 + 1))})
	flip $((o + h1)) $((k % 8)) "header of unit $name#$inst, byte $h1"
	flip $((rec + k % 2)) $(((k + 1) % 8)) "first record of unit $name#$inst"
	flip $(((rec + uend - 16) / 2)) $(((k + 5) % 8)) "data of unit $name#$inst"
	t=$(( (k % 6) * 2 ))
	[ $t -eq 6 ] && t=4
	flip $((uend - 16 + t)) $(((k + 7) % 8)) "terminator of unit $name#$inst, byte $t"
	k=$((k + 1))
done <"$TMP/a1.sav.units"
for d in 0 21 40; do
	flip $((a1_end + d)) $((d % 8)) "end unit, byte $d"
done
for d in 0 9 12 25 $((16 + 16 * a1_n - 4)); do
	flip $((a1_dir + d)) $((d % 8)) "directory, byte $d"
done
for d in 0 8 16 20 28; do
	flip $((a1_foot + d)) $((d % 8)) "footer, byte $d"
done
nflips=$ncase

# ---- truncations ---------------------------------------------------------------------
for len in 0 1 63; do
	cut_at $len "file header"
done
k=0
while read -r hex name inst; do
	o=$((0x$hex))
	unit "$TMP/a1.sav" "$name" "$inst"
	case $((k % 4)) in
	0) cut_at $o "before unit $name#$inst" ;;
	1) cut_at $((o + 30)) "inside the header of unit $name#$inst" ;;
	2) cut_at $(((o + uend) / 2)) "inside unit $name#$inst" ;;
	3) cut_at $((uend - 3)) "inside the terminator of unit $name#$inst" ;;
	esac
	cut_at $(((o + 44 + uend) / 2 + 7)) "inside unit $name#$inst"
	k=$((k + 1))
done <"$TMP/a1.sav.units"
for len in $a1_end $((a1_end + 20)) $a1_dir $((a1_dir + 12)) $((a1_dir + 30)) \
	   $a1_foot $((a1_foot + 16)) $((a1_size - 1)); do
	cut_at $len "end of the stream"
done
ntrunc=$((ncase - nflips))

# ---- splices ----------------------------------------------------------------------------
splice() {  # DESCRIPTION  -- the new stream is in $TMP/new
	newcase "$1"
	mv "$TMP/new" "$case"
	if cmp -s "$case" "$TMP/a1.sav"; then
		echo "note: splice '$1' changed nothing; left out"
		rm -f "$case" "$case.what"
		ncase=$((ncase - 1))
	fi
}
# replace NAME INSTANCE DONOR: a1.sav with its unit NAME#INSTANCE replaced
# by the same unit of DONOR
replace() {
	unit "$TMP/a1.sav" "$1" "$2"
	as=$ustart; ae=$uend
	unit "$TMP/$3.sav" "$1" "$2"
	{ head -c $as "$TMP/a1.sav"; bytes "$TMP/$3.sav" $ustart $uend
	  tail -c +$((ae + 1)) "$TMP/a1.sav"; } >"$TMP/new"
	splice "unit $1#$2 taken from $3.sav"
}
replace cpu 0 a2
replace cpu 1 a2
replace ram 0 a2
replace uart 0 a2
replace cpu 1 b
replace boot 0 b
replace ram 0 b
replace i8042 0 b
unit "$TMP/a1.sav" irqchip 0; is=$ustart; ie=$uend
unit "$TMP/a1.sav" pit 0; ps=$ustart; pe=$uend
[ "$ie" -eq "$ps" ] || fail "irqchip and pit are not neighbours"
{ head -c $is "$TMP/a1.sav"; bytes "$TMP/a1.sav" $ps $pe
  bytes "$TMP/a1.sav" $is $ie; tail -c +$((pe + 1)) "$TMP/a1.sav"; } >"$TMP/new"
	splice "units irqchip and pit swapped"
unit "$TMP/a1.sav" clock 0
{ head -c $ustart "$TMP/a1.sav"; tail -c +$((uend + 1)) "$TMP/a1.sav"; } >"$TMP/new"
	splice "unit clock dropped"
unit "$TMP/a1.sav" rtc 0
{ head -c $uend "$TMP/a1.sav"; tail -c +$((ustart + 1)) "$TMP/a1.sav"; } >"$TMP/new"
	splice "unit rtc repeated"
{ head -c $a1_dir "$TMP/a1.sav"; tail -c +$((b_dir + 1)) "$TMP/b.sav"; } >"$TMP/new"
	splice "directory and footer taken from b.sav"
{ head -c $a1_foot "$TMP/a1.sav"; tail -c 32 "$TMP/a2.sav"; } >"$TMP/new"
	splice "footer taken from a2.sav"
{ head -c $a1_end "$TMP/a1.sav"; tail -c +$((a2_end + 1)) "$TMP/a2.sav"; } >"$TMP/new"
	splice "end unit, directory and footer taken from a2.sav"
nsplice=$((ncase - nflips - ntrunc))
echo "$nflips bit flips, $ntrunc truncations, $nsplice splices"

# ---- every one must be refused cleanly ---------------------------------------------------
run_case() {
	st=0
	timeout 30 "$BIN/bulkhead" run --restore "$1" $VMOPTS --serial null \
		</dev/null >/dev/null 2>"$1.err" || st=$?
	echo $st >"$1.st"
}
start=$(date +%s)
i=0
for f in "$TMP"/cases/*.sav; do
	run_case "$f" &
	i=$((i + 1))
	[ $((i % 4)) -eq 0 ] && wait
done
wait
echo "$ncase restores in $(( $(date +%s) - start )) s"
bad=0
for f in "$TMP"/cases/*.sav; do
	st=$(cat "$f.st")
	msg=$(grep -m1 "the saved state was refused" "$f.err" | sed 's/^.*was refused: //')
	echo "$(cat "$f.what"): status $st: $msg"
	if [ "$st" -ne 8 ]; then
		echo "  FAILED: exit status $st, expected 8"; sed 's/^/    /' "$f.err"; bad=$((bad + 1))
	elif ! echo "$msg" | grep -Eq "^(unit '[^']*' instance [0-9]+|unit header|header|end unit|directory|footer) at offset 0x[0-9a-f]+: "; then
		echo "  FAILED: the message names no unit and offset"; sed 's/^/    /' "$f.err"; bad=$((bad + 1))
	fi
done
[ $bad -eq 0 ] || fail "$bad of $ncase damaged streams were not refused cleanly"
echo "all $ncase damaged streams were refused with exit status 8, naming where"
exit 0
