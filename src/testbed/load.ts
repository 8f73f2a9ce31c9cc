// Open-loop load generator: sends UDP requests to each target at the rate its schedule
// asks for (whether or not replies come back), counts sent, answered, late and lost
// packets, and records latency in HDR histograms. Sends are batched on a short timer
// (default every 5 ms, rate x 5 ms packets per batch) to keep the generator cheap; it
// measures its own CPU cost so a run can show it was not the bottleneck.
//
// Every run is bounded by `durationMs` and by `maxPackets` (total over all targets).
import dgram from "node:dgram";
import { performance } from "node:perf_hooks";
import { build, type Histogram } from "hdr-histogram-js";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  DEFAULT_REQUEST_BYTES,
  decodeReply,
  encodeRequest,
  REQUEST_HEADER_BYTES,
} from "./protocol.ts";
import { describeSchedule, packetsBetween, rateAt, type Schedule } from "./schedule.ts";

export interface LoadTarget {
  name: string;
  addr: string;
  port: number;
  /** Overrides the run's default schedule for this target. */
  schedule?: Schedule;
}

/** A named window of the run (by send time) to summarise separately, e.g. a demo phase. */
export interface LoadPhase {
  name: string;
  fromMs: number;
  toMs: number;
}

export interface LoadOptions {
  targets: LoadTarget[];
  /** Default schedule for targets without their own. */
  schedule?: Schedule;
  /** Stop sending after this long. */
  durationMs: number;
  /** Stop sending after this many packets in total. */
  maxPackets: number;
  signal?: AbortSignal;
  /** Called every `reportIntervalMs` with what happened in that interval. */
  onTick?: (progress: LoadProgress) => void;
  reportIntervalMs?: number;
  /** Send batches this often (default 5 ms). */
  tickMs?: number;
  /** A reply later than this counts as lost (and as late). Default 1000 ms. */
  timeoutMs?: number;
  /** Request size in bytes (>= 16). Default 64. */
  requestBytes?: number;
  /** After a stall, send at most this many milliseconds' worth of backlog at once. Default 100. */
  maxBurstMs?: number;
  phases?: LoadPhase[];
}

export interface LatencySummary {
  count: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
  meanMs: number | null;
}

/** One second of one target, by send time. */
export interface SecondStats {
  /** 0 for [0 s, 1 s) after the start. */
  second: number;
  /** Length of the second that was inside the run: 1000 except for the last one. */
  spanMs: number;
  /** What the schedule asked for, averaged over the span. */
  targetPps: number;
  /** Packets sent in this second (the offered rate, since the second is 1 s long). */
  sent: number;
  /** Of those, answered within the timeout. */
  answered: number;
  /** Of those, not answered within the timeout (includes late). */
  lost: number;
  /** Of those, answered after the timeout. */
  late: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface PhaseStats {
  name: string;
  fromMs: number;
  toMs: number;
  sent: number;
  answered: number;
  lost: number;
  late: number;
  /** answered / sent (null when nothing was sent). */
  servedRatio: number | null;
  latency: LatencySummary;
}

export interface TargetResult {
  name: string;
  addr: string;
  port: number;
  schedule: string;
  /**
   * Packets the schedule asked for over the time sending went on. `sent` well below it
   * means the generator fell behind (stalls longer than maxBurstMs are not made up).
   */
  scheduled: number;
  sent: number;
  answered: number;
  /** sent - answered: no reply within the timeout. */
  lost: number;
  /** Replies that came after the timeout (counted in lost). */
  late: number;
  /** Sends the kernel refused (counted in lost). */
  sendErrors: number;
  servedRatio: number | null;
  latency: LatencySummary;
  timeline: SecondStats[];
  phases: PhaseStats[];
}

export interface GeneratorCost {
  wallMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** CPU the generator's process used over the run, in cores (0.05 = 5 % of one CPU). */
  cpuCores: number;
  /** Generator CPU per 1,000 packets sent (each with its reply received), microseconds. */
  cpuMicrosPer1000Packets: number | null;
}

export interface LoadResult {
  startedAtEpochMs: number;
  /** How long sending went on. */
  sendingMs: number;
  stoppedBy: "duration" | "maxPackets" | "signal";
  timeoutMs: number;
  tickMs: number;
  totals: {
    scheduled: number;
    sent: number;
    answered: number;
    lost: number;
    late: number;
    sendErrors: number;
  };
  targets: TargetResult[];
  generator: GeneratorCost;
}

export interface TargetProgress {
  name: string;
  /** Schedule's rate now. */
  targetPps: number;
  sent: number;
  answered: number;
  late: number;
  sendErrors: number;
  /** Sent per second over the last interval. */
  offeredPps: number;
  /** Replies per second over the last interval (by arrival). */
  answeredPps: number;
  /** p99 latency of replies that arrived in the last interval. */
  p99Ms: number | null;
}

export interface LoadProgress {
  elapsedMs: number;
  intervalMs: number;
  targets: TargetProgress[];
}

export const US_PER_MS = 1000;
/** A latency histogram in microseconds, 1 µs to 120 s (UDP and TCP loads alike). */
export const newHistogram = (digits: 1 | 2 | 3): Histogram =>
  build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: digits,
  });

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) {
    return {
      count: 0,
      p50Ms: null,
      p90Ms: null,
      p99Ms: null,
      p999Ms: null,
      maxMs: null,
      meanMs: null,
    };
  }
  const ms = (us: number) => Math.round(us) / US_PER_MS;
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    meanMs: ms(h.mean),
  };
}

