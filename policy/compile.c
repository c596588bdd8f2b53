/* SPDX-License-Identifier: MIT */
/*
 * The policy language (see policy/sbx.h): a parser that reads a policy file
 * and its includes into rules, checks every syscall and constant by name,
 * and a compiler that turns the rules into seccomp BPF with libseccomp.
 * Runs at build time (bulkhead-policyc) and in the unit tests, never in a
 * sandboxed process.
 */
#include <errno.h>
#include <limits.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "policy/sbx.h"

#define SBX_LINE_MAX 1024
#define SBX_INCLUDE_DEPTH 8
#define SBX_MAX_RULES 512u
#define SBX_MAX_TERMS 256u

/* Parser state: the file being read and the include chain above it. */
struct sbx_parser {
	struct sbx_pol *pol;
	const char *chain[SBX_INCLUDE_DEPTH + 1];  /* resolved paths */
	unsigned depth;
	const char *file;     /* as shown in messages */
	unsigned line;
	const char *p;        /* cursor in the current line */
	char *err;
	size_t errlen;
};

static int sbx_perr(struct sbx_parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int sbx_perr(struct sbx_parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->file, ps->line);
	if (n < 0 || (size_t)n >= ps->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- lexing ------------------------------------------------------------- */

static void sbx_skip_ws(struct sbx_parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

static bool sbx_at_end(struct sbx_parser *ps)
{
	sbx_skip_ws(ps);
	return *ps->p == '\0';
}

/* Accept the literal tok (after blanks); false leaves the cursor alone. */
static bool sbx_accept(struct sbx_parser *ps, const char *tok)
{
	size_t n = strlen(tok);

	sbx_skip_ws(ps);
	if (strncmp(ps->p, tok, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static bool sbx_is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool sbx_is_ident(char c)
{
	return sbx_is_ident_start(c) || (c >= '0' && c <= '9');
}

/* A word: [A-Za-z0-9_]+; returns its length (0: none, or too long). */
static size_t sbx_word(struct sbx_parser *ps, char *buf, size_t len)
{
	size_t n = 0;

	sbx_skip_ws(ps);
	while (sbx_is_ident(ps->p[n]))
		n++;
	if (n == 0 || n >= len)
		return 0;
	memcpy(buf, ps->p, n);
	buf[n] = '\0';
	ps->p += n;
	return n;
}

/* One atom of a value: a number or a named constant. */
static int sbx_atom(struct sbx_parser *ps, uint64_t *out)
{
	char word[64];
	unsigned long long v;
	char *end;

	sbx_skip_ws(ps);
	if (!sbx_word(ps, word, sizeof(word))) {
		if (*ps->p == '\0')
			return sbx_perr(ps, "expected a number or a constant at "
					"the end of the line");
		return sbx_perr(ps, "expected a number or a constant at '%.20s'",
				ps->p);
	}
	if (word[0] >= '0' && word[0] <= '9') {
		errno = 0;
		v = strtoull(word, &end, 0);
		if (errno || *end)
			return sbx_perr(ps, "'%s' is not a valid number", word);
		*out = v;
		return 0;
	}
	if (sbx_const_lookup(word, out) < 0)
		return sbx_perr(ps, "unknown constant '%s'", word);
	return 0;
}

/* value := ['~'] atom ('|' atom)* */
static int sbx_value(struct sbx_parser *ps, uint64_t *out)
{
	bool neg = sbx_accept(ps, "~");
	uint64_t v = 0, a;
	int r;

	for (;;) {
		r = sbx_atom(ps, &a);
		if (r < 0)
			return r;
		v |= a;
		sbx_skip_ws(ps);
		/* A single '|' joins constants; '||' starts the next term. */
		if (ps->p[0] != '|' || ps->p[1] == '|')
			break;
		ps->p++;
	}
	*out = neg ? ~v : v;
	return 0;
}

static int sbx_op(struct sbx_parser *ps, enum sbx_op *op)
{
	static const struct { const char *tok; enum sbx_op op; } ops[] = {
		{ "==", SBX_OP_EQ }, { "!=", SBX_OP_NE }, { "<=", SBX_OP_LE },
		{ ">=", SBX_OP_GE }, { "<", SBX_OP_LT }, { ">", SBX_OP_GT },
	};

	sbx_skip_ws(ps);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (sbx_accept(ps, ops[i].tok)) {
			*op = ops[i].op;
			return 0;
		}
	}
	if (ps->p[0] == '&' && ps->p[1] != '&') {
		ps->p++;
		*op = SBX_OP_ALLSET;
		return 0;
	}
	if (ps->p[0] == 'i' && ps->p[1] == 'n' && !sbx_is_ident(ps->p[2])) {
		ps->p += 2;
		*op = SBX_OP_IN;
		return 0;
	}
	return sbx_perr(ps, "expected a comparison (==, !=, <, <=, >, >=, &, in) "
			"at '%.20s'", ps->p);
}

/* cmp := 'arg' N op value */
static int sbx_cmp(struct sbx_parser *ps, struct sbx_cmp *c)
{
	char word[16];
	int r;

	if (!sbx_word(ps, word, sizeof(word)) || strncmp(word, "arg", 3) != 0 ||
	    word[3] < '0' || word[3] > '9')
		return sbx_perr(ps, "expected arg0 to arg5 at '%.20s'", ps->p);
	if (word[4] != '\0' || word[3] > '5')
		return sbx_perr(ps, "'%s': syscalls have arguments arg0 to arg5",
				word);
	c->arg = (unsigned)(word[3] - '0');
	r = sbx_op(ps, &c->op);
	if (r < 0)
		return r;
	return sbx_value(ps, &c->value);
}

/* term := cmp ('&&' cmp)* */
static int sbx_term(struct sbx_parser *ps, struct sbx_term *t)
{
	int r;

	memset(t, 0, sizeof(*t));
	do {
		struct sbx_cmp *c = &t->cmps[t->ncmps];

		if (t->ncmps == SBX_MAX_ARGS)
			return sbx_perr(ps, "more than %u comparisons joined "
					"with &&", SBX_MAX_ARGS);
		r = sbx_cmp(ps, c);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < t->ncmps; i++) {
			if (t->cmps[i].arg == c->arg)
				return sbx_perr(ps, "arg%u is compared twice in "
						"one && term; libseccomp cannot "
						"express that", c->arg);
		}
		t->ncmps++;
	} while (sbx_accept(ps, "&&"));
	return 0;
}

/* ---- rules -------------------------------------------------------------- */

const struct sbx_rule *sbx_pol_rule(const struct sbx_pol *p, int nr)
{
	for (unsigned i = 0; i < p->nrules; i++)
		if (p->rules[i].nr == nr)
			return &p->rules[i];
	return NULL;
}

static int sbx_rule_get(struct sbx_parser *ps, const char *name, int nr,
			struct sbx_rule **out)
{
	struct sbx_pol *pol = ps->pol;
	struct sbx_rule *r = (struct sbx_rule *)sbx_pol_rule(pol, nr);

	if (!r) {
		if (pol->nrules == SBX_MAX_RULES)
			return sbx_perr(ps, "more than %u syscalls", SBX_MAX_RULES);
		if (pol->nrules % 32 == 0) {
			struct sbx_rule *nrules = realloc(pol->rules,
				(pol->nrules + 32) * sizeof(*nrules));

			if (!nrules)
				return -ENOMEM;
			pol->rules = nrules;
		}
		r = &pol->rules[pol->nrules++];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->nr = nr;
		snprintf(r->where, sizeof(r->where), "%s:%u", ps->file, ps->line);
	}
	*out = r;
	return 0;
}

static int sbx_rule_add_term(struct sbx_parser *ps, struct sbx_rule *r,
			     const struct sbx_term *t)
{
	struct sbx_term *nt;

	for (unsigned i = 0; i < r->nterms; i++)
		if (memcmp(&r->terms[i], t, sizeof(*t)) == 0)
			return 0;  /* the same term twice: once is enough */
	if (r->nterms == SBX_MAX_TERMS)
		return sbx_perr(ps, "more than %u terms for %s", SBX_MAX_TERMS,
				r->name);
	nt = realloc(r->terms, (r->nterms + 1) * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	r->terms = nt;
	r->terms[r->nterms++] = *t;
	return 0;
}

/* name ':' ( '1' | 'return' ERRNO | term ('||' term)* ) */
static int sbx_syscall_line(struct sbx_parser *ps)
{
	char name[40], word[40];
	struct sbx_rule *rule = NULL;
	int nr, r, e;

	if (!sbx_word(ps, name, sizeof(name)) || !sbx_is_ident_start(name[0]))
		return sbx_perr(ps, "expected a syscall name at '%.20s'", ps->p);
	if (!sbx_accept(ps, ":"))
		return sbx_perr(ps, "expected ':' after '%s'", name);
	nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return sbx_perr(ps, "unknown syscall '%s'", name);
	if (nr < 0)
		return sbx_perr(ps, "syscall '%s' does not exist on this "
				"architecture", name);
	r = sbx_rule_get(ps, name, nr, &rule);
	if (r < 0)
		return r;

	if (sbx_accept(ps, "return")) {
		if (!sbx_word(ps, word, sizeof(word)))
			return sbx_perr(ps, "'return' needs an errno name such "
					"as EPERM");
		if (sbx_errno_lookup(word, &e) < 0)
			return sbx_perr(ps, "unknown errno '%s'", word);
		if (rule->allow || rule->nterms)
			return sbx_perr(ps, "%s is allowed at %s; it cannot also "
					"return %s", name, rule->where, word);
		if (rule->errno_val && rule->errno_val != e)
			return sbx_perr(ps, "%s already returns another errno "
					"at %s", name, rule->where);
		rule->errno_val = e;
		goto end;
	}
	if (rule->errno_val)
		return sbx_perr(ps, "%s returns an errno at %s; it cannot also "
				"be allowed", name, rule->where);
	sbx_skip_ws(ps);
	if (ps->p[0] == '1' && !sbx_is_ident(ps->p[1])) {
		ps->p++;
		rule->allow = true;
		goto end;
	}
	if (ps->p[0] == '0' && !sbx_is_ident(ps->p[1]))
		return sbx_perr(ps, "'%s: 0' is not a rule: leave %s out to "
				"forbid it", name, name);
	if (sbx_at_end(ps))
		return sbx_perr(ps, "%s: expected 1, 'return ERRNO' or argument "
				"comparisons", name);
	do {
		struct sbx_term t;

		r = sbx_term(ps, &t);
		if (r < 0)
			return r;
		r = sbx_rule_add_term(ps, rule, &t);
		if (r < 0)
			return r;
	} while (sbx_accept(ps, "||"));
end:
	if (!sbx_at_end(ps))
		return sbx_perr(ps, "unexpected '%.20s'", ps->p);
	return 0;
}

static int sbx_limit_line(struct sbx_parser *ps)
{
	char what[16], word[32];
	uint64_t *dst, v;
	char *end;

	if (!sbx_word(ps, what, sizeof(what)))
		return sbx_perr(ps, "@limit needs tasks, nofile or fsize");
	if (strcmp(what, "tasks") == 0)
		dst = &ps->pol->limits.tasks;
	else if (strcmp(what, "nofile") == 0)
		dst = &ps->pol->limits.nofile;
	else if (strcmp(what, "fsize") == 0)
		dst = &ps->pol->limits.fsize;
	else
		return sbx_perr(ps, "@limit: unknown limit '%s' (tasks, nofile, "
				"fsize)", what);
	if (!sbx_word(ps, word, sizeof(word)))
		return sbx_perr(ps, "@limit %s needs a number or 'unlimited'",
				what);
	if (strcmp(word, "unlimited") == 0) {
		v = SBX_UNLIMITED;
	} else {
		errno = 0;
		v = strtoull(word, &end, 0);
		if (errno || *end || !(word[0] >= '0' && word[0] <= '9'))
			return sbx_perr(ps, "@limit %s: '%s' is not a number",
					what, word);
	}
	if ((dst == &ps->pol->limits.tasks || dst == &ps->pol->limits.nofile) &&
	    v == 0)
		return sbx_perr(ps, "@limit %s 0 would leave the process unable "
				"to run", what);
	if (!sbx_at_end(ps))
		return sbx_perr(ps, "unexpected '%.20s'", ps->p);
	*dst = v;
	return 0;
}

static int sbx_parse_file(struct sbx_parser *ps, const char *path);

static int sbx_include_line(struct sbx_parser *ps)
{
	char rel[PATH_MAX], path[PATH_MAX];
	const char *slash;
	size_t n = 0;

	sbx_skip_ws(ps);
	while (ps->p[n] && ps->p[n] != ' ' && ps->p[n] != '\t' && n < sizeof(rel) - 1) {
		rel[n] = ps->p[n];
		n++;
	}
	rel[n] = '\0';
	ps->p += n;
	if (n == 0)
		return sbx_perr(ps, "@include needs a file name");
	if (!sbx_at_end(ps))
		return sbx_perr(ps, "unexpected '%.20s'", ps->p);
	if (rel[0] == '/')
		return sbx_perr(ps, "@include %s: give a path relative to this "
				"file", rel);
	slash = strrchr(ps->file, '/');
	if (slash)
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - ps->file),
			 ps->file, rel);
	else
		snprintf(path, sizeof(path), "%s", rel);
	return sbx_parse_file(ps, path);
}

static int sbx_line(struct sbx_parser *ps, char *line)
{
	char *hash = strchr(line, '#');
	size_t n;

	if (hash)
		*hash = '\0';
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
		     line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	ps->p = line;
	if (sbx_at_end(ps))
		return 0;
	if (*ps->p == '@') {
		char directive[16];

		ps->p++;
		if (sbx_word(ps, directive, sizeof(directive))) {
			if (strcmp(directive, "include") == 0)
				return sbx_include_line(ps);
			if (strcmp(directive, "limit") == 0)
				return sbx_limit_line(ps);
		}
		return sbx_perr(ps, "unknown directive '%.20s' (@include, "
				"@limit)", line + strspn(line, " \t"));
	}
	return sbx_syscall_line(ps);
}

/* "a.policy -> b.policy -> a.policy" for an include loop message. */
static void sbx_chain_str(struct sbx_parser *ps, const char *last, char *buf,
			  size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < ps->depth && off < len; i++) {
		const char *base = strrchr(ps->chain[i], '/');
		int n = snprintf(buf + off, len - off, "%s -> ",
				 base ? base + 1 : ps->chain[i]);

		if (n < 0)
			return;
		off += (size_t)n;
	}
	if (off < len) {
		const char *base = strrchr(last, '/');

		snprintf(buf + off, len - off, "%s", base ? base + 1 : last);
	}
}

/* A policy file that cannot be opened: the top one, or one included (where
 * the message names the file and line of the @include). Returns -errno. */
static int sbx_open_err(struct sbx_parser *ps, const char *path)
{
	int e = errno;

	if (ps->depth == 0)
		snprintf(ps->err, ps->errlen, "cannot open policy '%s': %s",
			 path, strerror(e));
	else
		sbx_perr(ps, "cannot include '%s': %s", path, strerror(e));
	return -e;
}

static int sbx_parse_file(struct sbx_parser *ps, const char *path)
{
	const char *saved_file = ps->file;
	unsigned saved_line = ps->line;
	char line[SBX_LINE_MAX + 2], chain[512];
	char *real = NULL;
	FILE *f = NULL;
	int r = 0;

	real = realpath(path, NULL);
	if (!real) {
		r = sbx_open_err(ps, path);
		return r;
	}
	for (unsigned i = 0; i < ps->depth; i++) {
		if (strcmp(ps->chain[i], real) == 0) {
			sbx_chain_str(ps, real, chain, sizeof(chain));
			r = sbx_perr(ps, "@include loop: %s", chain);
			goto out;
		}
	}
	if (ps->depth == SBX_INCLUDE_DEPTH) {
		r = sbx_perr(ps, "@include nested more than %u deep",
			     SBX_INCLUDE_DEPTH);
		goto out;
	}
	f = fopen(path, "re");
	if (!f) {
		r = sbx_open_err(ps, path);
		goto out;
	}
	ps->chain[ps->depth++] = real;
	ps->file = path;
	ps->line = 0;
	while (fgets(line, sizeof(line), f)) {
		ps->line++;
		if (strlen(line) > SBX_LINE_MAX) {
			r = sbx_perr(ps, "line longer than %u characters",
				     SBX_LINE_MAX);
			break;
		}
		r = sbx_line(ps, line);
		if (r < 0)
			break;
	}
	if (r == 0 && ferror(f))
		r = sbx_perr(ps, "read error");
	ps->depth--;
	ps->file = saved_file;
	ps->line = saved_line;
out:
	if (f)
		fclose(f);
	free(real);
	return r;
}

void sbx_pol_free(struct sbx_pol *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->nrules; i++)
		free(p->rules[i].terms);
	free(p->rules);
	free(p);
}

int sbx_pol_parse(const char *path, struct sbx_pol **out, char *err,
		  size_t errlen)
{
	struct sbx_parser ps = { .err = err, .errlen = errlen, .file = path };
	struct sbx_limits def = SBX_DEFAULT_LIMITS;
	int r;

	err[0] = '\0';
	ps.pol = calloc(1, sizeof(*ps.pol));
	if (!ps.pol)
		return -ENOMEM;
	ps.pol->limits = def;
	r = sbx_parse_file(&ps, path);
	if (r < 0) {
		if (r == -ENOMEM && !err[0])
			snprintf(err, errlen, "%s: out of memory", path);
		sbx_pol_free(ps.pol);
		return r;
	}
	*out = ps.pol;
	return 0;
}

/* ---- compiling ---------------------------------------------------------- */

static struct scmp_arg_cmp sbx_scmp(const struct sbx_cmp *c)
{
	struct scmp_arg_cmp s = { .arg = c->arg, .datum_a = c->value };

	switch (c->op) {
	case SBX_OP_EQ:
		s.op = SCMP_CMP_EQ;
		break;
	case SBX_OP_NE:
		s.op = SCMP_CMP_NE;
		break;
	case SBX_OP_LT:
		s.op = SCMP_CMP_LT;
		break;
	case SBX_OP_LE:
		s.op = SCMP_CMP_LE;
		break;
	case SBX_OP_GT:
		s.op = SCMP_CMP_GT;
		break;
	case SBX_OP_GE:
		s.op = SCMP_CMP_GE;
		break;
	case SBX_OP_ALLSET:
		s.op = SCMP_CMP_MASKED_EQ;
		s.datum_a = c->value;   /* mask */
		s.datum_b = c->value;
		break;
	case SBX_OP_IN:
		s.op = SCMP_CMP_MASKED_EQ;
		s.datum_a = ~c->value;
		s.datum_b = 0;
		break;
	}
	return s;
}

/* Add one rule to the filter: an errno, a plain allow, or its terms. */
static int sbx_scmp_rule_add(scmp_filter_ctx ctx, const struct sbx_rule *rule)
{
	int r = 0;

	if (rule->errno_val) {
		r = seccomp_rule_add(ctx,
				     SCMP_ACT_ERRNO((unsigned)rule->errno_val),
				     rule->nr, 0);
	} else if (rule->allow) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rule->nr, 0);
	} else {
		for (unsigned t = 0; t < rule->nterms && r == 0; t++) {
			struct scmp_arg_cmp c[SBX_MAX_ARGS];
			const struct sbx_term *term = &rule->terms[t];

			for (unsigned k = 0; k < term->ncmps; k++)
				c[k] = sbx_scmp(&term->cmps[k]);
			r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW,
						   rule->nr, term->ncmps, c);
		}
	}
	return r;
}

