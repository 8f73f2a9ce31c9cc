import { describe, expect, it } from "vitest";
import { RecordingBackend } from "../actuators/recording.ts";
import type { AllocationSnapshot, CpusetActuator, PartitionActuator } from "../actuators/types.ts";
import { formatCpuList, parseCpuMax } from "../cgroup/values.ts";
import { BoundsError } from "../core/bounds.ts";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type {
  ApplyResult,
  CounterSample,
  Directive,
  PartitionSpec,
  Throughput,
} from "../core/model.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { Policy, PolicyKnobs } from "../policy/types.ts";
import { weirPolicy } from "../policy/weir.ts";
import { parseCpuList } from "../sensors/parse.ts";
import { throughputFromSamples } from "../sensors/throughput.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { estimateRecordBytes } from "./history.ts";
import { Manager } from "./manager.ts";
import type { PartitionWiring, ThroughputFn } from "./manager-options.ts";

// A policy that grants min + offered/10 (capped at max) so wiring can be checked on exact numbers.
const linearPolicy: Policy = {
  name: "linear-test",
  initialState: () => ({ partitions: {} }),
  step(input, state) {
    const directives: Directive[] = [];
    const decisions = [];
    for (const s of input.specs) {
      const tp = input.throughput.get(s.id);
      const prev = state.partitions[s.id]?.cpuMillis ?? s.minCpuMillis;
      // held (stale): entitled to its guarantee at most, as the real policy holds it
      const max = s.held ? s.minCpuMillis : s.maxCpuMillis;
      const cpuMillis = tp
        ? Math.min(max, s.minCpuMillis + Math.round(tp.offeredPacketsPerSec / 10))
        : Math.min(prev, max);
      directives.push(cappedDirective(s.id, cpuMillis, 100));
      decisions.push({
        partition: s.id,
        demandCpuMillis: cpuMillis,
        previousCpuMillis: prev,
        cpuMillis,
        velocityPacketsPerCpuSec: null,
        performanceIndex: null,
        why: tp ? "traffic" : "no data: kept",
      });
    }
    const partitions = Object.fromEntries(
      directives.map((d) => [
        d.partition,
        { cpuMillis: d.cpuMillis, demandCpuMillis: d.cpuMillis, velocityPacketsPerCpuSec: null },
      ]),
    );
    return { directives, decisions, state: { partitions } };
  },
};

const knobs: PolicyKnobs = defaultPolicyKnobs(2000);

// Rates from two samples, as the sensors' throughputFromSamples does (simplified for the test).
const throughput: ThroughputFn = (partition, prev, next, source) => {
  const dtS = (next.atMs - prev.atMs) / 1000;
  return {
    partition,
    windowMs: next.atMs - prev.atMs,
    source,
    offeredPacketsPerSec: (next.offeredPackets - prev.offeredPackets) / dtS,
    servedPacketsPerSec: (next.servedPackets - prev.servedPackets) / dtS,
    droppedPacketsPerSec: 0,
    cpuCores: (next.cpuUsageNs - prev.cpuUsageNs) / 1e9 / dtS,
    throttledFraction: 0,
    rawVelocityPacketsPerCpuSec: null,
  } satisfies Throughput;
};

class Clock {
  t = 1_000_000;
  now = () => this.t;
}

function counterSensor(clock: Clock, ppsRef: { pps: number; fail?: WeirError }): PartitionSensor {
  let offered = 0;
  let last = clock.t;
  return {
    read(nowMs): CounterSample {
      if (ppsRef.fail) throw ppsRef.fail;
      offered += (ppsRef.pps * (nowMs - last)) / 1000;
      last = nowMs;
      return {
        atMs: nowMs,
        offeredPackets: offered,
        servedPackets: offered,
        droppedPackets: 0,
        cpuUsageNs: 0,
        nrPeriods: 0,
        nrThrottled: 0,
        throttledNs: 0,
      };
    },
    close() {},
  };
}

function memoryActuator(
  id: string,
  log: Array<[string, number]>,
  opts: { gone?: () => boolean } = {},
): PartitionActuator {
  let current = -1;
  return {
    partition: id,
    snapshot: (): AllocationSnapshot => ({ partition: id, values: { cap: "max" } }),
    apply(d): ApplyResult {
      if (opts.gone?.())
        return {
          partition: id,
          written: [],
          error: new WeirError(ErrorCodes.CGROUP_GONE, `${id} gone`).toInfo(),
        };
      if (d.cpuMillis === current) return { partition: id, written: [] };
      current = d.cpuMillis;
      log.push([id, d.cpuMillis]);
      return { partition: id, written: ["cap"] };
    },
    restore(s) {
      log.push([id, -1]);
      return { partition: id, written: Object.keys(s.values) };
    },
    close() {},
  };
}

const spec = (id: string, extra: Partial<PartitionSpec> = {}): PartitionSpec => ({
  id,
  minCpuMillis: 100,
  maxCpuMillis: 1500,
  weight: 100,
  importance: 3,
  kind: "network",
  ...extra,
});

