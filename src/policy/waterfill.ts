// Weighted max-min water-filling: share `amount` among members by weight, each between a
// floor and a ceiling. Pure arithmetic on typed arrays; the caller owns every buffer.
//
// Each member i rises with the water level λ:
//   value_i(λ) = clamp(base_i + λ·w_i, lo_i, hi_i),  base_i = 0 ("totals") or lo_i ("increments")
// "Totals" is max-min fairness on the whole allocation: a member whose floor (its min) is
// already above the water line gets nothing more until the line reaches it. "Increments"
// splits `amount` itself by weight (used for left-over capacity).
// We look for λ with Σ (value_i(λ) − lo_i) = amount. The sum is piecewise linear in λ with
// breakpoints a_i (member starts rising) and b_i (member reaches hi_i). Instead of sorting
// the breakpoints (a Float64Array sort of 20,000 took 2.3 ms on this machine), the interval
// holding λ is narrowed around random breakpoints, quickselect-style: expected O(N). After
// MAX_ROUNDS rounds the remaining breakpoints are sorted instead, so the worst case stays
// O(N log N).
// A packed member's four numbers (a, b, w, gap) sit side by side in one array (`m`, stride
// MEMBER): a round reads them together and a decided member is swapped as one block, where
// five separate arrays made each member five cache lines and each swap ten loads and stores.

/** Reusable buffers for `waterfill`, at least as long as the largest member list. */
export interface WaterfillWorkspace {
  idx: Int32Array;
  /** Per packed member k: a at MEMBER·k, b at +1, w at +2, gap at +3. */
  m: Float64Array;
  /**
   * Picks by index instead of jumps: a member's rise (0, inside, gap; pick[0] stays 0) at 0–2,
   * its value (lo + rise, hi) at 3–4.
   */
  pick: Float64Array;
}

/** Numbers per packed member in WaterfillWorkspace.m: a, b, w, gap. */
const MEMBER = 4;

export function createWaterfillWorkspace(size: number): WaterfillWorkspace {
  const n = Math.max(1, size);
  return { idx: new Int32Array(n), m: new Float64Array(n * MEMBER), pick: new Float64Array(5) };
}

/** Weights at or below zero would never rise; treat them as this small positive weight. */
export const MIN_WEIGHT = 1e-6;

/** Narrowing rounds before the fallback sort (random pivots need ~2·log2 N rounds). */
export const MAX_ROUNDS = 96;

/**
 * Raise members `members[start..end)` from `lo` toward `hi` by weight until `amount` is used
 * (or every member is at `hi`). Writes the new values into `out` (which may be `lo` itself)
 * and returns the amount actually used (≤ amount, up to float rounding).
 */
