/* SPDX-License-Identifier: GPL-2.0 */
/*
 * minivmm in-guest agent: what one boot does, decided from the kernel
 * command line (minivmm_agent.<param>=<value>).
 */
#ifndef MINIVMM_AGENT_H
#define MINIVMM_AGENT_H

#include <linux/moduleparam.h>
#include <linux/types.h>

/*
 * The agent is split over several objects, each with its own KBUILD_MODNAME;
 * pin the prefix so every parameter is spelled minivmm_agent.<param>.
 */
#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "minivmm_agent."

/*
 * Block-device workload plan. Empty for now: the workload change adds its
 * fields (disks, writes, write size, flush interval) and the parameters that
 * fill them, all in workload.c.
 */
struct minivmm_workload_plan {
	bool enabled;	/* false: nothing requested on the command line */
};

void minivmm_workload_plan_from_params(struct minivmm_workload_plan *plan);
int minivmm_workload_run(const struct minivmm_workload_plan *plan);

#endif /* MINIVMM_AGENT_H */
