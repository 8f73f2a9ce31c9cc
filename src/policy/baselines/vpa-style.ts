// In the style of the Kubernetes Vertical Pod Autoscaler (recommender + updater), CPU only.
//
// The recommender keeps, per partition, a decaying histogram of CPU usage samples (exponential
// buckets from 10 millicores, ratio 1.05; a sample's weight doubles every half-life, so old
// samples count less) and recommends target = p90 × (1 + 15 % safety margin), at least 25
// millicores; lower and upper bounds are p50 and p95 with the same margin. The updater runs on
// a slow interval (VPA's default: 1 minute) and, when a partition's allocation is outside
// [lower, upper], resizes it to the target (in place, like InPlaceOrRecreate). Before the first
// update every partition has its initial "request": an equal share of capacity.
//
// What it sees is usage, not traffic: usage is cut off by the cap it set, so a partition whose
// load rises above its cap shows usage at the cap, and the recommendation grows only by the
// margin per update. That is the VPA's documented behaviour, and the reason it is here.
//
// Directives: the VPA scales a container's request and its limit together (keeping their
// ratio); the kubelet turns the request into cpu.shares and the limit into a CFS quota. Here
// request = limit = the recommendation: weight in proportion, and the same value as a hard cap
// (capReason "capped", no burst).
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyInput, PolicyOutput, PolicyState } from "../types.ts";
import { cappedDirective, decision, fmtMillis } from "./common.ts";

export interface VpaStyleOptions {
  targetPercentile: number;
  lowerPercentile: number;
  upperPercentile: number;
  safetyMarginFraction: number;
  minCpuMillis: number;
  /** The updater's loop interval. */
  updateIntervalMs: number;
  /** Half-life of a usage sample's weight (VPA: 24 h). */
  halfLifeMs: number;
  /** Histogram: first bucket size and growth ratio (VPA: 0.01 cores, 1.05). */
  firstBucketCpuMillis: number;
  bucketRatio: number;
}

export const vpaDefaults: VpaStyleOptions = {
  targetPercentile: 0.9,
  lowerPercentile: 0.5,
  upperPercentile: 0.95,
  safetyMarginFraction: 0.15,
  minCpuMillis: 25,
  updateIntervalMs: 60_000,
  halfLifeMs: 24 * 3600_000,
  firstBucketCpuMillis: 10,
  bucketRatio: 1.05,
};

export interface VpaState extends PolicyState {
  vpa: {
    /** When the updater last ran (null: never). */
    lastUpdateMs: number | null;
    /** Reference time of the decay (weights are relative to it). */
    referenceMs: number | null;
    /** Per partition: weight per histogram bucket. */
    histograms: Record<string, number[]>;
  };
}

/** Start of histogram bucket `i`, millicores: first × (ratio^i − 1) / (ratio − 1). */
export const bucketStart = (o: VpaStyleOptions, i: number): number =>
  (o.firstBucketCpuMillis * (o.bucketRatio ** i - 1)) / (o.bucketRatio - 1);

export const bucketOf = (o: VpaStyleOptions, cpuMillis: number): number =>
  cpuMillis <= 0
    ? 0
    : Math.floor(
        Math.log1p((cpuMillis * (o.bucketRatio - 1)) / o.firstBucketCpuMillis) /
          Math.log(o.bucketRatio),
      );

/** The VPA's histogram percentile: the end of the bucket where the cumulative weight reaches p. */
export function histogramPercentile(
  o: VpaStyleOptions,
  weights: readonly number[],
  p: number,
): number {
  let total = 0;
  for (const w of weights) total += w ?? 0;
  if (total <= 0) return 0;
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    sum += weights[i] ?? 0;
    if (sum >= p * total) return bucketStart(o, i + 1);
  }
  return bucketStart(o, weights.length);
}

export function vpaStylePolicy(options: Partial<VpaStyleOptions> = {}): Policy {
  const o: VpaStyleOptions = { ...vpaDefaults, ...options };
  return {
    name: "vpa-style",
    initialState: (): VpaState => ({
      partitions: {},
      vpa: { lastUpdateMs: null, referenceMs: null, histograms: {} },
    }),
    step(input: PolicyInput, prevState: PolicyState): PolicyOutput {
      const prev = prevState as VpaState;
      const vpa = prev.vpa ?? { lastUpdateMs: null, referenceMs: null, histograms: {} };
      const referenceMs = vpa.referenceMs ?? input.nowMs;
      const sampleWeight = 2 ** ((input.nowMs - referenceMs) / o.halfLifeMs);
      const n = input.specs.length;
      const initial = n > 0 ? Math.floor(input.knobs.capacityCpuMillis / n) : 0;

      // Recommender: add this cycle's usage sample to each partition's histogram.
      const histograms: Record<string, number[]> = {};
      for (const spec of input.specs) {
        const h = [...(vpa.histograms[spec.id] ?? [])];
        const tp = input.throughput.get(spec.id);
        if (tp) {
          const b = bucketOf(o, tp.cpuCores * 1000);
          for (let i = h.length; i <= b; i++) h.push(0);
          h[b] = (h[b] ?? 0) + sampleWeight;
        }
        histograms[spec.id] = h;
      }

      // Updater: on its interval, resize partitions whose allocation is out of bounds.
      const due =
        vpa.lastUpdateMs === null ? false : input.nowMs - vpa.lastUpdateMs >= o.updateIntervalMs;
      const lastUpdateMs = vpa.lastUpdateMs === null || due ? input.nowMs : vpa.lastUpdateMs;
      const partitions: PolicyState["partitions"] = {};
      const directives = [];
      const decisions = [];
      for (const spec of input.specs) {
        const current =
          prev.partitions[spec.id]?.cpuMillis ??
          clamp(initial, spec.minCpuMillis, spec.maxCpuMillis);
        const h = histograms[spec.id]!;
        const margin = 1 + o.safetyMarginFraction;
        const bound = (p: number) =>
          clamp(
            Math.max(o.minCpuMillis, histogramPercentile(o, h, p) * margin),
            spec.minCpuMillis,
            spec.maxCpuMillis,
          );
        const target = Math.round(bound(o.targetPercentile));
        let cap = current;
        let why = `initial request: equal share ${fmtMillis(current)}`;
        if (vpa.lastUpdateMs !== null)
          why = `holding ${fmtMillis(current)} until the next update (target ${fmtMillis(target)})`;
        if (due && h.length > 0) {
          const lower = bound(o.lowerPercentile);
          const upper = bound(o.upperPercentile);
          if (current < lower || current > upper) {
            cap = target;
            why = `update: ${fmtMillis(current)} outside [${fmtMillis(lower)}, ${fmtMillis(upper)}] -> target p${o.targetPercentile * 100} usage + ${o.safetyMarginFraction * 100} % = ${fmtMillis(target)}`;
          } else
            why = `update: ${fmtMillis(current)} within [${fmtMillis(lower)}, ${fmtMillis(upper)}], kept`;
        }
        partitions[spec.id] = {
          cpuMillis: cap,
          demandCpuMillis: target,
          velocityPacketsPerCpuSec: null,
        };
        directives.push(cappedDirective(spec.id, cap));
        decisions.push(decision(spec.id, current, cap, target, why));
      }
      const state: VpaState = { partitions, vpa: { lastUpdateMs, referenceMs, histograms } };
      return { directives, decisions, state };
    },
  };
}
