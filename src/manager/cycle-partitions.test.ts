import { describe, expect, it } from "vitest";
import type { AllocationSnapshot, PartitionActuator } from "../actuators/types.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { ApplyResult, CounterSample, CycleRecord, PartitionSpec } from "../core/model.ts";
import { staticWeightsPolicy } from "../policy/baselines/static-weights.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { Policy } from "../policy/types.ts";
import { weirPolicy } from "../policy/weir.ts";
import { throughputFromSamples } from "../sensors/throughput.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { partitionColumnsOf } from "./cycle-partitions.ts";
import { estimateRecordBytes } from "./history.ts";
import { Manager } from "./manager.ts";
import type { PartitionWiring } from "./manager-options.ts";

const spec = (id: string): PartitionSpec => ({
  id,
  minCpuMillis: 100,
  maxCpuMillis: 1500,
  weight: 100,
  importance: 3,
  kind: "network",
});

const sample = (atMs: number, over: Partial<CounterSample> = {}): CounterSample => ({
  atMs,
  offeredPackets: 0,
  servedPackets: 0,
  droppedPackets: 0,
  cpuUsageNs: 0,
  nrPeriods: 0,
  nrThrottled: 0,
  throttledNs: 0,
  ...over,
});

/**
 * A manager's records over four partitions: "web" serves traffic, "idle" does not, "faulty"
 * fails its applies from cycle 5 to 12, "vanish" loses its cgroup at cycle 8 (gone from then on).
 */
function fleet(policy: Policy) {
  let t = 1_000_000;
  let n = 0;
  const ids = ["web", "idle", "faulty", "vanish"];
  const sensor = (id: string): PartitionSensor => ({
    read(nowMs): CounterSample {
      n++;
      const busy = id === "web";
      return sample(nowMs, {
        offeredPackets: busy ? n * 41 : 0,
        servedPackets: busy ? n * 40 : 0,
        cpuUsageNs: busy ? n * 2.9e6 : Math.floor(nowMs / 1000) * 1e6,
        ...(busy ? { cpuDelayNs: n * 0.4e6 } : { cpuAtMs: Math.floor(nowMs / 1000) * 1000 }),
      });
    },
    close() {},
  });
  // "faulty" fails its applies from cycle 5 to 12; "vanish" is gone from cycle 8 on
  const state = { faulty: false, vanished: false };
  const actuator = (id: string): PartitionActuator => {
    let current = -1;
    return {
      partition: id,
      snapshot: (): AllocationSnapshot => ({ partition: id, values: { "cpu.shares": "1024" } }),
      apply(d): ApplyResult {
        if ((id === "faulty" && state.faulty) || (id === "vanish" && state.vanished))
          return {
            partition: id,
            written: [],
            error: new WeirError(
              id === "vanish" ? ErrorCodes.CGROUP_GONE : ErrorCodes.APPLY_FAILED,
              `${id}: refused`,
            ).toInfo(),
          };
        if (d.weight === current) return { partition: id, written: [] };
        current = d.weight;
        return { partition: id, written: ["cpu.shares"] };
      },
      restore: () => ({ partition: id, written: [] }),
      close() {},
    };
  };
  const partitions: PartitionWiring[] = ids.map((id) => ({
    spec: spec(id),
    source: "host",
    openSensor: () => sensor(id),
    openActuator: () => {
      if (id === "vanish" && state.vanished)
        throw new WeirError(ErrorCodes.CGROUP_GONE, `${id}: cgroup gone`);
      return actuator(id);
    },
  }));
  const m = new Manager({
    now: () => t,
    intervalMs: 100,
    policy,
    knobs: defaultPolicyKnobs(2000),
    partitions,
    throughput: throughputFromSamples,
  });
  const records: CycleRecord[] = [];
  for (let c = 0; c < 20; c++) {
    if (c === 5) state.faulty = true;
    if (c === 12) state.faulty = false;
    if (c === 8) state.vanished = true;
    records.push(m.runCycle());
    t += 100 + (c % 3) * 0.41;
  }
  return records;
}

describe("a manager's record made from its columns", () => {
  const records = fleet(weirPolicy);

  it("has a plain record's keys and JSON; its columns are not enumerable", () => {
    for (const r of records) {
      expect(partitionColumnsOf(r)).toBeDefined();
      expect(Object.keys(r)).toEqual([
        "cycle",
        "startedAtMs",
        "intervalMs",
        "capacityCpuMillis",
        "partitions",
        "timingsMs",
      ]);
      const spread = { ...r };
      expect("columns" in spread).toBe(false);
      expect(JSON.stringify(spread)).toBe(JSON.stringify(r));
      // the same entries on every read
      expect(r.partitions).toBe(r.partitions);
    }
    // the cases the columns must carry were all there: a gone partition, an error, a write
    const all = records.map((r) => JSON.stringify(r)).join("");
    for (const part of ['"status":"gone"', '"error":{', '"written":["cpu.shares"'])
      expect(all).toContain(part);
  });

  it("reads as its entries do: decisions, velocities, throughput, errors, written", () => {
    for (const r of records) {
      const c = r.columns!;
      expect(c.size).toBe(r.partitions.length);
      r.partitions.forEach((p, k) => {
        expect(c.ids[k]).toBe(p.id);
        expect(c.status[k]).toBe(p.status);
        expect(c.decision(k)).toBe(p.decision);
        expect(c.decisionVelocity(k)).toBe(p.decision?.velocityPacketsPerCpuSec);
        expect(c.status[k] === "gone" ? null : c.directives[k]).toBe(p.directive);
        expect(c.written[k] ?? []).toEqual(p.written);
        expect(c.errors?.[k]).toBe(p.error);
        const lent = c.peekThroughput(k);
        const built = p.throughput;
        expect(lent === null).toBe(built === null);
        if (lent && built)
          for (const [key, v] of Object.entries(built))
            expect(lent[key as keyof typeof lent]).toBe(v);
      });
    }
  });

  it("gives the history's estimate what its entries give", () => {
    for (const policy of [weirPolicy, staticWeightsPolicy()])
      for (const r of fleet(policy)) {
        const plain: CycleRecord = { ...r, partitions: [...r.partitions] };
        expect(plain.columns).toBeUndefined();
        expect(estimateRecordBytes(r)).toBe(estimateRecordBytes(plain));
      }
  });

  it("reads a policy's decisions that have no velocity column through their objects", () => {
    for (const r of fleet(staticWeightsPolicy())) {
      const c = r.columns!;
      r.partitions.forEach((p, k) => {
        expect(c.decisionVelocity(k)).toBe(p.decision?.velocityPacketsPerCpuSec);
      });
    }
  });

  it("takes entries assigned to `partitions`", () => {
    const r = fleet(weirPolicy).at(-1)!;
    const entries = r.partitions.slice(0, 1);
    r.partitions = entries;
    expect(r.partitions).toBe(entries);
  });
});
