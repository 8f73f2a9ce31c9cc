// vCPU hot-plug through QMP, and the guest's acknowledgement. QEMU plugs a vCPU at once, but
// the guest kernel leaves a hot-added CPU offline until something in the guest writes its
// `online` file (the agent does, to match its directive), and offlines an unplugged one
// itself before QEMU's DEVICE_DELETED. What the guest applied is read from its console
// (guest-cpus.ts).
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { type CpuPlan, planCpuStep, type QmpClient } from "./qmp.ts";

/** vCPUs QEMU has plugged (boot vCPUs included). */
export async function pluggedVcpus(qmp: QmpClient): Promise<number> {
  return (await qmp.queryCpusFast()).length;
}

/**
 * Plug or unplug vCPUs one at a time until QEMU has `want` (within the slots it offers; the
 * boot vCPU stays). An unplug waits for QEMU's DEVICE_DELETED, which comes after the guest
 * has offlined and ejected the CPU. Returns the steps taken.
 */
export async function setVcpus(
  qmp: QmpClient,
  want: number,
  opts: { unplugTimeoutMs?: number } = {},
): Promise<CpuPlan[]> {
  const steps: CpuPlan[] = [];
  for (let i = 0; i < 64; i++) {
    const plan = planCpuStep(await qmp.queryHotpluggableCpus(), want);
    if (plan.action === "none") return steps;
    if (plan.action === "add") await qmp.deviceAdd(plan.driver, plan.id, plan.props);
    else {
      await qmp.deviceDel(plan.id);
      const gone = await qmp.waitEvent(
        (e) => e.event === "DEVICE_DELETED" && e.data?.device === plan.id,
        opts.unplugTimeoutMs ?? 60_000,
      );
      if (!gone)
        throw new WeirError(
          ErrorCodes.TESTBED,
          `vCPU ${plan.id}: no DEVICE_DELETED within ${opts.unplugTimeoutMs ?? 60_000} ms (the guest did not release it)`,
        );
    }
    steps.push(plan);
  }
  throw new WeirError(ErrorCodes.TESTBED, `vCPU count did not settle at ${want}`);
}
