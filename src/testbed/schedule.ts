// Offered-load schedules: packets per second as a function of time since the load began.
// Pure: a trace file's text is parsed here, read elsewhere.
import { z } from "zod";
import { ErrorCodes, WeirError } from "../core/errors.ts";

export interface TracePoint {
  tMs: number;
  pps: number;
}

export type Schedule =
  | { kind: "constant"; pps: number }
  /** `fromPps` before `atMs`, `toPps` from then on. */
  | { kind: "step"; fromPps: number; toPps: number; atMs: number }
  /** `fromPps` until `startMs`, linear to `toPps` at `endMs`, then `toPps`. */
  | { kind: "ramp"; fromPps: number; toPps: number; startMs: number; endMs: number }
  /** `highPps` for the first `duty` fraction of every period, `lowPps` for the rest. */
  | { kind: "square"; lowPps: number; highPps: number; periodMs: number; duty: number }
  /** Rate over time from rows (tMs, pps); before the first row 0, after the last row the last rate. */
  | { kind: "trace"; points: TracePoint[]; interpolate: "step" | "linear" };

const pps = z.number().finite().min(0).max(10_000_000);
const ms = z.number().finite().min(0);

export const scheduleSchema: z.ZodType<Schedule> = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("constant"), pps }),
  z.object({ kind: z.literal("step"), fromPps: pps, toPps: pps, atMs: ms }),
  z
    .object({ kind: z.literal("ramp"), fromPps: pps, toPps: pps, startMs: ms, endMs: ms })
    .refine((r) => r.endMs > r.startMs, { message: "endMs must be after startMs" }),
  z.object({
    kind: z.literal("square"),
    lowPps: pps,
    highPps: pps,
    periodMs: z.number().finite().positive(),
    duty: z.number().min(0).max(1).default(0.5),
  }),
  z
    .object({
      kind: z.literal("trace"),
      points: z.array(z.object({ tMs: ms, pps })).min(1),
      interpolate: z.enum(["step", "linear"]).default("step"),
    })
    .refine((t) => t.points.every((p, i) => i === 0 || p.tMs > t.points[i - 1]!.tMs), {
      message: "trace times must be strictly increasing",
    }),
]) as z.ZodType<Schedule>;

/** Target rate (packets/s) at `tMs` after the start. */
export function rateAt(s: Schedule, tMs: number): number {
  switch (s.kind) {
    case "constant":
      return s.pps;
    case "step":
      return tMs < s.atMs ? s.fromPps : s.toPps;
    case "ramp": {
      if (tMs <= s.startMs) return s.fromPps;
      if (tMs >= s.endMs) return s.toPps;
      return s.fromPps + ((s.toPps - s.fromPps) * (tMs - s.startMs)) / (s.endMs - s.startMs);
    }
    case "square": {
      const phase = (((tMs % s.periodMs) + s.periodMs) % s.periodMs) / s.periodMs;
      return phase < s.duty ? s.highPps : s.lowPps;
    }
    case "trace": {
      const pts = s.points;
      if (pts.length === 0 || tMs < pts[0]!.tMs) return 0;
      // binary search: last point with tMs <= t
      let lo = 0;
      let hi = pts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (pts[mid]!.tMs <= tMs) lo = mid;
        else hi = mid - 1;
      }
      const a = pts[lo]!;
      const b = pts[lo + 1];
      if (s.interpolate === "step" || b === undefined) return a.pps;
      return a.pps + ((b.pps - a.pps) * (tMs - a.tMs)) / (b.tMs - a.tMs);
    }
  }
}

/**
 * Packets a schedule asks for between `fromMs` and `toMs` (midpoint rule on `stepMs`
 * slices; exact for constant and piecewise-linear rates away from breakpoints).
 */
export function packetsBetween(s: Schedule, fromMs: number, toMs: number, stepMs = 1): number {
  let total = 0;
  for (let t = fromMs; t < toMs; t += stepMs) {
    const dt = Math.min(stepMs, toMs - t);
    total += (rateAt(s, t + dt / 2) * dt) / 1000;
  }
  return total;
}

