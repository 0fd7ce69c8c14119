// SPDX-License-Identifier: GPL-2.0
/*
 * minivmm agent: building workload records (layout in record.h).
 * The CRC is lib/crc32's table-driven crc32_le, not the SSE4.2 instruction
 * (docs/nested-kvm.md: keep to instructions PVM's emulator executes).
 */
#include <asm/unaligned.h>
#include <linux/crc32.h>
#include <linux/string.h>

#include "record.h"

/* Payload seed: every identifying field changes the whole payload. */
static u32 payload_seed(const struct minivmm_record_id *id)
{
	u32 x = id->seed;

	x ^= (id->disk + 1) * 0x9e3779b9u;
	x ^= (u32)id->seq * 0x85ebca6bu;
	x ^= (u32)(id->seq >> 32) * 0xc2b2ae35u;
	x ^= id->generation * 0x27d4eb2fu;
	return x ? x : 1;	/* xorshift32 must not start at 0 */
}

void minivmm_record_build(u8 *buf, u32 size, const struct minivmm_record_id *id)
{
	u32 x = payload_seed(id);
	u32 off;

	memcpy(buf, MINIVMM_RECORD_MAGIC, 8);
	put_unaligned_le32(size, buf + 8);
	put_unaligned_le32(id->disk, buf + 12);
	put_unaligned_le64(id->seq, buf + 16);
	put_unaligned_le64(id->sector, buf + 24);
	put_unaligned_le32(id->generation, buf + 32);
	put_unaligned_le32(id->seed, buf + 36);
	for (off = MINIVMM_RECORD_HEADER; off < size - 4; off += 4) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		put_unaligned_le32(x, buf + off);
	}
	/* zlib convention: start at ~0, invert the result. */
	put_unaligned_le32(~crc32_le(~0u, buf, size - 4), buf + size - 4);
}
