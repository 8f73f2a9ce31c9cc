// Desired -> Applied in the manager (partition-slot.ts observeAllocation, Manager.allocations):
// the cycle submits directives and reads what each backend reports in force, never waiting
// for it. A recording backend with an apply delay stands for a backend in front of an API.
import { describe, expect, it } from "vitest";
import { RecordingBackend } from "../actuators/recording.ts";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes } from "../core/errors.ts";
import type { Directive } from "../core/model.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { Policy } from "../policy/types.ts";
import { Manager } from "./manager.ts";
import type { PartitionWiring } from "./manager-options.ts";

const INF = Number.POSITIVE_INFINITY;
const FRESH = {
  capCpuMillis: INF,
  weight: 100,
  idle: false,
  burstCpuMillis: 0,
  capPeriodUs: 100_000,
};

/** A policy that caps each partition at what `caps` says now (weight 200), so values are exact. */
function fixedPolicy(caps: Record<string, number>): Policy {
  return {
    name: "fixed-test",
    initialState: () => ({ partitions: {} }),
    step(input, state) {
      const directives: Directive[] = input.specs.map((s) =>
        cappedDirective(s.id, caps[s.id] ?? INF, 200),
      );
      const decisions = directives.map((d) => ({
        partition: d.partition,
        demandCpuMillis: d.cpuMillis,
        previousCpuMillis: d.cpuMillis,
        cpuMillis: d.cpuMillis,
        velocityPacketsPerCpuSec: null,
        performanceIndex: null,
        why: "fixed",
      }));
      return { directives, decisions, state };
    },
  };
}

function setup(delayMs: number) {
  const clock = { t: 10_000 };
  const now = () => clock.t;
  // "slow": every write takes effect delayMs after it was submitted; "fast": at once
  const slow = new RecordingBackend({ now, applyDelayMs: delayMs });
  const fast = new RecordingBackend({ now });
  slow.create("weir/slow");
  fast.create("weir/fast");
  const spec = (id: string) => ({
    id,
    minCpuMillis: 100,
    maxCpuMillis: 1500,
    weight: 100,
    importance: 3 as const,
    kind: "network" as const,
  });
  const caps: Record<string, number> = { slow: 300, fast: 400 };
  const wiring = (id: string, backend: RecordingBackend): PartitionWiring => ({
    spec: spec(id),
    source: "host", // no sensor: the fixed policy needs no throughput
    openActuator: () => backend.open({ partition: id, cgroup: `weir/${id}` }),
  });
  const m = new Manager({
    now,
    intervalMs: 100,
    policy: fixedPolicy(caps),
    knobs: defaultPolicyKnobs(2000),
    partitions: [wiring("slow", slow), wiring("fast", fast)],
    throughput: () => {
      throw new Error("no sensor, no throughput");
    },
  });
  return { clock, slow, fast, caps, m };
}

