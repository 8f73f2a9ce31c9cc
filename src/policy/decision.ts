// The policy's verdict on one partition. Its reasons stay as numbers in the step's arrays
// (StepRecord); the `why` sentence is written from them the first time someone reads it (a
// log line, the API, a test), so a 10,000-partition step does not format 10,000 sentences
// nobody reads (formatting every one costs several times the rest of the step).
// JSON.stringify goes through toJSON and includes `why`; an object spread ({...d}) copies own
// fields only and so leaves it out: read `d.why` or use `d.toJSON()` instead.
import type { Decision, PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import type { CpuMillis } from "../core/units.ts";
import type { DemandKind } from "./demand.ts";
import { Marks } from "./postprocess.ts";

/** Where a partition's demand came from this cycle. */
export type DemandSource = "network" | "batch" | "held" | "unseen";
export const SOURCES: readonly DemandSource[] = ["network", "batch", "held", "unseen"];
export const KINDS: readonly DemandKind[] = ["use", "traffic", "probe"];

/** Assessment flags (StepRecord.flags). */
export const Flags = {
  throttled: 1,
  dropping: 2,
  dropsIgnored: 4,
  constrained: 8,
  receiver: 16,
} as const;

/** Everything one step saw and decided, in arrays indexed like its spec list. */
export interface StepRecord {
  specs: readonly PartitionSpec[];
  throughput: ReadonlyArray<Throughput | null>;
  /** Index into SOURCES. */
  source: Uint8Array;
  importance: Uint8Array;
  /** Network partitions with throughput: index into KINDS, flags, and the assessment's numbers (NaN = none). */
  kind: Uint8Array;
  flags: Uint8Array;
  usedCpuMillis: Float64Array;
  trafficNeedCpuMillis: Float64Array;
  useNeedCpuMillis: Float64Array;
  probeFromCpuMillis: Float64Array;
  rawDemandCpuMillis: Float64Array;
  goalFloorCpuMillis: Float64Array;
  assessedDemandCpuMillis: Float64Array;
  /** Bounds (whole millicores), guarantee honoured, tier target, core result and its left-over part. */
  lo: Float64Array;
  hi: Float64Array;
  effectiveMin: Float64Array;
  target: Float64Array;
  ideal: Float64Array;
  leftover: Float64Array;
  /** Last cycle's allocation and what of it the shrink limit protected (NaN = none). */
  prev: Float64Array;
  protectedCpuMillis: Float64Array;
  /** Post-processor marks (postprocess.ts Marks). */
  marks: Uint8Array;
  headroomFraction: number;
  probeFactor: number;
  maxShrinkFraction: number;
  deadbandCpuMillis: number;
  capacityCpuMillis: number;
  shareLeftover: boolean;
}

/** The reasons behind one decision as a plain object (for tests, the API, debugging). */
export interface DecisionDetail {
  source: DemandSource;
  kind: DemandKind | null;
  importance: number;
  throttled: boolean;
  dropping: boolean;
  dropsIgnored: boolean;
  constrained: boolean;
  receiver: boolean;
  usedCpuMillis: number | null;
  trafficNeedCpuMillis: number | null;
  useNeedCpuMillis: number | null;
  probeFromCpuMillis: number | null;
  rawDemandCpuMillis: number | null;
  goalFloorCpuMillis: number | null;
  minCpuMillis: number;
  maxCpuMillis: number;
  effectiveMinCpuMillis: number;
  targetCpuMillis: number;
  tierGrantCpuMillis: number;
  leftoverCpuMillis: number;
  idealCpuMillis: number;
  previousCpuMillis: number | null;
  protectedCpuMillis: number | null;
  deadband: boolean;
  shrinkLimited: boolean;
  boundsFixed: boolean;
}

export class WeirDecision implements Decision {
  readonly partition: PartitionId;
  readonly demandCpuMillis: CpuMillis;
  readonly previousCpuMillis: CpuMillis;
  readonly cpuMillis: CpuMillis;
  readonly velocityPacketsPerCpuSec: number | null;
  readonly performanceIndex: number | null;
  readonly #record: StepRecord;
  readonly #index: number;
  #why: string | undefined;

  constructor(
    record: StepRecord,
    index: number,
    demandCpuMillis: CpuMillis,
    previousCpuMillis: CpuMillis,
    cpuMillis: CpuMillis,
    velocityPacketsPerCpuSec: number | null,
    performanceIndex: number | null,
  ) {
    this.partition = record.specs[index]!.id;
    this.demandCpuMillis = demandCpuMillis;
    this.previousCpuMillis = previousCpuMillis;
    this.cpuMillis = cpuMillis;
    this.velocityPacketsPerCpuSec = velocityPacketsPerCpuSec;
    this.performanceIndex = performanceIndex;
    this.#record = record;
    this.#index = index;
    this.#why = undefined;
  }

  /** One plain sentence with the numbers, written on first read. */
  get why(): string {
    if (this.#why === undefined) this.#why = explain(this, this.detail);
    return this.#why;
  }

  set why(text: string) {
    this.#why = text;
  }

  get detail(): DecisionDetail {
    return detailOf(this.#record, this.#index);
  }

  get throughput(): Throughput | null {
    return this.#record.throughput[this.#index]!;
  }

  get spec(): PartitionSpec {
    return this.#record.specs[this.#index]!;
  }

  get knobs(): Pick<
    StepRecord,
    | "headroomFraction"
    | "probeFactor"
    | "maxShrinkFraction"
    | "deadbandCpuMillis"
    | "capacityCpuMillis"
    | "shareLeftover"
  > {
    return this.#record;
  }

  toJSON(): Decision {
    return {
      partition: this.partition,
      demandCpuMillis: this.demandCpuMillis,
      previousCpuMillis: this.previousCpuMillis,
      cpuMillis: this.cpuMillis,
      velocityPacketsPerCpuSec: this.velocityPacketsPerCpuSec,
      performanceIndex: this.performanceIndex,
      why: this.why,
    };
  }
}

const nan = (x: number): number | null => (Number.isNaN(x) ? null : x);

function detailOf(r: StepRecord, i: number): DecisionDetail {
  const source = SOURCES[r.source[i]!]!;
  const assessed = source === "network";
  const f = r.flags[i]!;
  const m = r.marks[i]!;
  return {
    source,
    kind: assessed ? KINDS[r.kind[i]!]! : null,
    importance: r.importance[i]!,
    throttled: (f & Flags.throttled) !== 0,
    dropping: (f & Flags.dropping) !== 0,
    dropsIgnored: (f & Flags.dropsIgnored) !== 0,
    constrained: (f & Flags.constrained) !== 0,
    receiver: (f & Flags.receiver) !== 0,
    usedCpuMillis: assessed ? r.usedCpuMillis[i]! : null,
    trafficNeedCpuMillis: assessed ? nan(r.trafficNeedCpuMillis[i]!) : null,
    useNeedCpuMillis: assessed ? r.useNeedCpuMillis[i]! : null,
    probeFromCpuMillis: assessed ? r.probeFromCpuMillis[i]! : null,
    rawDemandCpuMillis: assessed ? r.rawDemandCpuMillis[i]! : null,
    goalFloorCpuMillis: assessed ? nan(r.goalFloorCpuMillis[i]!) : null,
    minCpuMillis: r.lo[i]!,
    maxCpuMillis: r.hi[i]!,
    effectiveMinCpuMillis: r.effectiveMin[i]!,
    targetCpuMillis: r.target[i]!,
    tierGrantCpuMillis: r.ideal[i]! - r.leftover[i]!,
    leftoverCpuMillis: r.leftover[i]!,
    idealCpuMillis: r.ideal[i]!,
    previousCpuMillis: nan(r.prev[i]!),
    protectedCpuMillis: nan(r.protectedCpuMillis[i]!),
    deadband: (m & Marks.deadband) !== 0,
    shrinkLimited: (m & Marks.shrinkLimited) !== 0,
    boundsFixed: (m & Marks.boundsFixed) !== 0,
  };
}

/** 12345.6 → "12,346" (en-US grouping without Intl: a sentence has up to a dozen numbers). */
export function formatInt(x: number): string {
  const r = Math.round(x);
  if (!Number.isFinite(r) || Math.abs(r) >= 1e21) return String(r);
  const digits = String(Math.abs(r));
  let out = digits.slice(0, digits.length % 3 || 3);
  for (let k = out.length; k < digits.length; k += 3) out += `,${digits.slice(k, k + 3)}`;
  return r < 0 ? `-${out}` : out;
}
const int = formatInt;
const millis = (x: number): string => `${int(x)}m`;
const pct = (fraction: number): string => `${Math.round(fraction * 100)} %`;

/** One plain sentence with the numbers: demand, then what the allocation made of it. */
export function explain(d: WeirDecision, x: DecisionDetail = d.detail): string {
  const parts: string[] = [];
  const tp = d.throughput;
  const k = d.knobs;
  const v = d.velocityPacketsPerCpuSec;
  const h = pct(k.headroomFraction);
  const goal = d.spec.goalPacketsPerSec;

  switch (x.source) {
    case "network": {
      if (!tp) break;
      const used = x.usedCpuMillis ?? 0;
      const useNeed = x.useNeedCpuMillis ?? 0;
      const trafficNeed = x.trafficNeedCpuMillis;
      const offeredAt =
        v === null
          ? `offered ${int(tp.offeredPacketsPerSec)} pps`
          : `offered ${int(tp.offeredPacketsPerSec)} pps at ${int(v)} pkt/cpu-s`;
      if (x.kind === "use") {
        const calm = `not constrained (throttled ${pct(tp.throttledFraction)}, ${dropText(tp, x)})`;
        if (trafficNeed !== null && trafficNeed > useNeed + 0.5)
          parts.push(
            `${offeredAt} would need ${millis(trafficNeed)} (+${h} headroom), but it is ${calm} and uses ${millis(used)}, so only use + headroom ${millis(useNeed)} is credited`,
          );
        else
          parts.push(
            `uses ${millis(used)} and is ${calm}, so needs ${millis(useNeed)} (+${h} headroom)`,
          );
      } else if (x.kind === "traffic") {
        parts.push(
          `${offeredAt} needs ${millis(trafficNeed ?? 0)} (+${h} headroom); ${congestionText(tp, x)} confirms`,
        );
      } else {
        let reason: string;
        if (v === null) reason = "velocity is unknown";
        else if (trafficNeed === null) reason = "offered load is unknown";
        else
          reason = `${offeredAt} (${millis(trafficNeed)}) would fit in ${millis(x.probeFromCpuMillis ?? 0)}`;
        parts.push(
          `${congestionText(tp, x)} but ${reason}, so probing ×${k.probeFactor} from ${millis(x.probeFromCpuMillis ?? 0)} to ${millis(x.rawDemandCpuMillis ?? 0)}`,
        );
      }
      const raw = x.rawDemandCpuMillis ?? 0;
      const floored =
        x.goalFloorCpuMillis !== null && x.goalFloorCpuMillis >= d.demandCpuMillis - 0.5;
      if (
        x.kind !== "probe" &&
        !floored &&
        Math.abs(d.demandCpuMillis - raw) >= 0.5 &&
        d.demandCpuMillis > x.minCpuMillis
      )
        parts.push(`smoothed to ${millis(d.demandCpuMillis)}`);
      break;
    }
    case "batch":
      parts.push(
        k.shareLeftover
          ? `batch: no traffic demand, takes left-over up to max ${millis(x.maxCpuMillis)}`
          : `batch: no traffic demand and left-over is kept idle, so it gets its guarantee`,
      );
      break;
    case "held":
      parts.push(
        `no throughput this cycle: keeps its previous ${millis(x.previousCpuMillis ?? 0)}`,
      );
      break;
    case "unseen":
      parts.push(
        `no throughput yet and no previous allocation: starts at its guarantee ${millis(x.minCpuMillis)}${k.shareLeftover ? " plus a weighted share of the left-over" : ""}`,
      );
      break;
  }

  if (goal !== undefined && goal > 0) {
    if (x.goalFloorCpuMillis !== null && x.goalFloorCpuMillis >= d.demandCpuMillis - 0.5)
      parts.push(`goal ${int(goal)} pps floors demand at ${millis(x.goalFloorCpuMillis)}`);
    else if (x.source === "network" && v === null)
      parts.push(`goal ${int(goal)} pps has no floor yet (velocity unknown)`);
    if (d.performanceIndex !== null && tp)
      parts.push(
        `performance index ${d.performanceIndex.toFixed(2)} (goal ${int(goal)} ÷ served ${int(tp.servedPacketsPerSec)} pps)${x.receiver ? `, a receiver (misses its goal at importance ${x.importance}, the most important level with a miss)` : ""}`,
      );
  }

  if (x.effectiveMinCpuMillis < x.minCpuMillis - 0.5)
    parts.push(
      `guarantees exceed capacity ${millis(k.capacityCpuMillis)}, so its min ${millis(x.minCpuMillis)} is cut to ${millis(x.effectiveMinCpuMillis)}`,
    );
  if (x.source === "network" && x.rawDemandCpuMillis !== null) {
    const demand = Math.max(x.goalFloorCpuMillis ?? 0, x.rawDemandCpuMillis);
    if (d.demandCpuMillis <= x.minCpuMillis && demand < x.minCpuMillis - 0.5)
      parts.push(`raised to its guarantee ${millis(x.minCpuMillis)}`);
    if (d.demandCpuMillis >= x.maxCpuMillis && demand > x.maxCpuMillis + 0.5)
      parts.push(`capped at max ${millis(x.maxCpuMillis)}`);
  }
  if (x.tierGrantCpuMillis < x.targetCpuMillis - 0.5)
    parts.push(
      `importance ${x.importance} tier had ${millis(x.tierGrantCpuMillis)} of ${millis(x.targetCpuMillis)} for it`,
    );
  if (x.leftoverCpuMillis >= 0.5) parts.push(`+${millis(x.leftoverCpuMillis)} left-over`);
  if (x.deadband && x.previousCpuMillis !== null)
    parts.push(
      `change to ${millis(x.idealCpuMillis)} is inside the dead-band (${millis(k.deadbandCpuMillis)}), so it stays at ${millis(x.previousCpuMillis)}`,
    );
  if (x.shrinkLimited && x.protectedCpuMillis !== null)
    parts.push(
      `shrink limited to ${pct(k.maxShrinkFraction)} of ${millis(x.protectedCpuMillis)} a cycle (wanted ${millis(x.idealCpuMillis)})`,
    );
  if (x.boundsFixed)
    parts.push(`adjusted to stay within [min, max] and capacity ${millis(k.capacityCpuMillis)}`);
  parts.push(`granted ${millis(d.cpuMillis)}`);
  return parts.join("; ");
}

function dropText(tp: Throughput, x: DecisionDetail): string {
  if (x.dropsIgnored)
    return `${int(tp.droppedPacketsPerSec)} pps dropped while using under half its allocation, not CPU congestion`;
  return "no drops";
}

function congestionText(tp: Throughput, x: DecisionDetail): string {
  const bits: string[] = [];
  if (x.throttled) bits.push(`throttled ${pct(tp.throttledFraction)}`);
  if (x.dropping) bits.push(`dropping ${int(tp.droppedPacketsPerSec)} pps`);
  return bits.join(" and ");
}
