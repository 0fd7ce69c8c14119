// SPDX-License-Identifier: GPL-2.0
/*
 * minivmm agent: finding and describing the virtio-blk disks.
 */
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/string.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "disks.h"

#define MINIVMM_DISK_MODE (FMODE_READ | FMODE_WRITE)

/* "vda" -> 0, "vdz" -> 25, "vdaa" -> 26 (virtio_blk's virtblk_name_format); -1 otherwise. */
static int vd_index(const char *name)
{
	const char *p;
	int index = 0;

	if (strncmp(name, "vd", 2) || !name[2])
		return -1;
	for (p = name + 2; *p; p++) {
		if (*p < 'a' || *p > 'z')
			return -1;	/* partitions (vda1) are not whole disks */
		index = index * 26 + (*p - 'a' + 1);
	}
	return index - 1;
}

static bool is_virtio_child(const struct device *dev)
{
	return dev->parent && dev->parent->bus && !strcmp(dev->parent->bus->name, "virtio");
}

/* Device numbers of the virtio disks, by index; 0 where none. */
static void find_virtio_disks(dev_t *devts, unsigned int max)
{
	struct class_dev_iter iter;
	struct device *dev;

	class_dev_iter_init(&iter, &block_class, NULL, &disk_type);
	while ((dev = class_dev_iter_next(&iter))) {
		struct gendisk *disk = dev_to_disk(dev);
		int index = vd_index(disk->disk_name);

		if (index < 0 || !is_virtio_child(dev))
			continue;
		if (index >= max) {
			pr_warn("agent: %s beyond the first %u disks, not used\n",
				disk->disk_name, max);
			continue;
		}
		devts[index] = disk_devt(disk);
	}
	class_dev_iter_exit(&iter);
}

int minivmm_disks_open(struct minivmm_disk *disks, unsigned int max)
{
	dev_t devts[MINIVMM_MAX_DISKS] = {};
	unsigned int i, count = 0;

	if (max > MINIVMM_MAX_DISKS)
		max = MINIVMM_MAX_DISKS;
	find_virtio_disks(devts, max);
	for (i = 0; i < max; i++) {
		struct block_device *bdev;
		struct minivmm_disk *d = &disks[count];

		if (!devts[i])
			continue;
		bdev = blkdev_get_by_dev(devts[i], MINIVMM_DISK_MODE, NULL);
		if (IS_ERR(bdev)) {
			pr_err("agent: opening vd index %u failed: %ld\n", i, PTR_ERR(bdev));
			minivmm_disks_close(disks, count);
			return PTR_ERR(bdev);
		}
		d->index = i;
		d->bdev = bdev;
		d->vdev = dev_to_virtio(disk_to_dev(bdev->bd_disk)->parent);
		d->lbs = bdev_logical_block_size(bdev);
		d->capacity = bdev_nr_sectors(bdev);
		count++;
	}
	return count;
}

void minivmm_disks_close(struct minivmm_disk *disks, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++)
		blkdev_put(disks[i].bdev, MINIVMM_DISK_MODE);
}

bool minivmm_disk_write_cache(const struct minivmm_disk *d)
{
	return test_bit(QUEUE_FLAG_WC, &bdev_get_queue(d->bdev)->queue_flags);
}

u64 minivmm_disk_features(const struct minivmm_disk *d)
{
	return d->vdev->features;
}

/* The named attribute among those the driver gave device_add_disk(). */
static struct device_attribute *find_disk_attr(struct device *dev, const char *name)
{
	const struct attribute_group **group;
	struct attribute **attr;

	for (group = dev->groups; group && *group; group++)
		for (attr = (*group)->attrs; attr && *attr; attr++)
			if (!strcmp((*attr)->name, name))
				return container_of(*attr, struct device_attribute, attr);
	return NULL;
}

int minivmm_disk_set_write_cache(struct minivmm_disk *d, bool on)
{
	struct device *dev = disk_to_dev(d->bdev->bd_disk);
	/* Strings of virtio_blk's virtblk_cache_types[], as a sysfs write gives them. */
	const char *value = on ? "write back\n" : "write through\n";
	struct device_attribute *attr;
	ssize_t ret;

	/* cache_type_store() BUG()s without CONFIG_WCE; sysfs makes it read-only then. */
	if (!virtio_has_feature(d->vdev, VIRTIO_BLK_F_CONFIG_WCE))
		return -EOPNOTSUPP;
	attr = find_disk_attr(dev, "cache_type");
	if (!attr || !attr->store)
		return -ENOENT;
	ret = attr->store(dev, attr, value, strlen(value));
	if (ret < 0)
		return ret;
	return minivmm_disk_write_cache(d) == on ? 0 : -EIO;
}
