/* SPDX-License-Identifier: MIT */
/*
 * Saved state gathered across processes: the worker writes its own units
 * (the VM's shape, the boot image, one per vCPU, the in-kernel irqchip and
 * PIT, the KVM clock, guest RAM) and fetches one unit from each device
 * process over its channel; loading hands each device unit back.
 *
 * Units (name, version 1 each; docs/saved-state.md lists every field):
 *   vm       vCPU count, RAM size, the device set (kind, instance)
 *   boot     image, initrd, command line, boot state (so reset works)
 *   cpu[i]   regs, sregs, xsave, xcrs, LAPIC, events, debug registers,
 *            MP state, MSRs
 *   irqchip  PIC master, PIC slave, IOAPIC
 *   pit      the PIT
 *   clock    the KVM clock
 *   ram      runs of pages: {u64 first page, u32 count, pages...}, ended by
 *            a run of count 0
 *   <kind>[instance]  a device: u64 virtual clock, u32 size, its protobuf
 *
 * The stream is hostile on load: every count and size is checked against
 * this VM's configuration before use, and nothing runs until the whole
 * stream, directory and footer included, has been verified.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.pb-c.h"
#include "emt-worker/save.h"
#include "emt-worker/vmapi.h"
#include "emt-worker/ssm.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

#define SAVE_UNIT_VERSION 1u
#define SAVE_DEV_TIMEOUT_MS 5000
#define SAVE_MAX_DEV_STATE (1u << 20)
#define SAVE_PAGE 4096u

/* ---- writing ------------------------------------------------------------ */

struct save_sink {
	int fd;
	uint64_t bytes;
	int write_errno;        /* the first failed write's */
};

static int save_write(void *ctx, const void *buf, size_t len)
{
	struct save_sink *s = ctx;
	int r = ssm_fd_write(&s->fd, buf, len);

	if (r == 0)
		s->bytes += len;
	else if (!s->write_errno)
		s->write_errno = -r;
	return r;
}

/* A fixed-size kernel structure, with its size so a reader can check it. */
static int save_put_blob(struct ssm_writer *w, const void *p, size_t len)
{
	int r = ssm_put_u32(w, (uint32_t)len);

	return r < 0 ? r : ssm_put_bytes(w, p, len);
}

static int save_unit_vm(struct emt_vm *vm, struct ssm_writer *w)
{
	int r = ssm_unit_begin(w, "vm", 0, SAVE_UNIT_VERSION, SSM_PASS_FINAL);

	if (r < 0)
		return r;
	ssm_put_u32(w, vm->ncpus);
	ssm_put_u64(w, vm->ram_size);
	ssm_put_u32(w, vm->ndevs);
	for (unsigned i = 0; i < vm->ndevs; i++) {
		ssm_put_str(w, vm->devs[i].kind);
		ssm_put_u32(w, vm->devs[i].instance);
	}
	return ssm_unit_end(w);
}

static int save_unit_boot(struct emt_vm *vm, struct ssm_writer *w)
{
	const struct emt_boot *b = &vm->boot;
	int r = ssm_unit_begin(w, "boot", 0, SAVE_UNIT_VERSION, SSM_PASS_FINAL);

	if (r < 0)
		return r;
	ssm_put_u64(w, vm->image_len);
	ssm_put_bytes(w, vm->image, vm->image_len);
	ssm_put_u64(w, vm->initrd_len);
	ssm_put_bytes(w, vm->initrd, vm->initrd_len);
	ssm_put_str(w, vm->cmdline ? vm->cmdline : "");
	ssm_put_u32(w, (uint32_t)b->kind);
	ssm_put_u32(w, (uint32_t)b->mode);
	ssm_put_u64(w, b->rip);
	ssm_put_u64(w, b->rax);
	ssm_put_u64(w, b->rbx);
	ssm_put_u64(w, b->rdx);
	ssm_put_u64(w, b->rsp);
	ssm_put_u64(w, b->image_end);
	return ssm_unit_end(w);
}

/* Everything a guest can observe of one vCPU. */
struct save_cpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	uint32_t mp_state;
	unsigned nmsrs;
	struct kvm_msr_entry msrs[KD_MAX_MSRS];
};

static int save_unit_cpu(struct emt_vm *vm, unsigned i, struct ssm_writer *w,
			 struct save_cpu *c)
{
	struct kd_vcpu *v = vm->vcpus[i].kv;
	int r;

	c->nmsrs = vm->kvm->nmsrs;
	if ((r = kd_vcpu_get_regs(v, &c->regs)) < 0 ||
	    (r = kd_vcpu_get_sregs(v, &c->sregs)) < 0 ||
	    (r = kd_vcpu_get_xsave(v, &c->xsave)) < 0 ||
	    (r = kd_vcpu_get_xcrs(v, &c->xcrs)) < 0 ||
	    (r = kd_vcpu_get_lapic(v, &c->lapic)) < 0 ||
	    (r = kd_vcpu_get_events(v, &c->events)) < 0 ||
	    (r = kd_vcpu_get_debugregs(v, &c->debugregs)) < 0 ||
	    (r = kd_vcpu_get_mp_state(v, &c->mp_state)) < 0 ||
	    (r = kd_vcpu_get_msrs(v, vm->kvm->msr_index, c->msrs, &c->nmsrs)) < 0)
		return r;
	r = ssm_unit_begin(w, "cpu", i, SAVE_UNIT_VERSION, SSM_PASS_FINAL);
	if (r < 0)
		return r;
	save_put_blob(w, &c->regs, sizeof(c->regs));
	save_put_blob(w, &c->sregs, sizeof(c->sregs));
	save_put_blob(w, &c->xsave, sizeof(c->xsave));
	save_put_blob(w, &c->xcrs, sizeof(c->xcrs));
	save_put_blob(w, &c->lapic, sizeof(c->lapic));
	save_put_blob(w, &c->events, sizeof(c->events));
	save_put_blob(w, &c->debugregs, sizeof(c->debugregs));
	ssm_put_u32(w, c->mp_state);
	ssm_put_u32(w, c->nmsrs);
	for (unsigned k = 0; k < c->nmsrs; k++) {
		ssm_put_u32(w, c->msrs[k].index);
		ssm_put_u64(w, c->msrs[k].data);
	}
	return ssm_unit_end(w);
}

