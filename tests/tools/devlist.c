/* SPDX-License-Identifier: MIT */
/*
 * devlist: the device manifest as text, for shell tests (build/devices.txt).
 * One line per device kind, in the manifest's order:
 *   <kind> <make name> <binary> <flags>
 * where the make name is the binary's suffix (its folder's device.mk, its
 * fuzz target and corpus) and flags is a comma list of exit, reset, dma,
 * virtio, optional, or "-".
 */
#include <stdio.h>
#include <string.h>

#include "device-procs/manifest.h"

#define DEVLIST_BIN_PREFIX "bulkhead-dev-"

int main(void)
{
	static const struct { unsigned bit; const char *name; } flags[] = {
		{ DEV_MF_EXIT, "exit" }, { DEV_MF_RESET, "reset" },
		{ DEV_MF_DMA, "dma" }, { DEV_MF_VIRTIO, "virtio" },
		{ DEV_MF_OPTIONAL, "optional" },
	};
	const size_t plen = strlen(DEVLIST_BIN_PREFIX);

	for (unsigned i = 0; i < dev_nmanifests; i++) {
		const struct dev_manifest *m = dev_manifests[i];
		unsigned n = 0;

		if (strncmp(m->binary, DEVLIST_BIN_PREFIX, plen) != 0) {
			fprintf(stderr, "devlist: %s: binary %s is not %s<name>\n",
				m->name, m->binary, DEVLIST_BIN_PREFIX);
			return 1;
		}
		printf("%s %s %s ", m->name, m->binary + plen, m->binary);
		for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
			if (m->flags & flags[f].bit)
				printf("%s%s", n++ ? "," : "", flags[f].name);
		printf("%s\n", n ? "" : "-");
	}
	return 0;
}
