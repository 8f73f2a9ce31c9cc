// vm-balance's arithmetic (pure): per kind of partition and phase, each figure's values over
// the repetitions (the hot partition's and the other's served ÷ offered and p99, weir's follow
// time, the hot partition's mean cap and vCPUs, the hog's CPU) and the side-by-side table of
// their median [min–max].
import type { VmPhase } from "../src/demo/vm-phase.ts";
import { fmtStats } from "./harness.ts";

export const KINDS = ["cgroup", "vm"] as const;
export type Kind = (typeof KINDS)[number];
export const KIND_LABEL: Record<Kind, string> = {
  cgroup: "cgroups (netns + veth)",
  vm: "QEMU guests (TCG)",
};

/** One phase of one repetition, with the partition that was hot in it. */
export interface PhaseRun {
  hot: string;
  phase: VmPhase;
}

/** Each figure of one kind and phase name, one value per repetition (NaN: not measured). */
export interface PhaseFigures {
  kind: Kind;
  phase: string;
  hotServed: number[];
  otherServed: number[];
  /** NaN where weir's allocation did not get 90 % of the way within the phase. */
  followMs: number[];
  hotP99Ms: number[];
  otherP99Ms: number[];
  hotCapMillis: number[];
  /** Empty for cgroups (no vCPUs). */
  hotVcpus: number[];
  hogMillis: number[];
}

const num = (x: number | null | undefined): number => (x == null ? Number.NaN : x);

/** The figures of `kind` by phase name, in the order the phases first ran. */
export function phaseFigures(kind: Kind, reps: ReadonlyArray<readonly PhaseRun[]>): PhaseFigures[] {
  const out = new Map<string, PhaseFigures>();
  for (const rep of reps)
    for (const { hot, phase } of rep) {
      let f = out.get(phase.name);
      if (!f) {
        f = {
          kind,
          phase: phase.name,
          hotServed: [],
          otherServed: [],
          followMs: [],
          hotP99Ms: [],
          otherP99Ms: [],
          hotCapMillis: [],
          hotVcpus: [],
          hogMillis: [],
        };
        out.set(phase.name, f);
      }
      const h = phase.guests.find((g) => g.partition === hot);
      const others = phase.guests.filter((g) => g.partition !== hot);
      f.hotServed.push(num(h?.servedRatio));
      // the other partitions together: answered ÷ sent; their worst p99
      const sent = others.reduce((s, g) => s + g.offered, 0);
      f.otherServed.push(sent > 0 ? others.reduce((s, g) => s + g.served, 0) / sent : Number.NaN);
      const p99s = others.map((g) => num(g.p99Ms)).filter(Number.isFinite);
      f.otherP99Ms.push(p99s.length ? Math.max(...p99s) : Number.NaN);
      f.followMs.push(num(phase.followMs));
      f.hotP99Ms.push(num(h?.p99Ms));
      f.hotCapMillis.push(num(h?.meanCapCpuMillis));
      if (h?.meanVcpus != null) f.hotVcpus.push(h.meanVcpus);
      f.hogMillis.push(num(phase.hogCpuMillis));
    }
  return [...out.values()];
}

/** How many of the values are measured ("3 of 5"), for columns where a miss means something. */
const reached = (xs: number[]) => `${xs.filter(Number.isFinite).length} of ${xs.length}`;

export const SIDE_BY_SIDE_COLUMNS = [
  "partitions",
  "phase",
  "hot served ÷ offered %",
  "other served ÷ offered %",
  "weir's follow (ms)",
  "followed in",
  "hot p99 ms",
  "other p99 ms",
  "hot's cap (m, mean)",
  "hot's vCPUs (mean)",
  "hog CPU (m)",
];

/** One row per kind and phase: median [min–max] over the repetitions. */
export function sideBySideRows(figs: readonly PhaseFigures[]): Array<Array<string | number>> {
  return figs.map((f) => [
    KIND_LABEL[f.kind],
    f.phase,
    fmtStats(f.hotServed, 1, 100),
    fmtStats(f.otherServed, 1, 100),
    fmtStats(f.followMs, 0),
    reached(f.followMs),
    fmtStats(f.hotP99Ms, 1),
    fmtStats(f.otherP99Ms, 1),
    fmtStats(f.hotCapMillis, 0),
    f.hotVcpus.length ? fmtStats(f.hotVcpus, 2) : "– (no vCPUs)",
    fmtStats(f.hogMillis, 0),
  ]);
}
