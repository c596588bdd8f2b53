/* SPDX-License-Identifier: MIT */
/*
 * ssm_int.h: what the stream's three files (ssm_common.c, ssm_write.c,
 * ssm_read.c) share and nobody else uses: buffer sizes, the magic strings
 * and the encoding helpers. The public API is ssm.h.
 */
#ifndef BULKHEAD_SSM_INT_H
#define BULKHEAD_SSM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "emt-worker/ssm.h"

#define SSM_ERR_LEN 256u /* an error message, with its NUL */

extern const char ssm_file_magic[SSM_FILE_MAGIC_LEN];
extern const char ssm_unit_magic[SSM_MAGIC_LEN];
extern const char ssm_end_magic[SSM_MAGIC_LEN];
extern const char ssm_dir_magic[SSM_MAGIC_LEN];
extern const char ssm_footer_magic[SSM_MAGIC_LEN];

/* ---- little-endian helpers ---------------------------------------------- */

static inline void ssm_le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void ssm_le32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ssm_le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t ssm_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ssm_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t ssm_le64(const uint8_t *p)
{
	return (uint64_t)ssm_le32(p) | (uint64_t)ssm_le32(p + 4) << 32;
}

/* CRC32 of a structure whose 4-byte CRC field at crc_off counts as zero. */
uint32_t ssm_struct_crc(const uint8_t *p, size_t len, size_t crc_off);
uint32_t ssm_name_crc(const char *name);
void ssm_dir_entry_encode(uint8_t *e, uint64_t off, uint32_t instance,
			  uint32_t name_crc);
bool ssm_all_zero(const uint8_t *p, size_t n);
/* A unit name: 1..SSM_NAME_MAX-1 printable ASCII characters, no space. */
bool ssm_name_char_ok(char c);

#endif
