// In the style of the Kubernetes Vertical Pod Autoscaler (recommender + updater), CPU only.
// Algorithm: kubernetes/autoscaler, vertical-pod-autoscaler/pkg/recommender/logic/recommender.go
// and estimator.go (https://github.com/kubernetes/autoscaler/tree/master/vertical-pod-autoscaler/pkg/recommender/logic),
// with VPA's defaults:
//
// - Samples: once per recommender loop (1 min) each partition's CPU usage, as metrics-server
//   reports it (a rate over its last window, 15 s here), goes into a decaying histogram
//   (exponential buckets from 10 millicores, ratio 1.05). A sample's weight is VPA's
//   minSampleWeight (0.1) × 2^(age / half-life 24 h), so newer samples count more: since VPA
//   1.4.0 (kubernetes/autoscaler ca812b36a3, 2025-02) every CPU sample has that same weight.
//   Before it a sample weighed the container's CPU request in cores (at least 0.1), so a raised
//   request made the older history count less; `sampleWeightByRequest` keeps that older rule.
// - Recommendation (estimator.go): target = p90 × 1.15; lower bound = p50 × 1.15 ×
//   (1 + 0.001 / confidence)^−2; upper bound = p95 × 1.15 × (1 + 1 / confidence); each at least
//   25 millicores. confidence = min(days between the first and the last sample, samples ÷ 1,440)
//   — with a few minutes of history the upper bound is huge and the lower bound well below p50,
//   so the updater is slow to act: that is VPA's design ("less eager to evict pods with short
//   history").
// - Updater (every minute): a partition whose request is outside [lower, upper] is resized in
//   place to the target (InPlaceOrRecreate); so is one that has lived at least 12 h
//   (PodLifetimeUpdateThreshold) when the target differs from its request by 10 % of the request
//   or more (MinChangePriority; update_priority_calculator.go). Before its first update a
//   partition has its initial request: an equal share of capacity.
//
// Directives: the request is the entitlement, expressed as cpu.shares in proportion (the
// kubelet's request → shares). VPA scales a limit only where the pod had one, keeping the
// limit:request ratio; `limitToRequestRatio` null (the default) is a pod with requests only —
// uncapped, work-conserving — and 1 a Guaranteed pod (cap = request, reason "capped").
//
// `vpaTimeScaled` compresses every VPA time constant (loop, metrics window, half-life, the "day"
// of the confidence, the 12 h lifetime) by the same factor: `vpaStyleFastOptions` runs VPA 60× faster (a loop every
// second), so short scenarios cannot be said to starve it.
import type { PartitionId } from "../../core/model.ts";
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyInput, PolicyOutput, PolicyState } from "../types.ts";
import { decision, directive, fmtMillis } from "./common.ts";

export interface VpaStyleOptions {
  targetPercentile: number;
  lowerPercentile: number;
  upperPercentile: number;
  safetyMarginFraction: number;
  /** pod-recommendation-min-cpu-millicores. */
  minCpuMillis: number;
  /** Recommender and updater loop (both 1 min in VPA). */
  loopIntervalMs: number;
  /** The usage rate a sample reports is the mean over this window before the sample (metrics-server resolution). */
  metricsWindowMs: number;
  /** Half-life of a sample's weight (VPA: 24 h). */
  halfLifeMs: number;
  /** The "day" of the confidence: lifespan in these units, samples ÷ (this ÷ loop interval). */
  confidenceIntervalMs: number;
  /** Least weight of a sample, cores (VPA's minSampleWeight). */
  minSampleWeightCores: number;
  /** Histogram: first bucket size and growth ratio (VPA: 0.01 cores, 1.05). */
  firstBucketCpuMillis: number;
  bucketRatio: number;
  /** Limit ÷ request the pod was created with; null = no limit (requests only). */
  limitToRequestRatio: number | null;
  /**
   * Weigh a sample by the request (at least `minSampleWeightCores`), as VPA did before 1.4.0;
   * false (the default): every sample weighs `minSampleWeightCores`, as VPA does since.
   */
  sampleWeightByRequest: boolean;
  /** The updater's PodLifetimeUpdateThreshold (12 h): from this age a change of `minChangePriority` updates. */
  podLifetimeUpdateThresholdMs: number;
  /** The updater's MinChangePriority: |target − request| ÷ request that updates a pod past that age. */
  minChangePriority: number;
}

