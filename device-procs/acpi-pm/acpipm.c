/* SPDX-License-Identifier: MIT */
/*
 * acpi-pm: the power management of a hardware-reduced ACPI machine
 * (ACPI 6.5, 4.1), in a process of its own. Three byte registers, which
 * the FADT names (emt-worker/acpi.c builds it from the manifest):
 *
 *   +0 SLEEP_CONTROL_REG (4.8.3.7): SLP_TYP (bits 2-4) and SLP_EN (bit 5).
 *      SLP_EN with the \_S5 type powers the VM off; other sleep states are
 *      not offered (the DSDT has no \_S1-\_S4), so they do nothing.
 *   +1 SLEEP_STATUS_REG (4.8.3.8): WAK_STS (bit 7), write 1 to clear. We
 *      never sleep, so it reads 0 unless a restored state set it.
 *   +2 RESET_REG (4.8.3.6): writing RESET_VALUE resets the VM, through
 *      the same path as `bulkhead reset`.
 *
 * The power button (4.8.2.2.1.2, a control-method button, PNP0C0C in the
 * DSDT): a press (`bulkhead stop`, DevNotify POWER_BUTTON) pulses the IRQ
 * line of the generic event device (ACPI0013, 5.6.9), whose _EVT notifies
 * the button; the guest's OS then shuts down in its own way.
 *
 * Whatever else a guest writes is counted and ignored: the most a hostile
 * guest gets from these registers is a power-off or a reset.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_pm_state.pb-c.h"
#include "device-procs/devhost/dev.h"

#define ACPI_WAK_STS 0x80u  /* SLEEP_STATUS_REG, 4.8.3.8 */

struct acpipm_state {
	uint8_t sleep_status;
	uint64_t presses;
	uint64_t ignored;
};

static void acpipm_sleep(struct dev *d, struct acpipm_state *s, uint8_t v)
{
	unsigned typ = (v & ACPI_PM_SLP_TYP_MASK) >> ACPI_PM_SLP_TYP_SHIFT;

	if ((v & ACPI_PM_SLP_EN) && typ == ACPI_PM_S5_TYPE)
		dev_request_poweroff(d);
	else if (v & ACPI_PM_SLP_EN)
		s->ignored++;  /* a sleep state we do not offer */
}

static void acpipm_write(struct dev *d, struct acpipm_state *s, uint64_t reg,
			 uint8_t v)
{
	switch (reg) {
	case ACPI_PM_SLEEP_CONTROL:
		acpipm_sleep(d, s, v);
		break;
	case ACPI_PM_SLEEP_STATUS:
		s->sleep_status &= (uint8_t)~(v & ACPI_WAK_STS);
		break;
	case ACPI_PM_RESET:
		if (v == ACPI_PM_RESET_VALUE)
			dev_request_reset(d);
		else
			s->ignored++;
		break;
	default:
		s->ignored++;
		break;
	}
}

/* Each byte of an access is its own register: a wider access covers the
 * registers after it. Reads see the status register, the others 0. */
static void acpipm_io(struct dev *d, unsigned region, uint64_t off, void *data,
		      unsigned len, bool write)
{
	struct acpipm_state *s = d->state;
	uint8_t *b = data;

	for (unsigned i = 0; i < len; i++) {
		uint64_t reg = off + i;

		if (write)
			acpipm_write(d, s, reg, b[i]);
		else
			b[i] = reg == ACPI_PM_SLEEP_STATUS ? s->sleep_status : 0;
	}
}

/* A press is one pulse of the GED's edge-triggered line. */
static void acpipm_power_button(struct dev *d)
{
	struct acpipm_state *s = d->state;

	s->presses++;
	dev_irq_set(d, 0, true);
	dev_irq_set(d, 0, false);
}

static void acpipm_reset(struct dev *d)
{
	struct acpipm_state *s = d->state;

	s->sleep_status = 0;
}

static int acpipm_save(struct dev *d, uint8_t **buf, size_t *len)
{
	const struct acpipm_state *s = d->state;
	AcpiPmState m = ACPI_PM_STATE__INIT;
	size_t size;

	m.sleep_status = s->sleep_status;
	m.presses = s->presses;
	m.ignored = s->ignored;
	size = acpi_pm_state__get_packed_size(&m);
	*buf = malloc(size ? size : 1);
	if (!*buf)
		return -ENOMEM;
	*len = acpi_pm_state__pack(&m, *buf);
	return 0;
}

static int acpipm_load(struct dev *d, const uint8_t *buf, size_t len,
		       uint32_t version)
{
	struct acpipm_state *s = d->state;
	AcpiPmState *m;
	int r = 0;

	if (version != d->desc->mf->state_version || (!buf && len))
		return -EINVAL;
	m = acpi_pm_state__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	if (m->sleep_status & ~ACPI_WAK_STS) {
		r = -EINVAL;
	} else {
		s->sleep_status = (uint8_t)m->sleep_status;
		s->presses = m->presses;
		s->ignored = m->ignored;
	}
	acpi_pm_state__free_unpacked(m, NULL);
	return r;
}

static const uint8_t acpipm_irq_flags[] = { DEV_IRQ_EDGE };

const struct dev_desc acpipm_desc = {
	.mf = &dev_mf_acpi_pm,
	.irq_flags = acpipm_irq_flags,
	.state_size = sizeof(struct acpipm_state),
	.io = acpipm_io,
	.reset = acpipm_reset,
	.power_button = acpipm_power_button,
	.save = acpipm_save,
	.load = acpipm_load,
};
