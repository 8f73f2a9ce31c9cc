// Static weights: what an administrator sets up once by hand, with no manager. Each partition
// gets a fixed CPU weight from its importance (and its configured weight), batch partitions run
// in the kernel's idle class (cpu.idle = 1: they use only CPU nobody else wants), and nothing is
// capped except a partition with a configured max below capacity (cpu.max = max, no burst).
// Work-conserving like plain CFS, but with the admin's priorities instead of equal shares; it
// never looks at traffic, so it cannot tell a partition that needs more from one that wants more.
//
// Importance -> weight: 1000, 560, 320, 180, 100 for importance 1..5. Each step is the same
// factor, 10^(1/4) ≈ 1.78 rounded, so importance 1 outweighs importance 5 ten to one (a 1000:100
// cpu.weight ratio, well inside 1..10000) and no one tier step matters more than another. The
// partition's configured weight scales it (100 = ×1), as a relative share within a tier.
import type { Importance } from "../../core/model.ts";
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyState } from "../types.ts";
import { decision, directive, fmtMillis } from "./common.ts";

/** cpu.weight per importance tier, for a partition of configured weight 100. */
export const IMPORTANCE_WEIGHTS: Readonly<Record<Importance, number>> = {
  1: 1000,
  2: 560,
  3: 320,
  4: 180,
  5: 100,
};

/** The fixed weight of a partition: its tier's weight × its configured weight ÷ 100, within 1..10000. */
export const staticWeightOf = (importance: Importance, weight: number): number =>
  clamp(Math.round((IMPORTANCE_WEIGHTS[importance] * weight) / 100), 1, 10_000);

export function staticWeightsPolicy(): Policy {
  return {
    name: "static-weights",
    initialState: (): PolicyState => ({ partitions: {} }),
    step(input, state) {
      const capacity = input.knobs.capacityCpuMillis;
      const weights = new Map<string, number>();
      let normalWeight = 0;
      for (const spec of input.specs) {
        if (spec.kind === "batch") continue;
        const w = staticWeightOf(spec.importance, spec.weight);
        weights.set(spec.id, w);
        normalWeight += w;
      }
      const partitions: PolicyState["partitions"] = {};
      const directives = [];
      const decisions = [];
      for (const spec of input.specs) {
        const idle = spec.kind === "batch";
        const w = weights.get(spec.id) ?? 1;
        const limited = spec.maxCpuMillis < capacity;
        // Entitlement: what the weight guarantees under full contention (batch: nothing).
        const share = idle ? 0 : (capacity * w) / Math.max(1, normalWeight);
        const entitlement = Math.round(Math.min(share, spec.maxCpuMillis));
        const prev = state.partitions[spec.id]?.cpuMillis ?? entitlement;
        partitions[spec.id] = {
          cpuMillis: entitlement,
          demandCpuMillis: entitlement,
          velocityPacketsPerCpuSec: null,
        };
        directives.push(
          directive(spec.id, entitlement, {
            weight: w,
            idle,
            ...(limited ? { capCpuMillis: spec.maxCpuMillis, capReason: "max" as const } : {}),
          }),
        );
        const how = idle
          ? "batch: idle class, uses only CPU nobody else wants"
          : `importance ${spec.importance} -> weight ${w} of ${normalWeight}: ${fmtMillis(entitlement)} under full contention`;
        decisions.push(
          decision(
            spec.id,
            prev,
            entitlement,
            entitlement,
            `static weights: ${how}${limited ? `; capped at its max ${fmtMillis(spec.maxCpuMillis)}` : ""}`,
          ),
        );
      }
      return { directives, decisions, state: { partitions } };
    },
  };
}