static int save_unit_platform(struct emt_vm *vm, struct ssm_writer *w)
{
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };
	int r;

	r = ssm_unit_begin(w, "irqchip", 0, SAVE_UNIT_VERSION, SSM_PASS_FINAL);
	for (unsigned i = 0; r == 0 && i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;
		r = kd_vm_get_irqchip(vm->kvm, &chip);
		if (r == 0)
			r = save_put_blob(w, &chip, sizeof(chip));
	}
	if (r == 0)
		r = ssm_unit_end(w);
	if (r == 0)
		r = kd_vm_get_pit(vm->kvm, &pit);
	if (r == 0)
		r = ssm_unit_begin(w, "pit", 0, SAVE_UNIT_VERSION, SSM_PASS_FINAL);
	if (r == 0)
		r = save_put_blob(w, &pit, sizeof(pit));
	if (r == 0)
		r = ssm_unit_end(w);
	if (r == 0)
		r = kd_vm_get_clock(vm->kvm, &clock);
	if (r == 0)
		r = ssm_unit_begin(w, "clock", 0, SAVE_UNIT_VERSION, SSM_PASS_FINAL);
	if (r == 0)
		r = ssm_put_u64(w, clock.clock);
	if (r == 0)
		r = ssm_unit_end(w);
	return r;
}

static bool save_bit(const uint64_t *bm, uint64_t p)
{
	return (bm[p / 64] >> (p % 64)) & 1;
}

/*
 * Where the next page with data is, at or after page p: guest RAM is a
 * memfd, and pages the guest never touched are holes in it. Reading a hole
 * through the mapping would allocate it (shmem has no shared zero page),
 * so a save skips them: a restore starts from an empty memfd. Returns n
 * when there is no data left; p itself when the memfd cannot tell.
 */