/* Export the filter through a memfd and read it back as a program. */
static int sbx_bpf_export(scmp_filter_ctx ctx, struct sock_filter **out,
			  unsigned *len, char *err, size_t errlen)
{
	struct sock_filter *prog = NULL;
	int fd, r;
	off_t size;

	fd = memfd_create("bulkhead-bpf", MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		goto out;
	}
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0) {
		snprintf(err, errlen, "libseccomp: cannot export the filter: %s",
			 strerror(-r));
		goto out;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(*prog) ||
	    size / (off_t)sizeof(*prog) > BPF_MAXINSNS) {
		r = -E2BIG;
		snprintf(err, errlen, "the filter has %lld bytes, which is not "
			 "1 to %u instructions", (long long)size, BPF_MAXINSNS);
		goto out;
	}
	prog = malloc((size_t)size);
	if (!prog) {
		r = -ENOMEM;
		goto out;
	}
	if (pread(fd, prog, (size_t)size, 0) != size) {
		r = -EIO;
		snprintf(err, errlen, "cannot read the exported filter back");
		goto out;
	}
	*out = prog;
	*len = (unsigned)(size / (off_t)sizeof(*prog));
	prog = NULL;
	r = 0;
out:
	free(prog);
	if (fd >= 0)
		close(fd);
	return r;
}

