/* SPDX-License-Identifier: MIT */
/* The device manifest (device-procs/manifest.h): every entry is well formed,
 * every core points at its own entry, and lookups work. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "device-procs/manifest.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"

/* Every core linked into the unit tests (all the devices' device.mk
 * files name: dev-cores.h); a manifest entry without a core, or a core
 * whose entry is missing, fails below. */
static const struct dev_desc *const m_cores[] = {
#define DEV_CORE(kind, desc) &desc,
#include "dev-cores.h"
#undef DEV_CORE
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
		/* an optional device has the option that adds it (a word
		 * without its dashes), its help and its limit; only it */
		ck_assert_int_eq(!!(m->flags & DEV_MF_OPTIONAL), m->option != NULL);
		ck_assert_int_eq(m->option != NULL, m->option_help != NULL);
		ck_assert_int_eq(m->option != NULL, m->max_instances > 0);
		if (m->option)
			ck_assert_msg(m->option[0] != '-' && !strchr(m->option, ' '),
				      "%s: option %s", m->name, m->option);
		/* an argument exactly for a backend file */
		ck_assert_int_eq(m->option_arg != NULL,
				 m->option && m->backend == DEV_BACKEND_DISK);
		ck_assert_uint_le(m->max_instances, DEV_MAX_PER_VM);
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

/* The virtio slots' IRQs: distinct ISA lines that no fixed device uses;
 * the slots' MMIO clear of every fixed device's. */
START_TEST(test_virtio_slots_free)
{
	const uint64_t lo = DEV_VIRTIO_BASE;
	const uint64_t hi = DEV_VIRTIO_BASE + DEV_VIRTIO_SLOTS * DEV_VIRTIO_SLOT;

	for (unsigned s = 0; s < DEV_VIRTIO_SLOTS; s++) {
		ck_assert_uint_lt(dev_virtio_irqs[s], 16);
		ck_assert_uint_ne(dev_virtio_irqs[s], 0);  /* the PIT */
		ck_assert_uint_ne(dev_virtio_irqs[s], 2);  /* the cascade */
		for (unsigned t = 0; t < s; t++)
			ck_assert_uint_ne(dev_virtio_irqs[s], dev_virtio_irqs[t]);
	}
	for (unsigned i = 0; i < dev_nmanifests; i++) {
		const struct dev_manifest *m = dev_manifests[i];

		if (m->flags & DEV_MF_VIRTIO) {
			/* a core alone sits in one of the slots */
			ck_assert_uint_ge(m->regions[0].base, lo);
			ck_assert_uint_le(m->regions[0].base + m->regions[0].len, hi);
			continue;
		}
		for (unsigned q = 0; q < m->nirqs; q++)
			for (unsigned s = 0; s < DEV_VIRTIO_SLOTS; s++)
				ck_assert_msg(m->irqs[q] != dev_virtio_irqs[s],
					      "%s has IRQ %u of virtio slot %u",
					      m->name, m->irqs[q], s);
		for (unsigned r = 0; r < m->nregions; r++) {
			const struct dev_region *g = &m->regions[r];

			if (g->space == DEV_MMIO)
				ck_assert_msg(g->base + g->len <= lo || g->base >= hi,
					      "%s is inside the virtio slots",
					      m->name);
		}
	}
}
END_TEST

/* How many of each optional device a VM may ask for. */
START_TEST(test_tally)
{
	struct dev_tally t;
	char why[128];

	dev_tally_init(&t);
	ck_assert_uint_gt(t.total, 0); /* the fixed devices */
	for (unsigned i = 0; i < dev_mf_virtio_blk.max_instances; i++)
		ck_assert_int_eq(dev_tally_add(&t, &dev_mf_virtio_blk, why,
					       sizeof(why)), 0);
	ck_assert_int_eq(dev_tally_add(&t, &dev_mf_virtio_blk, why, sizeof(why)),
			 -E2BIG);
	ck_assert_msg(strstr(why, "--disk") != NULL, "%s", why);
	ck_assert_int_eq(dev_tally_add(&t, &dev_mf_virtio_rng, why, sizeof(why)),
			 0);
	ck_assert_int_eq(dev_tally_add(&t, &dev_mf_virtio_rng, why, sizeof(why)),
			 -E2BIG);
	ck_assert_uint_eq(t.virtio, dev_mf_virtio_blk.max_instances + 1);
	ck_assert_uint_le(t.virtio, DEV_VIRTIO_SLOTS);
	/* a fixed device is not asked for */
	ck_assert_int_eq(dev_tally_add(&t, &dev_mf_uart, why, sizeof(why)),
			 -EINVAL);
	ck_assert_int_eq(dev_tally_add(&t, NULL, why, sizeof(why)), -EINVAL);
	/* every optional kind at its limit still fits a VM */
	dev_tally_init(&t);
	for (unsigned i = 0; i < dev_nmanifests; i++) {
		const struct dev_manifest *m = dev_manifests[i];

		for (unsigned n = 0; m->option && n < m->max_instances; n++)
			ck_assert_msg(dev_tally_add(&t, m, why, sizeof(why)) == 0,
				      "%s", why);
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
		ck_assert_uint_eq(dev_manifest_index(m) < dev_nmanifests, 1);
		/* a core with saved state has its unit's version */
		ck_assert_int_eq(m_cores[i]->save != NULL, m->state_version > 0);
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
	tcase_add_test(tc, test_virtio_slots_free);
	tcase_add_test(tc, test_tally);
	tcase_add_test(tc, test_every_core_has_its_entry);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_core_defaults_come_from_the_entry);
	suite_add_tcase(s, tc);
	return s;
}
