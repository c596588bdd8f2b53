/* SPDX-License-Identifier: MIT */
/* kdriver: thin, checked wrappers around the KVM ioctls Bulkhead uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kdriver/kd.h"

/* Just below 4 GiB, out of the way of RAM (we map at most 3 GiB). */
#define KD_IDENTITY_MAP_ADDR 0xfffbc000ull
#define KD_TSS_ADDR 0xfffbd000ull
#define KD_CPUID_MAX_ENTRIES 256

/* CPUID leaves that carry the APIC id (Intel SDM vol. 2A, CPUID): leaf 1's
 * EBX[31:24] (the initial APIC id), and the x2APIC id in EDX of the
 * topology leaves 0xb and 0x1f. */
#define KD_CPUID_LEAF_FEATURES 1
#define KD_CPUID_LEAF_TOPOLOGY 0xb
#define KD_CPUID_LEAF_TOPOLOGY_V2 0x1f
#define KD_CPUID_APIC_ID_SHIFT 24
#define KD_CPUID_EBX_OTHER 0x00ffffffu   /* leaf 1 EBX without the APIC id */
/*
 * What KVM_GET_SUPPORTED_CPUID leaves to the VMM (KVM's api.rst, "4.46
 * KVM_GET_SUPPORTED_CPUID"): leaf 1 ECX bit 31, "hypervisor present",
 * without which a guest never looks at KVM's leaves 0x40000000 and
 * 0x40000001 (the signature and kvm-clock, which KVM does report); and
 * bit 24, the TSC-deadline timer, which KVM emulates wherever
 * KVM_CAP_TSC_DEADLINE_TIMER says so. A guest without a PIT (ACPI's
 * hardware-reduced mode) needs both to keep time.
 */
#define KD_CPUID_ECX_HYPERVISOR (1u << 31)
#define KD_CPUID_ECX_TSC_DEADLINE (1u << 24)
/*
 * KVM's paravirtual features (leaf 0x40000001 EAX, KVM's cpuid.rst): only
 * kvm-clock (CLOCKSOURCE, CLOCKSOURCE2, CLOCKSOURCE_STABLE_BIT). With all
 * KVM offers (async page faults, steal time, PV EOI, PV IPIs...) Debian's
 * kernel stalled in the nested KVM host in 8 of 9 boots, with these three
 * in 1 of 5 (docs/linux-boot.md, "Known problems in the nest").
 */
#define KD_CPUID_LEAF_KVM_FEATURES 0x40000001u
#define KD_KVM_FEATURES_KEEP ((1u << 0) | (1u << 3) | (1u << 24))

/* Control register and EFER bits (Intel SDM vol. 3A, 2.5 and 2.2.1). */
#define KD_CR0_PE 0x00000001ull
#define KD_CR0_ET 0x00000010ull
#define KD_CR0_PG 0x80000000ull
#define KD_CR4_PAE 0x00000020ull
#define KD_EFER_LME 0x00000100ull
#define KD_EFER_LMA 0x00000400ull

/* RFLAGS at boot: only bit 1, which always reads 1 (SDM vol. 1, 3.4.3). */
#define KD_RFLAGS_BOOT 0x2

/* Flat segments: base 0, 4 GiB with G set, and the descriptor types
 * (SDM vol. 3A, 3.4.5.1, Table 3-1) they use. */
#define KD_SEG_LIMIT_FLAT 0xffffffffu
#define KD_SEG_CODE_XRA 0xb     /* code: execute/read, accessed */
#define KD_SEG_DATA_RWA 0x3     /* data: read/write, accessed */

/* Selectors: the multiboot protocol's flat 32-bit ones, and the 64-bit
 * boot protocol's __BOOT_CS and __BOOT_DS. */
#define KD_PROT32_CS 0x08
#define KD_PROT32_DS 0x10
#define KD_LONG64_CS 0x10
#define KD_LONG64_DS 0x18

static int kd_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR && req != KVM_RUN);
	return r < 0 ? -errno : r;
}