int sbx_pol_compile(const struct sbx_pol *p, bool debug,
		    struct sock_filter **out, unsigned *len, char *err,
		    size_t errlen)
{
	scmp_filter_ctx ctx;
	int r;

	err[0] = '\0';
	ctx = seccomp_init(debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		snprintf(err, errlen, "libseccomp: cannot create a filter");
		return -ENOMEM;
	}
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r == 0)  /* a binary tree of syscalls rather than a list */
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r < 0) {
		snprintf(err, errlen, "libseccomp: cannot set filter attributes: "
			 "%s", strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < p->nrules && r == 0; i++) {
		const struct sbx_rule *rule = &p->rules[i];

		r = sbx_scmp_rule_add(ctx, rule);
		if (r < 0)
			snprintf(err, errlen, "%s: libseccomp refused the rule "
				 "for %s: %s", rule->where, rule->name,
				 strerror(-r));
	}
	if (r == 0)
		r = sbx_bpf_export(ctx, out, len, err, errlen);
out:
	seccomp_release(ctx);
	return r;
}

/* ---- a seccomp BPF interpreter, for checking compiled policies ---------- */

/*
 * BPF_LD into *a; false for an unknown mode or a load outside seccomp_data
 * or the scratch memory.
 */
static bool sbx_bpf_ld(const struct sock_filter *in,
		       const struct seccomp_data *d, const uint32_t *mem,
		       uint32_t *a)
{
	const uint8_t *data = (const uint8_t *)d;
	uint32_t k = in->k;

	if (in->code == (BPF_LD | BPF_W | BPF_ABS)) {
		if (k % 4 || k + 4 > sizeof(*d))
			return false;
		memcpy(a, data + k, 4);
	} else if (in->code == (BPF_LD | BPF_W | BPF_LEN)) {
		*a = sizeof(*d);
	} else if (in->code == (BPF_LD | BPF_IMM)) {
		*a = k;
	} else if (in->code == (BPF_LD | BPF_MEM) && k < BPF_MEMWORDS) {
		*a = mem[k];
	} else {
		return false;
	}
	return true;
}