export const vpaDefaults: VpaStyleOptions = {
  targetPercentile: 0.9,
  lowerPercentile: 0.5,
  upperPercentile: 0.95,
  safetyMarginFraction: 0.15,
  minCpuMillis: 25,
  loopIntervalMs: 60_000,
  metricsWindowMs: 15_000,
  halfLifeMs: 24 * 3600_000,
  confidenceIntervalMs: 24 * 3600_000,
  minSampleWeightCores: 0.1,
  firstBucketCpuMillis: 10,
  bucketRatio: 1.05,
  limitToRequestRatio: null,
  sampleWeightByRequest: false,
  podLifetimeUpdateThresholdMs: 12 * 3600_000,
  minChangePriority: 0.1,
};

/** VPA's time constants divided by `factor` (the rest unchanged). */
export const vpaTimeScaled = (
  factor: number,
  o: VpaStyleOptions = vpaDefaults,
): VpaStyleOptions => ({
  ...o,
  loopIntervalMs: o.loopIntervalMs / factor,
  metricsWindowMs: o.metricsWindowMs / factor,
  halfLifeMs: o.halfLifeMs / factor,
  confidenceIntervalMs: o.confidenceIntervalMs / factor,
  podLifetimeUpdateThresholdMs: o.podLifetimeUpdateThresholdMs / factor,
});

/** VPA 60× faster: a loop every second, a 1-day confidence reached in 24 minutes. */
export const vpaStyleFastOptions: VpaStyleOptions = vpaTimeScaled(60);

interface VpaPartitionState {
  /** Weight per histogram bucket. */
  histogram: number[];
  /** The request now (the entitlement), millicores. */
  requestCpuMillis: number;
  /** When the partition was first seen (the pod's start; an in-place resize keeps it). */
  startMs: number;
  firstSampleMs: number | null;
  lastSampleMs: number | null;
  samples: number;
  /** Usage accumulated in the current metrics window: Σ cores × ms, and ms. */
  windowCoreMs: number;
  windowMs: number;
}

