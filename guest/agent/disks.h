/* SPDX-License-Identifier: GPL-2.0 */
/*
 * minivmm agent: the guest's virtio-blk disks, found through the block layer
 * (no /dev needed: devtmpfs is mounted only after the initcalls).
 */
#ifndef MINIVMM_DISKS_H
#define MINIVMM_DISKS_H

#include <linux/types.h>

#define MINIVMM_MAX_DISKS 64

struct block_device;
struct virtio_device;

struct minivmm_disk {
	unsigned int index;		/* vda = 0, vdb = 1, ... */
	struct block_device *bdev;	/* opened read-write */
	struct virtio_device *vdev;	/* the gendisk's parent device */
	u32 lbs;			/* logical block size, bytes */
	u64 capacity;			/* 512-byte sectors */
};

/*
 * Opens every virtio disk (whole disks only), in index order. Returns the
 * number opened (0..max) or a negative errno; on error none stays open.
 */
int minivmm_disks_open(struct minivmm_disk *disks, unsigned int max);
void minivmm_disks_close(struct minivmm_disk *disks, unsigned int count);

bool minivmm_disk_write_cache(const struct minivmm_disk *d);
u64 minivmm_disk_features(const struct minivmm_disk *d);

/*
 * Switches the disk's cache mode the way `echo ... > /sys/block/vdX/cache_type`
 * does: calls virtio_blk's cache_type store. Fails without CONFIG_WCE.
 */
int minivmm_disk_set_write_cache(struct minivmm_disk *d, bool on);

#endif /* MINIVMM_DISKS_H */
