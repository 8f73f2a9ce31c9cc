// In the style of Koordinator's CPU Suppress (koordlet), cfsQuota policy.
//
// Every `intervalMs` (Koordinator: 1 s) the best-effort (BE) partitions together are capped at
//   suppress = capacity × threshold − usage of the latency-sensitive (LS) partitions
// (Koordinator's default threshold: 65 %; it also subtracts system usage, which is zero here),
// never below a floor. LS partitions (here: kind "network") are never capped; BE partitions
// (kind "batch") share the suppress amount by weight. LS usage is the mean over the
// cycles since the last decision. Between decisions nothing is written.
//
// Directives, as Koordinator's pods get them: BE pods are Kubernetes BestEffort pods, which
// the kubelet runs at cpu.shares 2 (v2 weight 1); CPU Suppress writes their CFS quota, so a
// BE directive is weight 1, normal class (Koordinator's cpu.idle support is off by default),
// with the suppress amount as a hard cap (capReason "suppress-batch", no burst: its CPU Burst
// strategy defaults to "none"). LS pods keep the quota of their own CPU limit; the analogue
// here is a configured max below capacity (capReason "max"); without one an LS partition is
// left as the kubelet left it: uncapped, default weight, nothing written.
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyInput, PolicyOutput, PolicyState } from "../types.ts";
import { decision, directive, fmtMillis } from "./common.ts";

/** cpu.shares 2 (the kubelet's BestEffort minimum) on the v2 weight scale. */
export const BEST_EFFORT_WEIGHT = 1;

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
        directives.push(
          directive(spec.id, cap, {
            weight: BEST_EFFORT_WEIGHT,
            capCpuMillis: cap,
            capReason: "suppress-batch",
          }),
        );
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
      for (const spec of input.specs) {
        if (spec.kind === "batch" || spec.maxCpuMillis >= input.knobs.capacityCpuMillis) continue;
        const limit = spec.maxCpuMillis;
        directives.push(
          directive(spec.id, limit, { weight: spec.weight, capCpuMillis: limit, capReason: "max" }),
        );
        decisions.push(
          decision(
            spec.id,
            prev.partitions[spec.id]?.cpuMillis ?? limit,
            limit,
            limit,
            `latency-sensitive: its own CPU limit ${fmtMillis(limit)}`,
          ),
        );
        partitions[spec.id] = {
          cpuMillis: limit,
          demandCpuMillis: limit,
          velocityPacketsPerCpuSec: null,
        };
      }
      const state: KoordinatorState = {
        partitions,
        koord: { lastDecisionMs: input.nowMs, lsUsageSumCpuMillis: 0, samples: 0 },
      };
      return { directives, decisions, state };
    },
  };
}
