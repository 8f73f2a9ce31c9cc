// Weighted max-min water-filling on exact numbers, and its two search paths agreeing.
import { describe, expect, it } from "vitest";
import { seeded } from "./test-fixtures.ts";
import { createWaterfillWorkspace, waterfill } from "./waterfill.ts";

const f64 = (xs: number[]): Float64Array => Float64Array.from(xs);
const all = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

function fill(
  lo: number[],
  hi: number[],
  weight: number[],
  amount: number,
  incremental = false,
  maxRounds?: number,
): { out: number[]; used: number } {
  const out = f64(lo);
  const used = waterfill(
    all(lo.length),
    0,
    lo.length,
    f64(lo),
    f64(hi),
    f64(weight),
    amount,
    incremental,
    out,
    createWaterfillWorkspace(lo.length),
    maxRounds,
  );
  return { out: Array.from(out), used };
}

describe("waterfill (totals: max-min fair on the whole allocation)", () => {
  it("raises everyone by weight until a member's demand is met, then the rest", () => {
    // demands 500, 300, 1000; weights 1, 1, 2; 1,200 to share.
    // level λ: min(500, λ) + min(300, λ) + min(1000, 2λ) = 1200 → λ = 300: 300 + 300 + 600
    const r = fill([0, 0, 0], [500, 300, 1000], [1, 1, 2], 1200);
    expect(r.out[0]).toBeCloseTo(300, 9);
    expect(r.out[1]).toBeCloseTo(300, 9);
    expect(r.out[2]).toBeCloseTo(600, 9);
    expect(r.used).toBeCloseTo(1200, 9);
  });

  it("gives a capped member its demand and shares the rest above it", () => {
    // 1,500: B stops at 300; A + C share 1,200 as λ + 2λ = 1200 → λ = 400: A 400, C 800
    const r = fill([0, 0, 0], [500, 300, 1000], [1, 1, 2], 1500);
    expect(r.out).toEqual([expect.closeTo(400, 9), expect.closeTo(300, 9), expect.closeTo(800, 9)]);
  });

  it("counts a member's floor toward its fair level", () => {
    // A starts at its min 500, B at 0, both want 1,000 at weight 1; 800 more to share.
    // B rises alone to 500 (uses 500), then both rise together: (λ − 500) + λ = 800 → λ = 650
    const r = fill([500, 0], [1000, 1000], [1, 1], 800);
    expect(r.out[0]).toBeCloseTo(650, 9);
    expect(r.out[1]).toBeCloseTo(650, 9);
  });

  it("gives everyone their demand when the amount covers it, and reports what it used", () => {
    const r = fill([100, 0], [400, 250], [1, 1], 10_000);
    expect(r.out).toEqual([400, 250]);
    expect(r.used).toBe(550); // (400 − 100) + 250
  });

  it("does nothing with nothing to share", () => {
    const r = fill([100, 0], [400, 250], [1, 1], 0);
    expect(r.out).toEqual([100, 0]);
    expect(r.used).toBe(0);
  });
});

describe("waterfill (increments: split an amount by weight)", () => {
  it("splits by weight above the current values, up to each ceiling", () => {
    // +λ for A (room 20), +3λ for B (room 1000): 20 + 3λ = 400 → λ = 126.67, B gets +380
    const r = fill([500, 0], [520, 1000], [1, 3], 400, true);
    expect(r.out[0]).toBeCloseTo(520, 9);
    expect(r.out[1]).toBeCloseTo(380, 9);
  });
});

describe("waterfill search paths", () => {
  it("the quickselect narrowing and the sorting fallback give the same levels", () => {
    const rnd = seeded(7);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rnd() * 60);
      const lo: number[] = [];
      const hi: number[] = [];
      const w: number[] = [];
      for (let i = 0; i < n; i++) {
        const l = rnd() < 0.3 ? 0 : Math.floor(rnd() * 500);
        lo.push(l);
        // a third share the same ceiling, to exercise equal breakpoints
        hi.push(rnd() < 0.3 ? 800 : l + Math.floor(rnd() * 2000));
        w.push(rnd() < 0.5 ? 1 : 1 + Math.floor(rnd() * 9));
      }
      const gap = hi.reduce((s, h, i) => s + (h - lo[i]!), 0);
      const amount = rnd() * gap * 1.1;
      for (const incremental of [false, true]) {
        const fast = fill(lo, hi, w, amount, incremental);
        const slow = fill(lo, hi, w, amount, incremental, 0);
        expect(fast.used).toBeLessThanOrEqual(amount + 1e-6);
        expect(fast.used).toBeCloseTo(Math.min(amount, gap), 6);
        for (let i = 0; i < n; i++) {
          expect(fast.out[i]).toBeCloseTo(slow.out[i]!, 6);
          expect(fast.out[i]!).toBeGreaterThanOrEqual(lo[i]! - 1e-9);
          expect(fast.out[i]!).toBeLessThanOrEqual(hi[i]! + 1e-9);
        }
      }
    }
  });
});