static uint64_t save_next_data(struct emt_vm *vm, uint64_t p, uint64_t n)
{
	off_t d = lseek(vm->ram_fd, (off_t)(p * SAVE_PAGE), SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? n : p;
	return (uint64_t)d / SAVE_PAGE;
}

/* The end of the data that starts at page p (the next hole). */
static uint64_t save_data_end(struct emt_vm *vm, uint64_t p, uint64_t n)
{
	off_t h = lseek(vm->ram_fd, (off_t)(p * SAVE_PAGE), SEEK_HOLE);
	uint64_t e;

	if (h < 0)
		return n;
	e = ((uint64_t)h + SAVE_PAGE - 1) / SAVE_PAGE;
	return e > p && e < n ? e : n;
}

/*
 * One pass of unit "ram": the pages set in bm (all of them when bm is
 * NULL, less the holes of the memfd), as runs of consecutive pages.
 */
static int save_ram_pass(struct emt_vm *vm, struct ssm_writer *w,
			 uint32_t pass, const uint64_t *bm, uint64_t *pages)
{
	uint64_t n = vm->ram_size / SAVE_PAGE, p = 0, data_end = 0;
	int r = ssm_unit_begin(w, "ram", 0, SAVE_UNIT_VERSION, pass);

	while (r == 0 && p < n) {
		uint64_t first, count;

		if (!bm && p >= data_end) {
			p = save_next_data(vm, p, n);
			if (p >= n)
				break;
			data_end = save_data_end(vm, p, n);
		}
		if (bm && !save_bit(bm, p)) {
			p++;
			continue;
		}
		first = p;
		while (p < n && (bm ? save_bit(bm, p) : p < data_end) &&
		       p - first < UINT32_MAX)
			p++;
		count = p - first;
		ssm_put_u64(w, first);
		r = ssm_put_u32(w, (uint32_t)count);
		if (r == 0)
			r = ssm_put_pages(w, vm->ram + first * SAVE_PAGE, count);
		*pages += count;
	}
	if (r < 0)
		return r;
	ssm_put_u64(w, 0);
	ssm_put_u32(w, 0);  /* end of runs */
	return ssm_unit_end(w);
}

/* Ask a device for its state (and, dirty = 2, the pages it wrote). */
static int save_fetch_device(struct emt_vm *vm, struct emt_dev *d,
			     uint32_t dirty, DevStateData **out, char *err,
			     size_t errlen)
{
	DevSaveReq req = DEV_SAVE_REQ__INIT;
	int r;

	req.dirty = dirty;
	r = emt_dev_call(vm, d, MSG_DEV_SAVE, &req.base, MSG_DEV_SAVE_DATA,
			 SAVE_DEV_TIMEOUT_MS, out);
	if (r == 0 && (*out)->status < 0)
		r = (*out)->status;
	if (r == 0 && (*out)->state.len > SAVE_MAX_DEV_STATE)
		r = -E2BIG;
	if (r < 0) {
		snprintf(err, errlen, "device %s could not save its state: %s",
			 d->label, strerror(-r));
		if (*out)
			dev_state_data__free_unpacked(*out, NULL);
		*out = NULL;
	}
	return r;
}

/* Fold a device's reported DMA pages into bm (false: it wrote too many). */
static bool save_add_dirty_runs(struct emt_vm *vm, const DevStateData *st,
				uint64_t *bm)
{
	uint64_t n = vm->ram_size / SAVE_PAGE, budget = n;

	if (st->dirty_all)
		return false;
	for (size_t i = 0; i + 1 < st->n_dirty_runs; i += 2) {
		uint64_t first = st->dirty_runs[i], count = st->dirty_runs[i + 1];

		if (first >= n)
			continue;
		if (count > n - first)
			count = n - first;
		/* A hostile device could name all of RAM in every run: past
		 * one RAM's worth of pages, send everything instead. */
		if (count > budget)
			return false;
		budget -= count;
		for (uint64_t p = first; p < first + count; p++)
			bm[p / 64] |= 1ull << (p % 64);
	}
	return true;
}

static int save_unit_device(struct emt_dev *d, const DevStateData *st,
			    struct ssm_writer *w)
{
	int r = ssm_unit_begin(w, d->kind, d->instance, st->version,
			       SSM_PASS_FINAL);

	if (r == 0)
		r = ssm_put_u64(w, st->clock_ns);
	if (r == 0)
		r = ssm_put_u32(w, (uint32_t)st->state.len);
	if (r == 0)
		r = ssm_put_bytes(w, st->state.data, st->state.len);
	if (r == 0)
		r = ssm_unit_end(w);
	return r;
}

static uint64_t save_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What a save carries between its steps. */
struct save_run {
	struct emt_vm *vm;
	struct save_sink sink;
	struct ssm_writer *w;
	uint64_t *dirty;             /* live: pages to send in the next pass */
	size_t words;
	DevStateData *dev[EMT_MAX_DEVICES];
	struct emt_save_result *res;
	char *err;
	size_t errlen;
	bool logging;                /* live: dirty logging is on */
	uint64_t t_down;             /* when the guest stopped */
};

static int save_fail(struct save_run *sr, int r, const char *what)
{
	if (!sr->err[0])
		snprintf(sr->err, sr->errlen, "cannot save the VM (%s): %s%s%s",
			 what, strerror(-r),
			 sr->w && ssm_writer_error(sr->w)[0] ? ": " : "",
			 sr->w ? ssm_writer_error(sr->w) : "");
	return r;
}

/*
 * The units written with the VM in SAVING: vCPUs, platform, the last RAM
 * pass (everything, or for a live save what is still dirty), devices.
 */
static int save_final(struct save_run *sr, bool live)
{
	struct emt_vm *vm = sr->vm;
	struct save_cpu *cpu = malloc(sizeof(*cpu));
	bool all = !live;
	int r = 0;

	if (!cpu)
		return -ENOMEM;
	/* Devices first: a live save needs the pages their DMA wrote. */
	for (unsigned i = 0; r == 0 && i < vm->ndevs; i++) {
		r = save_fetch_device(vm, &vm->devs[i], live ? 2 : 0, &sr->dev[i],
				      sr->err, sr->errlen);
		if (r == 0 && live && !save_add_dirty_runs(vm, sr->dev[i],
							   sr->dirty))
			all = true;
	}
	if (r == 0 && live) {
		uint64_t *now = calloc(sr->words, 8);

		r = now ? kd_vm_get_dirty_log(vm->kvm, 0, now) : -ENOMEM;
		for (size_t k = 0; r == 0 && k < sr->words; k++)
			sr->dirty[k] |= now[k];
		free(now);
		if (r < 0)
			save_fail(sr, r, "dirty log");
	}
	if (r == 0) {
		r = save_ram_pass(vm, sr->w, SSM_PASS_FINAL,
				  all ? NULL : sr->dirty, &sr->res->pages);
		sr->res->passes++;
		if (r < 0)
			save_fail(sr, r, "RAM");
	}
	for (unsigned i = 0; r == 0 && i < vm->ncpus; i++) {
		r = save_unit_cpu(vm, i, sr->w, cpu);
		if (r < 0)
			save_fail(sr, r, "vCPU");
	}
	if (r == 0 && (r = save_unit_platform(vm, sr->w)) < 0)
		save_fail(sr, r, "irqchip, PIT or clock");
	for (unsigned i = 0; r == 0 && i < vm->ndevs; i++) {
		r = save_unit_device(&vm->devs[i], sr->dev[i], sr->w);
		if (r < 0)
			save_fail(sr, r, vm->devs[i].label);
	}
	free(cpu);
	return r;
}

static uint64_t save_popcount(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;

	for (size_t k = 0; k < words; k++)
		n += (uint64_t)__builtin_popcountll(bm[k]);
	return n;
}

#define SAVE_LIVE_MAX_PASSES 30

/*
 * The live part: RAM copied while the guest runs (RUNNING_LS), pass after
 * pass of what it dirtied, until what is left fits the downtime budget at
 * the rate the last pass achieved.
 */
static int save_live_passes(struct save_run *sr, unsigned max_downtime_ms)
{
	struct emt_vm *vm = sr->vm;
	double pages_per_ms = 0;
	int r;

	for (unsigned i = 0; i < vm->ndevs; i++) {
		DevStateData *st = NULL;

		/* Devices that write guest RAM start recording what. */
		r = save_fetch_device(vm, &vm->devs[i], 1, &st, sr->err,
				      sr->errlen);
		if (st)
			dev_state_data__free_unpacked(st, NULL);
		if (r < 0)
			return r;
	}
	for (uint32_t pass = 0; pass < SAVE_LIVE_MAX_PASSES; pass++) {
		uint64_t t0 = save_now_ms(), before = sr->res->pages, dirty;

		if (pass > 0) {
			r = kd_vm_get_dirty_log(vm->kvm, 0, sr->dirty);
			if (r < 0)
				return save_fail(sr, r, "dirty log");
			dirty = save_popcount(sr->dirty, sr->words);
			/* Small enough to send with the guest stopped? */
			if (pages_per_ms > 0 &&
			    (double)dirty / pages_per_ms <= max_downtime_ms / 2.0)
				return 0;
		}
		r = save_ram_pass(vm, sr->w, pass, pass ? sr->dirty : NULL,
				  &sr->res->pages);
		if (r < 0)
			return save_fail(sr, r, "RAM");
		sr->res->passes++;
		pages_per_ms = (double)(sr->res->pages - before) /
			       (double)(save_now_ms() - t0 + 1);
		memset(sr->dirty, 0, sr->words * 8);
	}
	/* Still too much: the final pass takes what is left. */
	return kd_vm_get_dirty_log(vm->kvm, 0, sr->dirty);
}

/* Only a running VM (live or not) or a suspended one (not live) saves. */
static int save_check_state(enum vm_state s, bool live, char *err,
			    size_t errlen)
{
	if (live && s != VM_STATE_RUNNING) {
		snprintf(err, errlen, "a live save needs a running VM (it is %s)",
			 vm_state_name(s));
		return -EPERM;
	}
	if (s != VM_STATE_RUNNING && s != VM_STATE_SUSPENDED) {
		snprintf(err, errlen, "cannot save a VM that is %s",
			 vm_state_name(s));
		return -EPERM;
	}
	return 0;
}

/* Open the stream and write what comes before any RAM: the VM and boot. */
static int save_open_stream(struct save_run *sr, struct ssm_sink *sink,
			    bool live)
{
	struct emt_vm *vm = sr->vm;
	int r;

	r = ssm_writer_open(sink, live ? SSM_F_LIVE_SAVE : 0, &sr->w);
	if (r == 0 && vm->save_encoders > 1 &&
	    ssm_writer_set_threads(sr->w, vm->save_encoders) < 0)
		LOG_WARN("saving on one thread: cannot start its helpers");
	if (r == 0)
		r = save_unit_vm(vm, sr->w);
	if (r == 0)
		r = save_unit_boot(vm, sr->w);
	if (r < 0)
		save_fail(sr, r, "header");
	return r;
}

/*
 * A live save's running part: RUNNING_LS with dirty logging on, then the
 * live passes; on failure the VM goes back to RUNNING.
 */
static int save_live_start(struct save_run *sr, unsigned max_downtime_ms)
{
	struct emt_vm *vm = sr->vm;
	int r;

	r = vm_sm_set(&vm->sm, VM_STATE_RUNNING, VM_STATE_RUNNING_LS);
	if (r == 0) {
		r = kd_vm_set_memory_flags(vm->kvm, 0, 0, vm->ram_size,
					   vm->ram, KVM_MEM_LOG_DIRTY_PAGES);
		sr->logging = r == 0;
	}
	if (r == 0)
		r = kd_vm_get_dirty_log(vm->kvm, 0, sr->dirty);  /* reset */
	if (r == 0)
		r = save_live_passes(sr, max_downtime_ms);
	if (r < 0) {
		save_fail(sr, r, "live pass");
		if (vm_sm_get(&vm->sm) == VM_STATE_RUNNING_LS)
			vm_sm_set(&vm->sm, VM_STATE_RUNNING_LS,
				  VM_STATE_RUNNING);
	}
	return r;
}

/* Stop the guest (downtime starts here) and enter SAVING. */
static int save_suspend(struct save_run *sr, bool live, bool was_running)
{
	struct emt_vm *vm = sr->vm;
	int r;

	sr->t_down = save_now_ms();
	if (live) {
		r = emt_vm_suspend_ls(vm, sr->err, sr->errlen);
		if (r == 0)
			r = vm_sm_set(&vm->sm, VM_STATE_SUSPENDED_LS,
				      VM_STATE_SAVING);
	} else {
		r = was_running ? emt_vm_suspend(vm, sr->err, sr->errlen) : 0;
		if (r == 0)
			r = vm_sm_set(&vm->sm, VM_STATE_SUSPENDED, VM_STATE_SAVING);
	}
	if (r < 0)
		save_fail(sr, r, "suspend");
	return r;
}

/*
 * After the stream (r: how it went): back to SUSPENDED with dirty logging
 * off, then leave the VM suspended, power it off or resume it.
 */
static void save_dispose(struct save_run *sr, unsigned flags,
			 bool was_running, int r)
{
	struct emt_vm *vm = sr->vm;
	struct emt_save_result *res = sr->res;
	char e2[160];

	vm_sm_set(&vm->sm, VM_STATE_SAVING, VM_STATE_SUSPENDED);
	if (sr->logging) {
		kd_vm_set_memory_flags(vm->kvm, 0, 0, vm->ram_size, vm->ram, 0);
		sr->logging = false;
	}
	/* Downtime: stopped until now, plus the resume if there is one. */
	res->downtime_ms = (uint32_t)(save_now_ms() - sr->t_down);
	if (r == 0 && (flags & EMT_SAVE_STAY_SUSPENDED)) {
		/* The broker powers it off or resumes it. */
	} else if (r == 0 && !(flags & EMT_SAVE_KEEP_RUNNING)) {
		/* The VM's state now lives in the stream: power it off. */
		emt_vm_end(vm, EMT_END_POWER_OFF, 0, NULL,
			   "saved and powered off");
		emt_vm_power_off(vm, e2, sizeof(e2));
	} else if (was_running) {
		if (emt_vm_resume(vm, e2, sizeof(e2)) < 0)
			LOG_WARN("after saving: %s", e2);
		res->downtime_ms = (uint32_t)(save_now_ms() - sr->t_down);
	}
}

int emt_vm_save(struct emt_vm *vm, int fd, unsigned flags,
		unsigned max_downtime_ms, struct emt_save_result *res,
		char *err, size_t errlen)
{
	bool live = flags & EMT_SAVE_LIVE;
	struct save_run sr = { .vm = vm, .sink = { .fd = fd }, .res = res,
			       .err = err, .errlen = errlen };
	struct ssm_sink sink = { save_write, &sr.sink };
	enum vm_state s = vm_sm_get(&vm->sm);
	bool was_running = s == VM_STATE_RUNNING;
	int r;

	memset(res, 0, sizeof(*res));
	err[0] = '\0';
	r = save_check_state(s, live, err, errlen);
	if (r < 0)
		return r;
	sr.words = (vm->ram_size / SAVE_PAGE + 63) / 64;
	sr.dirty = calloc(sr.words, 8);
	if (!sr.dirty)
		return -ENOMEM;
	r = save_open_stream(&sr, &sink, live);
	if (r < 0)
		goto out;
	if (live) {
		r = save_live_start(&sr, max_downtime_ms);
		if (r < 0)
			goto out;
	}
	r = save_suspend(&sr, live, was_running);
	if (r < 0)
		goto out;
	r = save_final(&sr, live);
	if (r == 0) {
		r = ssm_writer_close(sr.w);
		sr.w = NULL;
		if (r < 0)
			save_fail(&sr, r, "end of stream");
	}
	save_dispose(&sr, flags, was_running, r);
out:
	if (sr.logging)
		kd_vm_set_memory_flags(vm->kvm, 0, 0, vm->ram_size, vm->ram, 0);
	ssm_writer_close(sr.w);
	res->bytes = sr.sink.bytes;
	res->write_errno = sr.sink.write_errno;
	for (unsigned i = 0; i < EMT_MAX_DEVICES; i++)
		if (sr.dev[i])
			dev_state_data__free_unpacked(sr.dev[i], NULL);
	free(sr.dirty);
	return r;
}

/* ---- loading ------------------------------------------------------------ */

struct load_ctx {
	struct emt_vm *vm;
	struct ssm_reader *r;
	struct ssm_unit_info u;
	char *err;
	size_t errlen;
	bool seen_vm, seen_boot, seen_irqchip, seen_pit, seen_clock, seen_ram;
	bool seen_cpu[KD_MAX_VCPUS];
	bool seen_dev[EMT_MAX_DEVICES];
	/* Applied only once the whole stream has checked out. */
	struct save_cpu *cpus;
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	uint64_t clock;
	DevStateData *dev_state[EMT_MAX_DEVICES];
	uint8_t *image, *initrd;
	size_t image_len, initrd_len;
	uint8_t page[SAVE_PAGE] __attribute__((aligned(8)));
	bool ram_touched;             /* an earlier live pass wrote pages */
	char *cmdline;
	struct emt_boot boot;
};

__attribute__((format(printf, 2, 3)))
static int load_fail(struct load_ctx *x, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "unit '%s' instance %u at offset 0x%" PRIx64
		 ": %s", x->u.name, x->u.instance, x->u.offset, msg);
	return -EBADMSG;
}

