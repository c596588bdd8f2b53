/* SPDX-License-Identifier: MIT */
/*
 * The ACPI tables of one VM (emt-worker/acpi.h). Layouts from ACPI 6.5:
 * 5.2.5.3 RSDP, 5.2.6 table header, 5.2.8 XSDT, 5.2.9 FADT (Table 5.9),
 * 5.2.12 MADT, 5.2.11.1 DSDT, 5.2.3.2 Generic Address Structure; the
 * DSDT's AML from emt-worker/aml.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emt-worker/acpi.h"
#include "emt-worker/aml.h"

#define ACPI_OEM_ID "BLKHD "         /* 6 bytes */
#define ACPI_OEM_TABLE_ID "BULKHEAD"  /* 8 bytes */
#define ACPI_OEM_REVISION 1u
#define ACPI_CREATOR_ID "BLKH"
#define ACPI_CREATOR_REVISION 1u

#define ACPI_HEADER_LEN 36u
#define ACPI_RSDP_LEN 36u
#define ACPI_RSDP_V1_LEN 20u
#define ACPI_RSDP_REVISION 2u         /* ACPI 2.0+: the XSDT */
#define ACPI_XSDT_REVISION 1u
#define ACPI_FADT_LEN 276u
#define ACPI_FADT_REVISION 6u
#define ACPI_FADT_MINOR 5u
#define ACPI_MADT_REVISION 5u
#define ACPI_DSDT_REVISION 2u         /* 64-bit integers */
#define ACPI_ALIGN 16u

/* FADT fields (Table 5.9): offsets. */
#define FADT_DSDT 40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256
#define FADT_HYPERVISOR_ID 268

/* FADT flags (Table 5.10). */
#define FADT_F_WBINVD (1u << 0)
#define FADT_F_PWR_BUTTON (1u << 4)   /* not fixed: a control method device */
#define FADT_F_SLP_BUTTON (1u << 5)   /* no fixed sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)

/* IA-PC boot architecture flags (Table 5.11). */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_8042 (1u << 1)
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)
#define FADT_BOOT_MSI_NOT_SUPPORTED (1u << 3)

/* Generic Address Structure (5.2.3.2). */
#define GAS_LEN 12u
#define GAS_SPACE_IO 1u
#define GAS_ACCESS_BYTE 1u

/* MADT (5.2.12). */
#define MADT_LAPIC_ADDR 0xfee00000u
#define MADT_IOAPIC_ADDR 0xfec00000u
#define MADT_PCAT_COMPAT 1u
#define MADT_TYPE_LAPIC 0u
#define MADT_TYPE_IOAPIC 1u
#define MADT_TYPE_OVERRIDE 2u
#define MADT_TYPE_LAPIC_NMI 4u
#define MADT_LAPIC_ENABLED 1u
#define MADT_ALL_PROCESSORS 0xffu
#define MADT_LINT1 1u
/* MPS INTI flags: active high (01), level triggered (11 << 2). */
#define MADT_INTI_HIGH_LEVEL 0x000du
#define ACPI_ISA_IRQS 16u

/* Notify value for a power button press (ACPI 6.5, 5.6.6). */
#define ACPI_NOTIFY_BUTTON 0x80u

/* ---- a table being written ---------------------------------------------------- */

struct acpi_out {
	uint8_t *ram;
	uint64_t at;                  /* guest-physical address of the next */
	char *err;
	size_t errlen;
};

static void acpi_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void acpi_put32(uint8_t *p, uint32_t v)
{
	acpi_put16(p, (uint16_t)v);
	acpi_put16(p + 2, (uint16_t)(v >> 16));
}

static void acpi_put64(uint8_t *p, uint64_t v)
{
	acpi_put32(p, (uint32_t)v);
	acpi_put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0 - sum);
}

/* Room for a table of len bytes; NULL (and err) if the area is full. */
static uint8_t *acpi_alloc(struct acpi_out *o, size_t len, uint64_t *gpa)
{
	uint64_t at = (o->at + ACPI_ALIGN - 1) / ACPI_ALIGN * ACPI_ALIGN;

	if (at + len > EMT_ACPI_END) {
		snprintf(o->err, o->errlen, "the ACPI tables do not fit between "
			 "0x%llx and 0x%llx", EMT_ACPI_ADDR, EMT_ACPI_END);
		return NULL;
	}
	*gpa = at;
	o->at = at + len;
	memset(o->ram + at, 0, len);
	return o->ram + at;
}