/* BPF_ALU on *a; false for an unknown operation or a division by zero. */
static bool sbx_bpf_alu(const struct sock_filter *in, uint32_t x, uint32_t *a)
{
	uint32_t src = BPF_SRC(in->code) == BPF_X ? x : in->k;

	switch (BPF_OP(in->code)) {
	case BPF_ADD: *a += src; break;
	case BPF_SUB: *a -= src; break;
	case BPF_MUL: *a *= src; break;
	case BPF_DIV:
		if (!src)
			return false;
		*a /= src;
		break;
	case BPF_MOD:
		if (!src)
			return false;
		*a %= src;
		break;
	case BPF_AND: *a &= src; break;
	case BPF_OR: *a |= src; break;
	case BPF_XOR: *a ^= src; break;
	case BPF_LSH: *a = src < 32 ? *a << src : 0; break;
	case BPF_RSH: *a = src < 32 ? *a >> src : 0; break;
	case BPF_NEG: *a = -*a; break;
	default: return false;
	}
	return true;
}

/* BPF_JMP: moves *pc past what it skips; false for an unknown condition. */
static bool sbx_bpf_jmp(const struct sock_filter *in, uint32_t a, uint32_t x,
			unsigned *pc)
{
	uint32_t src = BPF_SRC(in->code) == BPF_X ? x : in->k;

	if (BPF_OP(in->code) == BPF_JA) {
		*pc += in->k;
		return true;
	}
	switch (BPF_OP(in->code)) {
	case BPF_JEQ: *pc += a == src ? in->jt : in->jf; break;
	case BPF_JGT: *pc += a > src ? in->jt : in->jf; break;
	case BPF_JGE: *pc += a >= src ? in->jt : in->jf; break;
	case BPF_JSET: *pc += (a & src) ? in->jt : in->jf; break;
	default: return false;
	}
	return true;
}

