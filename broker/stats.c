/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead stats`: per process CPU time, threads, RSS and PSS from /proc
 * (the broker is their parent), and the worker's own counters (VmStats:
 * per vCPU exits, per device accesses and latency), asked for with
 * VmStatsReq and bounded by BRK_STATS_TIMEOUT_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/reg_impl.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

/* CPU time and memory of one child, from /proc (kernel data, bounded). */
static void brk_proc_stats(const struct brk_child *c, ProcStats *ps)
{
	static long ticks;
	char path[64], buf[1024], *p;
	FILE *f;
	int fd;
	ssize_t n;

	proc_stats__init(ps);
	ps->label = (char *)c->label;
	ps->pid = c->pid;
	if (c->reaped)
		return;
	if (!ticks)
		ticks = sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/stat", c->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			unsigned long long ut = 0, stt = 0, thr = 0;

			buf[n] = '\0';
			/* comm may hold anything: fields start after the
			 * last ')'. */
			p = strrchr(buf, ')');
			if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u "
					"%*u %*u %*u %*u %llu %llu %*d %*d %*d "
					"%*d %llu", &ut, &stt, &thr) == 3 &&
			    ticks > 0) {
				ps->user_ms = ut * 1000 / (unsigned long)ticks;
				ps->sys_ms = stt * 1000 / (unsigned long)ticks;
				ps->threads = (uint32_t)thr;
			}
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/status", c->pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			unsigned long long kb;

			if (sscanf(buf, "VmRSS: %llu kB", &kb) == 1)
				ps->rss_kb = kb;
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", c->pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			unsigned long long kb;

			if (sscanf(buf, "Pss: %llu kB", &kb) == 1)
				ps->pss_kb = kb;
		}
		fclose(f);
	}
}

/* Answer one stats request: processes from /proc, counters if given. */
static void brk_stats_answer(struct brk_reg *reg, struct brk_rec *rec,
			     uint64_t client, const VmStats *st,
			     const char *why)
{
	StatsReply rep = STATS_REPLY__INIT;
	ProcStats ps[1 + BRK_MAX_DEVICES], *psp[1 + BRK_MAX_DEVICES];
	struct brk_info in;
	size_t n = 0;

	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	if (rec->vm) {
		brk_proc_stats(&rec->vm->worker, &ps[n]);
		psp[n] = &ps[n];
		n++;
		for (unsigned i = 0; i < rec->vm->ndevs; i++, n++) {
			brk_proc_stats(&rec->vm->devs[i], &ps[n]);
			psp[n] = &ps[n];
		}
	}
	rep.procs = psp;
	rep.n_procs = n;
	rep.worker = (VmStats *)st;
	rep.worker_error = (char *)(why ? why : "");
	brk_reg_answer(reg, client, MSG_CTL_STATS_REPLY, &rep.base);
}

void brk_stats_on_reply(struct brk_vm *vm, const VmStats *st)
{
	struct brk_rec *rec = vm->hook_ctx;

	for (unsigned i = 0; i < rec->nstats; i++) {
		if (rec->stats[i].seq != st->seq)
			continue;
		brk_stats_answer(rec->reg, rec, rec->stats[i].client, st,
				 NULL);
		rec->stats[i] = rec->stats[--rec->nstats];
		return;
	}
	LOG_DBG("VM %s: stats %u not awaited", rec->name, st->seq);
}

void brk_stats_fail(struct brk_reg *reg, struct brk_rec *rec,
		    const char *why)
{
	while (rec->nstats) {
		uint64_t client = rec->stats[--rec->nstats].client;

		brk_stats_answer(reg, rec, client, NULL, why);
	}
}

int64_t brk_stats_tick(struct brk_reg *reg, struct brk_rec *rec,
		       int64_t now)
{
	int64_t next = -1;

	for (unsigned i = 0; i < rec->nstats;) {
		if (now >= rec->stats[i].deadline) {
			uint64_t client = rec->stats[i].client;

			rec->stats[i] = rec->stats[--rec->nstats];
			brk_stats_answer(reg, rec, client, NULL, "the worker did "
					 "not answer within 5 s");
			continue;
		}
		next = brk_min_deadline(next, rec->stats[i].deadline);
		i++;
	}
	return next;
}

void brk_reg_stats(struct brk_reg *reg, const struct brk_caller *c,
		   struct brk_rec *rec)
{
	struct brk_vm *vm = rec->vm;
	struct brk_stats_wait *w;
	int r;

	brk_reg_set_mode(reg, c->id, BRK_MODE_WAITING);
	if (!vm || !vm->ready || vm->chan.fd < 0 || rec->ending) {
		brk_stats_answer(reg, rec, c->id, NULL, vm ?
				     "the VM is not running" :
				     "the VM has no processes");
		return;
	}
	if (rec->nstats == BRK_MAX_STATS_WAITS) {
		brk_stats_answer(reg, rec, c->id, NULL, "too many stats "
				     "requests are waiting for this worker");
		return;
	}
	w = &rec->stats[rec->nstats];
	w->seq = ++rec->seq;
	w->client = c->id;
	w->deadline = brk_now_ms() + BRK_STATS_TIMEOUT_MS;
	r = brk_vm_send_stats_req(vm, w->seq);
	if (r < 0) {
		brk_stats_answer(reg, rec, c->id, NULL, "cannot reach the "
				     "worker");
		return;
	}
	rec->nstats++;
}
