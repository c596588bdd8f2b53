/* SPDX-License-Identifier: MIT */
/*
 * ssm_common.c: what the stream's writer and reader share: the structure
 * CRCs, the size encoding, the magic strings and the I/O callbacks for
 * fds and memory. The format is in docs/ssm-format.md; the API in ssm.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "emt-worker/ssm_int.h"

const char ssm_file_magic[SSM_FILE_MAGIC_LEN] = SSM_FILE_MAGIC;
const char ssm_unit_magic[SSM_MAGIC_LEN] = SSM_UNIT_MAGIC;
const char ssm_end_magic[SSM_MAGIC_LEN] = SSM_END_MAGIC;
const char ssm_dir_magic[SSM_MAGIC_LEN] = SSM_DIR_MAGIC;
const char ssm_footer_magic[SSM_MAGIC_LEN] = SSM_FOOTER_MAGIC;

/* CRC32 of a structure whose 4-byte CRC field at crc_off counts as zero. */
uint32_t ssm_struct_crc(const uint8_t *p, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = (uint32_t)crc32(0, Z_NULL, 0);

	c = (uint32_t)crc32(c, p, (uInt)crc_off);
	c = (uint32_t)crc32(c, zero, 4);
	return (uint32_t)crc32(c, p + crc_off + 4, (uInt)(len - crc_off - 4));
}

uint32_t ssm_name_crc(const char *name)
{
	return (uint32_t)crc32(crc32(0, Z_NULL, 0), (const Bytef *)name,
			       (uInt)strlen(name));
}

void ssm_dir_entry_encode(uint8_t *e, uint64_t off, uint32_t instance,
			  uint32_t name_crc)
{
	ssm_le64_put(e, off);
	ssm_le32_put(e + 8, instance);
	ssm_le32_put(e + 12, name_crc);
}

bool ssm_all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* A unit name: 1..SSM_NAME_MAX-1 printable ASCII characters, no space. */
bool ssm_name_char_ok(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* ---- size encoding ------------------------------------------------------ */

size_t ssm_size_len(uint8_t lead)
{
	if (lead < 0x80)
		return 1;
	if (lead < 0xc0)
		return 0; /* a continuation byte */
	if (lead < 0xe0)
		return 2;
	if (lead < 0xf0)
		return 3;
	if (lead < 0xf8)
		return 4;
	if (lead < 0xfc)
		return 5;
	if (lead < 0xfe)
		return 6;
	return 0;
}

int ssm_size_encode(uint32_t size, uint8_t *buf, size_t *len)
{
	static const uint8_t lead_bits[SSM_SIZE_MAX_BYTES + 1] = {
		0, 0x00, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc,
	};
	size_t n;

	if (size < 0x80)
		n = 1;
	else if (size < 0x800)
		n = 2;
	else if (size < 0x10000)
		n = 3;
	else if (size < 0x200000)
		n = 4;
	else if (size < 0x4000000)
		n = 5;
	else if (size <= SSM_SIZE_LIMIT)
		n = 6;
	else
		return -E2BIG;
	for (size_t i = n - 1; i > 0; i--) {
		buf[i] = (uint8_t)(0x80 | (size & 0x3f));
		size >>= 6;
	}
	buf[0] = (uint8_t)(lead_bits[n] | size);
	*len = n;
	return 0;
}

int ssm_size_decode(const uint8_t *buf, size_t len, uint32_t *size,
		    size_t *used)
{
	static const uint8_t lead_mask[SSM_SIZE_MAX_BYTES + 1] = {
		0, 0x7f, 0x1f, 0x0f, 0x07, 0x03, 0x01,
	};
	static const uint32_t min_value[SSM_SIZE_MAX_BYTES + 1] = {
		0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000,
	};
	size_t n;
	uint32_t v;

	if (len == 0)
		return -ENODATA;
	n = ssm_size_len(buf[0]);
	if (n == 0)
		return -EBADMSG;
	if (len < n)
		return -ENODATA;
	v = buf[0] & lead_mask[n];
	for (size_t i = 1; i < n; i++) {
		if ((buf[i] & 0xc0) != 0x80)
			return -EBADMSG;
		v = v << 6 | (buf[i] & 0x3f);
	}
	if (v < min_value[n])
		return -EBADMSG; /* overlong */
	*size = v;
	*used = n;
	return 0;
}

/* ---- I/O callbacks ------------------------------------------------------ */

int ssm_fd_write(void *ctx, const void *buf, size_t len)
{
	int fd = *(const int *)ctx;
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t ssm_fd_read(void *ctx, void *buf, size_t len)
{
	int fd = *(const int *)ctx;

	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int ssm_mem_write(void *ctx, const void *buf, size_t len)
{
	struct ssm_mem *m = ctx;

	if (len == 0)
		return 0;
	if (len > SIZE_MAX - m->len)
		return -ENOMEM;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		uint8_t *p;

		while (cap < m->len + len) {
			if (cap > SIZE_MAX / 2)
				return -ENOMEM;
			cap *= 2;
		}
		p = realloc(m->data, cap);
		if (!p)
			return -ENOMEM;
		m->data = p;
		m->cap = cap;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

ssize_t ssm_mem_read(void *ctx, void *buf, size_t len)
{
	struct ssm_mem *m = ctx;
	size_t n = m->pos < m->len ? m->len - m->pos : 0;

	if (n > len)
		n = len;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	if (n == 0)
		return 0;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}