/* The reader's own error, or ours, for a failed ssm_get_* call. */
static int load_io(struct load_ctx *x, int r)
{
	if (r >= 0)
		return r;
	snprintf(x->err, x->errlen, "%s", ssm_reader_error(x->r));
	return r;
}

static int load_blob(struct load_ctx *x, void *p, size_t len)
{
	uint32_t n;
	int r = ssm_get_u32(x->r, &n);

	if (r < 0)
		return load_io(x, r);
	if (n != len)
		return load_fail(x, "a structure of %u bytes where %zu are "
				 "expected", n, len);
	return load_io(x, ssm_get_bytes(x->r, p, len));
}

static int load_unit_vm(struct load_ctx *x)
{
	struct emt_vm *vm = x->vm;
	uint32_t ncpus, ndevs, inst[EMT_MAX_DEVICES];
	uint64_t ram;
	char kind[EMT_MAX_DEVICES][32];
	unsigned i, j;
	int r;

	if ((r = ssm_get_u32(x->r, &ncpus)) < 0 ||
	    (r = ssm_get_u64(x->r, &ram)) < 0 ||
	    (r = ssm_get_u32(x->r, &ndevs)) < 0)
		return load_io(x, r);
	/* Host resources are not saved: the VM options must match. */
	if (ncpus != vm->ncpus)
		return load_fail(x, "saved with %u vCPUs, this VM has %u: "
				 "restore with --cpus %u", ncpus, vm->ncpus,
				 ncpus);
	if (ram != vm->ram_size && ram % (1u << 20) == 0 &&
	    vm->ram_size % (1u << 20) == 0)
		return load_fail(x, "saved with %" PRIu64 " MiB of RAM, this VM "
				 "has %" PRIu64 " MiB: restore with --mem %"
				 PRIu64 "M", ram >> 20, vm->ram_size >> 20,
				 ram >> 20);
	if (ram != vm->ram_size)
		return load_fail(x, "saved with %" PRIu64 " KiB of RAM, this VM "
				 "has %" PRIu64 " KiB: restore with --mem %"
				 PRIu64 "K", ram >> 10, vm->ram_size >> 10,
				 ram >> 10);
	if (ndevs > EMT_MAX_DEVICES)
		return load_fail(x, "%u devices, at most %u", ndevs,
				 EMT_MAX_DEVICES);
	for (i = 0; i < ndevs; i++) {
		if ((r = ssm_get_str(x->r, kind[i], sizeof(kind[i]))) < 0 ||
		    (r = ssm_get_u32(x->r, &inst[i])) < 0)
			return load_io(x, r);
	}
	/* Name a device one side has and the other lacks. */
	for (i = 0; i < ndevs; i++) {
		for (j = 0; j < vm->ndevs; j++)
			if (strcmp(kind[i], vm->devs[j].kind) == 0 &&
			    inst[i] == vm->devs[j].instance)
				break;
		if (j == vm->ndevs)
			return load_fail(x, "the saved VM has device %.24s#%u, "
					 "this VM does not: give the same --disk, "
					 "--rng and --null-dev as when it was "
					 "saved", kind[i], inst[i]);
	}
	for (j = 0; j < vm->ndevs; j++) {
		for (i = 0; i < ndevs; i++)
			if (strcmp(kind[i], vm->devs[j].kind) == 0 &&
			    inst[i] == vm->devs[j].instance)
				break;
		if (i == ndevs)
			return load_fail(x, "this VM has device %s, the saved VM "
					 "did not: give the same --disk, --rng and "
					 "--null-dev as when it was saved",
					 vm->devs[j].label);
	}
	if (ndevs != vm->ndevs)
		return load_fail(x, "saved with %u devices, this VM has %u",
				 ndevs, vm->ndevs);
	for (i = 0; i < ndevs; i++)
		if (strcmp(kind[i], vm->devs[i].kind) != 0 ||
		    inst[i] != vm->devs[i].instance)
			return load_fail(x, "device %u was %.24s#%u, this VM has "
					 "%s", i, kind[i], inst[i],
					 vm->devs[i].label);
	return 0;
}

