// Weighted max-min sharing of a capacity among claimants with caps: how CFS divides busy CPUs
// among runnable groups by cpu.shares (each group limited by its threads and its quota).

/**
 * Fill `out[i]` with each claimant's grant: nobody gets more than `caps[i]`, the grants sum to
 * at most `capacity`, and spare capacity goes to those still wanting, in proportion to
 * `weights[i]`. Repeated rounds: everyone whose cap is below its proportional share of what
 * is left is satisfied and leaves; when nobody leaves, the rest split what is left by weight.
 */
export function waterfill(
  capacity: number,
  caps: ArrayLike<number>,
  weights: ArrayLike<number>,
  out: Float64Array | number[],
  n = caps.length,
): void {
  let sumCaps = 0;
  for (let i = 0; i < n; i++) sumCaps += caps[i]!;
  if (sumCaps <= capacity) {
    for (let i = 0; i < n; i++) out[i] = caps[i]!;
    return;
  }
  let active: number[] = [];
  for (let i = 0; i < n; i++) {
    out[i] = 0;
    if (caps[i]! > 0 && weights[i]! > 0) active.push(i);
  }
  let remaining = capacity;
  while (active.length > 0 && remaining > 0) {
    let sumW = 0;
    for (const i of active) sumW += weights[i]!;
    const level = remaining / sumW;
    const next: number[] = [];
    let used = 0;
    for (const i of active) {
      if (caps[i]! <= level * weights[i]!) {
        out[i] = caps[i]!;
        used += caps[i]!;
      } else next.push(i);
    }
    if (next.length === active.length) {
      for (const i of active) out[i] = level * weights[i]!;
      return;
    }
    remaining -= used;
    active = next;
  }
}

/**
 * How CFS shares `capacity` (CPU time of every CPU over one tick) among cgroups in one tick.
 * `limits[i]` is the most group i could run this tick (its demand, bounded by its threads and
 * by the runtime its CFS quota has left, burst bank included); `weights[i]` its weight
 * (cpu.shares or cpu.weight, any proportional scale); `idle[i]` true for a SCHED_IDLE group
 * (cgroup `cpu.idle = 1`).
 *
 * - Normal-class groups split the capacity by weighted max-min (`waterfill`): each gets at
 *   most its limit, and what one does not use goes to the others by weight
 *   (work-conserving).
 * - Idle-class groups split only what the normal class left. Among themselves they share
 *   equally: the kernel gives every idle group the same minimum weight (WEIGHT_IDLEPRIO = 3,
 *   whatever cpu.shares said before) and refuses cpu.shares writes while it is idle.
 *
 * The kernel's idle groups are not a strict priority class: they compete with weight 3
 * against a nice-0 group's 1024, so under full contention one idle group next to one normal
 * group gets 3 ÷ 1027 ≈ 0.3 % of a CPU, here 0. Waking normal tasks preempt idle ones at once.
 */
export function cfsShare(
  capacity: number,
  limits: ArrayLike<number>,
  weights: ArrayLike<number>,
  idle: ArrayLike<boolean | number>,
  out: Float64Array | number[],
  n = limits.length,
  scratch: CfsScratch = cfsScratch(n),
): void {
  const { normalLimits, idleLimits, equal, part } = scratch;
  for (let i = 0; i < n; i++) {
    const isIdle = Boolean(idle[i]);
    normalLimits[i] = isIdle ? 0 : limits[i]!;
    idleLimits[i] = isIdle ? limits[i]! : 0;
    equal[i] = 1;
  }
  waterfill(capacity, normalLimits, weights, out, n);
  let used = 0;
  for (let i = 0; i < n; i++) used += out[i]!;
  waterfill(Math.max(0, capacity - used), idleLimits, equal, part, n);
  for (let i = 0; i < n; i++) if (idle[i]) out[i] = part[i]!;
}

/** Work arrays for `cfsShare`, reusable across ticks (length >= the number of groups). */
export interface CfsScratch {
  normalLimits: Float64Array;
  idleLimits: Float64Array;
  equal: Float64Array;
  part: Float64Array;
}

export const cfsScratch = (n: number): CfsScratch => ({
  normalLimits: new Float64Array(n),
  idleLimits: new Float64Array(n),
  equal: new Float64Array(n),
  part: new Float64Array(n),
});
