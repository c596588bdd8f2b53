/* SPDX-License-Identifier: MIT */
/* The device manifest (device-procs/manifest.h): every entry is well formed,
 * every core points at its own entry, and lookups work. */
#include <stdio.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "device-procs/manifest.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"

/* Every core linked into the unit tests; a manifest entry without a core
 * here, or a core whose entry is missing, fails below. */
static const struct dev_desc *const m_cores[] = {
	&uart_desc, &debugexit_desc, &rtc_desc, &i8042_desc, &vblk_desc,
	&vrng_desc, &null_desc,
};
#define M_NCORES (sizeof(m_cores) / sizeof(m_cores[0]))

START_TEST(test_entries_well_formed)
{
	for (unsigned i = 0; i < dev_nmanifests; i++) {
		const struct dev_manifest *m = dev_manifests[i];

		ck_assert_ptr_nonnull(m->name);
		ck_assert_uint_gt(strlen(m->name), 0);
		ck_assert_msg(strncmp(m->binary, "bulkhead-dev-", 13) == 0,
			      "%s: binary %s", m->name, m->binary);
		ck_assert_msg(m->nregions >= 1 && m->nregions <= DEV_MF_MAX_REGIONS,
			      "%s: %u regions", m->name, m->nregions);
		ck_assert_uint_le(m->nirqs, DEV_MF_MAX_IRQS);
		for (unsigned r = 0; r < m->nregions; r++) {
			const struct dev_region *g = &m->regions[r];

			ck_assert_uint_gt(g->len, 0);
			ck_assert_uint_ge(g->base + g->len, g->base); /* no wrap */
			if (g->space == DEV_PIO)
				ck_assert_uint_le(g->base + g->len, 0x10000);
		}
		for (unsigned q = 0; q < m->nirqs; q++)
			ck_assert_uint_lt(m->irqs[q], 24); /* the IOAPIC's pins */
		/* virtio: DMA, an ID, one MMIO slot; and only virtio */
		ck_assert_int_eq(!!(m->flags & DEV_MF_VIRTIO), m->virtio_id != 0);
		if (m->flags & DEV_MF_VIRTIO) {
			ck_assert(m->flags & DEV_MF_DMA);
			ck_assert_uint_eq(m->nregions, 1);
			ck_assert_int_eq(m->regions[0].space, DEV_MMIO);
			ck_assert_uint_eq(m->regions[0].len, DEV_VIRTIO_SLOT);
			ck_assert_uint_eq(m->nirqs, 1);
		}
		/* an optional device has the option that adds it, and only it */
		ck_assert_int_eq(!!(m->flags & DEV_MF_OPTIONAL), m->option != NULL);
		if (m->option)
			ck_assert_msg(strncmp(m->option, "--", 2) == 0, "%s: %s",
				      m->name, m->option);
		/* names and binaries are unique */
		for (unsigned j = 0; j < i; j++) {
			ck_assert_str_ne(dev_manifests[j]->name, m->name);
			ck_assert_str_ne(dev_manifests[j]->binary, m->binary);
		}
	}
}
END_TEST

/* Fixed devices do not overlap one another. */
START_TEST(test_fixed_regions_disjoint)
{
	for (unsigned i = 0; i < dev_nmanifests; i++) {
		for (unsigned j = i + 1; j < dev_nmanifests; j++) {
			const struct dev_manifest *a = dev_manifests[i];
			const struct dev_manifest *b = dev_manifests[j];

			if ((a->flags | b->flags) & DEV_MF_VIRTIO)
				continue; /* placed by the broker */
			for (unsigned x = 0; x < a->nregions; x++) {
				for (unsigned y = 0; y < b->nregions; y++) {
					const struct dev_region *p = &a->regions[x];
					const struct dev_region *q = &b->regions[y];

					if (p->space != q->space)
						continue;
					ck_assert_msg(p->base + p->len <= q->base ||
						      q->base + q->len <= p->base,
						      "%s and %s overlap", a->name,
						      b->name);
				}
			}
		}
	}
}
END_TEST

START_TEST(test_every_core_has_its_entry)
{
	ck_assert_uint_eq(M_NCORES, dev_nmanifests);
	for (unsigned i = 0; i < M_NCORES; i++) {
		const struct dev_manifest *m = m_cores[i]->mf;

		ck_assert_ptr_nonnull(m);
		ck_assert_ptr_eq(dev_manifest_find(m->name), m);
		for (unsigned j = 0; j < i; j++)
			ck_assert_ptr_ne(m_cores[j]->mf, m);
	}
}
END_TEST

START_TEST(test_find)
{
	ck_assert_ptr_eq(dev_manifest_find("uart"), &dev_mf_uart);
	ck_assert_ptr_eq(dev_manifest_find("debug-exit"), &dev_mf_debugexit);
	ck_assert_ptr_eq(dev_manifest_find("virtio-blk"), &dev_mf_virtio_blk);
	ck_assert_ptr_null(dev_manifest_find("debugexit"));
	ck_assert_ptr_null(dev_manifest_find(""));
	ck_assert_ptr_null(dev_manifest_find(NULL));
}
END_TEST

/* A core built from its entry gets the entry's regions and IRQ lines. */
START_TEST(test_core_defaults_come_from_the_entry)
{
	struct fakehost host;
	struct dev *d = NULL;

	fakehost_reset(&host, 2);
	ck_assert_int_eq(dev_new(&i8042_desc, 0, &fakehost_ops, &host, &d), 0);
	ck_assert_uint_eq(d->nregions, 2);
	ck_assert_uint_eq(d->regions[0].base, 0x60);
	ck_assert_uint_eq(d->regions[1].base, 0x64);
	ck_assert_uint_eq(d->nirqs, 2);
	ck_assert_uint_eq(d->irqs[0], 1);
	ck_assert_uint_eq(d->irqs[1], 12);
	dev_free(d);
}
END_TEST

Suite *manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("manifest");

	tcase_add_test(tc, test_entries_well_formed);
	tcase_add_test(tc, test_fixed_regions_disjoint);
	tcase_add_test(tc, test_every_core_has_its_entry);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_core_defaults_come_from_the_entry);
	suite_add_tcase(s, tc);
	return s;
}
