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
 * Block-device workload plan, filled from the parameters in workload.c
 * (guest/README.md and README.md "Guest agent" document each one).
 */
struct minivmm_workload_plan {
	bool enabled;		/* false: nothing requested on the command line */
	bool continuous;	/* write + flush forever, never report a verdict */
	unsigned int writes;	/* per disk, first phase */
	unsigned int flush_every;	/* flush after every k writes; 0: only at phase end */
	unsigned int toggle_wce;	/* bit i: disk i flips its write cache twice */
	unsigned int toggle_writes;	/* writes in each phase after a flip */
	unsigned int span;	/* record slots per disk; seq wraps over them */
	unsigned int multi;	/* records (one page each) per write bio: multi-segment requests */
	unsigned int generation;
	unsigned int seed;
	unsigned int expect_disks;	/* 0: any number >= 1 */
	u64 start_sector;
};

enum minivmm_verdict {
	MINIVMM_NO_PLAN,
	MINIVMM_PASS,
	MINIVMM_FAIL,
};

void minivmm_workload_plan_from_params(struct minivmm_workload_plan *plan);
enum minivmm_verdict minivmm_workload_run(const struct minivmm_workload_plan *plan);

#endif /* MINIVMM_AGENT_H */
