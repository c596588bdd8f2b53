/* SPDX-License-Identifier: MIT */
/*
 * kdriver: the only code in Bulkhead that issues KVM ioctls.
 *
 * System-level calls (kd_sys_*) are made by the broker on /dev/kvm; VM and
 * vCPU calls by the worker, which creates its own VM from the /dev/kvm fd it
 * was handed (KVM binds a VM to the process that created it).
 */
#ifndef BULKHEAD_KD_H
#define BULKHEAD_KD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#define KD_MAX_VCPUS 16u

/* Open /dev/kvm (or path) read-write, close-on-exec. Returns fd or -errno. */
int kd_sys_open(const char *path);
/*
 * Check the API version and every capability Bulkhead relies on. On failure
 * returns -ENOTSUP (or another -errno) and names what is missing in err.
 */
int kd_sys_check(int kvm_fd, char *err, size_t errlen);
/* Recommended vCPU count (KVM_CAP_NR_VCPUS), at least 1. */
int kd_sys_nr_vcpus(int kvm_fd);

struct kd_vm {
	int kvm_fd;
	int vm_fd;
	int run_size;                 /* mmap size of struct kvm_run */
	struct kvm_cpuid2 *cpuid;     /* supported CPUID, fetched once */
	uint32_t *msr_index;          /* MSRs to save and restore */
	unsigned nmsrs;
};

#define KD_MAX_MSRS 512u

struct kd_vcpu {
	struct kd_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
};

/*
 * Create a VM on kvm_fd with an in-kernel irqchip (PIC, IOAPIC, LAPIC) and
 * PIT, the TSS and identity-map pages placed just below 4 GiB.
 */
int kd_vm_create(int kvm_fd, struct kd_vm **out);
void kd_vm_destroy(struct kd_vm *vm);
/* Map [gpa, gpa + size) of guest memory to hva. */
int kd_vm_set_memory(struct kd_vm *vm, unsigned slot, uint64_t gpa,
		     uint64_t size, void *hva);
/* The same with KVM_MEM_* flags (KVM_MEM_LOG_DIRTY_PAGES for live save). */
int kd_vm_set_memory_flags(struct kd_vm *vm, unsigned slot, uint64_t gpa,
			   uint64_t size, void *hva, uint32_t flags);
/* Fetch and clear the slot's dirty-page bitmap (one bit per 4 KiB page,
 * bitmap holding at least npages bits rounded up to 64). */
int kd_vm_get_dirty_log(struct kd_vm *vm, unsigned slot, uint64_t *bitmap);
/* Bind eventfd fd to GSI gsi; resample_fd >= 0 for a level-triggered line. */
int kd_vm_irqfd(struct kd_vm *vm, int fd, unsigned gsi, int resample_fd);
int kd_vm_irqfd_remove(struct kd_vm *vm, int fd, unsigned gsi);
/* Signal fd on guest writes of len bytes at addr (port I/O or MMIO). */
int kd_vm_ioeventfd(struct kd_vm *vm, int fd, uint64_t addr, unsigned len,
		    bool pio);
/* Drive the in-kernel interrupt controllers' line gsi (KVM_IRQ_LINE). */
int kd_vm_irq_line(struct kd_vm *vm, unsigned gsi, bool level);