interface Bucket {
  sent: number;
  answered: number;
  late: number;
  hist: Histogram | null;
  done: SecondStats | null;
}

interface PhaseState {
  phase: LoadPhase;
  sent: number;
  answered: number;
  late: number;
  hist: Histogram;
}

class TargetRun {
  readonly schedule: Schedule;
  readonly sock: dgram.Socket;
  readonly hist = newHistogram(3);
  intervalHist = newHistogram(2);
  readonly buckets: Bucket[] = [];
  readonly phases: PhaseState[];
  sent = 0;
  answered = 0;
  late = 0;
  sendErrors = 0;
  foreign = 0;
  credit = 0;
  intervalSent = 0;
  intervalAnswered = 0;
  seq = 0;

  constructor(
    readonly target: LoadTarget,
    schedule: Schedule,
    readonly runId: number,
    phases: LoadPhase[],
  ) {
    this.schedule = schedule;
    this.sock = dgram.createSocket({ type: "udp4" });
    this.phases = phases.map((phase) => ({
      phase,
      sent: 0,
      answered: 0,
      late: 0,
      hist: newHistogram(3),
    }));
  }

  bucket(second: number): Bucket {
    while (this.buckets.length <= second) {
      this.buckets.push({ sent: 0, answered: 0, late: 0, hist: null, done: null });
    }
    return this.buckets[second]!;
  }
}

/** Schedule average over [fromMs, toMs), 10 ms slices. */
const meanRate = (s: Schedule, fromMs: number, toMs: number): number => {
  let sum = 0;
  let n = 0;
  for (let t = fromMs + 5; t < toMs; t += 10, n++) sum += rateAt(s, t);
  return n === 0 ? rateAt(s, fromMs) : sum / n;
};

