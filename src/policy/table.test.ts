import { describe, expect, it } from "vitest";
import type { Throughput } from "../core/model.ts";
import { sameBytes } from "./bytes.ts";
import {
  partitionTable,
  RepeatingThroughputColumns,
  type ThroughputColumns,
  throughputAt,
  throughputColumnsOf,
} from "./table.ts";
import { seeded, spec } from "./test-fixtures.ts";

/** A window as throughputFromSamples makes it (its keys in its order: kept as numbers, `exact`). */
const sampled = (partition: string, over: Partial<Throughput> = {}): Throughput => ({
  partition,
  windowMs: over.windowMs ?? 100,
  offeredPacketsPerSec: over.offeredPacketsPerSec ?? 0,
  servedPacketsPerSec: over.servedPacketsPerSec ?? 0,
  droppedPacketsPerSec: 0,
  cpuCores: over.cpuCores ?? 0,
  throttledFraction: 0,
  rawVelocityPacketsPerCpuSec: over.rawVelocityPacketsPerCpuSec ?? null,
  cpuDelayFraction: over.cpuDelayFraction ?? null,
  source: "host",
  ...(over.cpuWindowMs !== undefined ? { cpuWindowMs: over.cpuWindowMs } : {}),
});

const COLUMNS = [
  "has",
  "windowMs",
  "offeredPacketsPerSec",
  "servedPacketsPerSec",
  "droppedPacketsPerSec",
  "cpuCores",
  "throttledFraction",
  "cpuDelayFraction",
  "rawVelocityPacketsPerCpuSec",
  "exact",
] as const;

/** Copies of every array the columns hold, to check later that none was written. */
const snapshot = (c: ThroughputColumns) => ({
  arrays: COLUMNS.map((k) => Array.from(c[k]!)),
  objects: c.objects ? [...c.objects] : undefined,
});

describe("RepeatingThroughputColumns", () => {
  // A `weir run` of idle partitions: every column but windowMs repeats cycle over cycle. Here
  // also a partition without a window some cycles, a busy one, an object throughputFromSamples
  // would not make (kept as itself), and the table changing size.
  const small = partitionTable([spec("a"), spec("b"), spec("c")]);
  const large = partitionTable([spec("a"), spec("b"), spec("c"), spec("d")]);
  const rnd = seeded(5);
  const cycle = (c: number): [ReturnType<typeof partitionTable>, Map<string, Throughput>] => {
    const table = c >= 30 && c < 36 ? large : small;
    const tps: Throughput[] = [];
    for (const s of table.specs) {
      if (s.id === "b" && c % 7 === 3) continue; // no window this cycle
      const busy = s.id === "c" && c >= 12 && c < 20;
      const tp = sampled(s.id, {
        windowMs: c % 2 === 0 ? 100 : 100 + rnd(), // the window jitters
        cpuCores: busy ? rnd() : 0.01,
        offeredPacketsPerSec: busy ? 1000 * rnd() : 0,
        servedPacketsPerSec: busy ? 900 : 0,
        cpuWindowMs: c % 10 === 0 ? 1000 : 900, // an idle partition's CPU read once a second
        ...(c === 22 && s.id === "a" ? { cpuDelayFraction: -0 } : {}),
      });
      // an agent's window with the host's congestion: another shape, kept as the object
      tps.push(c === 25 && s.id === "a" ? { ...tp, congestionFrom: "host" as const } : tp);
    }
    return [table, new Map(tps.map((t) => [t.partition, t]))];
  };

  it("gives columns that read exactly as throughputColumnsOf's, sharing what repeats", () => {
    const cols = new RepeatingThroughputColumns();
    const kept: { c: ThroughputColumns; at: ReturnType<typeof snapshot> }[] = [];
    let sharedColumns = 0;
    for (let c = 0; c < 45; c++) {
      const [table, map] = cycle(c);
      const got = cols.of(table, map);
      const want = throughputColumnsOf(table, map);
      expect(got.size).toBe(want.size);
      for (const k of COLUMNS) expect(sameBytes(got[k]!, want[k]!), `cycle ${c} ${k}`).toBe(true);
      expect(got.objects).toEqual(want.objects);
      for (let i = 0; i < table.size; i++)
        expect(throughputAt(got, i, table.ids[i]!)).toEqual(throughputAt(want, i, table.ids[i]!));
      // the same keys in the same order as throughputColumnsOf's (one object shape for V8)
      expect(Object.keys(got)).toEqual(Object.keys(want));
      const last = kept.at(-1)?.c;
      if (last && last.size === got.size)
        for (const k of COLUMNS) {
          if (got[k] === last[k]) sharedColumns++;
          else if (got[k] !== undefined) expect(got[k]!.buffer).not.toBe(last[k]!.buffer);
        }
      kept.push({ c: got, at: snapshot(got) });
    }
    expect(sharedColumns).toBeGreaterThan(200);
    // the rows were kept as numbers (exact), but for the one object of another shape
    expect(kept.filter(({ c }) => c.objects !== undefined).length).toBe(1);
    // nothing a returned column holds was written by a later call
    for (const { c, at } of kept) expect(snapshot(c)).toEqual(at);
  });

  it("shares a column only when every byte repeats (-0 is not 0, NaN is NaN)", () => {
    const cols = new RepeatingThroughputColumns();
    const table = partitionTable([spec("a")]);
    const of = (over: Partial<Throughput>) => cols.of(table, new Map([["a", sampled("a", over)]]));
    const first = of({ cpuDelayFraction: 0, rawVelocityPacketsPerCpuSec: null });
    const again = of({ cpuDelayFraction: 0, rawVelocityPacketsPerCpuSec: null });
    expect(again.cpuDelayFraction).toBe(first.cpuDelayFraction);
    expect(again.rawVelocityPacketsPerCpuSec).toBe(first.rawVelocityPacketsPerCpuSec); // NaN
    const negative = of({ cpuDelayFraction: -0, rawVelocityPacketsPerCpuSec: null });
    expect(negative.cpuDelayFraction).not.toBe(again.cpuDelayFraction);
    expect(Object.is(negative.cpuDelayFraction[0], -0)).toBe(true);
    expect(Object.is(again.cpuDelayFraction[0], 0)).toBe(true);
  });
});