int kd_sys_open(const char *path)
{
	int fd = open(path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static const struct {
	int cap;
	const char *name;
} kd_required_caps[] = {
	{ KVM_CAP_IRQCHIP, "in-kernel irqchip (KVM_CAP_IRQCHIP)" },
	{ KVM_CAP_PIT2, "in-kernel PIT (KVM_CAP_PIT2)" },
	{ KVM_CAP_USER_MEMORY, "user memory slots (KVM_CAP_USER_MEMORY)" },
	{ KVM_CAP_IOEVENTFD, "ioeventfd (KVM_CAP_IOEVENTFD)" },
	{ KVM_CAP_IRQFD, "irqfd (KVM_CAP_IRQFD)" },
	{ KVM_CAP_IMMEDIATE_EXIT, "immediate exit (KVM_CAP_IMMEDIATE_EXIT)" },
	{ KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID (KVM_CAP_EXT_CPUID)" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_SET_TSS_ADDR" },
	{ KVM_CAP_MP_STATE, "multiprocessor state (KVM_CAP_MP_STATE)" },
};

int kd_sys_check(int kvm_fd, char *err, size_t errlen)
{
	int v = kd_ioctl(kvm_fd, KVM_GET_API_VERSION, NULL);

	if (v < 0) {
		snprintf(err, errlen, "KVM_GET_API_VERSION failed: %s",
			 strerror(-v));
		return v;
	}
	if (v != KVM_API_VERSION) {
		snprintf(err, errlen, "KVM API version %d, need %d", v,
			 KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0;
	     i < sizeof(kd_required_caps) / sizeof(kd_required_caps[0]); i++) {
		int r = ioctl(kvm_fd, KVM_CHECK_EXTENSION, kd_required_caps[i].cap);

		if (r <= 0) {
			snprintf(err, errlen, "KVM lacks %s",
				 kd_required_caps[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

int kd_sys_nr_vcpus(int kvm_fd)
{
	int r = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);

	return r > 0 ? r : 1;
}

static int kd_fetch_cpuid(struct kd_vm *vm)
{
	struct kvm_cpuid2 *c;
	int r;

	c = calloc(1, sizeof(*c) +
			     KD_CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -ENOMEM;
	c->nent = KD_CPUID_MAX_ENTRIES;
	r = kd_ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (r < 0) {
		free(c);
		return r;
	}
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == KD_CPUID_LEAF_KVM_FEATURES)
			e->eax &= KD_KVM_FEATURES_KEEP;
		if (e->function != KD_CPUID_LEAF_FEATURES)
			continue;
		e->ecx |= KD_CPUID_ECX_HYPERVISOR;
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION,
			  KVM_CAP_TSC_DEADLINE_TIMER) > 0)
			e->ecx |= KD_CPUID_ECX_TSC_DEADLINE;
	}
	vm->cpuid = c;
	return 0;
}

static int kd_fetch_msr_index(struct kd_vm *vm)
{
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + KD_MAX_MSRS * sizeof(uint32_t));
	int r;

	if (!l)
		return -ENOMEM;
	l->nmsrs = KD_MAX_MSRS;
	r = kd_ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l);
	if (r < 0) {
		free(l);
		return r;
	}
	vm->msr_index = malloc(l->nmsrs * sizeof(uint32_t));
	if (!vm->msr_index) {
		free(l);
		return -ENOMEM;
	}
	memcpy(vm->msr_index, l->indices, l->nmsrs * sizeof(uint32_t));
	vm->nmsrs = l->nmsrs;
	free(l);
	return 0;
}

int kd_vm_create(int kvm_fd, struct kd_vm **out)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = KD_IDENTITY_MAP_ADDR;
	struct kd_vm *vm;
	int r;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->kvm_fd = kvm_fd;
	vm->run_size = kd_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		r = vm->run_size < 0 ? vm->run_size : -EINVAL;
		goto out_free;
	}
	r = kd_ioctl(kvm_fd, KVM_CREATE_VM, (void *)0);
	if (r < 0)
		goto out_free;
	vm->vm_fd = r;
	r = kd_ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	if (r < 0)
		goto out_close;
	r = kd_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)KD_TSS_ADDR);
	if (r < 0)
		goto out_close;
	r = kd_ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (r < 0)
		goto out_close;
	r = kd_ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit);
	if (r < 0)
		goto out_close;
	r = kd_fetch_cpuid(vm);
	if (r < 0)
		goto out_close;
	r = kd_fetch_msr_index(vm);
	if (r < 0) {
		free(vm->cpuid);
		goto out_close;
	}
	*out = vm;
	return 0;

out_close:
	close(vm->vm_fd);
out_free:
	free(vm);
	return r;
}

void kd_vm_destroy(struct kd_vm *vm)
{
	if (!vm)
		return;
	close(vm->vm_fd);
	free(vm->cpuid);
	free(vm->msr_index);
	free(vm);
}

int kd_vm_set_memory(struct kd_vm *vm, unsigned slot, uint64_t gpa,
		     uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return kd_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
}

int kd_vm_set_memory_flags(struct kd_vm *vm, unsigned slot, uint64_t gpa,
			   uint64_t size, void *hva, uint32_t flags)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return kd_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
}

