// A flame summary of a V8 CPU profile (`node --cpu-prof`): the functions that spent the most
// self time, as a share of the CPU the process used in a time window. The benchmarks that
// miss a budget print it, so the report says what bounds the figure.

/** The parts of a `.cpuprofile` (V8's Profiler.Profile) this reads. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  }>;
  /** Microseconds, V8's monotonic clock (CLOCK_MONOTONIC on Linux, like process.hrtime). */
  startTime: number;
  endTime: number;
  /** Node id of each sample. */
  samples: number[];
  /** Microseconds from the previous sample (the first: from startTime). */
  timeDeltas: number[];
}

export interface SelfTimeRow {
  /** `name file:line` (file relative to the package when under it). */
  fn: string;
  /** Self time, ms. */
  selfMs: number;
  /** Share of the CPU samples in the window (not counting idle), 0..1. */
  share: number;
}

export interface ProfileSummary {
  /** Busy time in the window (every sample that is not `(idle)`), ms. */
  busyMs: number;
  /** Window length, ms. */
  windowMs: number;
  rows: SelfTimeRow[];
}

/** V8's pseudo-frames that are not the process's own work: a sample there is idle time. */
const IDLE = new Set(["(idle)"]);

/** The part of a script URL worth printing: from `src/`, `bench/` or `node_modules/` on, else the base name. */
export function shortUrl(url: string): string {
  if (url === "") return "";
  const m = /(?:^|\/)((?:dist\/)?(?:src|bench|node_modules)\/.*)$/.exec(url);
  if (m) return m[1]!.replace(/^dist\//, "");
  return url
    .replace(/^node:/, "node:")
    .split("/")
    .pop()!;
}

/**
 * Top `top` functions by self time among the samples taken in [fromUs, toUs] (V8's clock;
 * default the whole profile). A sample's time is the delta to the next one (V8's convention:
 * the time until the next sample was spent where this one was taken).
 */
export function summarizeCpuProfile(
  profile: CpuProfile,
  opts: { fromUs?: number; toUs?: number; top?: number } = {},
): ProfileSummary {
  const fromUs = opts.fromUs ?? profile.startTime;
  const toUs = opts.toUs ?? profile.endTime;
  const label = new Map<number, string>();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const where = shortUrl(cf.url);
    // line numbers are 0-based; a frame without a position (native, a source-mapped one) has none
    const line = cf.lineNumber > 0 ? `:${cf.lineNumber + 1}` : "";
    label.set(n.id, `${cf.functionName || "(anonymous)"}${where ? ` ${where}${line}` : ""}`);
  }
  const selfUs = new Map<string, number>();
  let busyUs = 0;
  let t = profile.startTime;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    const next = i + 1 < samples.length ? (timeDeltas[i + 1] ?? 0) : 0;
    if (t < fromUs || t > toUs) continue;
    const name = label.get(samples[i]!) ?? "(unknown)";
    if (IDLE.has(name)) continue;
    busyUs += next;
    selfUs.set(name, (selfUs.get(name) ?? 0) + next);
  }
  const rows = [...selfUs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 15)
    .map(([fn, us]) => ({ fn, selfMs: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return {
    busyMs: busyUs / 1000,
    windowMs: (Math.min(toUs, profile.endTime) - Math.max(fromUs, profile.startTime)) / 1000,
    rows,
  };
}

/** Monotonic time in V8 profile units (µs), to mark a window from outside the profiled process. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