describe("Manager", () => {
  it("samples, steps, applies and records each cycle", () => {
    const clock = new Clock();
    const a = { pps: 2000 };
    const writes: Array<[string, number]> = [];
    const wiring: PartitionWiring[] = [
      {
        spec: spec("a"),
        source: "host",
        openSensor: () => counterSensor(clock, a),
        openActuator: () => memoryActuator("a", writes),
      },
    ];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      partitions: wiring,
      throughput,
    });
    m.runCycle(); // first sample: no rates yet, policy keeps min
    clock.t += 100;
    const r = m.runCycle();
    // offered 2000 pps -> 100m min + 2000/10 = 300m
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(300);
    expect(r.partitions[0]!.throughput?.offeredPacketsPerSec).toBeCloseTo(2000);
    expect(r.cycle).toBe(2);
    expect(writes).toEqual([
      ["a", 100],
      ["a", 300],
    ]);
    expect(m.ready()).toBe(true);
  });

  it("records an unchanged directive as the previous record's object, a changed one as its own", () => {
    const clock = new Clock();
    const a = { pps: 2000 };
    const wiring: PartitionWiring[] = [
      {
        spec: spec("a"),
        source: "host",
        openSensor: () => counterSensor(clock, a),
        openActuator: () => memoryActuator("a", []),
      },
    ];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      partitions: wiring,
      throughput,
    });
    const cycle = () => {
      clock.t += 100;
      return m.runCycle().partitions[0]!.directive;
    };
    m.runCycle();
    const first = cycle(); // 100m + 2000/10 = 300m
    const same = cycle(); // the same traffic: the policy makes a new, equal directive
    expect(same).toBe(first);
    a.pps = 4000;
    const moved = cycle(); // 100m + 4000/10 = 500m
    expect(moved).not.toBe(first);
    expect(moved?.cpuMillis).toBe(500);
    expect(first?.cpuMillis).toBe(300);
    // what a reader sees is the same as before: each record's directive is that cycle's
    expect(m.recentRecords().map((r) => r.partitions[0]!.directive?.cpuMillis)).toEqual([
      100, 300, 300, 500,
    ]);
  });

  it("keeps cycle records within historyMaxBytes (estimated), the newest last", () => {
    const clock = new Clock();
    const wiring: PartitionWiring[] = ["a", "b"].map((id) => ({
      spec: spec(id),
      source: "host" as const,
      openSensor: () => counterSensor(clock, { pps: 1000 }),
      openActuator: () => memoryActuator(id, []),
    }));
    const opts = { now: clock.now, intervalMs: 100, policy: linearPolicy, knobs, throughput };
    const probe = new Manager({ ...opts, partitions: wiring });
    probe.runCycle();
    clock.t += 100;
    const oneRecord = estimateRecordBytes(probe.runCycle());
    const m = new Manager({ ...opts, partitions: wiring, historyMaxBytes: 5 * oneRecord });
    for (let i = 0; i < 20; i++) {
      clock.t += 100;
      m.runCycle();
    }
    const kept = m.recentRecords();
    expect(kept.length).toBeGreaterThanOrEqual(4);
    expect(kept.length).toBeLessThanOrEqual(5);
    expect(kept.at(-1)!.cycle).toBe(20);
    expect(kept.reduce((sum, r) => sum + estimateRecordBytes(r), 0)).toBeLessThanOrEqual(
      5 * oneRecord,
    );
  });

  it("isolates a failing partition and marks a vanished one gone, then retries it", () => {
    const clock = new Clock();
    const a = { pps: 1000 };
    const b: { pps: number; fail?: WeirError } = { pps: 1000 };
    let bGone = false;
    let opens = 0;
    const writes: Array<[string, number]> = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      retryGoneMs: 1000,
      partitions: [
        {
          spec: spec("a"),
          source: "host",
          openSensor: () => counterSensor(clock, a),
          openActuator: () => memoryActuator("a", writes),
        },
        {
          spec: spec("b"),
          source: "host",
          openSensor: () => counterSensor(clock, b),
          openActuator: () => {
            opens++;
            if (bGone) throw new WeirError(ErrorCodes.CGROUP_GONE, "b: cgroup gone");
            return memoryActuator("b", writes, { gone: () => bGone });
          },
        },
      ],
    });
    m.runCycle();
    clock.t += 100;
    b.fail = new WeirError(ErrorCodes.COUNTER_MALFORMED, "cpu.stat: garbage", { retryable: true });
    let r = m.runCycle();
    expect(r.partitions[1]!.status).toBe("error");
    expect(r.partitions[1]!.error?.code).toBe("WEIR_COUNTER_MALFORMED");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(200); // a unaffected: 100 + 1000/10
    delete b.fail;
    bGone = true;
    clock.t += 100;
    r = m.runCycle();
    expect(r.partitions[1]!.status).toBe("gone");
    expect(r.partitions[1]!.error?.code).toBe("WEIR_CGROUP_GONE");
    clock.t += 100;
    r = m.runCycle();
    expect(r.partitions[1]!.directive).toBeNull(); // gone: not in the policy
    expect(r.partitions[0]!.status).toBe("ok");
    const opensBefore = opens;
    bGone = false;
    clock.t += 1000; // retry after retryGoneMs
    r = m.runCycle();
    expect(opens).toBe(opensBefore + 1);
    expect(r.partitions[1]!.status).toBe("ok");
  });

  it("does not apply while paused and restores found values on shutdown", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      partitions: [
        {
          spec: spec("a"),
          source: "host",
          openSensor: () => counterSensor(clock, { pps: 500 }),
          openActuator: () => memoryActuator("a", writes),
        },
      ],
    });
    m.setPaused(true);
    m.runCycle();
    clock.t += 100;
    expect(m.runCycle().partitions[0]!.written).toEqual([]);
    expect(writes).toEqual([]);
    m.setPaused(false);
    m.runCycle();
    m.shutdown("restore");
    expect(writes.at(-1)).toEqual(["a", -1]);
  });

  it("gives an agent that has not reported yet staleAfterMs from the partition's first cycle", () => {
    const clock = new Clock();
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      staleAfterMs: 500,
      reports: { latest: () => new Map() },
      partitions: [
        {
          spec: spec("vm", { minCpuMillis: 150, maxCpuMillis: 2000 }),
          source: "agent",
          openActuator: () => memoryActuator("vm", []),
        },
      ],
    });
    // a manager (re)started beside a running agent: not held to its guarantee at once
    expect(m.runCycle().partitions[0]!.status).not.toBe("stale");
    clock.t += 400;
    expect(m.runCycle().partitions[0]!.status).not.toBe("stale");
    // still nothing 600 ms after its first cycle: stale, held to the 150m guarantee
    clock.t += 200;
    const r = m.runCycle();
    expect(r.partitions[0]!.status).toBe("stale");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(150);
  });

  it("holds a stale partition to its guarantee by weight: no cap config did not ask for, its CPU count kept", () => {
    // Before: a stale partition's max was set to its min, so weir capped it there (a silent
    // agent with min 0 was held at the kernel's 10m quota floor, and left so if weir died) and
    // shrank its CPU count to ceil(min). Now its entitlement is its min, as a weight; its cap and
    // CPU count are what config gave it.
    const clock = new Clock();
    const rec = new RecordingBackend();
    for (const id of ["free", "limited"]) rec.create(id);
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: weirPolicy,
      knobs,
      throughput,
      staleAfterMs: 500,
      reports: { latest: () => new Map() },
      partitions: [
        { id: "free", max: 2000 },
        { id: "limited", max: 1500 },
      ].map(({ id, max }) => ({
        spec: spec(id, { minCpuMillis: 100, maxCpuMillis: max }),
        source: "agent" as const,
        openActuator: () => rec.open({ partition: id, cgroup: id }),
      })),
    });
    m.runCycle();
    clock.t += 600;
    const r = m.runCycle();
    const of = (id: string) => r.partitions.find((p) => p.id === id)!;
    for (const id of ["free", "limited"]) {
      expect(of(id).status).toBe("stale");
      expect(of(id).directive?.cpuMillis).toBe(100);
    }
    // capacity 2000m: "free" may use up to all of it, uncapped; "limited" keeps its 1500m cap
    expect(of("free").directive).toMatchObject({
      capCpuMillis: Infinity,
      capReason: null,
      cpuCount: 2,
    });
    expect(rec.files("free")?.["cpu.max"]).toMatch(/^max /);
    expect(of("limited").directive).toMatchObject({
      capCpuMillis: 1500,
      capReason: "max",
      cpuCount: 2,
    });
    expect(of("free").decision?.why).toContain(
      "no throughput for staleAfterMs: held to its guarantee 100m",
    );
    // the same table while it stays stale: its held spec is one object
    const specsBefore = m.specs();
    clock.t += 100;
    expect(m.runCycle().partitions.map((p) => p.status)).toEqual(["stale", "stale"]);
    expect(m.specs()).toEqual(specsBefore);
  });

  it("an agent-fed partition whose refused write goes through later is ok again, its error cleared", () => {
    const clock = new Clock();
    let refuse = true;
    const sample = (atMs: number, n: number): CounterSample => ({
      atMs,
      offeredPackets: n,
      servedPackets: n,
      droppedPackets: 0,
      cpuUsageNs: 0,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
    });
    let reading = { sample: sample(clock.t, 0), receivedAtMs: clock.t };
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      reports: { latest: () => new Map([["vm", reading]]) },
      partitions: [
        {
          spec: spec("vm"),
          source: "agent",
          openActuator: () => ({
            partition: "vm",
            snapshot: () => ({ partition: "vm", values: {} }),
            apply: (): ApplyResult =>
              refuse
                ? {
                    partition: "vm",
                    written: [],
                    error: new WeirError(ErrorCodes.APPLY_FAILED, "EINVAL", {
                      retryable: true,
                    }).toInfo(),
                  }
                : { partition: "vm", written: ["cap"] },
            restore: () => ({ partition: "vm", written: [] }),
            close() {},
          }),
        },
      ],
    });
    const first = m.runCycle().partitions[0]!;
    expect(first.status).toBe("error");
    expect(first.error?.code).toBe(ErrorCodes.APPLY_FAILED);
    refuse = false;
    clock.t += 100;
    reading = { sample: sample(clock.t, 100), receivedAtMs: clock.t };
    const after = m.runCycle().partitions[0]!;
    expect(after.written).toEqual(["cap"]);
    // it used to stay "error" with the refused write's error in every later record
    expect(after.status).toBe("ok");
    expect(after.error).toBeUndefined();
  });

  it("holds a silent agent partition to its guarantee", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    let reading: { sample: CounterSample; receivedAtMs: number } | undefined;
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      staleAfterMs: 500,
      reports: { latest: () => new Map(reading ? [["vm", reading]] : []) },
      partitions: [
        {
          spec: spec("vm", { minCpuMillis: 150 }),
          source: "agent",
          openActuator: () => memoryActuator("vm", writes),
        },
      ],
    });
    const sample = (atMs: number, offered: number): CounterSample => ({
      atMs,
      offeredPackets: offered,
      servedPackets: offered,
      droppedPackets: 0,
      cpuUsageNs: 0,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
    });
    reading = { sample: sample(clock.t, 0), receivedAtMs: clock.t };
    m.runCycle();
    clock.t += 100;
    reading = { sample: sample(clock.t, 300), receivedAtMs: clock.t };
    const r = m.runCycle();
    // 300 packets in 100 ms = 3000 pps -> 150 + 300 = 450m
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(450);
    clock.t += 1000; // silent past staleAfterMs
    const r2 = m.runCycle();
    expect(r2.partitions[0]!.status).toBe("stale");
    expect(r2.partitions[0]!.directive?.cpuMillis).toBe(150);
  });

  it("a window whose CPU the sensor did not read shows the window before's CPU used (carried), then the span's", () => {
    const clock = new Clock();
    // the sensor reads the CPU at 0 and 300 ms (0.2 cores, then 0.1 over the 300 ms since),
    // and carries it (cpuAtMs) at 100 and 200 ms
    const t0 = clock.t;
    const script: Record<number, Partial<CounterSample>> = {
      0: { cpuUsageNs: 0 },
      100: { cpuUsageNs: 20e6 },
      200: { cpuUsageNs: 20e6, cpuAtMs: t0 + 100 },
      300: { cpuUsageNs: 20e6, cpuAtMs: t0 + 100 },
      400: { cpuUsageNs: 50e6 },
    };
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput: throughputFromSamples,
      partitions: [
        {
          spec: spec("web"),
          source: "host",
          openActuator: () => memoryActuator("web", []),
          openSensor: () => ({
            read: (nowMs) => ({ ...zeroSample(nowMs), ...script[nowMs - t0] }),
            close() {},
          }),
        },
      ],
    });
    const seen: Array<[number, number | undefined]> = [];
    for (let i = 0; i <= 4; i++) {
      const tp = m.runCycle().partitions[0]!.throughput;
      if (tp) seen.push([Math.round(tp.cpuCores * 1000), tp.cpuWindowMs]);
      clock.t += 100;
    }
    expect(seen).toEqual([
      [200, undefined],
      [200, 0],
      [200, 0],
      [100, 300],
    ]);
  });

  it("reads an agent-fed partition's host CPU sensor only in the cycles that consume a report of it", () => {
    const clock = new Clock();
    const reads: number[] = [];
    let reading: { sample: CounterSample; receivedAtMs: number } | undefined;
    const sample = (atMs: number, served: number): CounterSample => ({
      ...zeroSample(atMs),
      offeredPackets: served,
      servedPackets: served,
    });
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      reports: { latest: () => new Map(reading ? [["vm", reading]] : []) },
      partitions: [
        {
          spec: spec("vm"),
          source: "agent",
          openActuator: () => memoryActuator("vm", []),
          openSensor: () => ({
            read(nowMs) {
              reads.push(nowMs);
              return sample(nowMs, 0);
            },
            close() {},
          }),
        },
      ],
    });
    const t0 = clock.t;
    m.runCycle(); // no report yet: nothing read
    for (let i = 1; i <= 6; i++) {
      clock.t += 100;
      // a report every third cycle (at 100, 400 ms); the cycles between consume none
      if (i % 3 === 1) reading = { sample: sample(clock.t, i * 100), receivedAtMs: clock.t };
      m.runCycle();
    }
    expect(reads.map((t) => t - t0)).toEqual([100, 400]);
  });

  it("validates runtime bound changes", () => {
    const clock = new Clock();
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      partitions: [
        {
          spec: spec("a"),
          source: "host",
          openSensor: () => counterSensor(clock, { pps: 0 }),
          openActuator: () => memoryActuator("a", []),
        },
      ],
    });
    expect(m.updateBounds("a", { maxCpuMillis: 800 }).maxCpuMillis).toBe(800);
    expect(() => m.updateBounds("a", { maxCpuMillis: 50 })).toThrow(
      /maxCpuMillis: must be >= minCpuMillis \(100m\) \(rule: min-le-max\): got 50/,
    );
    expect(() => m.updateBounds("zz", {})).toThrow(/no partition named "zz"/);
    // the same structured issues the API answers with
    let refused: unknown;
    try {
      m.updateBounds("a", { weight: 0 });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(BoundsError);
    expect((refused as BoundsError).issues).toEqual([
      {
        field: "weight",
        rule: "weight-range",
        message: "must be an integer from 1 to 10000",
        value: 0,
      },
    ]);
  });
});