function validate(opts: LoadOptions): void {
  const bad = (field: string, rule: string, v: unknown): never => {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'${field}' ${rule}: current value is ${JSON.stringify(v)}`,
    );
  };
  if (opts.targets.length === 0) bad("targets", "must name at least one target", opts.targets);
  if (!(opts.durationMs > 0 && Number.isFinite(opts.durationMs)))
    bad("durationMs", "must be > 0", opts.durationMs);
  if (!(Number.isInteger(opts.maxPackets) && opts.maxPackets > 0)) {
    bad("maxPackets", "must be a positive integer", opts.maxPackets);
  }
  for (const t of opts.targets) {
    if (!t.schedule && !opts.schedule)
      bad(`targets.${t.name}.schedule`, "is needed when no default schedule is given", t.schedule);
  }
  if (
    opts.requestBytes !== undefined &&
    (opts.requestBytes < REQUEST_HEADER_BYTES || opts.requestBytes > 65_000)
  ) {
    bad("requestBytes", `must be within ${REQUEST_HEADER_BYTES}..65000`, opts.requestBytes);
  }
}

/** Run open-loop load against the targets; resolves after sending stopped and replies drained. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  validate(opts);
  const tickMs = opts.tickMs ?? 5;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const reportIntervalMs = opts.reportIntervalMs ?? 1000;
  const requestBytes = opts.requestBytes ?? DEFAULT_REQUEST_BYTES;
  const maxBurstMs = opts.maxBurstMs ?? 100;
  const phases = opts.phases ?? [];
  const runBase = (Math.random() * 0xffffffff) >>> 0;

  const runs = opts.targets.map(
    (t, i) => new TargetRun(t, (t.schedule ?? opts.schedule)!, (runBase + i) >>> 0, phases),
  );
  await Promise.all(
    runs.map(
      (r) =>
        new Promise<void>((resolve, reject) => {
          r.sock.once("error", reject);
          // A connected socket: no address handling per send (about 40 % cheaper per small
          // batch here), and it only receives from its own target.
          r.sock.bind(0, () => {
            r.sock.connect(r.target.port, r.target.addr, () => {
              r.sock.off("error", reject);
              resolve();
            });
          });
        }),
    ),
  );

  const startedAtEpochMs = Date.now();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let lastSendAt = start;

  for (const r of runs) {
    r.sock.on("error", () => {
      r.sendErrors++;
    });
    r.sock.on("message", (msg) => {
      const reply = decodeReply(msg);
      if (!reply || reply.runId !== r.runId) {
        r.foreign++;
        return;
      }
      const at = performance.now();
      const latencyMs = at - reply.clientSendMs;
      const tSend = reply.clientSendMs - start;
      if (tSend < 0 || latencyMs < 0) {
        r.foreign++;
        return;
      }
      const b = r.bucket(Math.floor(tSend / 1000));
      const phase =
        r.phases.length === 0
          ? r.phases
          : r.phases.filter((p) => tSend >= p.phase.fromMs && tSend < p.phase.toMs);
      if (latencyMs > timeoutMs) {
        r.late++;
        b.late++;
        for (const p of phase) p.late++;
        return;
      }
      const us = Math.max(1, Math.round(latencyMs * US_PER_MS));
      r.answered++;
      r.intervalAnswered++;
      b.answered++;
      r.hist.recordValue(us);
      r.intervalHist.recordValue(us);
      if (b.done === null) {
        b.hist ??= newHistogram(2);
        b.hist.recordValue(us);
      }
      for (const p of phase) {
        p.answered++;
        p.hist.recordValue(us);
      }
    });
  }

  const finalizeBucket = (r: TargetRun, second: number, endMs = Number.POSITIVE_INFINITY) => {
    const b = r.bucket(second);
    if (b.done) return;
    const lat = b.hist ? summarize(b.hist) : null;
    const spanMs = Math.round(Math.max(0, Math.min(1000, endMs - second * 1000)));
    b.done = {
      second,
      spanMs,
      targetPps: Math.round(meanRate(r.schedule, second * 1000, second * 1000 + spanMs) * 10) / 10,
      sent: b.sent,
      answered: b.answered,
      lost: b.sent - b.answered,
      late: b.late,
      p50Ms: lat?.p50Ms ?? null,
      p99Ms: lat?.p99Ms ?? null,
    };
    b.hist?.destroy();
    b.hist = null;
  };

  let totalSent = 0;
  let stoppedBy: LoadResult["stoppedBy"] = "duration";
  let lastT = 0;
  let lastReportT = 0;

  const report = (t: number) => {
    const intervalMs = t - lastReportT;
    lastReportT = t;
    // Seconds whose replies can no longer arrive in time are final: free their histograms.
    const finalUpTo = Math.floor((t - timeoutMs - 100) / 1000);
    for (const r of runs)
      for (let s = 0; s < Math.min(finalUpTo, r.buckets.length); s++) finalizeBucket(r, s);
    if (!opts.onTick) {
      for (const r of runs) {
        r.intervalSent = 0;
        r.intervalAnswered = 0;
        r.intervalHist.reset();
      }
      return;
    }
    const perSec = intervalMs > 0 ? 1000 / intervalMs : 0;
    const progress: LoadProgress = {
      elapsedMs: Math.round(t),
      intervalMs: Math.round(intervalMs),
      targets: runs.map((r) => {
        const p: TargetProgress = {
          name: r.target.name,
          targetPps: rateAt(r.schedule, Math.min(t, opts.durationMs)),
          sent: r.sent,
          answered: r.answered,
          late: r.late,
          sendErrors: r.sendErrors,
          offeredPps: Math.round(r.intervalSent * perSec),
          answeredPps: Math.round(r.intervalAnswered * perSec),
          p99Ms: summarize(r.intervalHist).p99Ms,
        };
        r.intervalSent = 0;
        r.intervalAnswered = 0;
        r.intervalHist.reset();
        return p;
      }),
    };
    try {
      opts.onTick?.(progress);
    } catch {
      // a broken progress callback must not stop the load
    }
  };

  const sendBatch = (r: TargetRun, n: number, sendMs: number) => {
    const tSend = sendMs - start;
    const b = r.bucket(Math.floor(tSend / 1000));
    const phase = r.phases.filter((p) => tSend >= p.phase.fromMs && tSend < p.phase.toMs);
    for (let i = 0; i < n; i++) {
      const buf = Buffer.allocUnsafe(requestBytes);
      encodeRequest(buf, r.runId, r.seq++, sendMs);
      r.sock.send(buf);
    }
    r.sent += n;
    r.intervalSent += n;
    b.sent += n;
    for (const p of phase) p.sent += n;
    totalSent += n;
  };

  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = (why: LoadResult["stoppedBy"]) => {
      stoppedBy = why;
      if (timer) clearInterval(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => stop("signal");
    if (opts.signal?.aborted) return stop("signal");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const tick = () => {
      const nowMs = performance.now();
      const t = Math.min(nowMs - start, opts.durationMs);
      const dt = t - lastT;
      for (const r of runs) {
        if (dt > 0) r.credit += (rateAt(r.schedule, lastT + dt / 2) * dt) / 1000;
        r.credit = Math.min(r.credit, Math.max(1, (rateAt(r.schedule, t) * maxBurstMs) / 1000));
        let n = Math.floor(r.credit);
        if (n > 0) {
          n = Math.min(n, opts.maxPackets - totalSent);
          if (n > 0) {
            sendBatch(r, n, nowMs);
            lastSendAt = nowMs;
          }
          r.credit -= Math.floor(r.credit);
        }
      }
      lastT = t;
      if (t - lastReportT >= reportIntervalMs) report(t);
      if (totalSent >= opts.maxPackets) stop("maxPackets");
      else if (t >= opts.durationMs) stop("duration");
    };
    timer = setInterval(tick, tickMs);
  });
  const sendingMs = performance.now() - start;

  // Drain: wait for replies until every packet is answered or the last one timed out.
  const drainUntil = lastSendAt + timeoutMs;
  while (performance.now() < drainUntil && runs.some((r) => r.answered + r.late < r.sent)) {
    await new Promise((r) =>
      setTimeout(r, Math.min(20, Math.max(1, drainUntil - performance.now()))),
    );
  }
  await Promise.all(runs.map((r) => new Promise<void>((res) => r.sock.close(() => res()))));
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  if (opts.onTick) report(Math.min(performance.now() - start, sendingMs));

  const targets: TargetResult[] = runs.map((r) => {
    for (let s = 0; s < r.buckets.length; s++) finalizeBucket(r, s, sendingMs);
    const timeline = r.buckets.map((b) => b.done!);
    const result: TargetResult = {
      name: r.target.name,
      addr: r.target.addr,
      port: r.target.port,
      schedule: describeSchedule(r.schedule),
      scheduled: Math.floor(packetsBetween(r.schedule, 0, Math.min(sendingMs, opts.durationMs))),
      sent: r.sent,
      answered: r.answered,
      lost: r.sent - r.answered,
      late: r.late,
      sendErrors: r.sendErrors,
      servedRatio: r.sent === 0 ? null : r.answered / r.sent,
      latency: summarize(r.hist),
      timeline,
      phases: r.phases.map((p) => ({
        name: p.phase.name,
        fromMs: p.phase.fromMs,
        toMs: p.phase.toMs,
        sent: p.sent,
        answered: p.answered,
        lost: p.sent - p.answered,
        late: p.late,
        servedRatio: p.sent === 0 ? null : p.answered / p.sent,
        latency: summarize(p.hist),
      })),
    };
    r.hist.destroy();
    r.intervalHist.destroy();
    for (const p of r.phases) p.hist.destroy();
    return result;
  });

  const sum = (f: (t: TargetResult) => number) => targets.reduce((a, t) => a + f(t), 0);
  const totals = {
    scheduled: sum((t) => t.scheduled),
    sent: sum((t) => t.sent),
    answered: sum((t) => t.answered),
    lost: sum((t) => t.lost),
    late: sum((t) => t.late),
    sendErrors: sum((t) => t.sendErrors),
  };
  const cpuMicros = cpu.user + cpu.system;
  return {
    startedAtEpochMs,
    sendingMs: Math.round(sendingMs),
    stoppedBy,
    timeoutMs,
    tickMs,
    totals,
    targets,
    generator: {
      wallMs: Math.round(wallMs),
      cpuUserMs: Math.round(cpu.user / 1000),
      cpuSystemMs: Math.round(cpu.system / 1000),
      cpuCores: Math.round((cpuMicros / 1000 / wallMs) * 1000) / 1000,
      cpuMicrosPer1000Packets:
        totals.sent === 0 ? null : Math.round((cpuMicros / totals.sent) * 1000),
    },
  };
}

/**
 * Send one probe request every `everyMs` until the server answers (true) or `timeoutMs`
 * passes (false). Used to wait for a freshly started packet server.
 */
export async function probeServer(
  addr: string,
  port: number,
  opts: { timeoutMs: number; everyMs?: number; signal?: AbortSignal },
): Promise<boolean> {
  const sock = dgram.createSocket({ type: "udp4" });
  const runId = (Math.random() * 0xffffffff) >>> 0;
  try {
    return await new Promise<boolean>((resolve) => {
      let seq = 0;
      const done = (ok: boolean) => {
        clearInterval(timer);
        clearTimeout(deadline);
        resolve(ok);
      };
      sock.on("message", (msg) => {
        const r = decodeReply(msg);
        if (r && r.runId === runId) done(true);
      });
      sock.on("error", () => {});
      const send = () => {
        const buf = Buffer.alloc(REQUEST_HEADER_BYTES);
        sock.send(encodeRequest(buf, runId, seq++, performance.now()), port, addr);
      };
      const timer = setInterval(send, opts.everyMs ?? 200);
      const deadline = setTimeout(() => done(false), opts.timeoutMs);
      opts.signal?.addEventListener("abort", () => done(false), { once: true });
      send();
    });
  } finally {
    sock.close();
  }
}
