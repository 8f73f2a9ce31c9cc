// In the style of Koordinator's CPU Suppress (koordlet), cfsQuota policy.
//
// Every `intervalMs` (Koordinator: 1 s) the best-effort (BE) partitions together are capped at
//   suppress = capacity × threshold − usage of the latency-sensitive (LS) partitions
// (Koordinator's default threshold: 65 %; it also subtracts system usage, which is zero here),
// never below a floor. LS partitions (here: kind "network") are never capped; BE partitions
// (kind "batch") share the suppress amount by weight. LS usage is the mean over the
// cycles since the last decision. Between decisions nothing is written.
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyInput, PolicyOutput, PolicyState } from "../types.ts";
import { decision, directive, fmtMillis } from "./common.ts";

export interface KoordinatorStyleOptions {
  /** cpuSuppressThresholdPercent (Koordinator's default 65). */
  thresholdPercent: number;
  intervalMs: number;
  /** Least the BE partitions together keep, millicores. */
  minBeCpuMillis: number;
}

export const koordinatorDefaults: KoordinatorStyleOptions = {
  thresholdPercent: 65,
  intervalMs: 1000,
  minBeCpuMillis: 20,
};

export interface KoordinatorState extends PolicyState {
  koord: { lastDecisionMs: number | null; lsUsageSumCpuMillis: number; samples: number };
}

export function koordinatorStylePolicy(options: Partial<KoordinatorStyleOptions> = {}): Policy {
  const o = { ...koordinatorDefaults, ...options };
  return {
    name: "koordinator-style",
    initialState: (): KoordinatorState => ({
      partitions: {},
      koord: { lastDecisionMs: null, lsUsageSumCpuMillis: 0, samples: 0 },
    }),
    step(input: PolicyInput, prevState: PolicyState): PolicyOutput {
      const prev = prevState as KoordinatorState;
      const k = prev.koord ?? { lastDecisionMs: null, lsUsageSumCpuMillis: 0, samples: 0 };
      let lsNow = 0;
      let seen = false;
      for (const spec of input.specs) {
        if (spec.kind !== "network") continue;
        const tp = input.throughput.get(spec.id);
        if (tp) {
          lsNow += tp.cpuCores * 1000;
          seen = true;
        }
      }
      const sum = k.lsUsageSumCpuMillis + (seen ? lsNow : 0);
      const samples = k.samples + (seen ? 1 : 0);
      const due =
        samples > 0 &&
        (k.lastDecisionMs === null || input.nowMs - k.lastDecisionMs >= o.intervalMs);
      if (!due) {
        const state: KoordinatorState = {
          partitions: prev.partitions,
          koord: { ...k, lsUsageSumCpuMillis: sum, samples },
        };
        return { directives: [], decisions: [], state };
      }
      const lsUsage = sum / samples;
      const suppress = Math.max(
        o.minBeCpuMillis,
        (input.knobs.capacityCpuMillis * o.thresholdPercent) / 100 - lsUsage,
      );
      const be = input.specs.filter((s) => s.kind === "batch");
      const beWeight = be.reduce((w, s) => w + s.weight, 0);
      const partitions: PolicyState["partitions"] = { ...prev.partitions };
      const directives = [];
      const decisions = [];
      for (const spec of be) {
        const cap = Math.round(
          clamp((suppress * spec.weight) / beWeight, spec.minCpuMillis, spec.maxCpuMillis),
        );
        const before = prev.partitions[spec.id]?.cpuMillis ?? input.knobs.capacityCpuMillis;
        partitions[spec.id] = {
          cpuMillis: cap,
          demandCpuMillis: cap,
          velocityPacketsPerCpuSec: null,
        };
        directives.push(directive(spec.id, cap, spec.weight));
        decisions.push(
          decision(
            spec.id,
            before,
            cap,
            cap,
            `suppress best-effort: ${o.thresholdPercent} % of ${fmtMillis(input.knobs.capacityCpuMillis)} − LS usage ${fmtMillis(lsUsage)} = ${fmtMillis(suppress)}${be.length > 1 ? ", shared by weight" : ""}`,
          ),
        );
      }
      const state: KoordinatorState = {
        partitions,
        koord: { lastDecisionMs: input.nowMs, lsUsageSumCpuMillis: 0, samples: 0 },
      };
      return { directives, decisions, state };
    },
  };
}
