/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Self-describing workload record: one logical block that names the disk,
 * sequence number, sector and generation it was written for, and ends in a
 * CRC-32 over everything before it. tests/framework/records.py is the host-side
 * twin of this layout; change both together.
 *
 *   off  size  field (little-endian)
 *     0     8  magic "MVMMREC1"
 *     8     4  record size in bytes (the disk's logical block size)
 *    12     4  disk index (vda = 0)
 *    16     8  sequence number (per disk, per boot, from 0)
 *    24     8  sector (512-byte units) the record was written to
 *    32     4  generation (from the plan; tells boots apart)
 *    36     4  seed
 *    40  size-44  payload: xorshift32 words seeded from the fields above
 *  size-4   4  CRC-32 (IEEE, as zlib.crc32) of bytes [0, size-4)
 */
#ifndef MINIVMM_RECORD_H
#define MINIVMM_RECORD_H

#include <linux/types.h>

#define MINIVMM_RECORD_MAGIC "MVMMREC1"
#define MINIVMM_RECORD_HEADER 40
#define MINIVMM_RECORD_MIN_SIZE 512

struct minivmm_record_id {
	u32 disk;
	u64 seq;
	u64 sector;
	u32 generation;
	u32 seed;
};

/* Fills buf[0, size) with the record for id; size: multiple of 4, >= 512. */
void minivmm_record_build(u8 *buf, u32 size, const struct minivmm_record_id *id);

#endif /* MINIVMM_RECORD_H */
