// SPDX-License-Identifier: GPL-2.0
/*
 * minivmm agent: block-device workload.
 *
 * For every virtio disk: print what the guest sees (capacity, logical block
 * size, negotiated virtio features, volatile write cache), then write
 * self-describing records (record.h) with submit_bio_wait, flush with
 * blkdev_issue_flush every flush_every records written, optionally flip the write
 * cache through virtio_blk's cache_type attribute and write more, and finally
 * read every record back. Each completed write and flush is printed as one
 * machine-readable line (README.md "Guest agent" lists them) so the host can
 * check the image and the device's counters against what the guest saw.
 *
 * With multi=n > 1 each write bio carries n records for n contiguous
 * sectors, each record in its own page: n bio_vecs that are never physically
 * contiguous, so virtio_blk maps them to n data descriptors (one
 * multi-segment request; the device offers seg_max). The ack lines of a bio
 * are printed after it completes.
 *
 * Budget (docs/nested-kvm.md): guest kernel code is emulated on PVM, ~13 ms
 * per 4 KiB bio: plans of tens of writes per disk.
 */
#define pr_fmt(fmt) "agent " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device/driver.h>
#include <linux/gfp.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "agent.h"
#include "disks.h"
#include "record.h"

static unsigned int writes;
module_param(writes, uint, 0444);
MODULE_PARM_DESC(writes, "records written per disk in the first phase; 0 (default): no workload");

static unsigned int flush_every = 4;
module_param(flush_every, uint, 0444);
MODULE_PARM_DESC(flush_every, "flush after every k writes (and at the end of each phase); 0: only at phase end");

static unsigned long long start_sector = 64;
module_param(start_sector, ullong, 0444);
MODULE_PARM_DESC(start_sector, "first sector of the record area (default 64: clear of partition tables)");

static unsigned int span;
module_param(span, uint, 0444);
MODULE_PARM_DESC(span, "record slots per disk; write seq goes to slot seq % span (default: writes, or 64 when continuous)");

static unsigned int generation = 1;
module_param(generation, uint, 0444);
MODULE_PARM_DESC(generation, "stored in every record: tells boots apart");

static unsigned int seed = 1;
module_param(seed, uint, 0444);
MODULE_PARM_DESC(seed, "scatters the slots over the area and seeds the payloads");

static unsigned int toggle_wce;
module_param(toggle_wce, uint, 0444);
MODULE_PARM_DESC(toggle_wce, "bitmask of disks (bit 0: vda) that flip their write cache, write, flip back, write");

static unsigned int toggle_writes;
module_param(toggle_writes, uint, 0444);
MODULE_PARM_DESC(toggle_writes, "writes in each phase after a flip (default: writes / 2, at least 1)");

static bool continuous;
module_param(continuous, bool, 0444);
MODULE_PARM_DESC(continuous, "write and flush on every disk in turn forever (crash tests); never ends the VM");

static unsigned int multi = 1;
module_param(multi, uint, 0444);
MODULE_PARM_DESC(multi, "records per write bio, each in its own page (1..16, divides span; default 1)");

static unsigned int expect_disks;
module_param(expect_disks, uint, 0444);
MODULE_PARM_DESC(expect_disks, "fail unless exactly this many virtio disks are found; 0: at least one");

void minivmm_workload_plan_from_params(struct minivmm_workload_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	plan->enabled = writes > 0 || continuous;
	plan->continuous = continuous;
	plan->writes = writes;
	plan->flush_every = flush_every;
	plan->start_sector = start_sector;
	plan->generation = generation;
	plan->seed = seed;
	plan->toggle_wce = toggle_wce;
	plan->toggle_writes = toggle_writes ? toggle_writes : max(writes / 2, 1u);
	plan->span = span ? span : (writes ? writes : 64);
	plan->expect_disks = expect_disks;
	plan->multi = multi;
}

#define MINIVMM_MAX_MULTI 16

/* Time spent in writes and flushes, for the timing lines. */
struct io_timing {
	unsigned int writes;
	unsigned int flushes;
	u64 write_ns;
	u64 flush_ns;
};

/* One disk's progress through the plan. */
struct disk_run {
	struct minivmm_disk *disk;
	const struct minivmm_workload_plan *plan;
	u8 **bufs;		/* plan->multi pages, one record each: one bio segment each */
	u8 *buf;		/* bufs[0]: one logical block, page-backed */
	u8 *expect;		/* scratch for read-back comparison */
	s64 *slot_seq;		/* last acknowledged seq per slot, -1: none */
	u32 stride;		/* group order: (g * stride) % groups, stride coprime to groups */
	u64 next_seq;
	u64 last_acked;		/* valid when next_seq > 0 */
	unsigned int since_flush;	/* records not yet covered by a flush */
	struct io_timing total;
};