int kd_vm_get_dirty_log(struct kd_vm *vm, unsigned slot, uint64_t *bitmap)
{
	struct kvm_dirty_log d = { .slot = slot, .dirty_bitmap = bitmap };

	return kd_ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &d);
}

int kd_vm_irqfd(struct kd_vm *vm, int fd, unsigned gsi, int resample_fd)
{
	struct kvm_irqfd i = { .fd = (uint32_t)fd, .gsi = gsi };

	if (resample_fd >= 0) {
		i.flags = KVM_IRQFD_FLAG_RESAMPLE;
		i.resamplefd = (uint32_t)resample_fd;
	}
	return kd_ioctl(vm->vm_fd, KVM_IRQFD, &i);
}

int kd_vm_irqfd_remove(struct kd_vm *vm, int fd, unsigned gsi)
{
	struct kvm_irqfd i = {
		.fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN
	};

	return kd_ioctl(vm->vm_fd, KVM_IRQFD, &i);
}

int kd_vm_ioeventfd(struct kd_vm *vm, int fd, uint64_t addr, unsigned len,
		    bool pio)
{
	struct kvm_ioeventfd e = {
		.addr = addr, .len = len, .fd = fd,
		.flags = pio ? KVM_IOEVENTFD_FLAG_PIO : 0,
	};

	return kd_ioctl(vm->vm_fd, KVM_IOEVENTFD, &e);
}

int kd_vm_irq_line(struct kd_vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level };

	return kd_ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

int kd_vcpu_create(struct kd_vm *vm, unsigned id, struct kd_vcpu **out)
{
	struct kd_vcpu *v;
	void *run;
	int r;

	if (id >= KD_MAX_VCPUS)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->id = id;
	r = kd_ioctl(vm->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
	if (r < 0)
		goto out_free;
	v->fd = r;
	run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED) {
		r = -errno;
		goto out_close;
	}
	v->run = run;
	*out = v;
	return 0;

out_close:
	close(v->fd);
out_free:
	free(v);
	return r;
}

void kd_vcpu_destroy(struct kd_vcpu *v)
{
	if (!v)
		return;
	munmap(v->run, (size_t)v->vm->run_size);
	close(v->fd);
	free(v);
}

int kd_vcpu_set_cpuid(struct kd_vcpu *v)
{
	const struct kvm_cpuid2 *src = v->vm->cpuid;
	size_t size = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	int r;

	if (!c)
		return -ENOMEM;
	memcpy(c, src, size);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		/* Initial APIC id in EBX[31:24] of leaf 1, x2APIC id in 0xb. */
		if (e->function == KD_CPUID_LEAF_FEATURES)
			e->ebx = (e->ebx & KD_CPUID_EBX_OTHER) |
				 (v->id << KD_CPUID_APIC_ID_SHIFT);
		else if (e->function == KD_CPUID_LEAF_TOPOLOGY ||
			 e->function == KD_CPUID_LEAF_TOPOLOGY_V2)
			e->edx = v->id;
	}
	r = kd_ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	return r;
}

int kd_vcpu_get_regs(struct kd_vcpu *v, struct kvm_regs *r)
{
	return kd_ioctl(v->fd, KVM_GET_REGS, r);
}

int kd_vcpu_set_regs(struct kd_vcpu *v, const struct kvm_regs *r)
{
	return kd_ioctl(v->fd, KVM_SET_REGS, (void *)r);
}

int kd_vcpu_get_sregs(struct kd_vcpu *v, struct kvm_sregs *s)
{
	return kd_ioctl(v->fd, KVM_GET_SREGS, s);
}

int kd_vcpu_set_sregs(struct kd_vcpu *v, const struct kvm_sregs *s)
{
	return kd_ioctl(v->fd, KVM_SET_SREGS, (void *)s);
}

int kd_vcpu_get_mp_state(struct kd_vcpu *v, uint32_t *state)
{
	struct kvm_mp_state mp;
	int r = kd_ioctl(v->fd, KVM_GET_MP_STATE, &mp);

	if (r == 0)
		*state = mp.mp_state;
	return r;
}

int kd_vcpu_set_mp_state(struct kd_vcpu *v, uint32_t state)
{
	struct kvm_mp_state mp = { .mp_state = state };

	return kd_ioctl(v->fd, KVM_SET_MP_STATE, &mp);
}

int kd_vcpu_get_fpu(struct kd_vcpu *v, struct kvm_fpu *f)
{
	return kd_ioctl(v->fd, KVM_GET_FPU, f);
}

