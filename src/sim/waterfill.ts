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
