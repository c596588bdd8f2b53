/* SPDX-License-Identifier: MIT */
/*
 * The rules a device process's registration (DevRegister) must follow for
 * what it asks of the worker beyond its regions and IRQs: doorbells
 * (writes the worker turns into ioeventfds) and posted-write ranges
 * (writes an EMT queues without waiting). The device is untrusted: every
 * offset and length comes from it, and each rule holds for any values,
 * with no arithmetic that can wrap.
 */
#ifndef BULKHEAD_EMT_WORKER_DEVRULES_H
#define BULKHEAD_EMT_WORKER_DEVRULES_H

#include <stdbool.h>
#include <stdint.h>

#include "emt-worker/emt.h"

/* [off, off + len) lies inside d's region number region. */
bool emt_dev_range_ok(const struct emt_dev *d, uint32_t region, uint64_t off,
		      uint64_t len);
/* A doorbell: 1, 2, 4 or 8 bytes inside one of d's regions. */
bool emt_dev_doorbell_ok(const struct emt_dev *d, uint32_t region,
			 uint64_t off, uint64_t len);
/*
 * A posted-write range: not empty, inside one of d's regions, and never
 * for a device that may stop the VM (debug-exit), whose STOP answer must
 * reach the vCPU before the vCPU runs on.
 */
bool emt_dev_posted_ok(const struct emt_dev *d, uint32_t region, uint64_t off,
		       uint64_t len);

#endif
