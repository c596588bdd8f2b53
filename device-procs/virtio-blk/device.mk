# virtio-blk: a virtio-mmio block device on a disk image.
DEVICES += virtio-blk
virtio-blk_CORE := device-procs/virtio/virtio_mmio.c device-procs/virtio-blk/vblk.c
virtio-blk_SRCS := $(virtio-blk_CORE)
virtio-blk_DESC := vblk_desc
