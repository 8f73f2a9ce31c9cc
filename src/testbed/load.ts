// Open-loop load generator: sends UDP requests to each target at the rate its schedule
// asks for (whether or not replies come back), counts sent, answered, late and lost
// packets, and records latency in HDR histograms. Sends are batched on a short timer
// (default every 5 ms, rate x 5 ms packets per batch) to keep the generator cheap; it
// measures its own CPU cost so a run can show it was not the bottleneck.
//
// Every run is bounded by `durationMs` and by `maxPackets` (total over all targets).
import { performance } from "node:perf_hooks";
import {
  badOption,
  type GeneratorCost,
  generatorCost,
  type LatencySummary,
  type LoadPhase,
} from "./load-stats.ts";
import { TargetRun } from "./load-target.ts";
import {
  DEFAULT_REQUEST_BYTES,
  decodeReply,
  encodeRequest,
  REQUEST_HEADER_BYTES,
} from "./protocol.ts";
import { rateAt, type Schedule } from "./schedule.ts";

export interface LoadTarget {
  name: string;
  addr: string;
  port: number;
  /** Overrides the run's default schedule for this target. */
  schedule?: Schedule;
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
  /**
   * "aligned" (default): every target's batch goes out on the same tick. "staggered": target i's
   * batches go out i × tickMs ÷ targets later than target 0's (each on a timer of its own), as
   * independent clients' would, so the targets' bursts do not reach their servers at the same
   * instant.
   */
  targetPhase?: "aligned" | "staggered";
  /** A reply later than this counts as lost (and as late). Default 1000 ms. */
  timeoutMs?: number;
  /** Request size in bytes (>= 16). Default 64. */
  requestBytes?: number;
  /** After a stall, send at most this many milliseconds' worth of backlog at once. Default 100. */
  maxBurstMs?: number;
  phases?: LoadPhase[];
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
  /** The phase's latencies (µs) as histogramToB64 encodes them, when the phase asked for it. */
  histogramB64?: string;
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

function validate(opts: LoadOptions): void {
  const bad = badOption;
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
  if (opts.targetPhase !== undefined && !["aligned", "staggered"].includes(opts.targetPhase))
    bad("targetPhase", 'must be "aligned" or "staggered"', opts.targetPhase);
  // below 1 ms a timer fires every 1 ms anyway; above maxBurstMs each tick sends only
  // maxBurstMs' worth, less than the schedule asks
  const maxBurstMs = opts.maxBurstMs ?? 100;
  if (opts.tickMs !== undefined && !(opts.tickMs >= 1 && opts.tickMs <= maxBurstMs))
    bad("tickMs", `must be from 1 to ${maxBurstMs} (maxBurstMs)`, opts.tickMs);
}

/** Run open-loop load against the targets; resolves after sending stopped and replies drained. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  validate(opts);
  const tickMs = opts.tickMs ?? 5;
  const targetPhase = opts.targetPhase ?? "aligned";
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
      r.onReply(tSend, latencyMs, timeoutMs);
    });
  }

  let totalSent = 0;
  let stoppedBy: LoadResult["stoppedBy"] = "duration";
  let lastReportT = 0;

  const report = (t: number) => {
    const intervalMs = t - lastReportT;
    lastReportT = t;
    // Seconds whose replies can no longer arrive in time are final: free their histograms.
    const finalUpTo = Math.floor((t - timeoutMs - 100) / 1000);
    for (const r of runs)
      for (let s = 0; s < Math.min(finalUpTo, r.buckets.length); s++) r.finalize(s);
    if (!opts.onTick) {
      for (const r of runs) r.takeInterval();
      return;
    }
    const perSec = intervalMs > 0 ? 1000 / intervalMs : 0;
    const progress: LoadProgress = {
      elapsedMs: Math.round(t),
      intervalMs: Math.round(intervalMs),
      targets: runs.map((r) => {
        const i = r.takeInterval();
        const p: TargetProgress = {
          name: r.target.name,
          targetPps: rateAt(r.schedule, Math.min(t, opts.durationMs)),
          sent: r.sent,
          answered: r.answered,
          late: r.late,
          sendErrors: r.sendErrors,
          offeredPps: Math.round(i.sent * perSec),
          answeredPps: Math.round(i.answered * perSec),
          p99Ms: i.p99Ms,
        };
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
    for (let i = 0; i < n; i++) {
      const buf = Buffer.allocUnsafe(requestBytes);
      encodeRequest(buf, r.runId, r.seq++, sendMs);
      r.sock.send(buf);
    }
    r.onSent(n, sendMs - start);
    totalSent += n;
  };

  await new Promise<void>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    let stopped = false;
    const stop = (why: LoadResult["stoppedBy"]) => {
      if (stopped) return;
      stopped = true;
      stoppedBy = why;
      for (const timer of timers) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => stop("signal");
    if (opts.signal?.aborted) return stop("signal");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const credit = (r: TargetRun, nowMs: number) => {
      const t = Math.min(nowMs - start, opts.durationMs);
      const dt = t - r.creditedToMs;
      if (dt > 0) r.credit += (rateAt(r.schedule, r.creditedToMs + dt / 2) * dt) / 1000;
      r.credit = Math.min(r.credit, Math.max(1, (rateAt(r.schedule, t) * maxBurstMs) / 1000));
      r.creditedToMs = t;
      let n = Math.floor(r.credit);
      if (n > 0) {
        n = Math.min(n, opts.maxPackets - totalSent);
        if (n > 0) {
          sendBatch(r, n, nowMs);
          lastSendAt = nowMs;
        }
        r.credit -= Math.floor(r.credit);
      }
    };
    const settle = (nowMs: number) => {
      const t = Math.min(nowMs - start, opts.durationMs);
      if (t - lastReportT >= reportIntervalMs) report(t);
      if (totalSent >= opts.maxPackets) return stop("maxPackets");
      if (t < opts.durationMs) return;
      // Staggered targets whose tick has not come yet get their credit up to the end too.
      for (const r of runs) credit(r, nowMs);
      stop("duration");
    };
    // Aligned: one timer for every target. Staggered: a timer per target, group i starting
    // i × tickMs ÷ groups after the first.
    const groups = targetPhase === "aligned" ? [runs] : runs.map((r) => [r]);
    groups.forEach((group, i) => {
      const tick = () => {
        if (stopped) return;
        const nowMs = performance.now();
        for (const r of group) credit(r, nowMs);
        settle(nowMs);
      };
      const offsetMs = Math.round((i * tickMs) / groups.length);
      if (offsetMs === 0) timers.push(setInterval(tick, tickMs));
      else
        timers.push(
          setTimeout(() => {
            tick();
            if (!stopped) timers.push(setInterval(tick, tickMs));
          }, offsetMs),
        );
    });
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

  const targets = runs.map((r) => r.result(sendingMs, opts.durationMs));

  const sum = (f: (t: TargetResult) => number) => targets.reduce((a, t) => a + f(t), 0);
  const totals = {
    scheduled: sum((t) => t.scheduled),
    sent: sum((t) => t.sent),
    answered: sum((t) => t.answered),
    lost: sum((t) => t.lost),
    late: sum((t) => t.late),
    sendErrors: sum((t) => t.sendErrors),
  };
  return {
    startedAtEpochMs,
    sendingMs: Math.round(sendingMs),
    stoppedBy,
    timeoutMs,
    tickMs,
    totals,
    targets,
    generator: generatorCost(cpu, wallMs, totals.sent),
  };
}