static int load_bytes_alloc(struct load_ctx *x, uint64_t max, uint8_t **out,
			    size_t *len)
{
	uint64_t n;
	int r = ssm_get_u64(x->r, &n);

	if (r < 0)
		return load_io(x, r);
	if (n > max)
		return load_fail(x, "%" PRIu64 " bytes, more than the %" PRIu64
				 " the VM has", n, max);
	*out = malloc(n ? n : 1);
	if (!*out)
		return -ENOMEM;
	*len = n;
	return load_io(x, ssm_get_bytes(x->r, *out, n));
}

static int load_unit_boot(struct load_ctx *x)
{
	struct emt_boot *b = &x->boot;
	uint32_t kind, mode;
	int r;

	x->cmdline = malloc(4096);
	if (!x->cmdline)
		return -ENOMEM;
	if ((r = load_bytes_alloc(x, x->vm->ram_size, &x->image,
				  &x->image_len)) < 0 ||
	    (r = load_bytes_alloc(x, x->vm->ram_size, &x->initrd,
				  &x->initrd_len)) < 0)
		return r;
	if ((r = ssm_get_str(x->r, x->cmdline, 4096)) < 0 ||
	    (r = ssm_get_u32(x->r, &kind)) < 0 ||
	    (r = ssm_get_u32(x->r, &mode)) < 0 ||
	    (r = ssm_get_u64(x->r, &b->rip)) < 0 ||
	    (r = ssm_get_u64(x->r, &b->rax)) < 0 ||
	    (r = ssm_get_u64(x->r, &b->rbx)) < 0 ||
	    (r = ssm_get_u64(x->r, &b->rdx)) < 0 ||
	    (r = ssm_get_u64(x->r, &b->rsp)) < 0 ||
	    (r = ssm_get_u64(x->r, &b->image_end)) < 0)
		return load_io(x, r);
	if (kind < EMT_IMAGE_MULTIBOOT || kind > EMT_IMAGE_BZIMAGE ||
	    mode < EMT_MODE_REAL || mode > EMT_MODE_PROT32)
		return load_fail(x, "unknown image kind %u or mode %u", kind, mode);
	b->kind = (enum emt_image_kind)kind;
	b->mode = (enum emt_cpu_mode)mode;
	return 0;
}