// A policy that runs linearPolicy but throws while `failing.on` is set (an injected fault).
function faultyPolicy(failing: { on: boolean; steps: number }): Policy {
  return {
    ...linearPolicy,
    step(input, state) {
      failing.steps++;
      if (failing.on) throw new TypeError("injected: cannot read properties of undefined");
      return linearPolicy.step(input, state);
    },
  };
}

describe("Manager: a cycle that throws", () => {
  it("is counted, writes nothing, keeps the policy's state, and stops the loop only after the bound", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    const failing = { on: false, steps: 0 };
    const errors: Array<[string, number]> = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: faultyPolicy(failing),
      knobs,
      throughput,
      maxConsecutiveCycleFailures: 3,
      onCycleError: (err, consecutive) => errors.push([err.code, consecutive]),
      partitions: [
        {
          spec: spec("a"),
          source: "host",
          openSensor: () => counterSensor(clock, { pps: 2000 }),
          openActuator: () => memoryActuator("a", writes),
        },
      ],
    });
    expect(m.guardedCycle()?.cycle).toBe(1); // min: 100m
    clock.t += 100;
    expect(m.guardedCycle()?.partitions[0]?.directive?.cpuMillis).toBe(300); // 100 + 2000/10
    failing.on = true;
    for (let i = 0; i < 2; i++) {
      clock.t += 100;
      expect(m.guardedCycle()).toBeNull();
    }
    // two failed cycles: nothing written, no record, the values last written (300m) stay
    expect(writes).toEqual([
      ["a", 100],
      ["a", 300],
    ]);
    expect(m.recentRecords().map((r) => r.cycle)).toEqual([1, 2]);
    expect(errors).toEqual([
      ["WEIR_CYCLE_FAILED", 1],
      ["WEIR_CYCLE_FAILED", 2],
    ]);
    expect(m.cycleFailures()).toEqual({ total: 2, consecutive: 2 });
    // one good cycle resets the run; the policy resumes from its last good state
    failing.on = false;
    clock.t += 100;
    const r = m.guardedCycle();
    expect(r?.cycle).toBe(3);
    expect(r?.partitions[0]?.decision?.previousCpuMillis).toBe(300);
    expect(m.cycleFailures()).toEqual({ total: 2, consecutive: 0 });
    // three in a row reach the bound: CYCLE_CRASH_LOOP, naming the bound and the last cause
    failing.on = true;
    clock.t += 100;
    expect(m.guardedCycle()).toBeNull();
    clock.t += 100;
    expect(m.guardedCycle()).toBeNull();
    clock.t += 100;
    let stopped: unknown;
    try {
      m.guardedCycle();
    } catch (err) {
      stopped = err;
    }
    expect(stopped).toBeInstanceOf(WeirError);
    expect((stopped as WeirError).code).toBe("WEIR_CYCLE_CRASH_LOOP");
    expect((stopped as WeirError).message).toBe(
      "3 cycles in a row failed (maxConsecutiveCycleFailures: 3); last: WEIR_CYCLE_FAILED: injected: cannot read properties of undefined",
    );
    expect(m.cycleFailures()).toEqual({ total: 5, consecutive: 3 });
    expect(writes).toHaveLength(2); // still only the two writes of the good cycles
    // shutdown still restores what weir found
    m.shutdown("restore");
    expect(writes.at(-1)).toEqual(["a", -1]);
  });

  it("start() survives failed cycles and rejects with CYCLE_CRASH_LOOP at the bound", async () => {
    const failing = { on: true, steps: 0 };
    const m = new Manager({
      now: () => performance.now(),
      intervalMs: 1,
      policy: faultyPolicy(failing),
      knobs,
      throughput,
      maxConsecutiveCycleFailures: 4,
      partitions: [
        { spec: spec("a"), source: "host", openActuator: () => memoryActuator("a", []) },
      ],
    });
    const ac = new AbortController();
    await expect(m.start(ac.signal)).rejects.toMatchObject({ code: "WEIR_CYCLE_CRASH_LOOP" });
    expect(failing.steps).toBe(4); // the loop ran 4 cycles, not 1
  });

  it("reports that throw fail the cycle before any write", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    let broken = false;
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      reports: {
        latest: () => {
          if (broken) throw new RangeError("injected: offset out of range");
          return new Map();
        },
      },
      partitions: [
        { spec: spec("a"), source: "host", openActuator: () => memoryActuator("a", writes) },
      ],
    });
    m.guardedCycle();
    m.updateBounds("a", { minCpuMillis: 200 });
    broken = true;
    expect(m.guardedCycle()).toBeNull();
    expect(writes).toEqual([["a", 100]]); // the new 200m guarantee was not written
    expect(m.cycleFailures()).toEqual({ total: 1, consecutive: 1 });
  });

  it("a throwing change hook does not stop the other partitions' writes; the cycle counts as failed", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      onChange: (dec) => {
        if (dec.partition === "a") throw new Error("injected: log stream closed");
      },
      partitions: ["a", "b"].map((id) => ({
        spec: spec(id),
        source: "host" as const,
        openActuator: () => memoryActuator(id, writes),
      })),
    });
    expect(m.guardedCycle()).toBeNull();
    expect(writes).toEqual([
      ["a", 100],
      ["b", 100],
    ]);
    expect(m.recentRecords()).toHaveLength(1); // recorded, then counted
    expect(m.cycleFailures()).toEqual({ total: 1, consecutive: 1 });
    expect(() => m.runCycle()).not.toThrow(); // no change this time, so no hook call
  });
});

