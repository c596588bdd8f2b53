/* SPDX-License-Identifier: MIT */
/*
 * broker/config.h: bulkheadd's configuration file (docs/broker.md) and the
 * limits it sets: per-uid quotas, the number of VMs and clients, the
 * socket. broker/config.c reads it.
 */
#ifndef BULKHEAD_CONFIG_H
#define BULKHEAD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRK_DEFAULT_CONFIG "/etc/bulkhead/bulkheadd.conf"
#define BRK_MAX_UID_OVERRIDES 64u

/* Per-uid quotas: a VM counts from create until destroy. */
struct brk_quota {
	unsigned max_vms;
	uint64_t max_mem;
	unsigned max_cpus;
};

struct brk_uid_quota {
	uint32_t uid;
	struct brk_quota q;
	bool has_vms, has_mem, has_cpus;  /* which fields override */
};

/* bulkheadd's configuration file (docs/broker.md). */
struct brk_config {
	char socket_path[108];
	unsigned socket_mode;
	unsigned max_clients;
	unsigned max_vms;                 /* all owners together */
	struct brk_quota quota;           /* per uid, by default */
	struct brk_uid_quota uids[BRK_MAX_UID_OVERRIDES];
	unsigned nuids;
};

void brk_config_defaults(struct brk_config *cfg);
/*
 * Read path into *cfg (on top of what is there). A missing file is -ENOENT
 * (the caller decides whether that matters); a bad line is -EINVAL with
 * "FILE:LINE: what is wrong" in err.
 */
int brk_config_load(struct brk_config *cfg, const char *path, char *err,
		    size_t errlen);
/* The quota that applies to uid. */
struct brk_quota brk_config_quota(const struct brk_config *cfg, uint32_t uid);

#endif