static bool load_msr_known(const struct emt_vm *vm, uint32_t index)
{
	for (unsigned i = 0; i < vm->kvm->nmsrs; i++)
		if (vm->kvm->msr_index[i] == index)
			return true;
	return false;
}

static int load_unit_cpu(struct load_ctx *x)
{
	struct save_cpu *c;
	unsigned i = x->u.instance;
	uint32_t nmsrs;
	int r;

	if (i >= x->vm->ncpus)
		return load_fail(x, "vCPU %u, this VM has %u", i, x->vm->ncpus);
	if (x->seen_cpu[i])
		return load_fail(x, "vCPU %u appears twice", i);
	c = &x->cpus[i];
	if ((r = load_blob(x, &c->regs, sizeof(c->regs))) < 0 ||
	    (r = load_blob(x, &c->sregs, sizeof(c->sregs))) < 0 ||
	    (r = load_blob(x, &c->xsave, sizeof(c->xsave))) < 0 ||
	    (r = load_blob(x, &c->xcrs, sizeof(c->xcrs))) < 0 ||
	    (r = load_blob(x, &c->lapic, sizeof(c->lapic))) < 0 ||
	    (r = load_blob(x, &c->events, sizeof(c->events))) < 0 ||
	    (r = load_blob(x, &c->debugregs, sizeof(c->debugregs))) < 0)
		return r;
	if ((r = ssm_get_u32(x->r, &c->mp_state)) < 0 ||
	    (r = ssm_get_u32(x->r, &nmsrs)) < 0)
		return load_io(x, r);
	if (c->mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		return load_fail(x, "unknown MP state %u", c->mp_state);
	if (c->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return load_fail(x, "%u XCRs", c->xcrs.nr_xcrs);
	if (nmsrs > x->vm->kvm->nmsrs)
		return load_fail(x, "%u MSRs, this host saves %u", nmsrs,
				 x->vm->kvm->nmsrs);
	for (unsigned k = 0; k < nmsrs; k++) {
		uint64_t data;

		if ((r = ssm_get_u32(x->r, &c->msrs[k].index)) < 0 ||
		    (r = ssm_get_u64(x->r, &data)) < 0)
			return load_io(x, r);
		c->msrs[k].data = data;
		if (!load_msr_known(x->vm, c->msrs[k].index))
			return load_fail(x, "MSR 0x%x is not one KVM restores",
					 c->msrs[k].index);
	}
	c->nmsrs = nmsrs;
	x->seen_cpu[i] = true;
	return 0;
}

static bool load_page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (unsigned i = 0; i < SAVE_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

static int load_unit_ram(struct load_ctx *x)
{
	struct emt_vm *vm = x->vm;
	uint64_t npages = vm->ram_size / SAVE_PAGE, first;
	uint32_t count;
	int r;

	for (;;) {
		if ((r = ssm_get_u64(x->r, &first)) < 0 ||
		    (r = ssm_get_u32(x->r, &count)) < 0)
			return load_io(x, r);
		if (count == 0)
			return 0;
		if (first > npages || count > npages - first)
			return load_fail(x, "pages %" PRIu64 "+%u lie outside "
					 "the VM's %" PRIu64 " pages", first,
					 count, npages);
		for (uint32_t k = 0; k < count; k++) {
			uint8_t *dst = vm->ram + (first + k) * SAVE_PAGE;

			r = ssm_get_page(x->r, x->page);
			if (r < 0)
				return load_io(x, r);
			/* RAM starts empty: writing zeros would only allocate
			 * it. A later pass may zero a page an earlier filled. */
			if (!load_page_zero(x->page) || x->ram_touched)
				memcpy(dst, x->page, SAVE_PAGE);
		}
		if (x->u.pass != SSM_PASS_FINAL)
			x->ram_touched = true;
	}
}

static int load_unit_device(struct load_ctx *x, unsigned idx)
{
	DevStateData *st;
	uint32_t len;
	int r;

	if (x->seen_dev[idx])
		return load_fail(x, "the device appears twice");
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	dev_state_data__init(st);
	x->dev_state[idx] = st;
	st->version = x->u.version;
	if ((r = ssm_get_u64(x->r, &st->clock_ns)) < 0 ||
	    (r = ssm_get_u32(x->r, &len)) < 0)
		return load_io(x, r);
	if (len > SAVE_MAX_DEV_STATE)
		return load_fail(x, "device state of %u bytes", len);
	st->state.data = malloc(len ? len : 1);
	if (!st->state.data)
		return -ENOMEM;
	st->state.len = len;
	x->seen_dev[idx] = true;
	return load_io(x, ssm_get_bytes(x->r, st->state.data, len));
}

static int load_one_unit(struct load_ctx *x)
{
	const char *n = x->u.name;
	struct emt_vm *vm = x->vm;
	bool *seen = NULL;
	int r;

	if (x->u.pass != SSM_PASS_FINAL && strcmp(n, "ram") != 0)
		return load_fail(x, "pass %u of a unit saved only once", x->u.pass);
	if (x->u.pass != SSM_PASS_FINAL) {
		/* A live save's earlier RAM pass: later passes overwrite it. */
		if (!x->seen_vm || x->seen_ram)
			return load_fail(x, "a RAM pass out of order");
		return load_unit_ram(x);
	}
	if (x->u.version != SAVE_UNIT_VERSION && (strcmp(n, "vm") == 0 ||
	    strcmp(n, "boot") == 0 || strcmp(n, "cpu") == 0 ||
	    strcmp(n, "irqchip") == 0 || strcmp(n, "pit") == 0 ||
	    strcmp(n, "clock") == 0 || strcmp(n, "ram") == 0))
		return load_fail(x, "unit version %u, this build reads %u",
				 x->u.version, SAVE_UNIT_VERSION);
	if (!x->seen_vm && strcmp(n, "vm") != 0)
		return load_fail(x, "the stream does not start with unit 'vm'");
	if (strcmp(n, "cpu") == 0)
		return load_unit_cpu(x);
	if (x->u.instance != 0 && (strcmp(n, "vm") == 0 || strcmp(n, "boot") == 0 ||
				   strcmp(n, "irqchip") == 0 ||
				   strcmp(n, "pit") == 0 ||
				   strcmp(n, "clock") == 0 || strcmp(n, "ram") == 0))
		return load_fail(x, "instance %u of a unit there is one of",
				 x->u.instance);
	if (strcmp(n, "vm") == 0) {
		seen = &x->seen_vm;
		r = *seen ? load_fail(x, "appears twice") : load_unit_vm(x);
	} else if (strcmp(n, "boot") == 0) {
		seen = &x->seen_boot;
		r = *seen ? load_fail(x, "appears twice") : load_unit_boot(x);
	} else if (strcmp(n, "irqchip") == 0) {
		seen = &x->seen_irqchip;
		r = 0;
		for (unsigned i = 0; r == 0 && i < 3; i++) {
			r = load_blob(x, &x->chips[i], sizeof(x->chips[i]));
			if (r == 0 && x->chips[i].chip_id != i)
				r = load_fail(x, "chip %u where %u belongs",
					      x->chips[i].chip_id, i);
		}
	} else if (strcmp(n, "pit") == 0) {
		seen = &x->seen_pit;
		r = load_blob(x, &x->pit, sizeof(x->pit));
	} else if (strcmp(n, "clock") == 0) {
		seen = &x->seen_clock;
		r = load_io(x, ssm_get_u64(x->r, &x->clock));
	} else if (strcmp(n, "ram") == 0) {
		seen = &x->seen_ram;
		r = *seen ? load_fail(x, "appears twice") : load_unit_ram(x);
	} else {
		for (unsigned i = 0; i < vm->ndevs; i++)
			if (strcmp(n, vm->devs[i].kind) == 0 &&
			    x->u.instance == vm->devs[i].instance)
				return load_unit_device(x, i);
		return load_fail(x, "no such device or unit in this VM");
	}
	if (r == 0)
		*seen = true;
	return r;
}

/* Every unit is there: now change the VM. */
static int load_apply(struct load_ctx *x)
{
	struct emt_vm *vm = x->vm;
	struct kvm_clock_data clock = { .clock = x->clock };
	int r;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct save_cpu *c = &x->cpus[i];
		struct kd_vcpu *v = vm->vcpus[i].kv;

		/* Order: sregs (APIC base, modes), regs, the rest, MP last. */
		if ((r = kd_vcpu_set_sregs(v, &c->sregs)) < 0 ||
		    (r = kd_vcpu_set_regs(v, &c->regs)) < 0 ||
		    (r = kd_vcpu_set_xsave(v, &c->xsave)) < 0 ||
		    (r = kd_vcpu_set_xcrs(v, &c->xcrs)) < 0 ||
		    (r = kd_vcpu_set_lapic(v, &c->lapic)) < 0 ||
		    (r = kd_vcpu_set_msrs(v, c->msrs, c->nmsrs)) < 0 ||
		    (r = kd_vcpu_set_events(v, &c->events)) < 0 ||
		    (r = kd_vcpu_set_debugregs(v, &c->debugregs)) < 0 ||
		    (r = kd_vcpu_set_mp_state(v, c->mp_state)) < 0) {
			snprintf(x->err, x->errlen, "KVM refused the state of "
				 "vCPU %u: %s", i, strerror(-r));
			return r;
		}
	}
	for (unsigned i = 0; i < 3; i++) {
		r = kd_vm_set_irqchip(vm->kvm, &x->chips[i]);
		if (r < 0) {
			snprintf(x->err, x->errlen, "KVM refused the irqchip "
				 "state: %s", strerror(-r));
			return r;
		}
	}
	if ((r = kd_vm_set_pit(vm->kvm, &x->pit)) < 0 ||
	    (r = kd_vm_set_clock(vm->kvm, &clock)) < 0) {
		snprintf(x->err, x->errlen, "KVM refused the PIT or clock: %s",
			 strerror(-r));
		return r;
	}
	for (unsigned i = 0; i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];
		DevStateData *ans = NULL;

		x->dev_state[i]->seq = i;
		r = emt_dev_call(vm, d, MSG_DEV_LOAD, &x->dev_state[i]->base,
				 MSG_DEV_LOAD_DONE, SAVE_DEV_TIMEOUT_MS, &ans);
		if (r == 0 && ans->status < 0)
			r = ans->status;
		if (ans)
			dev_state_data__free_unpacked(ans, NULL);
		if (r < 0) {
			snprintf(x->err, x->errlen, "device %s refused its saved "
				 "state (unit '%s' instance %u): %s", d->label,
				 d->kind, d->instance, strerror(-r));
			return r;
		}
	}
	/* The boot image, for a reset after the restore. */
	free(vm->image);
	free(vm->initrd);
	free(vm->cmdline);
	vm->image = x->image;
	vm->image_len = x->image_len;
	vm->initrd = x->initrd;
	vm->initrd_len = x->initrd_len;
	vm->cmdline = x->cmdline;
	vm->boot = x->boot;
	x->image = x->initrd = NULL;
	x->cmdline = NULL;
	return 0;
}

static int load_stream(struct load_ctx *x, int fd)
{
	struct ssm_source src = { ssm_fd_read, &fd };
	struct emt_vm *vm = x->vm;
	int r;

	r = ssm_reader_open(&src, &x->r, x->err, x->errlen);
	if (r < 0)
		return r;
	for (;;) {
		memset(&x->u, 0, sizeof(x->u));
		r = ssm_reader_next_unit(x->r, &x->u);
		if (r < 0)
			return load_io(x, r);
		if (r == 1)
			break;  /* end unit, directory and footer verified */
		r = load_one_unit(x);
		if (r < 0)
			return r;
		r = ssm_unit_finish(x->r);
		if (r < 0)
			return load_io(x, r);
	}
	memset(&x->u, 0, sizeof(x->u));
	snprintf(x->u.name, sizeof(x->u.name), "(end)");
	if (!x->seen_vm || !x->seen_boot || !x->seen_irqchip || !x->seen_pit ||
	    !x->seen_clock || !x->seen_ram)
		return load_fail(x, "the stream lacks a unit (vm, boot, irqchip, "
				 "pit, clock and ram are all required)");
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (!x->seen_cpu[i])
			return load_fail(x, "the stream lacks vCPU %u", i);
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!x->seen_dev[i])
			return load_fail(x, "the stream lacks device %s",
					 vm->devs[i].label);
	return load_apply(x);
}

