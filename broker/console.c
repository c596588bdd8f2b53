/* SPDX-License-Identifier: MIT */
/*
 * Consoles: what a VM's UART writes (its end of a socket pair the broker
 * holds, BRK_SERIAL_CONSOLE) goes into a scrollback of BRK_SCROLLBACK bytes
 * and to every client attached with `bulkhead console`; what they type
 * goes to the UART. Bytes are copied, never interpreted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/reg_impl.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

/* Console: bytes read from the UART per event, and per frame. */
#define BRK_CONSOLE_READS 16
#define BRK_CONSOLE_CHUNK 4096u

static void brk_sb_append(struct brk_rec *rec, const uint8_t *p, size_t n)
{
	if (n >= BRK_SCROLLBACK) {
		p += n - BRK_SCROLLBACK;
		n = BRK_SCROLLBACK;
	}
	while (n) {
		size_t k = BRK_SCROLLBACK - rec->sb_head;

		if (k > n)
			k = n;
		memcpy(rec->sb + rec->sb_head, p, k);
		rec->sb_head = (rec->sb_head + k) % BRK_SCROLLBACK;
		rec->sb_len = rec->sb_len + k > BRK_SCROLLBACK ? BRK_SCROLLBACK
							     : rec->sb_len + k;
		p += k;
		n -= k;
	}
}

static void brk_console_send(struct brk_reg *reg, uint64_t client,
			     const uint8_t *p, size_t n)
{
	while (n) {
		ConsoleData cd = CONSOLE_DATA__INIT;
		size_t k = n < BRK_CONSOLE_CHUNK ? n : BRK_CONSOLE_CHUNK;

		cd.data.data = (uint8_t *)p;
		cd.data.len = k;
		brk_reg_send(reg, client, MSG_CTL_CONSOLE_OUTPUT, &cd.base);
		p += k;
		n -= k;
	}
}

static void brk_console_forward(struct brk_reg *reg, struct brk_rec *rec,
				const uint8_t *p, size_t n)
{
	/* A slow client may be dropped on the way (and leave the list). */
	for (unsigned i = rec->console_clients; i-- > 0;)
		if (i < rec->console_clients)
			brk_console_send(reg, rec->consoles[i], p, n);
}

void brk_console_read(struct brk_reg *reg, struct brk_rec *rec)
{
	uint8_t buf[BRK_CONSOLE_CHUNK];

	for (int i = 0; i < BRK_CONSOLE_READS && rec->console_fd >= 0; i++) {
		ssize_t n = recv(rec->console_fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* The UART is gone: nobody writes to it any more. */
			brk_reg_unwatch(reg, rec->console_fd);
			close(rec->console_fd);
			rec->console_fd = -1;
			return;
		}
		brk_sb_append(rec, buf, (size_t)n);
		brk_console_forward(reg, rec, buf, (size_t)n);
	}
}

/* Take client off rec's console list; false if it was not on it. */
static bool brk_console_forget(struct brk_rec *rec, uint64_t client)
{
	for (unsigned i = 0; i < rec->console_clients; i++) {
		if (rec->consoles[i] != client)
			continue;
		rec->consoles[i] = rec->consoles[--rec->console_clients];
		return true;
	}
	return false;
}

/* The VM whose console client is attached to, or NULL. */
static struct brk_rec *brk_console_of(struct brk_reg *reg, uint64_t client)
{
	for (struct brk_rec *r = reg->vms; r; r = r->next)
		for (unsigned i = 0; i < r->console_clients; i++)
			if (r->consoles[i] == client)
				return r;
	return NULL;
}

void brk_console_end(struct brk_reg *reg, struct brk_rec *rec,
		     const char *reason)
{
	ConsoleEnd ce = CONSOLE_END__INIT;

	ce.reason = (char *)reason;
	while (rec->console_clients) {
		uint64_t client = rec->consoles[--rec->console_clients];

		brk_reg_set_mode(reg, client, BRK_MODE_READY);
		brk_reg_send(reg, client, MSG_CTL_CONSOLE_END, &ce.base);
	}
}

void brk_reg_console_attach(struct brk_reg *reg, const struct brk_caller *c,
			    struct brk_rec *rec, bool replay)
{
	ConsoleAttached rep = CONSOLE_ATTACHED__INIT;
	struct brk_info in;

	if (rec->serial != SERIAL_MODE__SERIAL_CONSOLE) {
		brk_reg_fail(reg, c, EINVAL, "VM '%s' has no console: its UART "
			     "goes to %s (create it with --serial console, the "
			     "default)", rec->name,
			     rec->serial == SERIAL_MODE__SERIAL_NULL ? "null" :
			     "a file");
		return;
	}
	if (rec->console_clients == BRK_MAX_CONSOLES) {
		brk_reg_fail(reg, c, EBUSY, "VM '%s' has %u consoles attached, "
			     "the most it may have; detach one first",
			     rec->name, BRK_MAX_CONSOLES);
		return;
	}
	/* On the list first: a client dropped while we send leaves it. */
	rec->consoles[rec->console_clients++] = c->id;
	brk_reg_set_mode(reg, c->id, BRK_MODE_CONSOLE);
	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	brk_reg_send(reg, c->id, MSG_CTL_CONSOLE_ATTACHED, &rep.base);
	if (replay && rec->sb_len) {
		size_t start = (rec->sb_head + BRK_SCROLLBACK - rec->sb_len) %
			       BRK_SCROLLBACK;
		size_t first = BRK_SCROLLBACK - start;

		if (first > rec->sb_len)
			first = rec->sb_len;
		brk_console_send(reg, c->id, rec->sb + start, first);
		brk_console_send(reg, c->id, rec->sb, rec->sb_len - first);
	}
}

void brk_reg_console_input(struct brk_reg *reg, const struct brk_caller *c,
			   const uint8_t *data, size_t len)
{
	struct brk_rec *rec = brk_console_of(reg, c->id);
	ssize_t n;

	if (!rec || rec->console_fd < 0 || !len)
		return;  /* not running: typed input goes nowhere */
	/*
	 * The UART takes input as the guest reads it; what the socket
	 * cannot hold now is dropped, never waited for.
	 */
	n = send(rec->console_fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 || (size_t)n < len)
		LOG_DBG("VM %s: console input dropped (%zu bytes)", rec->name,
			n < 0 ? len : len - (size_t)n);
}

void brk_reg_console_detach(struct brk_reg *reg, const struct brk_caller *c)
{
	ConsoleDetached rep = CONSOLE_DETACHED__INIT;
	struct brk_rec *rec = brk_console_of(reg, c->id);

	if (rec)
		brk_console_forget(rec, c->id);
	brk_reg_set_mode(reg, c->id, BRK_MODE_READY);
	brk_reg_send(reg, c->id, MSG_CTL_CONSOLE_DETACHED, &rep.base);
}

void brk_reg_client_gone(struct brk_reg *reg, uint64_t client)
{
	struct brk_rec *rec = brk_console_of(reg, client);

	if (rec)
		brk_console_forget(rec, client);
}