describe("Manager: a partition whose sensor fails", () => {
  it("a pid that exits: the cgroup is kept (restored at shutdown), the partition decays to its guarantee, the pid is retried", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    const web: { pps: number; fail?: WeirError } = { pps: 3000 };
    let pidAlive = true;
    let sensorOpens = 0;
    const statuses: string[] = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      retryGoneMs: 1000,
      onPartitionError: (_p, err, status, phase) => statuses.push(`${phase}:${err.code}:${status}`),
      partitions: [
        {
          spec: spec("web", { minCpuMillis: 150 }),
          source: "host",
          openSensor: () => {
            sensorOpens++;
            if (!pidAlive)
              throw new WeirError(ErrorCodes.PROCESS_GONE, "process 4242 is gone (comm: ENOENT)");
            return counterSensor(clock, web);
          },
          openActuator: () => memoryActuator("web", writes),
        },
      ],
    });
    m.runCycle();
    clock.t += 100;
    // 3000 pps -> 150 + 300 = 450m
    expect(m.runCycle().partitions[0]!.directive?.cpuMillis).toBe(450);
    pidAlive = false;
    web.fail = new WeirError(ErrorCodes.PROCESS_GONE, "process 4242 is gone (comm: ESRCH)");
    clock.t += 100;
    let r = m.runCycle();
    // stale at once, held to its guarantee, never `gone`
    expect(r.partitions[0]!.status).toBe("stale");
    expect(r.partitions[0]!.error?.code).toBe("WEIR_PROCESS_GONE");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(150);
    expect(statuses).toEqual(["sample:WEIR_PROCESS_GONE:stale"]);
    // no reopen before retryGoneMs; one after it (the pid is still gone: still stale)
    clock.t += 500;
    m.runCycle();
    expect(sensorOpens).toBe(1);
    clock.t += 500;
    r = m.runCycle();
    expect(sensorOpens).toBe(2);
    expect(r.partitions[0]!.status).toBe("stale");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(150);
    // the pid appears again: managed again from the next retry
    pidAlive = true;
    delete web.fail;
    clock.t += 1000;
    r = m.runCycle();
    expect(sensorOpens).toBe(3);
    expect(r.partitions[0]!.status).toBe("ok");
    expect(r.partitions[0]!.error).toBeUndefined();
    expect(writes).toEqual([
      ["web", 150],
      ["web", 450],
      ["web", 150],
    ]);
    // its actuator was never closed: shutdown restores the cgroup
    expect(m.shutdown("restore")).toEqual([{ partition: "web", written: ["cap"] }]);
    expect(writes.at(-1)).toEqual(["web", -1]);
  });

  it("a pid already gone at start keeps the cgroup open and the partition at its guarantee", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      partitions: [
        {
          spec: spec("web", { minCpuMillis: 150 }),
          source: "host",
          openSensor: () => {
            throw new WeirError(ErrorCodes.PROCESS_GONE, "process 4242 is gone (comm: ENOENT)");
          },
          openActuator: () => memoryActuator("web", writes),
        },
      ],
    });
    const r = m.runCycle();
    expect(r.partitions[0]!.status).toBe("stale");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(150);
    expect(m.shutdown("restore")).toHaveLength(1);
  });

  it("host counters unreadable past staleAfterMs: decays to its guarantee like a silent agent", () => {
    const clock = new Clock();
    const writes: Array<[string, number]> = [];
    const web: { pps: number; fail?: WeirError } = { pps: 3000 };
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      staleAfterMs: 500,
      partitions: [
        {
          spec: spec("web", { minCpuMillis: 150, importance: 3 }),
          source: "host",
          openSensor: () => counterSensor(clock, web),
          openActuator: () => memoryActuator("web", writes),
        },
      ],
    });
    m.runCycle();
    clock.t += 100;
    expect(m.runCycle().partitions[0]!.directive?.cpuMillis).toBe(450); // last good sample at t+100
    web.fail = new WeirError(ErrorCodes.COUNTER_UNREADABLE, "cpu.stat: EIO", { retryable: true });
    // within staleAfterMs: an error, the allocation held (450m)
    clock.t += 500;
    let r = m.runCycle();
    expect(r.partitions[0]!.status).toBe("error");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(450);
    // 600 ms > 500 ms since the last sample: stale, held to the 150m guarantee
    clock.t += 100;
    r = m.runCycle();
    expect(r.partitions[0]!.status).toBe("stale");
    expect(r.partitions[0]!.error?.code).toBe("WEIR_COUNTER_UNREADABLE");
    expect(r.partitions[0]!.directive?.cpuMillis).toBe(150);
    // readable again: ok, and managed at once (the rate since the last good sample: 3000 pps)
    delete web.fail;
    clock.t += 100;
    r = m.runCycle();
    expect(r.partitions[0]!.status).toBe("ok");
    expect(r.partitions[0]!.error).toBeUndefined();
    expect(writes).toEqual([
      ["web", 150],
      ["web", 450],
      ["web", 150],
      ["web", 450],
    ]);
  });

  it("a `both` partition is held when its host counters are silent, whatever its agent says", () => {
    const clock = new Clock();
    const host: { pps: number; fail?: WeirError } = { pps: 1000 };
    let reading: AgentReadingForTest | undefined;
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      staleAfterMs: 500,
      reports: { latest: () => new Map(reading ? [["vm", reading]] : []) },
      partitions: [
        {
          spec: spec("vm", { minCpuMillis: 150 }),
          source: "both",
          openSensor: () => counterSensor(clock, host),
          openActuator: () => memoryActuator("vm", []),
        },
      ],
    });
    m.runCycle();
    clock.t += 100;
    // the host reads, the agent has not reported: managed on the host's counters
    expect(m.runCycle().partitions[0]!.status).toBe("ok");
    host.fail = new WeirError(ErrorCodes.COUNTER_UNREADABLE, "cpu.stat: EIO", { retryable: true });
    clock.t += 1000;
    // host silent 1000 ms: stale
    expect(m.runCycle().partitions[0]!.status).toBe("stale");
    reading = { sample: zeroSample(clock.t), receivedAtMs: clock.t };
    clock.t += 100;
    // the agent spoke 100 ms ago: still stale, since only the host's counters are believed
    const r = m.runCycle().partitions[0]!;
    expect(r.status).toBe("stale");
    expect(r.directive?.cpuMillis).toBe(150);
    // the host reads again: ok
    delete host.fail;
    clock.t += 100;
    expect(m.runCycle().partitions[0]!.status).toBe("ok");
  });

  it("a `both` partition whose host counters are lost is not managed on its agent's numbers", () => {
    // A tenant that ends the process its `pid` names loses its host counters; its agent, holding
    // the key, then reports 20,000 packets/s offered. Before, the agent's numbers were used
    // unchecked once the host's were gone (min + 2,000m here); the partition is held instead.
    const clock = new Clock();
    const host: { pps: number; fail?: WeirError } = { pps: 1000 };
    let pidAlive = true;
    let agentPackets = 0;
    let reading: AgentReadingForTest | undefined;
    const report = () => {
      agentPackets += 20_000 * 0.1;
      reading = {
        sample: {
          ...zeroSample(clock.t),
          offeredPackets: agentPackets,
          servedPackets: agentPackets,
        },
        receivedAtMs: clock.t,
      };
    };
    const statuses: string[] = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      throughput,
      staleAfterMs: 500,
      retryGoneMs: 60_000,
      onPartitionError: (_p, err, status, phase) => statuses.push(`${phase}:${err.code}:${status}`),
      reports: { latest: () => new Map(reading ? [["gamer", reading]] : []) },
      partitions: [
        {
          spec: spec("gamer", { minCpuMillis: 150, maxCpuMillis: 2000 }),
          source: "both",
          openSensor: () => {
            if (!pidAlive)
              throw new WeirError(ErrorCodes.PROCESS_GONE, "process 4242 is gone (comm: ENOENT)");
            return counterSensor(clock, host);
          },
          openActuator: () => memoryActuator("gamer", []),
        },
      ],
    });
    report();
    m.runCycle();
    clock.t += 100;
    report();
    // host 1000 pps wins over the agent's 20,000: 150 + 100
    let r = m.runCycle().partitions[0]!;
    expect(r.status).toBe("ok");
    expect(r.directive?.cpuMillis).toBe(250);
    pidAlive = false;
    host.fail = new WeirError(ErrorCodes.PROCESS_GONE, "process 4242 is gone (comm: ESRCH)");
    for (let k = 0; k < 20; k++) {
      clock.t += 100;
      report();
      r = m.runCycle().partitions[0]!;
      expect(r.status).toBe("stale");
      expect(r.directive?.cpuMillis).toBe(150);
      expect(r.throughput?.source).not.toBe("agent");
    }
    expect(statuses).toEqual(["sample:WEIR_PROCESS_GONE:stale"]);
  });
});