uint32_t sbx_bpf_run(const struct sock_filter *f, unsigned len,
		     const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };

	for (unsigned pc = 0; pc < len; pc++) {
		const struct sock_filter *in = &f[pc];
		uint32_t k = in->k;

		switch (BPF_CLASS(in->code)) {
		case BPF_LD:
			if (!sbx_bpf_ld(in, d, mem, &a))
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_LDX:
			if (in->code == (BPF_LDX | BPF_IMM))
				x = k;
			else if (in->code == (BPF_LDX | BPF_MEM) && k < BPF_MEMWORDS)
				x = mem[k];
			else if (in->code == (BPF_LDX | BPF_W | BPF_LEN))
				x = sizeof(*d);
			else
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_ST:
			if (k >= BPF_MEMWORDS)
				return SECCOMP_RET_KILL_PROCESS;
			mem[k] = a;
			break;
		case BPF_STX:
			if (k >= BPF_MEMWORDS)
				return SECCOMP_RET_KILL_PROCESS;
			mem[k] = x;
			break;
		case BPF_ALU:
			if (!sbx_bpf_alu(in, x, &a))
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_JMP:
			if (!sbx_bpf_jmp(in, a, x, &pc))
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_RET:
			return BPF_RVAL(in->code) == BPF_A ? a : k;
		case BPF_MISC:
			if (BPF_MISCOP(in->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		default:
			return SECCOMP_RET_KILL_PROCESS;
		}
	}
	return SECCOMP_RET_KILL_PROCESS;  /* fell off the end */
}
