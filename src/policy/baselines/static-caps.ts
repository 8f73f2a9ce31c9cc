// Static equal caps: every partition gets capacity ÷ N (within its min and max), equal weight,
// forever. What a hand-written cgroup or a fixed container CPU limit does: `docker run --cpus`
// and a Kubernetes CPU limit are a CFS quota, so the entitlement is also a hard cap
// (capReason "capped", no burst: neither sets cpu.cfs_burst_us by default).
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyState } from "../types.ts";
import { cappedDirective, decision, fmtMillis } from "./common.ts";

export function staticEqualCapsPolicy(): Policy {
  return {
    name: "static",
    initialState: (): PolicyState => ({ partitions: {} }),
    step(input, state) {
      const n = input.specs.length;
      const equal = n > 0 ? Math.floor(input.knobs.capacityCpuMillis / n) : 0;
      const partitions: PolicyState["partitions"] = {};
      const directives = [];
      const decisions = [];
      for (const spec of input.specs) {
        const cap = clamp(equal, spec.minCpuMillis, spec.maxCpuMillis);
        const prev = state.partitions[spec.id]?.cpuMillis ?? cap;
        partitions[spec.id] = {
          cpuMillis: cap,
          demandCpuMillis: cap,
          velocityPacketsPerCpuSec: null,
        };
        directives.push(cappedDirective(spec.id, cap, 100));
        decisions.push(
          decision(
            spec.id,
            prev,
            cap,
            cap,
            `static equal cap: ${fmtMillis(input.knobs.capacityCpuMillis)} / ${n} partitions`,
          ),
        );
      }
      return { directives, decisions, state: { partitions } };
    },
  };
}
