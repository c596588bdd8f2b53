/* SPDX-License-Identifier: MIT */
/*
 * acpi-dump: the boot tables the worker writes for a VM (emt-worker/
 * boottab.c, the same code), written out as files for ACPICA's iasl -d.
 *
 *   acpi-dump [--cpus N] OUTDIR KIND...
 *
 * Each KIND is a manifest kind ("uart", "virtio-blk"); a kind named twice
 * is two instances, and virtio devices take the slots in order, as the
 * broker places them. The tables are found as a guest finds them: the RSDP
 * by its signature in 0xE0000-0xFFFFF, the XSDT from it, every table from
 * the XSDT and the DSDT from the FADT. Each goes to OUTDIR/<sig>.dat
 * (rsdp.dat, xsdt.dat, facp.dat, apic.dat, dsdt.dat), with one line on
 * stdout: signature, address, length, and whether its checksum adds up.
 * Exit 0, 1 if a checksum is wrong, 2 on bad arguments or a refusal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/manifest.h"
#include "emt-worker/boottab.h"

#define AD_RAM (4ull << 20)
#define AD_SCAN_START 0xe0000u
#define AD_SCAN_END 0x100000u
#define AD_RSDP_LEN 36u
#define AD_RSDP_XSDT 24u
#define AD_HDR_LEN 36u
#define AD_FADT_X_DSDT 140u

static uint64_t ad_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static bool ad_sum_ok(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s == 0;
}

/* Write one table and report it; false if its checksum is wrong. */
static bool ad_write(const char *dir, const char *name, const uint8_t *ram,
		     uint64_t gpa, size_t len)
{
	char path[4096];
	bool ok = gpa + len <= AD_RAM && ad_sum_ok(ram + gpa, len);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(ram + gpa, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "acpi-dump: cannot write %s\n", path);
		exit(2);
	}
	printf("%s 0x%llx %zu checksum %s\n", name, (unsigned long long)gpa,
	       len, ok ? "ok" : "WRONG");
	return ok;
}

static bool ad_table(const char *dir, const uint8_t *ram, uint64_t gpa)
{
	char name[5];
	size_t len;

	if (gpa + AD_HDR_LEN > AD_RAM) {
		printf("table at 0x%llx: outside RAM\n", (unsigned long long)gpa);
		return false;
	}
	for (unsigned i = 0; i < 4; i++)
		name[i] = (char)(ram[gpa + i] | 0x20);  /* lower case */
	name[4] = 0;
	len = (size_t)ad_le(ram + gpa + 4, 4);
	return ad_write(dir, name, ram, gpa, len);
}

/* The tables, found as a guest finds them. */
static int ad_dump(const char *dir, const uint8_t *ram)
{
	uint64_t rsdp = 0, xsdt, n;
	bool ok = true;

	for (uint64_t a = AD_SCAN_START; a < AD_SCAN_END && !rsdp; a += 16)
		if (memcmp(ram + a, "RSD PTR ", 8) == 0)
			rsdp = a;
	if (!rsdp) {
		printf("no RSDP between 0x%x and 0x%x\n", AD_SCAN_START,
		       AD_SCAN_END);
		return 1;
	}
	ok &= ad_write(dir, "rsdp", ram, rsdp, AD_RSDP_LEN);
	xsdt = ad_le(ram + rsdp + AD_RSDP_XSDT, 8);
	ok &= ad_table(dir, ram, xsdt);
	n = (ad_le(ram + xsdt + 4, 4) - AD_HDR_LEN) / 8;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t = ad_le(ram + xsdt + AD_HDR_LEN + 8 * i, 8);

		ok &= ad_table(dir, ram, t);
		if (memcmp(ram + t, "FACP", 4) == 0)
			ok &= ad_table(dir, ram,
				       ad_le(ram + t + AD_FADT_X_DSDT, 8));
	}
	return ok ? 0 : 1;
}

/* The next device of kind name, placed as the broker places it. */
static int ad_add(struct emt_vm *vm, const char *name, unsigned *slot)
{
	const struct dev_manifest *k = dev_manifest_find(name);
	struct emt_dev *d = &vm->devs[vm->ndevs];

	if (!k || vm->ndevs >= EMT_MAX_DEVICES) {
		fprintf(stderr, "acpi-dump: %s: %s\n", name,
			k ? "too many devices" : "no such kind");
		return -EINVAL;
	}
	snprintf(d->kind, sizeof(d->kind), "%s", k->name);
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (strcmp(vm->devs[i].kind, k->name) == 0)
			d->instance++;
	snprintf(d->label, sizeof(d->label), "%s#%u", k->name, d->instance);
	for (unsigned i = 0; i < k->nregions; i++)
		d->regions[d->nregions++] = (struct emt_region){
			.space = (uint8_t)k->regions[i].space,
			.base = k->regions[i].base, .len = k->regions[i].len };
	for (unsigned i = 0; i < k->nirqs; i++)
		d->irqs[d->nirqs++] = k->irqs[i];
	if (k->flags & DEV_MF_VIRTIO) {
		if (*slot >= DEV_VIRTIO_SLOTS) {
			fprintf(stderr, "acpi-dump: more than %u virtio devices\n",
				DEV_VIRTIO_SLOTS);
			return -EINVAL;
		}
		d->regions[0].base = dev_virtio_slot_base(*slot);
		d->irqs[0] = dev_virtio_irqs[(*slot)++];
	}
	vm->ndevs++;
	return 0;
}

int main(int argc, char **argv)
{
	struct emt_vm *vm = calloc(1, sizeof(*vm));
	unsigned slot = 0;
	char err[256];
	int i = 1, r;

	if (!vm || !(vm->ram = calloc(1, AD_RAM)))
		return 2;
	vm->ram_size = AD_RAM;
	vm->ncpus = 1;
	if (argc > 2 && strcmp(argv[1], "--cpus") == 0) {
		vm->ncpus = (unsigned)strtoul(argv[2], NULL, 10);
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: acpi-dump [--cpus N] OUTDIR KIND...\n");
		return 2;
	}
	for (int j = i + 1; j < argc; j++)
		if (ad_add(vm, argv[j], &slot) < 0)
			return 2;
	r = emt_vm_boot_tables(vm, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "acpi-dump: %s\n", err);
		return 2;
	}
	return ad_dump(argv[i], vm->ram);
}
