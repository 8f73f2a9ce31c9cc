import { describe, expect, it } from "vitest";
import { RecordingBackend } from "../actuators/recording.ts";
import type { CounterSample, CycleRecord, PartitionSpec, Throughput } from "../core/model.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import { partitionTable, throughputColumnsOf } from "../policy/table.ts";
import { weirPolicy } from "../policy/weir.ts";
import { throughputFromSamples, withHostCongestion } from "../sensors/throughput.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { estimateRecordBytes } from "./history.ts";
import { Manager } from "./manager.ts";
import type { PartitionWiring, ThroughputFn } from "./manager-options.ts";
import { RecordEntry } from "./record-entry.ts";

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

/** An entry as the manager made it before RecordEntry: a plain object holding `tp` itself. */
function plainEntry(p: CycleRecord["partitions"][number], tp: Throughput | null) {
  return {
    id: p.id,
    status: p.status,
    throughput: tp,
    decision: p.decision,
    directive: p.directive,
    written: p.written,
    ...(p.error ? { error: p.error } : {}),
  };
}

describe("RecordEntry", () => {
  // every shape a cycle's throughput takes: throughputFromSamples' (busy, idle with its CPU
  // carried or read over its own span, bytes counted, a zero window, a null and a NaN rate),
  // and shapes it does not make (an agent's with the host's congestion, another key order)
  const p0 = sample(1_000, { offeredPackets: 10, servedPackets: 9, cpuUsageNs: 5e6 });
  const shapes: Throughput[] = [
    throughputFromSamples(
      "busy",
      p0,
      sample(1_100.25, {
        offeredPackets: 1_010,
        servedPackets: 1_000,
        droppedPackets: 3,
        cpuUsageNs: 45e6,
        nrPeriods: 10,
        nrThrottled: 1,
        cpuDelayNs: 2e6,
      }),
      "host",
    ),
    throughputFromSamples("carried", p0, sample(1_099.5, { cpuAtMs: 1_000 }), "host"),
    throughputFromSamples(
      "read-late",
      { ...p0, cpuAtMs: 200 },
      sample(1_100, { cpuUsageNs: 9e6 }),
      "host",
    ),
    throughputFromSamples(
      "bytes",
      { ...p0, ingressBytes: 0, egressBytes: 0 },
      sample(1_100, { ingressBytes: 12_345, egressBytes: 678 }),
      "sim",
    ),
    throughputFromSamples("zero-window", p0, sample(1_000), "agent"),
    { ...throughputFromSamples("nan", p0, sample(1_100), "host"), cpuDelayFraction: Number.NaN },
    withHostCongestion(
      throughputFromSamples("congested", p0, sample(1_100, { cpuUsageNs: 25e6 }), "agent"),
      throughputFromSamples(
        "congested",
        p0,
        sample(1_100, { nrPeriods: 4, nrThrottled: 2 }),
        "host",
      ),
    ),
    {
      source: "host",
      partition: "reordered",
      windowMs: 100,
      offeredPacketsPerSec: 1,
      servedPacketsPerSec: 1,
      droppedPacketsPerSec: 0,
      cpuCores: 0.5,
      throttledFraction: 0,
      rawVelocityPacketsPerCpuSec: null,
    },
  ];

  it("gives back each shape of throughput equal to the one made, with the same JSON text", () => {
    const ids = shapes.map((t) => t.partition);
    const table = partitionTable(ids.map(spec));
    const columns = throughputColumnsOf(table, new Map(shapes.map((t) => [t.partition, t])));
    shapes.forEach((tp, row) => {
      const e = new RecordEntry(tp.partition, "ok", { columns, row }, null, null, []);
      expect(e.throughput).toEqual(tp);
      expect(Object.keys(e.throughput!)).toEqual(Object.keys(tp));
      expect(JSON.stringify(e)).toBe(JSON.stringify(plainEntry(e, tp)));
    });
    // throughputFromSamples' shape is kept as numbers, no object; the others as themselves
    const kept = shapes.filter((_, row) => columns.objects?.[row]).map((t) => t.partition);
    expect(kept).toEqual(["congested", "reordered"]);
    expect(columns.objects?.[6]).toBe(shapes[6]);
  });

  it("lends each shape's values without building one (peekThroughput, hasThroughput)", () => {
    const ids = [...shapes.map((t) => t.partition), "no-data"];
    const table = partitionTable(ids.map(spec));
    const columns = throughputColumnsOf(table, new Map(shapes.map((t) => [t.partition, t])));
    const read = (t: Throughput | null) =>
      t === null ? null : Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
    ids.forEach((id, row) => {
      const e = new RecordEntry(id, "ok", { columns, row }, null, null, []);
      const built = e.throughput;
      const lent = e.peekThroughput();
      // the same values, key for key (the lent object's absent keys are undefined)
      expect(read(lent)).toEqual(read(built));
      expect(e.hasThroughput).toBe(built !== null);
      if (columns.objects?.[row]) expect(lent).toBe(columns.objects[row]);
    });
    // one object lent every time, overwritten by the next call
    const a = new RecordEntry(ids[0]!, "ok", { columns, row: 0 }, null, null, []);
    const b = new RecordEntry(ids[1]!, "ok", { columns, row: 1 }, null, null, []);
    const first = a.peekThroughput();
    expect(b.peekThroughput()).toBe(first);
    expect(first!.partition).toBe(ids[1]);
    // an entry holding an object (or none) lends that
    const tp = shapes[0]!;
    expect(new RecordEntry("busy", "ok", tp, null, null, []).peekThroughput()).toBe(tp);
    const none = new RecordEntry("none", "gone", null, null, null, []);
    expect(none.peekThroughput()).toBeNull();
    expect(none.hasThroughput).toBe(false);
  });

  it("holds an object where there are no columns, and takes one assigned later", () => {
    const tp = shapes[0]!;
    const e = new RecordEntry("busy", "stale", tp, null, null, ["cpu.shares"]);
    expect(e.throughput).toBe(tp);
    e.error = { code: "X", message: "m", retryable: true };
    expect(JSON.stringify(e)).toBe(JSON.stringify(plainEntry(e, tp)));
    const none = new RecordEntry("none", "gone", null, null, null, []);
    expect(none.throughput).toBeNull();
    none.throughput = tp;
    expect(none.throughput).toBe(tp);
  });
});

