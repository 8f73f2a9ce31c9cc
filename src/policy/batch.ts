// Batch suppression: when network partitions stay congested, batch is capped for a while (an
// experiment that is released if it does not help). Pure; split from weir.ts.
import type { BatchSuppressionState } from "./types.ts";

/**
 * Batch suppression for the next cycle: `congested` says a network partition was constrained
 * (waiting for CPU or dropping, with traffic it serves, while using at least half its
 * entitlement) this cycle. Batch is capped once that has lasted `after` cycles in a row and
 * released after `release` calm cycles in a row. A cap is an experiment: if the congestion is
 * still there after `after + release` capped cycles, batch was not the cause (the delay comes
 * from the network partitions' own contention, the load generator, other work on the host), so
 * it is released and not capped again for `cooldown` cycles — on the real testbed network
 * partitions waited 29 % of the time with the hog stopped, and a cap that never let go left the
 * host 29 % idle.
 */
export function nextBatchSuppression(
  prev: BatchSuppressionState | undefined,
  congested: boolean,
  after: number,
  release: number,
  cooldown = 30 * Math.max(1, after),
): BatchSuppressionState {
  const p = prev ?? { congestedCycles: 0, calmCycles: 0, active: false };
  const activeCycles = p.activeCycles ?? 0;
  const cooldownCycles = p.cooldownCycles ?? 0;
  if (p.active) {
    if (congested) {
      const capped = activeCycles + 1;
      if (capped >= after + release)
        // capping did not relieve it: let go and do not try again for a while
        return {
          congestedCycles: 0,
          calmCycles: 0,
          active: false,
          activeCycles: 0,
          cooldownCycles: cooldown,
        };
      return {
        congestedCycles: p.congestedCycles + 1,
        calmCycles: 0,
        active: true,
        activeCycles: capped,
        cooldownCycles: 0,
      };
    }
    const calmCycles = p.calmCycles + 1;
    const stays = calmCycles < release;
    return {
      congestedCycles: 0,
      calmCycles,
      active: stays,
      activeCycles: stays ? activeCycles + 1 : 0,
      cooldownCycles: 0,
    };
  }
  const cool = Math.max(0, cooldownCycles - 1);
  if (congested) {
    const congestedCycles = p.congestedCycles + 1;
    const start = after > 0 && cooldownCycles === 0 && congestedCycles >= after;
    return {
      congestedCycles,
      calmCycles: 0,
      active: start,
      activeCycles: start ? 1 : 0,
      cooldownCycles: cool,
    };
  }
  return {
    congestedCycles: 0,
    calmCycles: p.calmCycles + 1,
    active: false,
    activeCycles: 0,
    cooldownCycles: cool,
  };
}
