/* SPDX-License-Identifier: MIT */
/*
 * The limits a new VM must fit: bulkheadd's number of VMs, and the owner's
 * quotas of VMs, guest RAM and vCPUs (broker/config.h; a VM counts from
 * create until destroy). A refusal names the limit, its value and the
 * configuration key that sets it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "broker/reg_impl.h"

/* A human size: 64M, 1.5G. */
static void brk_fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v >= (1ull << 30) && v % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, len, "%" PRIu64, v);
}

int brk_reg_check_quota(struct brk_reg *reg, uint32_t uid, uint64_t mem,
			unsigned cpus, char *err, size_t errlen)
{
	struct brk_quota q = brk_config_quota(reg->cfg, uid);
	unsigned nvms = 0, ncpus = 0;
	uint64_t nmem = 0;
	char a[24], b[24], c[24];
	const char *cfgp = reg->config_path ? reg->config_path : BRK_DEFAULT_CONFIG;

	if (reg->nvms >= reg->cfg->max_vms) {
		snprintf(err, errlen, "bulkheadd holds its limit of %u VMs "
			 "(max_vms in %s); destroy one first", reg->cfg->max_vms,
			 cfgp);
		return -EAGAIN;
	}
	for (struct brk_rec *r = reg->vms; r; r = r->next) {
		if (r->owner != uid)
			continue;
		nvms++;
		nmem += r->mem_size;
		ncpus += r->cpus;
	}
	if (nvms + 1 > q.max_vms) {
		snprintf(err, errlen, "quota exceeded: uid %u may have at most "
			 "%u VMs and has %u; destroy one first, or raise "
			 "max_vms_per_uid (or uid.%u.max_vms) in %s", uid,
			 q.max_vms, nvms, uid, cfgp);
		return -EDQUOT;
	}
	if (nmem + mem > q.max_mem || nmem + mem < nmem) {
		brk_fmt_size(q.max_mem, a, sizeof(a));
		brk_fmt_size(nmem, b, sizeof(b));
		brk_fmt_size(mem, c, sizeof(c));
		snprintf(err, errlen, "quota exceeded: uid %u may use %s of "
			 "guest RAM in all, has %s and asks for %s more; use "
			 "less --mem or raise max_mem_per_uid (or "
			 "uid.%u.max_mem) in %s", uid, a, b, c, uid, cfgp);
		return -EDQUOT;
	}
	if (ncpus + cpus > q.max_cpus) {
		snprintf(err, errlen, "quota exceeded: uid %u may use %u vCPUs "
			 "in all, has %u and asks for %u more; use fewer --cpus "
			 "or raise max_cpus_per_uid (or uid.%u.max_cpus) in %s",
			 uid, q.max_cpus, ncpus, cpus, uid, cfgp);
		return -EDQUOT;
	}
	return 0;
}