int kd_vcpu_create(struct kd_vm *vm, unsigned id, struct kd_vcpu **out);
void kd_vcpu_destroy(struct kd_vcpu *v);
/* Give the vCPU the host-supported CPUID with its own APIC id filled in. */
int kd_vcpu_set_cpuid(struct kd_vcpu *v);
int kd_vcpu_get_regs(struct kd_vcpu *v, struct kvm_regs *r);
int kd_vcpu_set_regs(struct kd_vcpu *v, const struct kvm_regs *r);
int kd_vcpu_get_sregs(struct kd_vcpu *v, struct kvm_sregs *s);
int kd_vcpu_set_sregs(struct kd_vcpu *v, const struct kvm_sregs *s);
int kd_vcpu_get_mp_state(struct kd_vcpu *v, uint32_t *state);
int kd_vcpu_set_mp_state(struct kd_vcpu *v, uint32_t state);
int kd_vcpu_get_fpu(struct kd_vcpu *v, struct kvm_fpu *f);
int kd_vcpu_set_fpu(struct kd_vcpu *v, const struct kvm_fpu *f);
int kd_vcpu_get_lapic(struct kd_vcpu *v, struct kvm_lapic_state *l);
int kd_vcpu_set_lapic(struct kd_vcpu *v, const struct kvm_lapic_state *l);
int kd_vcpu_get_events(struct kd_vcpu *v, struct kvm_vcpu_events *e);
int kd_vcpu_set_events(struct kd_vcpu *v, const struct kvm_vcpu_events *e);
int kd_vcpu_get_xsave(struct kd_vcpu *v, struct kvm_xsave *x);
int kd_vcpu_set_xsave(struct kd_vcpu *v, const struct kvm_xsave *x);
int kd_vcpu_get_xcrs(struct kd_vcpu *v, struct kvm_xcrs *x);
int kd_vcpu_set_xcrs(struct kd_vcpu *v, const struct kvm_xcrs *x);
int kd_vcpu_get_debugregs(struct kd_vcpu *v, struct kvm_debugregs *d);
int kd_vcpu_set_debugregs(struct kd_vcpu *v, const struct kvm_debugregs *d);
/*
 * MSRs: the indices KVM saves and restores (KVM_GET_MSR_INDEX_LIST, fetched
 * at VM creation into vm->msr_index), and bulk get/set. kd_vcpu_get_msrs
 * reads every index it can: *n is updated to the number read (indices that
 * KVM refuses for this vCPU are left out).
 */
int kd_vcpu_get_msrs(struct kd_vcpu *v, const uint32_t *index,
		     struct kvm_msr_entry *out, unsigned *n);
int kd_vcpu_set_msrs(struct kd_vcpu *v, const struct kvm_msr_entry *in,
		     unsigned n);
/* Tell KVM the vCPU is going to be paused for a while (kvmclock). */
int kd_vcpu_kvmclock_ctrl(struct kd_vcpu *v);

/* In-kernel PIC (chip 0 master, 1 slave) and IOAPIC (chip 2), and PIT. */
int kd_vm_get_irqchip(struct kd_vm *vm, struct kvm_irqchip *c);
int kd_vm_set_irqchip(struct kd_vm *vm, const struct kvm_irqchip *c);
int kd_vm_get_pit(struct kd_vm *vm, struct kvm_pit_state2 *p);
int kd_vm_set_pit(struct kd_vm *vm, const struct kvm_pit_state2 *p);
/*
 * Whether the in-kernel PIT delivers ticks the guest missed (KVM's default,
 * "reinject") or drops them. Switching costs an SRCU grace period in the
 * kernel, as does KVM's switch back when the VM is destroyed.
 */
int kd_vm_set_pit_reinject(struct kd_vm *vm, bool reinject);
int kd_vm_get_clock(struct kd_vm *vm, struct kvm_clock_data *c);
int kd_vm_set_clock(struct kd_vm *vm, const struct kvm_clock_data *c);

/* Ask a vCPU to leave KVM_RUN as soon as possible (any thread). */
static inline void kd_vcpu_request_exit(struct kd_vcpu *v, bool on)
{
	__atomic_store_n(&v->run->immediate_exit, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

/*
 * Enter the guest once (KVM_RUN). Returns 0 with v->run->exit_reason set,
 * -EINTR when kicked out by a signal or immediate_exit, or -errno.
 */
int kd_vcpu_run(struct kd_vcpu *v);

/*
 * Set up a vCPU for entry in real mode at seg:ip, or in flat 32-bit
 * protected mode (paging off) at eip, the state multiboot prescribes.
 */
int kd_vcpu_setup_real(struct kd_vcpu *v, uint16_t seg, uint16_t ip);
int kd_vcpu_setup_prot32(struct kd_vcpu *v, uint32_t eip);
/*
 * Set up a vCPU for entry in 64-bit long mode at rip, the state of the
 * Linux 64-bit boot protocol: paging on with the page tables at cr3 (which
 * must map rip), CS = 0x10 (flat 64-bit code), DS/ES/FS/GS/SS = 0x18 (flat
 * data), the GDT at gdt_base holding those two descriptors, no IDT,
 * interrupts off.
 */
int kd_vcpu_setup_long64(struct kd_vcpu *v, uint64_t rip, uint64_t cr3,
			 uint64_t gdt_base, uint16_t gdt_limit);

#endif
