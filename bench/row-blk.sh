# bench/row-blk.sh: virtio-blk throughput (sourced by run-bench.sh).
# blkbench.elf drives the disk from CPL 3 with BLK_QD requests in flight,
# polling the used ring: sequential write then read of BLK_MIB MiB in
# BLK_SEQKB KiB requests, then BLK_RAND random 4 KiB writes and reads. It
# reports TSC ticks per phase; MB/s = bytes / (ticks / host TSC rate).
#
# Both VMMs get the same raw image file (on tmpfs when /dev/shm is there,
# so the host's disk is out of the picture), through their defaults:
# Bulkhead's device process does pread/pwrite on it; QEMU's
# virtio-blk-device (virtio-mmio, modern) uses cache=writeback, aio=threads.
# Nothing is flushed.
#
# 256 MiB each way: at 6-9 GB/s, 64 MiB took 7-10 ms per phase, short
# enough for one host hiccup to move a run's figure by a third (the
# sequential ratios ranged 0.82-1.45 from run to run; at 256 MiB,
# 1.06-1.42).

BLK_MIB=${BLK_MIB:-256}
BLK_SEQKB=${BLK_SEQKB:-128}
BLK_RAND=${BLK_RAND:-4096}
BLK_QD=${BLK_QD:-4}
BLK_DISK_MIB=${BLK_DISK_MIB:-512}

blk_run() {
	f=$1
	shift
	out=$("$@" 2>>"$TMP/blk.err") || true
	if ! echo "$out" | grep -q '^blkbench: done'; then
		bench_log "blkbench failed: $*"
		echo "$out" | tail -n 3 >&2
		return 0
	fi
	echo "$out" | awk -v hz="$TSC_HZ" '/^blkbench: [a-z]+ bytes=/ {
		split($3, b, "="); split($5, t, "=")
		printf "%s %.3f\n", $2, b[2] / (t[2] / hz) / 1e6
	}' >>"$f"
}

row_blk() {
	bench_log "virtio-blk throughput ($REPS runs of each)"
	d="$TMP/blk"
	mkdir -p "$d"
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		img=$(mktemp /dev/shm/bulkhead-bench-disk.XXXXXX)
	else
		img="$TMP/disk.img"
	fi
	BLK_IMG=$img
	dd if=/dev/zero of="$img" bs=1M count="$BLK_DISK_MIB" status=none
	args="mib=$BLK_MIB seqkb=$BLK_SEQKB rand=$BLK_RAND qd=$BLK_QD"
	bh="$BIN/bulkhead run --serial stdio --disk $img --cmdline"
	qemu="$QEMU_BASE -M microvm,ioapic2=off -m 64 -serial stdio -global virtio-mmio.force-legacy=false \
-device virtio-blk-device,drive=d0 -drive id=d0,file=$img,format=raw,if=none"
	tokens=$(qemu_microvm_virtio_tokens)
	i=0
	while [ $i -lt "$REPS" ]; do
		if [ $((i % 2)) = 0 ]; then
			blk_run "$d/bh" $bh "$args" "$GUESTS_DIR/blkbench.elf"
			blk_run "$d/q" $qemu -kernel "$GUESTS_DIR/blkbench.elf" -append "$args$tokens"
		else
			blk_run "$d/q" $qemu -kernel "$GUESTS_DIR/blkbench.elf" -append "$args$tokens"
			blk_run "$d/bh" $bh "$args" "$GUESTS_DIR/blkbench.elf"
		fi
		i=$((i + 1))
	done
	rm -f "$img"
	mbs() { awk -v p="$2" '$1 == p { print $2 }' "$1" 2>/dev/null | median; }
	for p in seqread seqwrite randread randwrite; do
		case $p in
		seqread) l="virtio-blk sequential read, ${BLK_SEQKB} KiB requests" ;;
		seqwrite) l="virtio-blk sequential write, ${BLK_SEQKB} KiB requests" ;;
		randread) l="virtio-blk random read, 4 KiB requests" ;;
		randwrite) l="virtio-blk random write, 4 KiB requests" ;;
		esac
		bench_row "$l (queue depth $BLK_QD)" "$(mbs "$d/bh" $p)" "$(mbs "$d/q" $p)" MB/s ">=" 1.0 0
	done
	bench_cmd "virtio-blk, Bulkhead: $BIN/bulkhead run --serial stdio --disk IMG --cmdline '$args' blkbench.elf"
	bench_cmd "virtio-blk, QEMU:     $(echo "$qemu" | sed "s|$img|IMG|") -kernel blkbench.elf -append '$args virtio_mmio.device=512@0xfeb00000:16 ... (all 8 transports)'"
	bench_cmd "virtio-blk: IMG = a ${BLK_DISK_MIB} MiB raw file of zeros on $(dirname "$img")"
}
