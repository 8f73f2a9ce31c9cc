// One phase of `weir demo --vm` (and of `weir bench vm-balance`, which runs the same phases on
// guests and on cgroup partitions) from the manager's cycle records, each partition's load
// generator result and, for guests, the vCPUs their kernels had online (pure): weir's follow
// time, the hog's CPU and per partition served ÷ offered, p99, vCPUs and mean cap.
import type { CycleRecord } from "../core/model.ts";
import { allocationPoint, followMs, meanWorkConservationOfPoints } from "./scenario.ts";
import type { LoadOut } from "./vm-load.ts";
import type { VmDemoSummary } from "./vm-summary.ts";

export type VmPhase = VmDemoSummary["phases"][number];

/** vCPUs online per guest at `tMs` (ms since the plan's start), one sample a second. */
export interface VcpuSample {
  tMs: number;
  vcpus: Record<string, number>;
}

/** Records whose follow time is read start this long before the phase (where it came from). */
const FOLLOW_LOOKBACK_MS = 5000;

const mean = (xs: number[]): number | null =>
  xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null;

export function phaseOutcome(o: {
  records: readonly CycleRecord[];
  /** Epoch ms the phases' times count from. */
  t0: number;
  name: string;
  fromMs: number;
  toMs: number;
  hot: string | null;
  partitions: ReadonlyArray<{
    name: string;
    offeredPps: number;
    load: LoadOut["targets"][number] | null;
  }>;
  /** Null for partitions without vCPUs (cgroups): their vCPU columns are null. */
  vcpuSamples: readonly VcpuSample[] | null;
  batch: ReadonlySet<string>;
}): VmPhase {
  const at = (r: CycleRecord) => r.startedAtMs - o.t0;
  const inPhase = o.records.filter((r) => at(r) >= o.fromMs && at(r) < o.toMs);
  const points = inPhase.map((r) => allocationPoint(r, o.t0, o.batch));
  const hogShare = meanWorkConservationOfPoints(points, o.fromMs, o.toMs).batchShare;
  const follow = followMs(
    o.records
      .filter((r) => at(r) >= o.fromMs - FOLLOW_LOOKBACK_MS && at(r) < o.toMs)
      .map((r) => allocationPoint(r, o.t0)),
    { name: o.name, fromMs: o.fromMs, toMs: o.toMs, hot: o.hot },
  );
  const samples = o.vcpuSamples?.filter((s) => s.tMs >= o.fromMs && s.tMs < o.toMs) ?? null;
  return {
    name: o.name,
    fromMs: o.fromMs,
    toMs: o.toMs,
    followMs: follow === null ? null : Math.round(follow),
    hogCpuMillis:
      hogShare === null || !inPhase[0] ? null : Math.round(hogShare * inPhase[0].capacityCpuMillis),
    guests: o.partitions.map((p) => {
      const v = samples?.map((s) => s.vcpus[p.name] ?? 1) ?? [];
      const caps = inPhase.flatMap((r) => {
        const c = r.partitions.find((x) => x.id === p.name)?.directive?.capCpuMillis;
        return c !== undefined && Number.isFinite(c) ? [c] : [];
      });
      const m = mean(caps);
      return {
        partition: p.name,
        offeredPps: p.offeredPps,
        offered: p.load?.sent ?? 0,
        served: p.load?.answered ?? 0,
        servedRatio: p.load?.servedRatio ?? null,
        p99Ms: p.load?.latency.p99Ms ?? null,
        meanVcpus: mean(v),
        maxVcpus: v.length ? Math.max(...v) : null,
        meanCapCpuMillis: m === null ? null : Math.round(m),
      };
    }),
    directiveToOnline: [],
  };
}