/** Parse a duration: "250ms", "5s", "2m", "1h", or a bare number of milliseconds. */
export function parseDurationMs(text: string, field = "duration"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'${field}' must be a duration like 500ms, 10s, 2m: current value is ${JSON.stringify(text)}`,
    );
  }
  const v = Number(m[1]);
  const unit = m[2] ?? "ms";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return v * factor;
}

/**
 * Parse a trace file: one row per line, "tMs,pps" (comma, tab or spaces between);
 * blank lines, lines starting with '#', and a header row of words are skipped.
 */
export function parseTrace(text: string): TracePoint[] {
  const points: TracePoint[] = [];
  const lines = text.split(/\r?\n/);
  let headerChecked = false;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const cells = line.split(/[\s,;]+/);
    if (!headerChecked) {
      headerChecked = true;
      if (cells.some((c) => Number.isNaN(Number(c)))) return; // a header row of words
    }
    const tMs = Number(cells[0]);
    const rate = Number(cells[1]);
    if (cells.length < 2 || !Number.isFinite(tMs) || !Number.isFinite(rate) || rate < 0) {
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `trace line ${i + 1} must be "tMs,pps" with numbers, pps >= 0: current value is ${JSON.stringify(raw)}`,
      );
    }
    const prev = points[points.length - 1];
    if (prev && tMs <= prev.tMs) {
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `trace line ${i + 1}: times must increase (${tMs} after ${prev.tMs})`,
      );
    }
    points.push({ tMs, pps: rate });
  });
  if (points.length === 0) {
    throw new WeirError(ErrorCodes.CONFIG_INVALID, "trace has no rows");
  }
  return points;
}

const num = (text: string, field: string): number => {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < 0) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `schedule '${field}' must be a number >= 0: current value is ${JSON.stringify(text)}`,
    );
  }
  return v;
};

/**
 * Parse a schedule written on the command line:
 *   "500" or "constant:500"            500 pps
 *   "step:200,1000@5s"                 200 pps, 1000 pps from 5 s on
 *   "ramp:100..2000@10s"               linear from 100 to 2000 pps over 0-10 s
 *   "ramp:100..2000@2s..10s"           flat until 2 s, linear until 10 s
 *   "square:200,1500/4s"               1500 pps for 2 s, 200 pps for 2 s, repeated
 *   "square:200,1500/4s/0.25"          high for the first quarter of each period
 *   "trace:FILE" / "trace-linear:FILE" rows read by `readFile` and parsed by parseTrace
 *   '{"kind":"constant","pps":500}'    JSON, checked against scheduleSchema
 */
export function parseScheduleSpec(spec: string, readFile?: (path: string) => string): Schedule {
  const s = spec.trim();
  const bad = (why: string): never => {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'schedule' ${why}: current value is ${JSON.stringify(spec)}`,
    );
  };
  if (s.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(s);
    } catch (e) {
      return bad(`is not valid JSON (${(e as Error).message})`);
    }
    const r = scheduleSchema.safeParse(json);
    if (!r.success)
      return bad(r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    return r.data;
  }
  const colon = s.indexOf(":");
  const kind = colon < 0 ? "constant" : s.slice(0, colon);
  const body = colon < 0 ? s : s.slice(colon + 1);
  switch (kind) {
    case "constant":
      return { kind: "constant", pps: num(body, "pps") };
    case "step": {
      const m = /^([^,]+),([^@]+)@(.+)$/.exec(body) ?? bad("step must look like step:FROM,TO@TIME");
      return {
        kind: "step",
        fromPps: num(m[1]!, "from"),
        toPps: num(m[2]!, "to"),
        atMs: parseDurationMs(m[3]!, "schedule step time"),
      };
    }
    case "ramp": {
      const [range, times, extra] = body.split("@");
      const [from, to, more] = (range ?? "").split("..");
      if (extra !== undefined || more !== undefined || !from || !to || !times) {
        return bad("ramp must look like ramp:FROM..TO@END or ramp:FROM..TO@START..END");
      }
      const [a, b] = times.split("..");
      const startMs = b === undefined ? 0 : parseDurationMs(a!, "schedule ramp start");
      const endMs = parseDurationMs(b ?? a!, "schedule ramp end");
      if (endMs <= startMs) bad("ramp end must be after its start");
      return { kind: "ramp", fromPps: num(from, "from"), toPps: num(to, "to"), startMs, endMs };
    }
    case "square": {
      const m =
        /^([^,]+),([^/]+)\/([^/]+)(?:\/(.+))?$/.exec(body) ??
        bad("square must look like square:LOW,HIGH/PERIOD[/DUTY]");
      const periodMs = parseDurationMs(m[3]!, "schedule square period");
      if (periodMs <= 0) bad("square period must be > 0");
      const duty = m[4] === undefined ? 0.5 : num(m[4], "duty");
      if (duty > 1) bad("square duty must be within 0..1");
      return {
        kind: "square",
        lowPps: num(m[1]!, "low"),
        highPps: num(m[2]!, "high"),
        periodMs,
        duty,
      };
    }
    case "trace":
    case "trace-linear": {
      if (!readFile) return bad("trace files need a file reader");
      return {
        kind: "trace",
        points: parseTrace(readFile(body)),
        interpolate: kind === "trace" ? "step" : "linear",
      };
    }
    default:
      return bad(
        `kind must be constant, step, ramp, square, trace or trace-linear (got ${JSON.stringify(kind)})`,
      );
  }
}

