// Offered-load schedules: functions from virtual time (ms) to packets per second.
// Each is pure, so the clairvoyant bound (bound.ts) replays exactly what the simulator offers.

/** Offered packets per second at virtual time `tMs`. */
export type LoadSchedule = (tMs: number) => number;

export const constant =
  (packetsPerSec: number): LoadSchedule =>
  () =>
    packetsPerSec;

/** `before` until `atMs`, then `after`. */
export const step =
  (before: number, after: number, atMs: number): LoadSchedule =>
  (t) =>
    t < atMs ? before : after;

/** `from` until `startMs`, linear to `to` at `endMs`, then `to`. */
export const ramp =
  (from: number, to: number, startMs: number, endMs: number): LoadSchedule =>
  (t) => {
    if (t <= startMs) return from;
    if (t >= endMs) return to;
    return from + ((to - from) * (t - startMs)) / (endMs - startMs);
  };

/** Alternates `low` and `high`, each for half of `periodMs`, starting with `low` (or `high` when `phase` is 0.5). */
export const square =
  (low: number, high: number, periodMs: number, phase = 0): LoadSchedule =>
  (t) => {
    const x = (t / periodMs + phase) % 1;
    return x < 0.5 ? low : high;
  };

/**
 * A flash crowd: `base` until `atMs`, then a jump to `peak` that decays back toward `base`
 * exponentially with time constant `decayMs` (the shape of a link posted on a busy site).
 */
export const flashCrowd =
  (base: number, peak: number, atMs: number, decayMs: number): LoadSchedule =>
  (t) =>
    t < atMs ? base : base + (peak - base) * Math.exp(-(t - atMs) / decayMs);

/** A rate-over-time trace, linearly interpolated; held flat before the first and after the last point. */
export const trace = (
  points: ReadonlyArray<readonly [tMs: number, packetsPerSec: number]>,
): LoadSchedule => {
  if (points.length === 0) return () => 0;
  const pts = [...points].sort((a, b) => a[0] - b[0]);
  return (t) => {
    if (t <= pts[0]![0]) return pts[0]![1];
    const last = pts[pts.length - 1]!;
    if (t >= last[0]) return last[1];
    let lo = 0;
    let hi = pts.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (pts[mid]![0] <= t) lo = mid;
      else hi = mid;
    }
    const [t0, v0] = pts[lo]!;
    const [t1, v1] = pts[hi]!;
    return v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
  };
};

/**
 * A day of traffic compressed into `dayMs`: hourly points of a typical web service (night
 * trough at 04:00, morning climb, lunch bump, evening peak at 20:00), scaled so the peak
 * is `peak` packets/s and the trough is `trough`, shifted by `shiftHours` (another time zone).
 */
export function diurnal(trough: number, peak: number, dayMs: number, shiftHours = 0): LoadSchedule {
  // Relative load per hour 00..24 (the shape, 0 = trough, 1 = peak); 25 points closes the day.
  const shape = [
    0.3, 0.18, 0.08, 0.02, 0, 0.04, 0.15, 0.35, 0.55, 0.62, 0.66, 0.7, 0.78, 0.74, 0.68, 0.66, 0.68,
    0.74, 0.82, 0.93, 1, 0.94, 0.75, 0.5, 0.3,
  ];
  const points = shape.map((s, h) => [(h * dayMs) / 24, trough + (peak - trough) * s] as const);
  const day = trace(points);
  const shiftMs = (shiftHours * dayMs) / 24;
  return (t) => day((((t + shiftMs) % dayMs) + dayMs) % dayMs);
}

/** Mean of a schedule over [fromMs, toMs), sampled every `stepMs`. */
export function meanRate(schedule: LoadSchedule, fromMs: number, toMs: number, stepMs = 1): number {
  if (toMs <= fromMs) return schedule(fromMs);
  let sum = 0;
  let n = 0;
  for (let t = fromMs; t < toMs; t += stepMs) {
    sum += schedule(t);
    n++;
  }
  return sum / n;
}