static u32 gcd32(u32 a, u32 b)
{
	while (b) {
		u32 t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A seed-derived stride coprime to span, so slot order is a permutation. */
static u32 slot_stride(u32 seed_value, u32 slots)
{
	/* Fibonacci hashing; the high bits are the well-mixed ones. */
	u32 s = ((seed_value * 2654435761u) >> 16) % slots;

	if (!s)
		s = 1;
	while (gcd32(s, slots) != 1)
		s = s % (slots - 1) + 1;
	return s;
}

/*
 * Slots come in groups of multi contiguous ones (span / multi groups);
 * seqs g*multi .. g*multi+multi-1 fill group (g * stride) % groups in order,
 * so one bio's records land in contiguous sectors. multi=1: slot =
 * (seq % span) * stride % span. tests/framework/kill_check.py mirrors this.
 */
static u32 seq_slot(const struct disk_run *r, u64 seq)
{
	u32 n = r->plan->multi, groups = r->plan->span / n;
	u32 rem;

	div_u64_rem(seq, r->plan->span, &rem);
	return (u32)(((u64)(rem / n) * r->stride) % groups) * n + rem % n;
}

static u64 slot_sector(const struct disk_run *r, u32 slot)
{
	return r->plan->start_sector + (u64)slot * (r->disk->lbs >> SECTOR_SHIFT);
}

/* One bio over count blocks from sector on: block i in data[i], one segment per block. */
static int block_io(struct disk_run *r, blk_opf_t opf, u64 sector, u8 **data, unsigned int count)
{
	struct bio *bio = bio_alloc(r->disk->bdev, count, opf, GFP_KERNEL);
	unsigned int i;
	int err;

	bio->bi_iter.bi_sector = sector;
	for (i = 0; i < count; i++) {
		if (bio_add_page(bio, virt_to_page(data[i]), r->disk->lbs,
				 offset_in_page(data[i])) != r->disk->lbs) {
			bio_put(bio);
			return -EIO;
		}
	}
	err = submit_bio_wait(bio);
	bio_put(bio);
	return err;
}

static void build_record(const struct disk_run *r, u64 seq, u64 sector, u8 *buf)
{
	const struct minivmm_record_id id = {
		.disk = r->disk->index,
		.seq = seq,
		.sector = sector,
		.generation = r->plan->generation,
		.seed = r->plan->seed,
	};

	minivmm_record_build(buf, r->disk->lbs, &id);
}

/*
 * One write bio: the next seqs up to the end of their slot group and at
 * most limit records (so a bio never leaves its group of contiguous
 * sectors). *written: records written.
 */
static int write_next(struct disk_run *r, struct io_timing *t, unsigned int limit,
		      unsigned int *written)
{
	u64 first = r->next_seq;
	u32 slot = seq_slot(r, first);
	u64 sector = slot_sector(r, slot);
	u32 sectors_per_block = r->disk->lbs >> SECTOR_SHIFT;
	unsigned int count = r->plan->multi - slot % r->plan->multi;
	unsigned int i;
	u64 start;
	int err;

	count = min(count, limit);
	for (i = 0; i < count; i++)
		build_record(r, first + i, sector + (u64)i * sectors_per_block, r->bufs[i]);
	start = ktime_get_ns();
	err = block_io(r, REQ_OP_WRITE | REQ_SYNC, sector, r->bufs, count);
	t->write_ns += ktime_get_ns() - start;
	if (err) {
		pr_err("error %u write seq=%llu sector=%llu err=%d\n",
		       r->disk->index, first, sector, err);
		return err;
	}
	t->writes += count;
	for (i = 0; i < count; i++) {
		r->slot_seq[slot + i] = first + i;
		pr_notice("ack %u %llu %llu\n", r->disk->index, first + i,
			  sector + (u64)i * sectors_per_block);
	}
	r->last_acked = first + count - 1;
	r->next_seq += count;
	r->since_flush += count;
	*written = count;
	return 0;
}

static int flush(struct disk_run *r, struct io_timing *t)
{
	u64 start = ktime_get_ns();
	int err = blkdev_issue_flush(r->disk->bdev);

	t->flush_ns += ktime_get_ns() - start;
	if (err) {
		pr_err("error %u flush after seq=%llu err=%d\n", r->disk->index, r->last_acked, err);
		return err;
	}
	t->flushes++;
	r->since_flush = 0;
	pr_notice("flushed %u %llu\n", r->disk->index, r->last_acked);
	return 0;
}

static unsigned int per_op_us(u64 ns, unsigned int ops)
{
	return ops ? (unsigned int)div_u64(ns, 1000ull * ops) : 0;
}

static void add_timing(struct io_timing *sum, const struct io_timing *t)
{
	sum->writes += t->writes;
	sum->flushes += t->flushes;
	sum->write_ns += t->write_ns;
	sum->flush_ns += t->flush_ns;
}

/* n writes, a flush every flush_every, and one at the end if any write is uncovered. */
static int run_phase(struct disk_run *r, unsigned int phase, unsigned int n)
{
	struct io_timing t = {};
	unsigned int i = 0, written = 0;
	int err = 0;

	while (i < n && !err) {
		err = write_next(r, &t, n - i, &written);
		i += written;
		if (!err && r->plan->flush_every && r->since_flush >= r->plan->flush_every)
			err = flush(r, &t);
	}
	if (!err && r->since_flush)
		err = flush(r, &t);
	pr_notice("phase %u %u write_cache=%d writes=%u us_per_write=%u flushes=%u us_per_flush=%u\n",
		  r->disk->index, phase, minivmm_disk_write_cache(r->disk), t.writes,
		  per_op_us(t.write_ns, t.writes), t.flushes, per_op_us(t.flush_ns, t.flushes));
	add_timing(&r->total, &t);
	return err;
}

static int set_write_cache(struct disk_run *r, bool on)
{
	int err = minivmm_disk_set_write_cache(r->disk, on);

	if (err) {
		pr_err("error %u wce=%d err=%d\n", r->disk->index, on, err);
		return err;
	}
	pr_notice("wce %u %d\n", r->disk->index, minivmm_disk_write_cache(r->disk));
	return 0;
}

/* Reads every acknowledged slot back; the newest record there must be byte-exact. */
static int verify(struct disk_run *r)
{
	unsigned int slot, checked = 0, bad = 0;
	int err;

	for (slot = 0; slot < r->plan->span; slot++) {
		u64 sector = slot_sector(r, slot);

		if (r->slot_seq[slot] < 0)
			continue;
		err = block_io(r, REQ_OP_READ, sector, &r->buf, 1);
		if (err) {
			pr_err("error %u read sector=%llu err=%d\n", r->disk->index, sector, err);
			return err;
		}
		build_record(r, r->slot_seq[slot], sector, r->expect);
		checked++;
		if (memcmp(r->buf, r->expect, r->disk->lbs)) {
			bad++;
			pr_err("mismatch %u %lld %llu\n", r->disk->index, r->slot_seq[slot], sector);
		}
	}
	pr_notice("verified %u records=%u bad=%u\n", r->disk->index, checked, bad);
	return bad ? -EILSEQ : 0;
}

static void print_disk(const struct minivmm_disk *d)
{
	pr_notice("disk %u capacity=%llu lbs=%u features=0x%llx write_cache=%d\n", d->index,
		  d->capacity, d->lbs, minivmm_disk_features(d), minivmm_disk_write_cache(d));
}

static int disk_run_init(struct disk_run *r, struct minivmm_disk *d,
			 const struct minivmm_workload_plan *plan)
{
	u64 end = plan->start_sector + (u64)plan->span * (d->lbs >> SECTOR_SHIFT);
	unsigned int slot, i;

	memset(r, 0, sizeof(*r));
	r->disk = d;
	r->plan = plan;
	if (d->lbs < MINIVMM_RECORD_MIN_SIZE || d->lbs > PAGE_SIZE) {
		pr_err("error %u logical block size %u not in [512, PAGE_SIZE]\n", d->index, d->lbs);
		return -EINVAL;
	}
	if (end > d->capacity || plan->start_sector % (d->lbs >> SECTOR_SHIFT)) {
		pr_err("error %u record area [%llu, %llu) unaligned or beyond capacity %llu\n",
		       d->index, plan->start_sector, end, d->capacity);
		return -ERANGE;
	}
	/*
	 * Page-backed (not slab) so one bio segment always holds a block; a
	 * page per record, the record at offset 0, so with lbs < PAGE_SIZE no
	 * two records are physically contiguous and the block layer cannot
	 * merge their segments.
	 */
	r->bufs = kcalloc(plan->multi, sizeof(*r->bufs), GFP_KERNEL);
	if (!r->bufs)
		return -ENOMEM;
	for (i = 0; i < plan->multi; i++) {
		r->bufs[i] = (u8 *)__get_free_page(GFP_KERNEL);
		if (!r->bufs[i])
			return -ENOMEM;
	}
	r->buf = r->bufs[0];
	r->expect = (u8 *)__get_free_page(GFP_KERNEL);
	r->slot_seq = kmalloc_array(plan->span, sizeof(*r->slot_seq), GFP_KERNEL);
	if (!r->expect || !r->slot_seq)
		return -ENOMEM;
	for (slot = 0; slot < plan->span; slot++)
		r->slot_seq[slot] = -1;
	r->stride = slot_stride(plan->seed, plan->span / plan->multi);
	return 0;
}

static void disk_run_free(struct disk_run *r)
{
	unsigned int i;

	for (i = 0; r->bufs && i < r->plan->multi; i++)
		free_page((unsigned long)r->bufs[i]);
	kfree(r->bufs);
	free_page((unsigned long)r->expect);
	kfree(r->slot_seq);
}

/* Phase 0 as the disk came up; with toggle_wce, phase 1 flipped and phase 2 flipped back. */
static int run_disk(struct disk_run *r)
{
	const struct minivmm_workload_plan *plan = r->plan;
	bool initial = minivmm_disk_write_cache(r->disk);
	int err;

	err = run_phase(r, 0, plan->writes);
	if (!err && (plan->toggle_wce & BIT(r->disk->index))) {
		err = set_write_cache(r, !initial);
		if (!err)
			err = run_phase(r, 1, plan->toggle_writes);
		if (!err)
			err = set_write_cache(r, initial);
		if (!err)
			err = run_phase(r, 2, plan->toggle_writes);
	}
	if (!err)
		err = verify(r);
	pr_notice("timing %u writes=%u us_per_write=%u flushes=%u us_per_flush=%u\n",
		  r->disk->index, r->total.writes, per_op_us(r->total.write_ns, r->total.writes),
		  r->total.flushes, per_op_us(r->total.flush_ns, r->total.flushes));
	return err;
}

/* Every disk in turn, forever: the crash tests kill the VM meanwhile. */
static int run_continuous(struct disk_run *runs, unsigned int count)
{
	struct io_timing ignored = {};
	unsigned int i, written;
	int err;

	for (;;) {
		for (i = 0; i < count; i++) {
			struct disk_run *r = &runs[i];

			err = write_next(r, &ignored, UINT_MAX, &written);
			if (!err && r->plan->flush_every && r->since_flush >= r->plan->flush_every)
				err = flush(r, &ignored);
			if (err)
				return err;
		}
		cond_resched();
	}
}

static enum minivmm_verdict verdict(bool pass, const char *reason)
{
	pr_notice("verdict %s %s\n", pass ? "pass" : "fail", reason);
	return pass ? MINIVMM_PASS : MINIVMM_FAIL;
}

enum minivmm_verdict minivmm_workload_run(const struct minivmm_workload_plan *plan)
{
	static struct minivmm_disk disks[MINIVMM_MAX_DISKS];
	struct disk_run *runs;
	unsigned int i, failed = 0;
	int count, err = 0;

	if (!plan->enabled)
		return MINIVMM_NO_PLAN;
	if (!plan->span)
		return verdict(false, "span=0");
	if (!plan->multi || plan->multi > MINIVMM_MAX_MULTI || plan->span % plan->multi)
		return verdict(false, "multi not in [1, 16] or not dividing span");

	/* Built-in drivers probe synchronously before late_initcall_sync; this covers async probes too. */
	wait_for_device_probe();
	count = minivmm_disks_open(disks, MINIVMM_MAX_DISKS);
	if (count < 0)
		return verdict(false, "opening a virtio disk failed");
	for (i = 0; i < count; i++)
		print_disk(&disks[i]);
	if (count == 0 || (plan->expect_disks && count != plan->expect_disks)) {
		pr_err("found %d virtio disks, expected %u\n", count, plan->expect_disks);
		minivmm_disks_close(disks, count);
		return verdict(false, "wrong number of virtio disks");
	}

	runs = kcalloc(count, sizeof(*runs), GFP_KERNEL);
	if (!runs) {
		minivmm_disks_close(disks, count);
		return verdict(false, "out of memory");
	}
	for (i = 0; i < count && !err; i++)
		err = disk_run_init(&runs[i], &disks[i], plan);
	if (!err && plan->continuous) {
		err = run_continuous(runs, count);
	} else if (!err) {
		for (i = 0; i < count; i++)
			failed += run_disk(&runs[i]) ? 1 : 0;
	}
	for (i = 0; i < count; i++)
		disk_run_free(&runs[i]);
	kfree(runs);
	minivmm_disks_close(disks, count);

	if (err)
		return verdict(false, "setup or I/O error (see the error line)");
	if (failed)
		return verdict(false, "a disk failed its workload (see the error/mismatch lines)");
	return verdict(true, "all disks written, flushed and verified");
}