int kd_vcpu_set_fpu(struct kd_vcpu *v, const struct kvm_fpu *f)
{
	return kd_ioctl(v->fd, KVM_SET_FPU, (void *)f);
}

int kd_vcpu_get_lapic(struct kd_vcpu *v, struct kvm_lapic_state *l)
{
	return kd_ioctl(v->fd, KVM_GET_LAPIC, l);
}

int kd_vcpu_set_lapic(struct kd_vcpu *v, const struct kvm_lapic_state *l)
{
	return kd_ioctl(v->fd, KVM_SET_LAPIC, (void *)l);
}

int kd_vcpu_get_events(struct kd_vcpu *v, struct kvm_vcpu_events *e)
{
	return kd_ioctl(v->fd, KVM_GET_VCPU_EVENTS, e);
}

int kd_vcpu_set_events(struct kd_vcpu *v, const struct kvm_vcpu_events *e)
{
	return kd_ioctl(v->fd, KVM_SET_VCPU_EVENTS, (void *)e);
}

int kd_vcpu_get_xsave(struct kd_vcpu *v, struct kvm_xsave *x)
{
	return kd_ioctl(v->fd, KVM_GET_XSAVE, x);
}

int kd_vcpu_set_xsave(struct kd_vcpu *v, const struct kvm_xsave *x)
{
	return kd_ioctl(v->fd, KVM_SET_XSAVE, (void *)x);
}

int kd_vcpu_get_xcrs(struct kd_vcpu *v, struct kvm_xcrs *x)
{
	return kd_ioctl(v->fd, KVM_GET_XCRS, x);
}

int kd_vcpu_set_xcrs(struct kd_vcpu *v, const struct kvm_xcrs *x)
{
	/* On a host without XSAVE, KVM_GET_XCRS gives none and KVM_SET_XCRS
	 * fails with EINVAL whatever it is given: nothing to set. */
	if (x->nr_xcrs == 0)
		return 0;
	return kd_ioctl(v->fd, KVM_SET_XCRS, (void *)x);
}

int kd_vcpu_get_debugregs(struct kd_vcpu *v, struct kvm_debugregs *d)
{
	return kd_ioctl(v->fd, KVM_GET_DEBUGREGS, d);
}

int kd_vcpu_set_debugregs(struct kd_vcpu *v, const struct kvm_debugregs *d)
{
	return kd_ioctl(v->fd, KVM_SET_DEBUGREGS, (void *)d);
}

/* struct kvm_msrs with room for n entries. */
static struct kvm_msrs *kd_msrs_alloc(unsigned n)
{
	return calloc(1, sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry));
}

int kd_vcpu_get_msrs(struct kd_vcpu *v, const uint32_t *index,
		     struct kvm_msr_entry *out, unsigned *n)
{
	struct kvm_msrs *m = kd_msrs_alloc(1);
	unsigned got = 0;

	if (!m)
		return -ENOMEM;
	/* One at a time: KVM stops a bulk read at the first index it
	 * refuses, and this runs only when saving. */
	for (unsigned i = 0; i < *n; i++) {
		m->nmsrs = 1;
		m->entries[0] = (struct kvm_msr_entry){ .index = index[i] };
		if (kd_ioctl(v->fd, KVM_GET_MSRS, m) == 1)
			out[got++] = m->entries[0];
	}
	free(m);
	*n = got;
	return 0;
}

int kd_vcpu_set_msrs(struct kd_vcpu *v, const struct kvm_msr_entry *in,
		     unsigned n)
{
	struct kvm_msrs *m = kd_msrs_alloc(n);
	int r;

	if (!m)
		return -ENOMEM;
	m->nmsrs = n;
	memcpy(m->entries, in, n * sizeof(*in));
	r = kd_ioctl(v->fd, KVM_SET_MSRS, m);
	free(m);
	if (r >= 0 && (unsigned)r != n)
		return -EINVAL;  /* KVM refused entry r */
	return r < 0 ? r : 0;
}

int kd_vcpu_kvmclock_ctrl(struct kd_vcpu *v)
{
	return kd_ioctl(v->fd, KVM_KVMCLOCK_CTRL, NULL);
}

int kd_vm_get_irqchip(struct kd_vm *vm, struct kvm_irqchip *c)
{
	return kd_ioctl(vm->vm_fd, KVM_GET_IRQCHIP, c);
}

int kd_vm_set_irqchip(struct kd_vm *vm, const struct kvm_irqchip *c)
{
	return kd_ioctl(vm->vm_fd, KVM_SET_IRQCHIP, (void *)c);
}

