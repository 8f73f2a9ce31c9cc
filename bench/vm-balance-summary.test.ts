import { describe, expect, it } from "vitest";
import type { VmPhase } from "../src/demo/vm-phase.ts";
import { type PhaseRun, phaseFigures, sideBySideRows } from "./vm-balance-summary.ts";

const guest = (
  partition: string,
  offered: number,
  served: number,
  p99Ms: number | null,
  meanCapCpuMillis: number,
  meanVcpus: number | null,
) => ({
  partition,
  offeredPps: offered / 20,
  offered,
  served,
  servedRatio: served / offered,
  p99Ms,
  meanVcpus,
  maxVcpus: meanVcpus === null ? null : Math.ceil(meanVcpus),
  meanCapCpuMillis,
});

const phase = (
  name: string,
  followMs: number | null,
  hogCpuMillis: number,
  guests: VmPhase["guests"],
): VmPhase => ({
  name,
  fromMs: 0,
  toMs: 20_000,
  followMs,
  hogCpuMillis,
  guests,
  directiveToOnline: [],
});

describe("vm-balance summary", () => {
  // three repetitions of "p1 hot" on guests
  const reps: PhaseRun[][] = [
    [
      {
        hot: "p1",
        phase: phase("p1 hot", 9000, 800, [
          guest("p1", 8000, 7600, 300, 1200, 1.5),
          guest("p2", 1000, 1000, 40, 500, 1),
        ]),
      },
    ],
    [
      {
        hot: "p1",
        phase: phase("p1 hot", null, 700, [
          guest("p1", 8000, 8000, 250, 1100, 1.25),
          guest("p2", 1000, 900, null, 450, 1),
        ]),
      },
    ],
    [
      {
        hot: "p1",
        phase: phase("p1 hot", 3000, 900, [
          guest("p1", 8000, 6400, 500, 1300, 1.75),
          guest("p2", 1000, 950, 60, 400, 1),
        ]),
      },
    ],
  ];

  it("collects each figure over the repetitions, the hot partition apart from the other", () => {
    const [f] = phaseFigures("vm", reps);
    expect(f?.hotServed).toEqual([0.95, 1, 0.8]);
    expect(f?.otherServed).toEqual([1, 0.9, 0.95]);
    // the second repetition did not get there: NaN, so the median is of the two that did
    expect(f?.followMs).toEqual([9000, Number.NaN, 3000]);
    expect(f?.otherP99Ms).toEqual([40, Number.NaN, 60]);
    expect(f?.hotVcpus).toEqual([1.5, 1.25, 1.75]);
    expect(f?.hogMillis).toEqual([800, 700, 900]);
  });

  it("prints median [min–max] per kind and phase; cgroups have no vCPUs", () => {
    const cg = reps.map((rep) =>
      rep.map((r) => ({
        ...r,
        phase: { ...r.phase, guests: r.phase.guests.map((g) => ({ ...g, meanVcpus: null })) },
      })),
    );
    const rows = sideBySideRows([...phaseFigures("cgroup", cg), ...phaseFigures("vm", reps)]);
    // hot served 95, 100, 80 → median 95.0 [80.0–100.0]; follow (9000 + 3000) ÷ 2 = 6000, 2 of 3
    expect(rows[1]).toEqual([
      "QEMU guests (TCG)",
      "p1 hot",
      "95.0 [80.0–100.0]",
      "95.0 [90.0–100.0]",
      "6000 [3000–9000]",
      "2 of 3",
      "300.0 [250.0–500.0]",
      "50.0 [40.0–60.0]",
      "1200 [1100–1300]",
      "1.50 [1.25–1.75]",
      "800 [700–900]",
    ]);
    expect(rows[0]?.[0]).toBe("cgroups (netns + veth)");
    expect(rows[0]?.[9]).toBe("– (no vCPUs)");
  });
});
