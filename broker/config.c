/* SPDX-License-Identifier: MIT */
/*
 * bulkheadd's configuration file: one `key = value` a line, `#` comments,
 * blank lines ignored. docs/broker.md lists the keys:
 *
 *   socket = /run/bulkhead/bulkhead.sock
 *   socket_mode = 0666
 *   max_clients = 64
 *   max_vms = 64
 *   max_vms_per_uid = 8
 *   max_mem_per_uid = 4G
 *   max_cpus_per_uid = 16
 *   uid.1000.max_vms = 2          # per-uid overrides
 *   uid.1000.max_mem = 512M
 *   uid.1000.max_cpus = 4
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/control.h"

#define BRK_CONFIG_LINE_MAX 512

void brk_config_defaults(struct brk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s",
		 BRK_DEFAULT_SOCKET);
	cfg->socket_mode = 0666;
	cfg->max_clients = 64;
	cfg->max_vms = 64;
	cfg->quota.max_vms = 8;
	cfg->quota.max_mem = 4ull << 30;
	cfg->quota.max_cpus = 16;
}

/* Trim leading and trailing blanks in place. */
static char *brk_config_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int brk_config_uint(const char *v, unsigned long max, unsigned *out)
{
	unsigned long n;
	char *end;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno || *end || n > max)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static struct brk_uid_quota *brk_config_uid(struct brk_config *cfg,
					    uint32_t uid)
{
	for (unsigned i = 0; i < cfg->nuids; i++)
		if (cfg->uids[i].uid == uid)
			return &cfg->uids[i];
	if (cfg->nuids == BRK_MAX_UID_OVERRIDES)
		return NULL;
	memset(&cfg->uids[cfg->nuids], 0, sizeof(cfg->uids[0]));
	cfg->uids[cfg->nuids].uid = uid;
	return &cfg->uids[cfg->nuids++];
}

/* One quota key (max_vms, max_mem, max_cpus) into q; *which is set. */
static int brk_config_quota_key(const char *key, const char *v,
				struct brk_quota *q, bool *has_vms,
				bool *has_mem, bool *has_cpus, const char **why)
{
	if (strcmp(key, "max_vms") == 0) {
		*why = "a number of VMs";
		*has_vms = true;
		return brk_config_uint(v, 100000, &q->max_vms);
	}
	if (strcmp(key, "max_cpus") == 0) {
		*why = "a number of vCPUs";
		*has_cpus = true;
		return brk_config_uint(v, 1000000, &q->max_cpus);
	}
	if (strcmp(key, "max_mem") == 0) {
		*why = "a size such as 512M or 4G";
		*has_mem = true;
		return brk_parse_size(v, &q->max_mem);
	}
	*why = NULL;
	return -ENOENT;
}

static int brk_config_line(struct brk_config *cfg, char *key, char *v,
			   const char **why)
{
	bool dummy[3];
	unsigned mode;
	int r;

	*why = NULL;
	if (strcmp(key, "socket") == 0) {
		*why = "an absolute path shorter than 108 bytes";
		if (v[0] != '/' || strlen(v) >= sizeof(cfg->socket_path))
			return -EINVAL;
		snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", v);
		return 0;
	}
	if (strcmp(key, "socket_mode") == 0) {
		*why = "an octal mode such as 0666 or 0660";
		if (v[0] != '0' || brk_config_uint(v, 0777, &mode) < 0)
			return -EINVAL;
		cfg->socket_mode = mode;
		return 0;
	}
	if (strcmp(key, "max_clients") == 0) {
		*why = "a number from 1 to 512";
		r = brk_config_uint(v, 512, &cfg->max_clients);
		return r < 0 || cfg->max_clients == 0 ? -EINVAL : 0;
	}
	if (strcmp(key, "max_vms") == 0) {
		*why = "a number from 1 to 256";
		r = brk_config_uint(v, 256, &cfg->max_vms);
		return r < 0 || cfg->max_vms == 0 ? -EINVAL : 0;
	}
	/* max_vms_per_uid and friends: the default quota. */
	if (strncmp(key, "max_", 4) == 0 && strlen(key) > 8 &&
	    strcmp(key + strlen(key) - 8, "_per_uid") == 0) {
		char base[32];

		snprintf(base, sizeof(base), "%.*s", (int)(strlen(key) - 8), key);
		return brk_config_quota_key(base, v, &cfg->quota, &dummy[0],
					    &dummy[1], &dummy[2], why);
	}
	/* uid.N.max_vms and friends: one uid's override. */
	if (strncmp(key, "uid.", 4) == 0) {
		struct brk_uid_quota *u;
		unsigned long uid;
		char *end;

		errno = 0;
		uid = strtoul(key + 4, &end, 10);
		if (!isdigit((unsigned char)key[4]) || errno || *end != '.' ||
		    uid > UINT32_MAX - 1) {
			*why = "uid.<number>.max_vms, .max_mem or .max_cpus";
			return -ENOENT;
		}
		u = brk_config_uid(cfg, (uint32_t)uid);
		if (!u) {
			*why = "at most 64 per-uid overrides";
			return -EINVAL;
		}
		return brk_config_quota_key(end + 1, v, &u->q, &u->has_vms,
					    &u->has_mem, &u->has_cpus, why);
	}
	return -ENOENT;
}

int brk_config_load(struct brk_config *cfg, const char *path, char *err,
		    size_t errlen)
{
	char line[BRK_CONFIG_LINE_MAX];
	unsigned lineno = 0;
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f) {
		r = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", path,
			 strerror(errno));
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		const char *why;
		char *key, *v, *eq, *hash;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes",
				 path, lineno, BRK_CONFIG_LINE_MAX - 2);
			r = -EINVAL;
			break;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		key = brk_config_trim(line);
		if (!*key)
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: expected 'key = value', "
				 "got '%s'", path, lineno, key);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		v = brk_config_trim(eq + 1);
		key = brk_config_trim(key);
		r = brk_config_line(cfg, key, v, &why);
		if (r == -ENOENT && !why) {
			snprintf(err, errlen, "%s:%u: unknown key '%s' (see "
				 "docs/broker.md for the keys)", path, lineno,
				 key);
			r = -EINVAL;
			break;
		}
		if (r < 0) {
			snprintf(err, errlen, "%s:%u: %s: '%s' is not %s", path,
				 lineno, key, v, why ? why : "valid");
			r = -EINVAL;
			break;
		}
	}
	fclose(f);
	return r;
}

struct brk_quota brk_config_quota(const struct brk_config *cfg, uint32_t uid)
{
	struct brk_quota q = cfg->quota;

	for (unsigned i = 0; i < cfg->nuids; i++) {
		const struct brk_uid_quota *u = &cfg->uids[i];

		if (u->uid != uid)
			continue;
		if (u->has_vms)
			q.max_vms = u->q.max_vms;
		if (u->has_mem)
			q.max_mem = u->q.max_mem;
		if (u->has_cpus)
			q.max_cpus = u->q.max_cpus;
	}
	return q;
}
