// SPDX-License-Identifier: GPL-2.0
/*
 * minivmm agent: block-device workload.
 *
 * Not implemented yet. The workload change puts here:
 *   - its parameters (minivmm_agent.<param>=, via agent.h's prefix): which
 *     disks, how many writes of what size, flush interval;
 *   - minivmm_workload_plan_from_params() filling struct minivmm_workload_plan;
 *   - minivmm_workload_run() opening each disk (blkdev_get_by_dev) and issuing
 *     writes (submit_bio_wait) and flushes (blkdev_issue_flush).
 * Budget (docs/nested-kvm.md): ~13 ms per emulated 4 KiB write on PVM; for
 * checksums use the table-driven lib/crc32, not SSE4.2 crc32 or popcnt.
 */
#include <linux/errno.h>

#include "agent.h"

void minivmm_workload_plan_from_params(struct minivmm_workload_plan *plan)
{
	plan->enabled = false;
}

int minivmm_workload_run(const struct minivmm_workload_plan *plan)
{
	if (!plan->enabled)
		return 0;
	return -EOPNOTSUPP;
}
