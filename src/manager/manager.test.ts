import { describe, expect, it } from "vitest";
import type { AllocationSnapshot, PartitionActuator } from "../actuators/types.ts";
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
import type { PartitionSensor } from "../sensors/types.ts";
import { Manager, type PartitionWiring, type ThroughputFn } from "./manager.ts";

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
      const cpuMillis = tp
        ? Math.min(s.maxCpuMillis, s.minCpuMillis + Math.round(tp.offeredPacketsPerSec / 10))
        : Math.min(prev, s.maxCpuMillis);
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