type AgentReadingForTest = { sample: CounterSample; receivedAtMs: number };
const zeroSample = (atMs: number): CounterSample => ({
  atMs,
  offeredPackets: 0,
  servedPackets: 0,
  droppedPackets: 0,
  cpuUsageNs: 0,
  nrPeriods: 0,
  nrThrottled: 0,
  throttledNs: 0,
});

describe("Manager: caps the kernel enforces", () => {
  it("count the 1,000 us quota floor: capped partitions' caps sum to at most the capacity", () => {
    // Capacity 100m, three capped partitions on cgroups with the default 100000 us period
    // (floor 1000 us = 10m): web (min 80m) and two idle ones (min 0m). Without the floor in
    // the accounting weir granted 86m + 6m + 6m and the kernel enforced 86 + 10 + 10 = 106m.
    const rec = new RecordingBackend();
    const ids = ["web", "a", "b"];
    for (const id of ids) rec.create(id);
    const m = new Manager({
      now: () => 1_000_000,
      intervalMs: 100,
      policy: weirPolicy,
      knobs: defaultPolicyKnobs(100),
      throughput,
      partitions: ids.map((id) => ({
        spec: spec(id, { minCpuMillis: id === "web" ? 80 : 0, maxCpuMillis: 100, capped: true }),
        source: "host" as const,
        openActuator: () => rec.open({ partition: id, cgroup: id }),
      })),
    });
    const r = m.runCycle();
    // the idle ones are guaranteed the floor (10m), web gets the rest of the capacity: 80m
    expect(r.partitions.map((p) => [p.id, p.directive?.capCpuMillis])).toEqual([
      ["web", 80],
      ["a", 10],
      ["b", 10],
    ]);
    // what the kernel holds: 8000 + 1000 + 1000 us per 100000 us = 80m + 10m + 10m = 100m
    const enforcedCpuMillis = ids.map((id) => {
      const max = parseCpuMax(rec.files(id)?.["cpu.max"])!;
      return ((max.quotaUsec ?? Number.NaN) * 1000) / max.periodUsec;
    });
    expect(enforcedCpuMillis).toEqual([80, 10, 10]);
    expect(enforcedCpuMillis.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(100);
    // the guarantee shown to readers is still the configured one
    expect(m.specs().map((s) => s.minCpuMillis)).toEqual([80, 0, 0]);
  });
});

describe("Manager with placement (config placement:)", () => {
  /** A cpuset in memory, as the cgroup backends' (written only when changed), and its writes. */
  function memoryCpuset(partition: string, found: string) {
    let held = found;
    const writes: string[] = [];
    const c: CpusetActuator = {
      partition,
      file: `/cg/cpuset/${partition}/cpuset.cpus`,
      found,
      place(cpus) {
        const v = cpus === null ? found : formatCpuList(cpus);
        if (v === held) return { written: [] };
        held = v;
        writes.push(v);
        return { written: ["cpuset.cpus"] };
      },
      restore() {
        return this.place(null);
      },
      current: () => held,
      close() {},
    };
    return { c, writes, cpus: () => parseCpuList(held, c.file) };
  }

  it("places network partitions after the policy step; a need past 1,000m × fill widens the placement, and the reach follows; SIGTERM restores", () => {
    const clock = new Clock();
    const load = { a: { pps: 4000 }, b: { pps: 2000 } };
    const sets = { a: memoryCpuset("a", "0-3"), b: memoryCpuset("b", "0-3") };
    const reaches: number[] = [];
    const wiring: PartitionWiring[] = (["a", "b"] as const).map((id) => ({
      spec: spec(id),
      source: "host",
      openSensor: () => counterSensor(clock, load[id]),
      openActuator: () => memoryActuator(id, []),
      openCpuset: () => sets[id].c,
      reachableCpus: () => sets[id].cpus(),
    }));
    wiring.push({
      spec: spec("hog", { kind: "batch" }),
      source: "host",
      openActuator: () => memoryActuator("hog", []),
      openCpuset: () => {
        throw new Error("a batch partition's cpuset is never opened");
      },
      reachableCpus: () => [0, 1, 2, 3],
    });
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs: defaultPolicyKnobs(4000),
      partitions: wiring,
      throughput,
      reachRefreshCycles: 1,
      placement: { fillFraction: 0.8, cpus: [0, 1, 2, 3] },
      onCapacityChange: (c) => reaches.push(c.toCpuMillis),
    });
    const cycle = () => {
      clock.t += 100;
      return m.runCycle();
    };
    const first = [cycle(), cycle()]; // a 500m, b 300m: one CPU each
    // each cpuset written is in a cycle's record with the partition's other files, once
    const cpusetWrites = (id: string) =>
      first
        .flatMap((r) => r.partitions.find((p) => p.id === id)!.written)
        .filter((f) => f === "cpuset.cpus").length;
    expect([cpusetWrites("a"), cpusetWrites("b"), cpusetWrites("hog")]).toEqual([
      sets.a.writes.length,
      sets.b.writes.length,
      0,
    ]);
    expect(sets.a.writes.length).toBeGreaterThan(0);
    expect(sets.a.cpus()).toHaveLength(1);
    expect(sets.b.cpus()).toHaveLength(1);
    expect(sets.a.cpus()).not.toEqual(sets.b.cpus());
    expect(m.placements().a!.why).toContain("needs 500m");
    expect(m.placements().hog!.why).toContain("batch");
    const written = sets.a.writes.length;
    for (let i = 0; i < 5; i++)
      expect(cycle().partitions.flatMap((p) => p.written)).not.toContain("cpuset.cpus");
    expect(sets.a.writes).toHaveLength(written); // kept: nothing rewritten
    // a's need passes 800m (100m + 9,000/10 = 1,000m): two CPUs the next cycle
    load.a.pps = 9000;
    cycle();
    cycle();
    expect(sets.a.cpus()).toHaveLength(2);
    // the reach sensor reads the widened cpuset; with the hog everywhere the capacity stands
    expect(reaches.every((r) => r === 4000)).toBe(true);
    const res = m.shutdown("restore");
    expect(sets.a.cpus()).toEqual([0, 1, 2, 3]);
    expect(sets.b.cpus()).toEqual([0, 1, 2, 3]);
    expect(res.filter((r) => r.written.includes("cpuset.cpus")).map((r) => r.partition)).toEqual([
      "a",
      "b",
    ]);
  });

  it("placed alone, the partitions' reach is their CPUs: a need past the fill is given more CPUs, and the capacity widens with them", () => {
    const clock = new Clock();
    const load = { pps: 4000 };
    const set = memoryCpuset("a", "0-1");
    const reaches: number[] = [];
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs: defaultPolicyKnobs(2000),
      partitions: [
        {
          spec: spec("a"),
          source: "host",
          openSensor: () => counterSensor(clock, load),
          openActuator: () => memoryActuator("a", []),
          openCpuset: () => set.c,
          reachableCpus: () => set.cpus(),
        },
      ],
      throughput,
      reachRefreshCycles: 1,
      placement: { fillFraction: 0.8, cpus: [0, 1] },
      onCapacityChange: (c) => reaches.push(c.toCpuMillis),
    });
    const cycle = () => {
      clock.t += 100;
      return m.runCycle();
    };
    cycle();
    cycle();
    cycle();
    expect(set.cpus()).toEqual([0]);
    expect(reaches.at(-1)).toBe(1000); // placed on one CPU: the policy may share out 1,000m
    load.pps = 9000; // 1,000m wanted: more than 800m
    for (let i = 0; i < 4; i++) cycle();
    expect(set.cpus()).toEqual([0, 1]); // not placed: back on its CPUs as found
    expect(reaches.at(-1)).toBe(2000);
  });

  it("off (no placement option): no cpuset is opened", () => {
    const clock = new Clock();
    let opened = 0;
    const m = new Manager({
      now: clock.now,
      intervalMs: 100,
      policy: linearPolicy,
      knobs,
      partitions: [
        {
          spec: spec("a"),
          source: "host",
          openSensor: () => counterSensor(clock, { pps: 1000 }),
          openActuator: () => memoryActuator("a", []),
          openCpuset: () => {
            opened++;
            return memoryCpuset("a", "0-1").c;
          },
        },
      ],
      throughput,
    });
    m.runCycle();
    clock.t += 100;
    m.runCycle();
    expect(opened).toBe(0);
    expect(m.placements()).toEqual({});
  });
});