describe("Manager records: the API's JSON", () => {
  it("is byte for byte what plain entries holding the cycle's own Throughput objects give", () => {
    let t = 1_000_000;
    const now = () => t;
    const ids = ["web", "idle", "agentish"];
    let n = 0;
    // web serves traffic; idle's CPU is read once a second, carried between (cpuAtMs)
    const sensor = (id: string): PartitionSensor => ({
      read(nowMs): CounterSample {
        n++;
        const busy = id === "web";
        return sample(nowMs, {
          offeredPackets: busy ? n * 37 : 0,
          servedPackets: busy ? n * 36 : 0,
          cpuUsageNs: busy ? n * 3.3e6 : Math.floor(nowMs / 1000) * 1e6,
          ...(busy ? {} : { cpuAtMs: Math.floor(nowMs / 1000) * 1000 }),
          ...(busy ? { cpuDelayNs: n * 0.7e6 } : {}),
        });
      },
      close() {},
    });
    const made = new Map<string, Throughput>();
    // the real rates for two partitions, another key order for the third
    const throughput: ThroughputFn = (id, prev, next, source) => {
      const tp = throughputFromSamples(id, prev, next, source);
      const out: Throughput =
        id === "agentish" ? Object.assign({ source: tp.source }, tp, { disagreement: "test" }) : tp;
      made.set(id, out);
      return out;
    };
    const backend = new RecordingBackend();
    for (const id of ids) backend.create(id);
    const partitions: PartitionWiring[] = ids.map((id) => ({
      spec: spec(id),
      source: "host",
      openSensor: () => sensor(id),
      openActuator: () => backend.open({ partition: id, cgroup: id }),
    }));
    const m = new Manager({
      now,
      intervalMs: 100,
      policy: weirPolicy,
      knobs: defaultPolicyKnobs(2000),
      partitions,
      throughput,
    });
    const texts: string[] = [];
    for (let c = 0; c < 25; c++) {
      made.clear();
      const r = m.runCycle();
      texts.push(JSON.stringify(r));
      const plain = {
        ...r,
        partitions: r.partitions.map((p) => plainEntry(p, made.get(p.id) ?? null)),
      };
      expect(JSON.stringify(r)).toBe(JSON.stringify(plain));
      t += 100 + (c % 3) * 0.37;
    }
    // the shapes a real cycle makes were all there: a rate, a CPU delay, a carried CPU
    const all = texts.join("");
    for (const part of ['"cpuDelayFraction":0.', '"cpuWindowMs":0,', '"disagreement":"test"'])
      expect(all).toContain(part);
    expect(all).toMatch(/"rawVelocityPacketsPerCpuSec":[0-9]/);
    // the history's estimate reads the entries without building their throughput: the same
    // bytes as for plain entries holding the objects
    const last = m.recentRecords().at(-1)!;
    expect(estimateRecordBytes(last)).toBe(
      estimateRecordBytes({
        ...last,
        partitions: last.partitions.map((p) => plainEntry(p, p.throughput)),
      }),
    );
    expect(last.partitions.map((p) => p.throughput?.partition ?? null)).toEqual(ids);
    expect(last.partitions[0]!.decision?.why).toMatch(/./);
  });
});