int emt_vm_load(struct emt_vm *vm, int fd, char *err, size_t errlen)
{
	struct load_ctx x = { .vm = vm, .err = err, .errlen = errlen };
	int r;

	err[0] = '\0';
	r = vm_sm_set(&vm->sm, VM_STATE_CREATED, VM_STATE_LOADING);
	if (r < 0) {
		snprintf(err, errlen, "cannot load into a VM that is %s",
			 vm_state_name(vm_sm_get(&vm->sm)));
		return r;
	}
	x.cpus = calloc(vm->ncpus, sizeof(*x.cpus));
	r = x.cpus ? load_stream(&x, fd) : -ENOMEM;
	if (r < 0 && !err[0])
		snprintf(err, errlen, "cannot load the saved state: %s",
			 strerror(-r));
	ssm_reader_close(x.r);
	for (unsigned i = 0; i < EMT_MAX_DEVICES; i++)
		if (x.dev_state[i])
			dev_state_data__free_unpacked(x.dev_state[i], NULL);
	free(x.cpus);
	free(x.image);
	free(x.initrd);
	free(x.cmdline);
	vm_sm_set(&vm->sm, VM_STATE_LOADING,
		  r < 0 ? VM_STATE_LOAD_FAILURE : VM_STATE_SUSPENDED);
	return r;
}