/* The common header (5.2.6); the checksum is set by acpi_seal. */
static void acpi_header(uint8_t *t, const char *sig, uint32_t len,
			uint8_t revision)
{
	memcpy(t, sig, 4);
	acpi_put32(t + 4, len);
	t[8] = revision;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	acpi_put32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	acpi_put32(t + 32, ACPI_CREATOR_REVISION);
}

static void acpi_seal(uint8_t *t, size_t len)
{
	t[9] = 0;
	t[9] = acpi_checksum(t, len);
}

static void acpi_gas_io(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SPACE_IO;
	g[1] = 8;                     /* bit width */
	g[2] = 0;                     /* bit offset */
	g[3] = GAS_ACCESS_BYTE;
	acpi_put64(g + 4, port);
}

/* ---- the DSDT's AML ---------------------------------------------------------------- */

/* An EISA id is 3 letters and 4 hex digits; anything else is a string. */
static bool acpi_is_eisaid(const char *id)
{
	if (strlen(id) != 7)
		return false;
	for (unsigned i = 0; i < 7; i++) {
		char c = id[i];

		if (i < 3 ? !(c >= 'A' && c <= 'Z') :
		    !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static void acpi_aml_crs(struct aml *a, const struct acpi_device *d)
{
	aml_name(a, "_CRS");
	aml_open_resources(a);
	for (unsigned i = 0; i < d->nres; i++) {
		const struct acpi_res *r = &d->res[i];

		if (r->space == ACPI_SPACE_IO)
			aml_res_io(a, (uint16_t)r->base, (uint8_t)r->len);
		else
			aml_res_mem32(a, (uint32_t)r->base, (uint32_t)r->len);
	}
	for (unsigned i = 0; i < d->nirqs; i++) {
		/* An ISA line as ISA does it; anything else in full. */
		if (!d->level && d->irqs[i] < ACPI_ISA_IRQS)
			aml_res_irq(a, d->irqs[i]);
		else
			aml_res_interrupt(a, d->irqs[i], d->level);
	}
	aml_close(a);
}

static void acpi_aml_device(struct aml *a, const struct acpi_device *d)
{
	aml_open_device(a, d->name);
	if (acpi_is_eisaid(d->hid))
		aml_name_eisaid(a, "_HID", d->hid);
	else
		aml_name_string_value(a, "_HID", d->hid);
	aml_name_integer(a, "_UID", d->uid);
	if (d->nres || d->nirqs)
		acpi_aml_crs(a, d);
	aml_close(a);
}

/* The power button, and the generic event device whose interrupt is its
 * press: _EVT notifies the button, which the guest's OS turns into its
 * orderly shutdown. */
static void acpi_aml_button(struct aml *a, const struct acpi_pm *pm)
{
	const struct acpi_device ged = {
		.name = "GED0", .hid = "ACPI0013",
		.irqs = { pm->button_gsi }, .nirqs = 1,
	};

	aml_open_device(a, "PWRB");
	aml_name_eisaid(a, "_HID", "PNP0C0C");
	aml_name_integer(a, "_UID", 0);
	aml_close(a);

	aml_open_device(a, ged.name);
	aml_name_string_value(a, "_HID", ged.hid);
	aml_name_integer(a, "_UID", 0);
	/* Edge: each press is one pulse, nothing to acknowledge. */
	aml_name(a, "_CRS");
	aml_open_resources(a);
	aml_res_interrupt(a, pm->button_gsi, false);
	aml_close(a);
	aml_open_method(a, "_EVT", 1);
	aml_open_if(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_integer(a, pm->button_gsi);
	aml_notify(a, "PWRB", ACPI_NOTIFY_BUTTON);
	aml_close(a);
	aml_close(a);
	aml_close(a);
}

static int acpi_aml(const struct acpi_machine *m, uint8_t *buf, size_t cap,
		    size_t *len, char *err, size_t errlen)
{
	struct aml a;
	int r;

	aml_init(&a, buf, cap);
	aml_open_scope(&a, "\\_SB");
	for (unsigned i = 0; i < m->ndevs; i++)
		acpi_aml_device(&a, &m->devs[i]);
	if (m->has_pm)
		acpi_aml_button(&a, &m->pm);
	aml_close(&a);
	if (m->has_pm) {
		/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved */
		aml_name(&a, "\\_S5");
		aml_open_package(&a, 4);
		aml_integer(&a, m->pm.s5_type);
		aml_integer(&a, m->pm.s5_type);
		aml_integer(&a, 0);
		aml_integer(&a, 0);
		aml_close(&a);
	}
	r = aml_finish(&a, len);
	if (r < 0)
		snprintf(err, errlen, "cannot build the DSDT: %s", a.err);
	return r;
}

/* ---- the tables ------------------------------------------------------------------- */

/* The DSDT: its AML is built in place, after its header. */
static int acpi_dsdt(struct acpi_out *o, const struct acpi_machine *m,
		     uint64_t *gpa)
{
	uint64_t at = (o->at + ACPI_ALIGN - 1) / ACPI_ALIGN * ACPI_ALIGN;
	uint8_t *t = o->ram + at;
	size_t len = 0;
	int r;

	if (at + ACPI_HEADER_LEN >= EMT_ACPI_END) {
		snprintf(o->err, o->errlen, "no room for the DSDT");
		return -E2BIG;
	}
	r = acpi_aml(m, t + ACPI_HEADER_LEN, EMT_ACPI_END - at - ACPI_HEADER_LEN,
		     &len, o->err, o->errlen);
	if (r < 0)
		return r;
	acpi_header(t, "DSDT", (uint32_t)(ACPI_HEADER_LEN + len),
		    ACPI_DSDT_REVISION);
	acpi_seal(t, ACPI_HEADER_LEN + len);
	o->at = at + ACPI_HEADER_LEN + len;
	*gpa = at;
	return 0;
}

static int acpi_fadt(struct acpi_out *o, const struct acpi_machine *m,
		     uint64_t dsdt, uint64_t *gpa)
{
	uint32_t flags = FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
			 FADT_F_HW_REDUCED_ACPI;
	uint8_t *t = acpi_alloc(o, ACPI_FADT_LEN, gpa);

	if (!t)
		return -E2BIG;
	acpi_header(t, "FACP", ACPI_FADT_LEN, ACPI_FADT_REVISION);
	acpi_put32(t + FADT_DSDT, (uint32_t)dsdt);
	acpi_put16(t + FADT_IAPC_BOOT_ARCH, FADT_BOOT_LEGACY_DEVICES |
		   FADT_BOOT_8042 | FADT_BOOT_VGA_NOT_PRESENT |
		   FADT_BOOT_MSI_NOT_SUPPORTED);
	if (m->has_pm) {
		flags |= FADT_F_RESET_REG_SUP;
		acpi_gas_io(t + FADT_RESET_REG, m->pm.reset);
		t[FADT_RESET_VALUE] = m->pm.reset_value;
		acpi_gas_io(t + FADT_SLEEP_CONTROL_REG, m->pm.sleep_control);
		acpi_gas_io(t + FADT_SLEEP_STATUS_REG, m->pm.sleep_status);
	}
	acpi_put32(t + FADT_FLAGS, flags);
	t[FADT_MINOR_VERSION] = ACPI_FADT_MINOR;
	acpi_put64(t + FADT_X_DSDT, dsdt);
	memcpy(t + FADT_HYPERVISOR_ID, "BULKHEAD", 8);
	acpi_seal(t, ACPI_FADT_LEN);
	return 0;
}

/* The level-triggered ISA lines: each needs an override (ISA is edge). */
static unsigned acpi_level_isa(const struct acpi_machine *m, uint32_t *gsis)
{
	unsigned n = 0;
	uint32_t seen = 0;

	for (unsigned i = 0; i < m->ndevs; i++) {
		const struct acpi_device *d = &m->devs[i];

		for (unsigned j = 0; d->level && j < d->nirqs; j++) {
			uint32_t g = d->irqs[j];

			if (g < ACPI_ISA_IRQS && !(seen & (1u << g))) {
				seen |= 1u << g;
				gsis[n++] = g;
			}
		}
	}
	return n;
}

static int acpi_madt(struct acpi_out *o, const struct acpi_machine *m,
		     uint64_t *gpa)
{
	uint32_t level[ACPI_ISA_IRQS];
	unsigned nlevel = acpi_level_isa(m, level);
	size_t len = ACPI_HEADER_LEN + 8 + 8u * m->ncpus + 12 + 10u * nlevel + 6;
	uint8_t *t = acpi_alloc(o, len, gpa), *e;

	if (!t)
		return -E2BIG;
	acpi_header(t, "APIC", (uint32_t)len, ACPI_MADT_REVISION);
	acpi_put32(t + 36, MADT_LAPIC_ADDR);
	acpi_put32(t + 40, MADT_PCAT_COMPAT);
	e = t + 44;
	for (unsigned i = 0; i < m->ncpus; i++, e += 8) {
		e[0] = MADT_TYPE_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i;    /* ACPI processor UID */
		e[3] = (uint8_t)i;    /* APIC id */
		acpi_put32(e + 4, MADT_LAPIC_ENABLED);
	}
	e[0] = MADT_TYPE_IOAPIC;
	e[1] = 12;
	e[2] = m->ioapic_id;
	acpi_put32(e + 4, MADT_IOAPIC_ADDR);
	acpi_put32(e + 8, 0);         /* GSI base */
	e += 12;
	for (unsigned i = 0; i < nlevel; i++, e += 10) {
		e[0] = MADT_TYPE_OVERRIDE;
		e[1] = 10;
		e[2] = 0;             /* ISA */
		e[3] = (uint8_t)level[i];
		acpi_put32(e + 4, level[i]);
		acpi_put16(e + 8, MADT_INTI_HIGH_LEVEL);
	}
	e[0] = MADT_TYPE_LAPIC_NMI;
	e[1] = 6;
	e[2] = MADT_ALL_PROCESSORS;
	acpi_put16(e + 3, 0);         /* as the bus says */
	e[5] = MADT_LINT1;
	acpi_seal(t, len);
	return 0;
}

static int acpi_xsdt(struct acpi_out *o, const uint64_t *tables, unsigned n,
		     uint64_t *gpa)
{
	size_t len = ACPI_HEADER_LEN + 8u * n;
	uint8_t *t = acpi_alloc(o, len, gpa);

	if (!t)
		return -E2BIG;
	acpi_header(t, "XSDT", (uint32_t)len, ACPI_XSDT_REVISION);
	for (unsigned i = 0; i < n; i++)
		acpi_put64(t + ACPI_HEADER_LEN + 8 * i, tables[i]);
	acpi_seal(t, len);
	return 0;
}

static void acpi_rsdp(uint8_t *p, uint64_t xsdt)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, ACPI_OEM_ID, 6);
	p[15] = ACPI_RSDP_REVISION;
	acpi_put32(p + 16, 0);        /* no RSDT: the XSDT only */
	acpi_put32(p + 20, ACPI_RSDP_LEN);
	acpi_put64(p + 24, xsdt);
	p[8] = acpi_checksum(p, ACPI_RSDP_V1_LEN);
	p[32] = acpi_checksum(p, ACPI_RSDP_LEN);
}

static int acpi_check(const struct acpi_machine *m, char *err, size_t errlen)
{
	if (m->ncpus < 1 || m->ncpus > ACPI_MAX_CPUS) {
		snprintf(err, errlen, "ACPI: %u vCPUs (1 to %u)", m->ncpus,
			 ACPI_MAX_CPUS);
		return -EINVAL;
	}
	if (m->ndevs > ACPI_MAX_DEVICES) {
		snprintf(err, errlen, "ACPI: %u devices (at most %u)", m->ndevs,
			 ACPI_MAX_DEVICES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->ndevs; i++) {
		const struct acpi_device *d = &m->devs[i];

		if (d->nres > ACPI_MAX_RES || d->nirqs > ACPI_MAX_IRQS) {
			snprintf(err, errlen, "ACPI device %s: %u resources and "
				 "%u interrupts (at most %u and %u)", d->name,
				 d->nres, d->nirqs, ACPI_MAX_RES,
				 ACPI_MAX_IRQS);
			return -EINVAL;
		}
		for (unsigned j = 0; j < d->nres; j++) {
			const struct acpi_res *r = &d->res[j];

			if (r->space == ACPI_SPACE_IO && r->len > UINT8_MAX) {
				snprintf(err, errlen, "ACPI device %s: %llu I/O "
					 "ports in one range (at most %u)",
					 d->name, (unsigned long long)r->len,
					 UINT8_MAX);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int acpi_build(uint8_t *ram, uint64_t ram_size, const struct acpi_machine *m,
	       uint64_t *rsdp, char *err, size_t errlen)
{
	struct acpi_out o = { .ram = ram, .at = EMT_ACPI_ADDR, .err = err,
			      .errlen = errlen };
	uint64_t at, dsdt, tables[2], xsdt;
	uint8_t *p;
	int r;

	if (ram_size < EMT_ACPI_END) {
		snprintf(err, errlen, "ACPI: %llu bytes of RAM do not reach "
			 "0x%llx", (unsigned long long)ram_size, EMT_ACPI_END);
		return -EINVAL;
	}
	r = acpi_check(m, err, errlen);
	if (r < 0)
		return r;
	p = acpi_alloc(&o, ACPI_RSDP_LEN, &at);
	if (!p)
		return -E2BIG;
	r = acpi_dsdt(&o, m, &dsdt);
	if (!r)
		r = acpi_fadt(&o, m, dsdt, &tables[0]);
	if (!r)
		r = acpi_madt(&o, m, &tables[1]);
	if (!r)
		r = acpi_xsdt(&o, tables, 2, &xsdt);
	if (r < 0)
		return r;
	acpi_rsdp(p, xsdt);
	*rsdp = at;
	return 0;
}
