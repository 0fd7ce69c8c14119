// SPDX-License-Identifier: GPL-2.0
/*
 * minivmm in-guest agent.
 *
 * Guest userspace cannot make system calls on the PVM hosts minivmm runs on
 * (docs/nested-kvm.md, "Guest userspace cannot make system calls"), so the
 * guest-side work lives in this built-in driver. At late_initcall_sync every
 * built-in driver, virtio-blk included, has probed; the agent then
 *   1. prints the late-init marker the boot test waits for (always),
 *   2. runs the block-device workload plan if the command line asks for one
 *      (workload.c) and ends the VM with its verdict: 0 pass, 1 fail,
 *   3. otherwise, if minivmm_agent.exit_status >= 0, ends the VM with it.
 *
 * Only plain integer code and port I/O here: no instruction from the
 * "cannot execute" table of docs/nested-kvm.md.
 */
#define pr_fmt(fmt) "minivmm-agent: " fmt

#include <linux/init.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/printk.h>

#include "agent.h"

/* minivmm's exit device: a 32-bit OUT here ends the VM with (value & 0xff). */
#define MINIVMM_EXIT_PORT 0x4f0

static int exit_status = -1;
module_param(exit_status, int, 0444);
MODULE_PARM_DESC(exit_status,
		 "without a workload plan: write this to the exit device (port 0x4f0) at late init; -1: keep running");

static void minivmm_exit_vm(int status)
{
	outl((u32)status, MINIVMM_EXIT_PORT);
}

static int __init minivmm_agent_init(void)
{
	struct minivmm_workload_plan plan;
	enum minivmm_verdict verdict;
	int status = exit_status;

	/*
	 * NOTICE, not INFO: still on the console with loglevel=6, which hides
	 * the INFO chatter that costs emulated time on the serial port.
	 */
	pr_notice("late init reached\n");

	minivmm_workload_plan_from_params(&plan);
	verdict = minivmm_workload_run(&plan);
	/* A plan's verdict is the VM's result, whatever exit_status says. */
	if (verdict != MINIVMM_NO_PLAN)
		status = verdict == MINIVMM_PASS ? 0 : 1;

	if (status >= 0) {
		pr_notice("exit_status=%d: writing it to port 0x%x\n",
			  status, MINIVMM_EXIT_PORT);
		minivmm_exit_vm(status);
		/* Only reached when the VMM has no exit device at that port. */
		pr_err("port 0x%x did not end the VM; boot continues\n",
		       MINIVMM_EXIT_PORT);
	}
	return 0;
}
late_initcall_sync(minivmm_agent_init);

MODULE_DESCRIPTION("minivmm in-guest agent");
MODULE_LICENSE("GPL");