export interface VpaState extends PolicyState {
  vpa: {
    /** Reference time of the decay (weights are relative to it); null before the first step. */
    referenceMs: number | null;
    /** The next recommender + updater loop. */
    nextLoopMs: number | null;
    /** When the previous step ran (a cycle's usage covers [prev, now]). */
    lastStepMs: number | null;
    byPartition: Record<PartitionId, VpaPartitionState>;
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

/** getConfidence: min(lifespan in "days", samples ÷ samples-per-"day" at one per loop). */
export function confidenceOf(
  o: VpaStyleOptions,
  s: Pick<VpaPartitionState, "firstSampleMs" | "lastSampleMs" | "samples">,
): number {
  if (s.firstSampleMs === null || s.lastSampleMs === null) return 0;
  const lifespan = (s.lastSampleMs - s.firstSampleMs) / o.confidenceIntervalMs;
  const amount = s.samples / (o.confidenceIntervalMs / o.loopIntervalMs);
  return Math.min(lifespan, amount);
}

export interface VpaRecommendation {
  targetCpuMillis: number;
  lowerCpuMillis: number;
  upperCpuMillis: number;
  confidence: number;
}

/** Target, lower and upper bound of one partition's histogram (estimator.go's chain). */
export function recommend(
  o: VpaStyleOptions,
  s: Pick<VpaPartitionState, "histogram" | "firstSampleMs" | "lastSampleMs" | "samples">,
): VpaRecommendation {
  const margin = 1 + o.safetyMarginFraction;
  const confidence = confidenceOf(o, s);
  const pct = (p: number) => histogramPercentile(o, s.histogram, p) * margin;
  // (1 + m / 0)^e: +Infinity for the upper bound (e = 1), 0 for the lower (e = −2), as in Go.
  const upperFactor = (1 + 1 / confidence) ** 1;
  const lowerFactor = (1 + 0.001 / confidence) ** -2;
  return {
    targetCpuMillis: Math.max(o.minCpuMillis, pct(o.targetPercentile)),
    lowerCpuMillis: Math.max(o.minCpuMillis, pct(o.lowerPercentile) * lowerFactor),
    upperCpuMillis: Math.max(o.minCpuMillis, pct(o.upperPercentile) * upperFactor),
    confidence,
  };
}

export function vpaStylePolicy(options: Partial<VpaStyleOptions> = {}, name = "vpa-style"): Policy {
  const o: VpaStyleOptions = { ...vpaDefaults, ...options };
  return {
    name,
    initialState: (): VpaState => ({
      partitions: {},
      vpa: { referenceMs: null, nextLoopMs: null, lastStepMs: null, byPartition: {} },
    }),
    step(input: PolicyInput, prevState: PolicyState): PolicyOutput {
      const prev = (prevState as VpaState).vpa ?? {
        referenceMs: null,
        nextLoopMs: null,
        lastStepMs: null,
        byPartition: {},
      };
      const now = input.nowMs;
      const referenceMs = prev.referenceMs ?? now;
      const nextLoop = prev.nextLoopMs ?? now + o.loopIntervalMs;
      const due = now >= nextLoop;
      const cycleMs = prev.lastStepMs === null ? 0 : now - prev.lastStepMs;
      const inWindow = now > nextLoop - o.metricsWindowMs;
      const n = input.specs.length;
      const initial = n > 0 ? Math.floor(input.knobs.capacityCpuMillis / n) : 0;

      const byPartition: Record<PartitionId, VpaPartitionState> = {};
      const partitions: PolicyState["partitions"] = {};
      const directives = [];
      const decisions = [];
      for (const spec of input.specs) {
        const old = prev.byPartition[spec.id];
        const s: VpaPartitionState = old
          ? { ...old, histogram: old.histogram }
          : {
              histogram: [],
              requestCpuMillis: clamp(initial, spec.minCpuMillis, spec.maxCpuMillis),
              startMs: now,
              firstSampleMs: null,
              lastSampleMs: null,
              samples: 0,
              windowCoreMs: 0,
              windowMs: 0,
            };
        const t = input.throughput.get(spec.id);
        if (t && inWindow && cycleMs > 0) {
          s.windowCoreMs += t.cpuCores * cycleMs;
          s.windowMs += cycleMs;
        }
        const before = s.requestCpuMillis;
        let why = `request ${fmtMillis(before)} (initial: an equal share), next loop at ${Math.round(nextLoop / 1000)} s`;
        if (due) {
          // Recommender: one sample per loop, the usage rate over the metrics window.
          if (s.windowMs > 0) {
            const usageMillis = (s.windowCoreMs / s.windowMs) * 1000;
            const weight =
              (o.sampleWeightByRequest
                ? Math.max(s.requestCpuMillis / 1000, o.minSampleWeightCores)
                : o.minSampleWeightCores) *
              2 ** ((now - referenceMs) / o.halfLifeMs);
            const b = bucketOf(o, usageMillis);
            const h = [...s.histogram];
            for (let i = h.length; i <= b; i++) h.push(0);
            h[b] = (h[b] ?? 0) + weight;
            s.histogram = h;
            s.firstSampleMs ??= now;
            s.lastSampleMs = now;
            s.samples++;
          }
          s.windowCoreMs = 0;
          s.windowMs = 0;
          // Updater: resize in place when the request is outside the bounds.
          if (s.samples > 0) {
            const r = recommend(o, s);
            const lim = (x: number) => clamp(x, spec.minCpuMillis, spec.maxCpuMillis);
            const [lower, upper, target] = [
              lim(r.lowerCpuMillis),
              lim(r.upperCpuMillis),
              Math.round(lim(r.targetCpuMillis)),
            ];
            const bounds = `[${fmtMillis(lower)}, ${Number.isFinite(upper) ? fmtMillis(upper) : "∞"}] (confidence ${r.confidence.toFixed(4)})`;
            const startMs = s.startMs;
            const change = Math.abs(target - before) / Math.max(before, 1);
            const longLived =
              now - startMs >= o.podLifetimeUpdateThresholdMs && change >= o.minChangePriority;
            const toTarget = `target p${o.targetPercentile * 100} × ${1 + o.safetyMarginFraction} = ${fmtMillis(target)}`;
            if (before < lower || before > upper) {
              s.requestCpuMillis = target;
              why = `update: request ${fmtMillis(before)} outside ${bounds} -> ${toTarget}`;
            } else if (longLived) {
              s.requestCpuMillis = target;
              why = `update: request ${fmtMillis(before)} within ${bounds}, but ${Math.round(change * 100)} % from the target after ${Math.round((now - startMs) / 1000)} s -> ${toTarget}`;
            } else
              why = `update: request ${fmtMillis(before)} within ${bounds}, kept (target ${fmtMillis(target)})`;
          }
        }
        byPartition[spec.id] = s;
        const request = s.requestCpuMillis;
        partitions[spec.id] = {
          cpuMillis: request,
          demandCpuMillis: request,
          velocityPacketsPerCpuSec: null,
        };
        directives.push(
          o.limitToRequestRatio === null
            ? directive(spec.id, request)
            : directive(spec.id, request, {
                capCpuMillis: Math.min(
                  spec.maxCpuMillis,
                  Math.round(request * o.limitToRequestRatio),
                ),
                capReason: "capped",
              }),
        );
        decisions.push(decision(spec.id, before, request, request, why));
      }
      const state: VpaState = {
        partitions,
        vpa: {
          referenceMs,
          nextLoopMs: due
            ? nextLoop + o.loopIntervalMs * (Math.floor((now - nextLoop) / o.loopIntervalMs) + 1)
            : nextLoop,
          lastStepMs: now,
          byPartition,
        },
      };
      return { directives, decisions, state };
    },
  };
}
