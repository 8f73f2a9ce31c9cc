import { describe, expect, it } from "vitest";
import { cpusNeeded, type Placement, type PlacementRow, placePartitions } from "./placement.ts";

const net = (id: string, needCpuMillis: number): PlacementRow => ({
  id,
  batch: false,
  needCpuMillis,
});
const batch = (id: string): PlacementRow => ({ id, batch: true, needCpuMillis: 2000 });
const asObject = (p: Placement) => Object.fromEntries(p);

describe("cpusNeeded", () => {
  it("rounds up at the fill budget, at least one", () => {
    expect(cpusNeeded(0, 800)).toBe(1);
    expect(cpusNeeded(800, 800)).toBe(1);
    expect(cpusNeeded(801, 800)).toBe(2);
    expect(cpusNeeded(Number.NaN, 800)).toBe(1);
  });
});

describe("placePartitions", () => {
  it("packs heaviest first onto the least loaded CPU; batch runs everywhere", () => {
    const p = placePartitions(
      [net("a", 100), net("b", 150), net("c", 200), batch("hog")],
      [0, 1],
      null,
    );
    expect(asObject(p)).toEqual({ c: [0], b: [1], a: [1], hog: null });
  });

  it("spreads partitions that need nothing yet (equal loads: the CPU with fewer partitions)", () => {
    const p = placePartitions([net("a", 0), net("b", 0), net("c", 0), batch("hog")], [0, 1], null);
    expect(asObject(p)).toEqual({ a: [0], b: [1], c: [0], hog: null });
  });

  it("places nothing when the network partitions do not fit at the fill", () => {
    // 0.8 × 2 CPUs = 1,600m; 1,700m asked
    const p = placePartitions([net("a", 900), net("b", 800), batch("hog")], [0, 1], null);
    expect(asObject(p)).toEqual({ a: null, b: null, hog: null });
  });

  it("places nothing on one CPU", () => {
    expect(asObject(placePartitions([net("a", 100)], [3], null))).toEqual({ a: null });
  });

  it("gives a partition that needs more than a CPU several, and none when it needs all", () => {
    const four = placePartitions(
      [net("a", 1200), net("b", 300), net("c", 300)],
      [0, 1, 2, 3],
      null,
    );
    expect(asObject(four)).toEqual({ a: [0, 1], b: [2], c: [3] });
    const two = placePartitions([net("a", 1000), net("b", 100)], [0, 1], null);
    // a needs both CPUs (1,000m > 800m): it runs everywhere, its load split; b is placed
    expect(asObject(two)).toEqual({ a: null, b: [0] });
  });

  it("keeps the previous placement (the same object) while it fits", () => {
    const rows = [net("a", 100), net("b", 150), net("c", 200)];
    const first = placePartitions(rows, [0, 1], null);
    // c grew, b shrank: c on CPU 0 alone still fits, a and b on CPU 1 too
    const again = placePartitions([net("a", 100), net("b", 50), net("c", 600)], [0, 1], first);
    expect(again).toBe(first);
  });

  it("packs again when a CPU of the previous placement would carry more than the fill", () => {
    const first = placePartitions([net("a", 100), net("b", 150), net("c", 200)], [0, 1], null);
    // a grows to 700m: CPU 1 would carry 850m > 800m
    const next = placePartitions([net("a", 700), net("b", 150), net("c", 200)], [0, 1], first);
    expect(next).not.toBe(first);
    expect(asObject(next)).toEqual({ a: [0], c: [1], b: [1] });
  });

  it("packs again when the kept placement's busiest CPU carries more than the margin over a fresh one's", () => {
    // the first cycle, before traffic: every need equal, a and c share CPU 0
    const first = placePartitions([net("a", 0), net("b", 0), net("c", 0)], [0, 1], null);
    expect(asObject(first)).toEqual({ a: [0], b: [1], c: [0] });
    // a 200m + c 400m = 600m on CPU 0 (fits at 800m); fresh: c alone 400m, a + b 500m: 100m less
    const rows = [net("a", 200), net("b", 300), net("c", 400)];
    const next = placePartitions(rows, [0, 1], first);
    expect(asObject(next)).toEqual({ c: [0], b: [1], a: [1] });
    // kept while within the margin (50m by default): 560m against a fresh 520m
    const close = [net("a", 160), net("b", 360), net("c", 400)];
    expect(placePartitions(close, [0, 1], first)).toBe(first);
    // the exact edge is kept; a margin of Infinity keeps whatever fits
    const edge = [net("a", 150), net("b", 350), net("c", 400)]; // 550m against 500m
    expect(placePartitions(edge, [0, 1], first)).toBe(first);
    const never = { fillFraction: 0.8, rebalanceMarginCpuMillis: Number.POSITIVE_INFINITY };
    expect(placePartitions(rows, [0, 1], first, never)).toBe(first);
    // and the fresh packing, once taken, is kept (no move back and forth)
    expect(placePartitions(rows, [0, 1], next)).toBe(next);
  });

  it("keeps a placement that fits when a fresh packing would overfill a CPU", () => {
    // a and b 400m each on CPU 0, c, d and e 266m each on CPU 1: both CPUs at most 800m. The
    // packing, heaviest first, puts a on 0, b on 1, c on 0, d on 1, then e on 0: 932m
    const byHand: Placement = new Map([
      ["a", [0]],
      ["b", [0]],
      ["c", [1]],
      ["d", [1]],
      ["e", [1]],
    ]);
    const rows = [net("a", 400), net("b", 400), net("c", 266), net("d", 266), net("e", 266)];
    const heard: string[] = [];
    expect(placePartitions(rows, [0, 1], byHand, undefined, (w) => heard.push(w))).toBe(byHand);
    expect(heard).toEqual([]);
    // without it, nothing is placed
    expect(asObject(placePartitions(rows, [0, 1], null, undefined, (w) => heard.push(w)))).toEqual({
      a: null,
      b: null,
      c: null,
      d: null,
      e: null,
    });
    expect(heard).toEqual(["do-not-pack"]);
  });

  it("packs again when a partition came or went, or a CPU left", () => {
    const first = placePartitions([net("a", 100), net("b", 150)], [0, 1], null);
    expect(placePartitions([net("a", 100)], [0, 1], first)).not.toBe(first);
    expect(placePartitions([net("a", 100), net("b", 150), net("c", 10)], [0, 1], first)).not.toBe(
      first,
    );
    const moved = placePartitions([net("a", 100), net("b", 150)], [0, 2], first);
    expect(asObject(moved)).toEqual({ b: [0], a: [2] });
  });

  it("says which rule placed nothing, and nothing when it placed or no rule decided", () => {
    const heard: string[] = [];
    const why = (w: string) => heard.push(w);
    placePartitions([net("a", 100)], [0], null, undefined, why);
    placePartitions([net("a", 900), net("b", 800)], [0, 1], null, undefined, why);
    // 3 × 600m on 2 CPUs: 1,800m > 1,600m would not fit; 3 × 500m fits but packs 1,000m on one
    placePartitions([net("a", 500), net("b", 500), net("c", 500)], [0, 1], null, undefined, why);
    expect(heard).toEqual(["one-cpu", "do-not-fit", "do-not-pack"]);
    placePartitions([net("a", 100), net("b", 100)], [0, 1], null, undefined, why);
    placePartitions([net("a", 1000)], [0, 1], null, undefined, why); // needs every CPU
    placePartitions([batch("hog")], [0, 1], null, undefined, why); // no network row
    expect(heard).toHaveLength(3);
  });

  it("refuses a fill outside (0, 1]", () => {
    expect(() => placePartitions([], [0, 1], null, { fillFraction: 0 })).toThrow(/fillFraction/);
    expect(() => placePartitions([], [0, 1], null, { fillFraction: 1.5 })).toThrow(/fillFraction/);
    expect(() => placePartitions([], [0, 1], null, { rebalanceMarginCpuMillis: -1 })).toThrow(
      /rebalanceMarginCpuMillis/,
    );
  });
});
