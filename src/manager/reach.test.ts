import { describe, expect, it } from "vitest";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { PartitionWiring } from "./manager-options.ts";
import { type CapacityChange, ReachableKnobs, reachableCapacity } from "./reach.ts";

describe("reachableCapacity", () => {
  it("is at most 1000m per CPU of the union the partitions can reach", () => {
    // three servers pinned to CPU 1 of two, 1,700m configured: 1,000m
    expect(reachableCapacity(1700, [[1], [1], [1]])).toEqual({
      capacityCpuMillis: 1000,
      cpus: [1],
    });
    // one on CPU 0, one on CPU 1: both CPUs, the configured 1,700m stands
    expect(reachableCapacity(1700, [[0], [1]])).toEqual({ capacityCpuMillis: 1700, cpus: [0, 1] });
    // one partition's CPUs unknown: the configured capacity
    expect(reachableCapacity(1700, [[1], null])).toEqual({ capacityCpuMillis: 1700, cpus: null });
    expect(reachableCapacity(1700, [])).toEqual({ capacityCpuMillis: 1700, cpus: null });
  });
});

describe("ReachableKnobs", () => {
  const wiring = (cpus: () => number[] | null, id = "p"): PartitionWiring =>
    ({ spec: { id }, reachableCpus: cpus }) as unknown as PartitionWiring;

  it("reads every refreshCycles cycles, reports each change once, and returns the configured knobs object when nothing is held back", () => {
    const knobs = defaultPolicyKnobs(1700);
    const changes: CapacityChange[] = [];
    let pinned = [1];
    let reads = 0;
    const r = new ReachableKnobs(knobs, 3, (c) => changes.push(c));
    const ws = [
      wiring(() => {
        reads++;
        return pinned;
      }),
    ];
    expect(r.current(() => ws).capacityCpuMillis).toBe(1000);
    expect(r.current(() => ws).capacityCpuMillis).toBe(1000);
    expect(r.current(() => ws).capacityCpuMillis).toBe(1000);
    expect(reads).toBe(1);
    pinned = [0, 1];
    expect(r.current(() => ws)).toBe(knobs);
    expect(reads).toBe(2);
    expect(changes).toEqual([
      { configuredCpuMillis: 1700, fromCpuMillis: 1700, toCpuMillis: 1000, cpus: [1], unknown: [] },
      {
        configuredCpuMillis: 1700,
        fromCpuMillis: 1000,
        toCpuMillis: 1700,
        cpus: [0, 1],
        unknown: [],
      },
    ]);
  });

  it("reports what the first sweep found even when the configured capacity stands, then only changes", () => {
    // the goals-real run at 10:37 on 2 December: a partition's cgroup also held a process on
    // both CPUs, so the configured 1,700m stood — now said once at start, not silent
    const changes: CapacityChange[] = [];
    const r = new ReachableKnobs(defaultPolicyKnobs(1700), 1, (c) => changes.push(c));
    const ws = [wiring(() => [1], "a"), wiring(() => [0, 1], "b")];
    for (let c = 0; c < 3; c++) expect(r.current(() => ws).capacityCpuMillis).toBe(1700);
    expect(changes).toEqual([
      {
        configuredCpuMillis: 1700,
        fromCpuMillis: 1700,
        toCpuMillis: 1700,
        cpus: [0, 1],
        unknown: [],
      },
    ]);
  });

  it("names the partitions whose CPUs cannot be read (null or a throw), once, and again when that changes", () => {
    const changes: CapacityChange[] = [];
    const r = new ReachableKnobs(defaultPolicyKnobs(1700), 1, (c) => changes.push(c));
    let bRead: () => number[] | null = () => null;
    const ws = [
      wiring(() => [1], "a"),
      wiring(() => bRead(), "b"),
      wiring(() => {
        throw new Error("EACCES");
      }, "c"),
    ];
    expect(r.current(() => ws).capacityCpuMillis).toBe(1700);
    expect(r.current(() => ws).capacityCpuMillis).toBe(1700);
    bRead = () => [1];
    expect(r.current(() => ws).capacityCpuMillis).toBe(1700);
    expect(changes.map((c) => [c.toCpuMillis, c.cpus, c.unknown])).toEqual([
      [1700, null, ["b", "c"]],
      [1700, null, ["c"]],
    ]);
  });

  it("leaves the capacity alone when a wiring cannot read its CPUs (no reader, or it throws)", () => {
    const knobs = defaultPolicyKnobs(1700);
    const r = new ReachableKnobs(knobs, 1);
    expect(r.current(() => [wiring(() => [1]), {} as PartitionWiring])).toBe(knobs);
    expect(
      r.current(() => [
        wiring(() => {
          throw new Error("EACCES");
        }),
      ]),
    ).toBe(knobs);
  });

  it("reads every partition on the first cycle, then spreads each sweep over refreshCycles cycles and applies it when complete", () => {
    const knobs = defaultPolicyKnobs(1700);
    let pinned = [0, 1];
    const readsPerCycle: number[] = [];
    let reads = 0;
    const ws = Array.from({ length: 10 }, () =>
      wiring(() => {
        reads++;
        return pinned;
      }),
    );
    const r = new ReachableKnobs(knobs, 5);
    const capacities: number[] = [];
    for (let c = 0; c < 11; c++) {
      if (c === 1) pinned = [1];
      reads = 0;
      capacities.push(r.current(() => ws).capacityCpuMillis);
      readsPerCycle.push(reads);
    }
    // all 10 at start; the sweep from cycle 5 reads ceil(10 / 5) = 2 a cycle, done on cycle 9;
    // the next starts on cycle 10
    expect(readsPerCycle).toEqual([10, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2]);
    expect(capacities).toEqual([1700, 1700, 1700, 1700, 1700, 1700, 1700, 1700, 1700, 1000, 1000]);
  });
});
