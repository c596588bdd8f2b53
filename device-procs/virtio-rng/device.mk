# virtio-rng: a virtio-mmio entropy device.
DEVICES += virtio-rng
virtio-rng_CORE := device-procs/virtio/virtio_mmio.c device-procs/virtio-rng/vrng.c
virtio-rng_SRCS := $(virtio-rng_CORE)
virtio-rng_DESC := vrng_desc