export function waterfill(
  members: Int32Array,
  start: number,
  end: number,
  lo: Float64Array,
  hi: Float64Array,
  weight: Float64Array,
  amount: number,
  incremental: boolean,
  out: Float64Array,
  ws: WaterfillWorkspace,
  maxRounds = MAX_ROUNDS,
): number {
  const { idx, m, pick } = ws;
  // Pack the members that can rise at all; total their gaps.
  let u = 0;
  let totalGap = 0;
  // the member that starts rising first (the smallest a; see the first round below)
  let firstA = Number.POSITIVE_INFINITY;
  let firstB = 0;
  let firstW = 0;
  let firstGap = 0;
  for (let k = start; k < end; k++) {
    const i = members[k]!;
    const g = hi[i]! - lo[i]!;
    if (!(g > 0)) continue;
    const wi = Math.max(weight[i]!, MIN_WEIGHT);
    const ai = incremental ? 0 : lo[i]! / wi;
    idx[u] = i;
    const at = u * MEMBER;
    m[at] = ai;
    m[at + 1] = ai + g / wi;
    m[at + 2] = wi;
    m[at + 3] = g;
    totalGap += g;
    if (ai < firstA) {
      firstA = ai;
      firstB = m[at + 1]!;
      firstW = wi;
      firstGap = g;
    }
    u++;
  }
  if (u === 0 || !(amount > 0)) return 0;
  if (totalGap <= amount) {
    for (let k = 0; k < u; k++) out[idx[k]!] = hi[idx[k]!]!;
    return totalGap;
  }
  const count = u;

  // Invariant: F(L) ≤ amount < F(R). Members decided for the whole interval are folded into
  // F(λ) = c + s·λ + Σ over the undecided ones.
  let L = 0;
  let R = Number.POSITIVE_INFINITY;
  let c = 0;
  let s = 0;
  // Undecided members live in positions [0, u) of the packed arrays; decided ones are swapped
  // to the tail [u, count) so the final assignment can read every member's a, b, w, gap.
  let seed = (0x9e3779b9 ^ count) >>> 0 || 1;
  let rounds = 0;
  while (u > 0 && rounds < maxRounds) {
    rounds++;
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    const p0 = (seed % u) * MEMBER;
    const pivot = m[p0]! > L && m[p0]! < R ? m[p0]! : m[p0 + 1]!;
    // F(pivot) > amount decided without the sum over the undecided members when it can be: every
    // rise is ≥ 0 and rounding is monotone, so the sum never falls below its start (c + s·pivot),
    // and from a start of 0 (the first round: nothing folded yet) never below any one member's
    // rise (the first to rise's). The comparison then goes the way the sum would have sent it
    // (a NaN sum goes to R as well), so L, R and every fold below are what they were. It
    // fires in the tier after the one where capacity runs out, which water-fills a float
    // residue (1e-9 millicores in policy-step's fleet): each of its rounds was a full sum.
    let f = c + s * pivot;
    let above =
      f > amount || (rounds === 1 && rise(pivot, firstA, firstB, firstW, firstGap) > amount);
    if (!above) {
      // rise() of each member without its two jumps (random members send them either way, a
      // mispredicted jump each): its three values in a small array, picked by index —
      // 0 at or below a (or 0), 1 inside, 2 at or above b; !(pivot <= a) keeps a NaN a
      // inside, as rise does. The same value added in the same order: the same sum.
      for (let k = 0; k < u * MEMBER; k += MEMBER) {
        const a = m[k]!;
        pick[1] = (pivot - a) * m[k + 2]!;
        pick[2] = m[k + 3]!;
        f += pick[+!(pivot <= a) * (1 + +(pivot >= m[k + 1]!))]!;
      }
      above = !(f <= amount);
    }
    if (above) R = pivot;
    else L = pivot;
    // Fold members whose breakpoints are no longer strictly inside (L, R).
    let k = 0;
    while (k < u) {
      const at = k * MEMBER;
      const ak = m[at]!;
      const bk = m[at + 1]!;
      let decided = true;
      if (bk <= L) c += m[at + 3]!;
      else if (ak >= R) {
        // not rising anywhere in the interval: contributes 0
      } else if (ak <= L && bk >= R) {
        s += m[at + 2]!;
        c -= ak * m[at + 2]!;
      } else decided = false;
      if (decided) {
        u--;
        swap(ws, k, u);
      } else k++;
    }
  }

  let lambda: number;
  if (u > 0) lambda = finishBySorting(ws, u, L, R, c, s, amount);
  else lambda = s > 0 ? (amount - c) / s : L;
  if (lambda < L) lambda = L;
  if (lambda > R) lambda = R;

  // Each member's value, its rise picked as in the rounds and its value too (lo + rise, or hi
  // once the rise reaches the gap): the same values as rise() and the jump, without the jumps.
  let used = 0;
  for (let k = 0; k < count; k++) {
    const i = idx[k]!;
    const at = k * MEMBER;
    const a = m[at]!;
    const g = m[at + 3]!;
    pick[1] = (lambda - a) * m[at + 2]!;
    pick[2] = g;
    const r = pick[+!(lambda <= a) * (1 + +(lambda >= m[at + 1]!))]!;
    const base = lo[i]!;
    pick[3] = base + r;
    pick[4] = hi[i]!;
    const v = pick[3 + +(r >= g)]!;
    used += v - base;
    out[i] = v;
  }
  return used;
}

/** How far one member has risen above its floor at level λ. */
function rise(lambda: number, a: number, b: number, w: number, gap: number): number {
  if (lambda <= a) return 0;
  if (lambda >= b) return gap;
  return (lambda - a) * w;
}

function swap(ws: WaterfillWorkspace, x: number, y: number): void {
  if (x === y) return;
  const { idx, m } = ws;
  const ti = idx[x]!;
  idx[x] = idx[y]!;
  idx[y] = ti;
  const px = x * MEMBER;
  const py = y * MEMBER;
  for (let j = 0; j < MEMBER; j++) {
    const t = m[px + j]!;
    m[px + j] = m[py + j]!;
    m[py + j] = t;
  }
}

/**
 * Fallback: sort the breakpoints still inside (L, R), binary-search the last one at which
 * F ≤ amount, and interpolate (F is linear between neighbouring breakpoints). O(u log u).
 */
function finishBySorting(
  ws: WaterfillWorkspace,
  u: number,
  L: number,
  R: number,
  c: number,
  s: number,
  amount: number,
): number {
  const { m } = ws;
  const points: number[] = [L];
  for (let k = 0; k < u * MEMBER; k += MEMBER) {
    const ak = m[k]!;
    const bk = m[k + 1]!;
    if (ak > L && ak < R) points.push(ak);
    if (bk > L && bk < R) points.push(bk);
  }
  if (Number.isFinite(R)) points.push(R);
  else {
    let maxB = L;
    for (let k = 0; k < u * MEMBER; k += MEMBER) if (m[k + 1]! > maxB) maxB = m[k + 1]!;
    points.push(maxB);
  }
  points.sort((x, y) => x - y);
  const F = (lambda: number): number => {
    let f = c + s * lambda;
    for (let k = 0; k < u * MEMBER; k += MEMBER)
      f += rise(lambda, m[k]!, m[k + 1]!, m[k + 2]!, m[k + 3]!);
    return f;
  };
  let lo = 0;
  let hi = points.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (F(points[mid]!) <= amount) lo = mid;
    else hi = mid;
  }
  const x0 = points[lo]!;
  const x1 = points[hi]!;
  const f0 = F(x0);
  const f1 = F(x1);
  if (!(f1 > f0)) return x0;
  return x0 + ((amount - f0) * (x1 - x0)) / (f1 - f0);
}