/**
 * waterfill as it was before its rounds decided F(pivot) > amount without the sum (the same
 * packing, pivots, folds and final pass; every round sums every undecided member): the
 * shortcut must leave every output bit and the amount used as they were.
 */
function waterfillSummingEveryRound(
  lo: Float64Array,
  hi: Float64Array,
  weight: Float64Array,
  amount: number,
  incremental: boolean,
  out: Float64Array,
): number {
  const n = lo.length;
  const idx = new Int32Array(n);
  const m = new Float64Array(n * 4);
  const rise = (x: number, a: number, b: number, w: number, gap: number): number =>
    x <= a ? 0 : x >= b ? gap : (x - a) * w;
  let u = 0;
  let totalGap = 0;
  for (let i = 0; i < n; i++) {
    const g = hi[i]! - lo[i]!;
    if (!(g > 0)) continue;
    const wi = Math.max(weight[i]!, 1e-6);
    const ai = incremental ? 0 : lo[i]! / wi;
    idx[u] = i;
    m.set([ai, ai + g / wi, wi, g], u * 4);
    totalGap += g;
    u++;
  }
  if (u === 0 || !(amount > 0)) return 0;
  if (totalGap <= amount) {
    for (let k = 0; k < u; k++) out[idx[k]!] = hi[idx[k]!]!;
    return totalGap;
  }
  const count = u;
  let L = 0;
  let R = Number.POSITIVE_INFINITY;
  let c = 0;
  let s = 0;
  let seed = (0x9e3779b9 ^ count) >>> 0 || 1;
  while (u > 0) {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    const p0 = (seed % u) * 4;
    const pivot = m[p0]! > L && m[p0]! < R ? m[p0]! : m[p0 + 1]!;
    let f = c + s * pivot;
    for (let k = 0; k < u * 4; k += 4) f += rise(pivot, m[k]!, m[k + 1]!, m[k + 2]!, m[k + 3]!);
    if (f <= amount) L = pivot;
    else R = pivot;
    let k = 0;
    while (k < u) {
      const at = k * 4;
      const ak = m[at]!;
      const bk = m[at + 1]!;
      let decided = true;
      if (bk <= L) c += m[at + 3]!;
      else if (ak >= R) {
        // 0 in the interval
      } else if (ak <= L && bk >= R) {
        s += m[at + 2]!;
        c -= ak * m[at + 2]!;
      } else decided = false;
      if (decided) {
        u--;
        if (k !== u) {
          const ti = idx[k]!;
          idx[k] = idx[u]!;
          idx[u] = ti;
          const block = m.slice(at, at + 4);
          m.copyWithin(at, u * 4, u * 4 + 4);
          m.set(block, u * 4);
        }
      } else k++;
    }
  }
  let lambda = s > 0 ? (amount - c) / s : L;
  if (lambda < L) lambda = L;
  if (lambda > R) lambda = R;
  let used = 0;
  for (let k = 0; k < count; k++) {
    const i = idx[k]!;
    const at = k * 4;
    const g = m[at + 3]!;
    const r = rise(lambda, m[at]!, m[at + 1]!, m[at + 2]!, g);
    const v = r >= g ? hi[i]! : lo[i]! + r;
    used += v - lo[i]!;
    out[i] = v;
  }
  return used;
}

describe("waterfill's rounds decided without their sum", () => {
  it("give every value and the amount used bit for bit as summing every round", () => {
    const rnd = seeded(11);
    let residues = 0;
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rnd() * 400);
      const lo: number[] = [];
      const hi: number[] = [];
      const w: number[] = [];
      for (let i = 0; i < n; i++) {
        const l = rnd() < 0.25 ? 0 : 20 * Math.floor(rnd() * 5);
        lo.push(l);
        hi.push(l + (rnd() < 0.1 ? 0 : Math.floor(rnd() * 4000) + rnd() * 0.5));
        w.push(rnd() < 0.1 ? 2.5 * rnd() : 1 + Math.floor(rnd() * 10));
      }
      const gap = hi.reduce((sum, h, i) => sum + (h - lo[i]!), 0);
      // a share of the gap, or a float residue such as the tier after the one where capacity
      // runs out receives (1e-24 … 1e-8 millicores)
      const residue = trial % 3 === 0;
      if (residue) residues++;
      const amount = residue ? 10 ** -(8 + Math.floor(rnd() * 16)) * (1 + rnd()) : rnd() * gap;
      for (const incremental of [false, true]) {
        const fast = fill(lo, hi, w, amount, incremental);
        const out = f64(lo);
        const used = waterfillSummingEveryRound(f64(lo), f64(hi), f64(w), amount, incremental, out);
        expect(Object.is(fast.used, used)).toBe(true);
        for (let i = 0; i < n; i++) expect(Object.is(fast.out[i], out[i])).toBe(true);
      }
    }
    expect(residues).toBe(100);
  });
});