describe("Manager: Desired -> Applied", () => {
  it("a backend that applies 250 ms later: the cycle does not wait; pending, then applied", () => {
    const { clock, slow, fast, m } = setup(250);
    const r1 = m.runCycle();
    // the cycle returned with the slow backend's writes still queued, the clock unmoved
    expect(clock.t).toBe(10_000);
    expect(slow.pendingWrites()).toBe(2);
    expect(r1.partitions.map((p) => [p.id, p.status, p.written])).toEqual([
      ["slow", "ok", ["cpu.max", "cpu.weight"]],
      ["fast", "ok", ["cpu.max", "cpu.weight"]],
    ]);
    const want = (cap: number) => ({
      capCpuMillis: cap,
      weight: 200,
      idle: false,
      burstCpuMillis: 0,
      capPeriodUs: 100_000,
    });
    expect(m.allocations()).toEqual({
      slow: { desired: want(300), applied: FRESH, inForce: false, differsSinceMs: 10_000 },
      // the other partition's backend applied at once: not held up by the slow one
      fast: { desired: want(400), applied: want(400), inForce: true, differsSinceMs: null },
    });
    // the same directive while pending: nothing submitted again, still pending since 10,000
    for (const t of [10_100, 10_200]) {
      clock.t = t;
      expect(m.runCycle().partitions.map((p) => p.written)).toEqual([[], []]);
      expect(m.allocations().slow).toEqual({
        desired: want(300),
        applied: FRESH,
        inForce: false,
        differsSinceMs: 10_000,
      });
    }
    clock.t = 10_300; // past 10,250: in force
    m.runCycle();
    expect(m.allocations().slow).toEqual({
      desired: want(300),
      applied: want(300),
      inForce: true,
      differsSinceMs: null,
    });
    // each value was written once: never rewritten while pending or after
    expect(slow.writes().map((w) => [w.atMs, w.file, w.value, w.ok])).toEqual([
      [10_250, "cpu.max", "30000 100000", true],
      [10_250, "cpu.weight", "200", true],
    ]);
    expect(fast.writes().map((w) => [w.atMs, w.file, w.value])).toEqual([
      [10_000, "cpu.max", "40000 100000"],
      [10_000, "cpu.weight", "200"],
    ]);
  });

  it("a change while one is pending is submitted at once; differsSince stays the first cycle", () => {
    const { clock, slow, caps, m } = setup(250);
    m.runCycle();
    clock.t = 10_100;
    caps.slow = 500;
    expect(m.runCycle().partitions[0]!.written).toEqual(["cpu.max"]);
    expect(m.allocations().slow).toMatchObject({
      desired: { capCpuMillis: 500 },
      applied: { capCpuMillis: INF },
      differsSinceMs: 10_000,
    });
    clock.t = 10_300; // the first write is in, the second (due 10,350) not yet
    m.runCycle();
    expect(m.allocations().slow).toMatchObject({
      applied: { capCpuMillis: 300 },
      inForce: false,
      differsSinceMs: 10_000,
    });
    clock.t = 10_400;
    m.runCycle();
    expect(m.allocations().slow).toMatchObject({
      applied: { capCpuMillis: 500, weight: 200 },
      inForce: true,
      differsSinceMs: null,
    });
    expect(slow.writes().map((w) => [w.atMs, w.value])).toEqual([
      [10_250, "30000 100000"],
      [10_250, "200"],
      [10_350, "50000 100000"],
    ]);
  });

  it("a write refused after submission marks only that partition, and is submitted again", () => {
    const { clock, slow, m } = setup(100);
    m.runCycle();
    slow.setFault("weir/slow", "busy"); // the kernel will refuse the queued writes
    clock.t = 10_100;
    const r = m.runCycle();
    const [s, f] = r.partitions;
    expect(s).toMatchObject({ id: "slow", status: "error", written: ["cpu.max", "cpu.weight"] });
    expect(s!.error).toMatchObject({ code: ErrorCodes.APPLY_FAILED, retryable: true });
    expect(f).toMatchObject({ id: "fast", status: "ok", written: [] });
    expect(m.allocations().fast).toMatchObject({ inForce: true });
    expect(m.allocations().slow).toMatchObject({ applied: FRESH, differsSinceMs: 10_000 });
    slow.setFault("weir/slow", null);
    clock.t = 10_200; // the resubmitted writes (due 10,200) are in
    m.runCycle();
    expect(m.allocations().slow).toMatchObject({ inForce: true, differsSinceMs: null });
    expect(slow.writes().map((w) => [w.atMs, w.file, w.ok])).toEqual([
      [10_100, "cpu.max", false],
      [10_100, "cpu.weight", false],
      [10_200, "cpu.max", true],
      [10_200, "cpu.weight", true],
    ]);
  });

  it("a target removed while its writes are pending makes that partition gone, the other runs on", () => {
    const { clock, slow, fast, caps, m } = setup(100);
    m.runCycle();
    slow.remove("weir/slow");
    clock.t = 10_100;
    caps.fast = 600;
    const r = m.runCycle();
    expect(r.partitions[0]).toMatchObject({ id: "slow", status: "gone" });
    expect(r.partitions[0]!.error?.code).toBe(ErrorCodes.TARGET_GONE);
    expect(m.allocations()).toMatchObject({ slow: null, fast: { inForce: true } });
    expect(fast.view("weir/fast")?.quotaUsec).toBe(60_000);
  });
});