int kd_vm_get_pit(struct kd_vm *vm, struct kvm_pit_state2 *p)
{
	return kd_ioctl(vm->vm_fd, KVM_GET_PIT2, p);
}

int kd_vm_set_pit(struct kd_vm *vm, const struct kvm_pit_state2 *p)
{
	return kd_ioctl(vm->vm_fd, KVM_SET_PIT2, (void *)p);
}

int kd_vm_set_pit_reinject(struct kd_vm *vm, bool reinject)
{
	struct kvm_reinject_control c = { .pit_reinject = reinject ? 1 : 0 };

	return kd_ioctl(vm->vm_fd, KVM_REINJECT_CONTROL, &c);
}

int kd_vm_get_clock(struct kd_vm *vm, struct kvm_clock_data *c)
{
	return kd_ioctl(vm->vm_fd, KVM_GET_CLOCK, c);
}

int kd_vm_set_clock(struct kd_vm *vm, const struct kvm_clock_data *c)
{
	return kd_ioctl(vm->vm_fd, KVM_SET_CLOCK, (void *)c);
}

int kd_vcpu_run(struct kd_vcpu *v)
{
	return kd_ioctl(v->fd, KVM_RUN, NULL);
}

static void kd_seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type,
			bool code32)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = KD_SEG_LIMIT_FLAT, .selector = sel,
		.type = type,
		.present = 1, .dpl = 0, .db = code32, .s = 1, .l = 0, .g = 1,
	};
}

int kd_vcpu_setup_prot32(struct kd_vcpu *v, uint32_t eip)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int err = kd_vcpu_get_sregs(v, &s);

	if (err < 0)
		return err;
	/* Multiboot: CS a flat 32-bit execute/read segment, the rest flat data. */
	kd_seg_flat(&s.cs, KD_PROT32_CS, KD_SEG_CODE_XRA, true);
	kd_seg_flat(&s.ds, KD_PROT32_DS, KD_SEG_DATA_RWA, true);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.cr0 = (s.cr0 | KD_CR0_PE) & ~KD_CR0_PG;
	s.cr4 = 0;
	s.efer = 0;
	err = kd_vcpu_set_sregs(v, &s);
	if (err < 0)
		return err;
	err = kd_vcpu_get_regs(v, &r);
	if (err < 0)
		return err;
	r.rip = eip;
	r.rflags = KD_RFLAGS_BOOT;  /* IF and VM clear */
	return kd_vcpu_set_regs(v, &r);
}

int kd_vcpu_setup_long64(struct kd_vcpu *v, uint64_t rip, uint64_t cr3,
			 uint64_t gdt_base, uint16_t gdt_limit)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int err = kd_vcpu_get_sregs(v, &s);

	if (err < 0)
		return err;
	/* CS: execute/read, accessed, L=1 (D must be 0); the rest flat data. */
	kd_seg_flat(&s.cs, KD_LONG64_CS, KD_SEG_CODE_XRA, false);
	s.cs.l = 1;
	kd_seg_flat(&s.ds, KD_LONG64_DS, KD_SEG_DATA_RWA, true);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = gdt_base;
	s.gdt.limit = gdt_limit;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = KD_CR0_PE | KD_CR0_ET | KD_CR0_PG;
	s.cr3 = cr3;
	s.cr4 = KD_CR4_PAE;
	s.efer = KD_EFER_LME | KD_EFER_LMA;
	err = kd_vcpu_set_sregs(v, &s);
	if (err < 0)
		return err;
	/* Every general register 0; the caller sets what the protocol passes. */
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.rflags = KD_RFLAGS_BOOT;  /* IF clear */
	return kd_vcpu_set_regs(v, &r);
}

int kd_vcpu_setup_real(struct kd_vcpu *v, uint16_t seg, uint16_t ip)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int err = kd_vcpu_get_sregs(v, &s);

	if (err < 0)
		return err;
	s.cs.selector = seg;
	s.cs.base = (uint64_t)seg << 4;
	s.ds.selector = s.es.selector = s.fs.selector = 0;
	s.gs.selector = s.ss.selector = 0;
	s.ds.base = s.es.base = s.fs.base = s.gs.base = s.ss.base = 0;
	err = kd_vcpu_set_sregs(v, &s);
	if (err < 0)
		return err;
	err = kd_vcpu_get_regs(v, &r);
	if (err < 0)
		return err;
	r.rip = ip;
	r.rflags = KD_RFLAGS_BOOT;
	return kd_vcpu_set_regs(v, &r);
}
