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
 * Whether QEMU let go of vCPU `id`: its DEVICE_DELETED event (by id, or by a QOM path ending
 * in it), or its slot listed free again by query-hotpluggable-cpus — polled, since in the
 * e2e run of 2026-12-01 the slot was free and a DEVICE_DELETED had come, yet the wait by
 * `data.device` alone did not see it.
 */
async function released(
  qmp: QmpClient,
  id: string,
  sinceEvent: number,
  timeoutMs: number,
): Promise<boolean> {
  const mine = (e: { event: string; data?: Record<string, unknown> }) =>
    e.event === "DEVICE_DELETED" &&
    (e.data?.device === id || String(e.data?.path ?? "").endsWith(`/${id}`));
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (qmp.events.slice(sinceEvent).some(mine)) return true;
    const slots = await qmp.queryHotpluggableCpus();
    if (!slots.some((s) => s["qom-path"]?.endsWith(`/${id}`))) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, Math.min(500, end - Date.now())));
  }
}

/**
 * Plug or unplug vCPUs one at a time until QEMU has `want` (within the slots it offers; the
 * boot vCPU stays). `used` collects the ids unplugged, which are never plugged again (see
 * planCpuStep): pass the same set for the life of one QEMU. An unplug waits until QEMU has let go of the vCPU (after the guest
 * offlined and ejected it). Returns the steps taken.
 */
export async function setVcpus(
  qmp: QmpClient,
  want: number,
  opts: { unplugTimeoutMs?: number; used?: Set<string> } = {},
): Promise<CpuPlan[]> {
  const steps: CpuPlan[] = [];
  const used = opts.used ?? new Set<string>();
  for (let i = 0; i < 64; i++) {
    const plan = planCpuStep(await qmp.queryHotpluggableCpus(), want, used);
    if (plan.action === "none") return steps;
    if (plan.action === "add") await qmp.deviceAdd(plan.driver, plan.id, plan.props);
    else {
      const since = qmp.events.length;
      await qmp.deviceDel(plan.id);
      const timeoutMs = opts.unplugTimeoutMs ?? 60_000;
      if (!(await released(qmp, plan.id, since, timeoutMs)))
        throw new WeirError(
          ErrorCodes.TESTBED,
          `vCPU ${plan.id}: still plugged ${timeoutMs} ms after device_del (the guest did not release it)`,
        );
    }
    if (plan.action === "remove") used.add(plan.id);
    steps.push(plan);
  }
  throw new WeirError(ErrorCodes.TESTBED, `vCPU count did not settle at ${want}`);
}