/** A short human description, e.g. "step 200->1000 pps at 5000 ms". */
export function describeSchedule(s: Schedule): string {
  switch (s.kind) {
    case "constant":
      return `constant ${s.pps} pps`;
    case "step":
      return `step ${s.fromPps}->${s.toPps} pps at ${s.atMs} ms`;
    case "ramp":
      return `ramp ${s.fromPps}->${s.toPps} pps over ${s.startMs}-${s.endMs} ms`;
    case "square":
      return `square ${s.lowPps}/${s.highPps} pps, period ${s.periodMs} ms, duty ${s.duty}`;
    case "trace":
      return `trace of ${s.points.length} rows (${s.interpolate})`;
  }
}

export interface RotatingLoad {
  /** One schedule per target name. */
  schedules: Record<string, Schedule>;
  /** The phases, by time: phase i sends `highPps` to `hot` and `lowPps` to the others. */
  phases: { name: string; fromMs: number; toMs: number; hot: string }[];
}

/**
 * Traffic that moves from partition to partition: `phaseCount` phases of `phaseMs` each;
 * in phase i, target i mod n gets `highPps` and every other target `lowPps`. For the
 * demo and for scenarios that show a manager following the load.
 */
export function rotatingLoad(
  names: string[],
  opts: { phaseMs: number; phaseCount: number; highPps: number; lowPps: number },
): RotatingLoad {
  if (names.length === 0 || !(opts.phaseMs > 0) || !(opts.phaseCount >= 1)) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `rotatingLoad needs names, phaseMs > 0 and phaseCount >= 1: current values are ${JSON.stringify({ names, ...opts })}`,
    );
  }
  const phases = Array.from({ length: opts.phaseCount }, (_, i) => ({
    name: `phase ${i + 1}: ${names[i % names.length]} hot`,
    fromMs: i * opts.phaseMs,
    toMs: (i + 1) * opts.phaseMs,
    hot: names[i % names.length]!,
  }));
  const schedules: Record<string, Schedule> = {};
  for (const n of names) {
    schedules[n] = {
      kind: "trace",
      interpolate: "step",
      points: phases.map((p) => ({ tMs: p.fromMs, pps: p.hot === n ? opts.highPps : opts.lowPps })),
    };
  }
  return { schedules, phases };
}
