// One target of the open-loop UDP generator (load.ts): its connected socket and its
// accounting — packets by send time, per second and per named phase, replies within the
// timeout with their latency, late replies, and the interval figures of a progress report.
import dgram from "node:dgram";
import type { Histogram } from "hdr-histogram-js";
import type { LoadTarget, SecondStats, TargetResult } from "./load.ts";
import {
  histogramToB64,
  type LoadPhase,
  newHistogram,
  summarize,
  US_PER_MS,
} from "./load-stats.ts";
import { describeSchedule, packetsBetween, rateAt, type Schedule } from "./schedule.ts";

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

/** Schedule average over [fromMs, toMs), 10 ms slices. */
const meanRate = (s: Schedule, fromMs: number, toMs: number): number => {
  let sum = 0;
  let n = 0;
  for (let t = fromMs + 5; t < toMs; t += 10, n++) sum += rateAt(s, t);
  return n === 0 ? rateAt(s, fromMs) : sum / n;
};

export class TargetRun {
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
  /** Run time (ms) up to which credit was added: each target keeps its own when ticks are staggered. */
  creditedToMs = 0;
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

  /** `n` packets sent at `tSendMs` after the start. */
  onSent(n: number, tSendMs: number): void {
    const b = this.bucket(Math.floor(tSendMs / 1000));
    this.sent += n;
    this.intervalSent += n;
    b.sent += n;
    for (const p of this.phases)
      if (tSendMs >= p.phase.fromMs && tSendMs < p.phase.toMs) p.sent += n;
  }

  /** A reply to a packet sent at `tSendMs` after the start, `latencyMs` later; late past `timeoutMs`. */
  onReply(tSendMs: number, latencyMs: number, timeoutMs: number): void {
    const b = this.bucket(Math.floor(tSendMs / 1000));
    const phase =
      this.phases.length === 0
        ? this.phases
        : this.phases.filter((p) => tSendMs >= p.phase.fromMs && tSendMs < p.phase.toMs);
    if (latencyMs > timeoutMs) {
      this.late++;
      b.late++;
      for (const p of phase) p.late++;
      return;
    }
    const us = Math.max(1, Math.round(latencyMs * US_PER_MS));
    this.answered++;
    this.intervalAnswered++;
    b.answered++;
    this.hist.recordValue(us);
    this.intervalHist.recordValue(us);
    if (b.done === null) {
      b.hist ??= newHistogram(2);
      b.hist.recordValue(us);
    }
    for (const p of phase) {
      p.answered++;
      p.hist.recordValue(us);
    }
  }

  /** Interval figures for a progress report; resets the interval. */
  takeInterval(): { sent: number; answered: number; p99Ms: number | null } {
    const out = {
      sent: this.intervalSent,
      answered: this.intervalAnswered,
      p99Ms: summarize(this.intervalHist).p99Ms,
    };
    this.intervalSent = 0;
    this.intervalAnswered = 0;
    this.intervalHist.reset();
    return out;
  }

  /** Summarise one second (its span clipped at `endMs`) and free its histogram; once. */
  finalize(second: number, endMs = Number.POSITIVE_INFINITY): void {
    const b = this.bucket(second);
    if (b.done) return;
    const lat = b.hist ? summarize(b.hist) : null;
    const spanMs = Math.round(Math.max(0, Math.min(1000, endMs - second * 1000)));
    b.done = {
      second,
      spanMs,
      targetPps:
        Math.round(meanRate(this.schedule, second * 1000, second * 1000 + spanMs) * 10) / 10,
      sent: b.sent,
      answered: b.answered,
      lost: b.sent - b.answered,
      late: b.late,
      p50Ms: lat?.p50Ms ?? null,
      p99Ms: lat?.p99Ms ?? null,
    };
    b.hist?.destroy();
    b.hist = null;
  }

  /** The totals, timeline and phases after the run; frees the histograms. */
  result(sendingMs: number, durationMs: number): TargetResult {
    for (let s = 0; s < this.buckets.length; s++) this.finalize(s, sendingMs);
    const result: TargetResult = {
      name: this.target.name,
      addr: this.target.addr,
      port: this.target.port,
      schedule: describeSchedule(this.schedule),
      scheduled: Math.floor(packetsBetween(this.schedule, 0, Math.min(sendingMs, durationMs))),
      sent: this.sent,
      answered: this.answered,
      lost: this.sent - this.answered,
      late: this.late,
      sendErrors: this.sendErrors,
      servedRatio: this.sent === 0 ? null : this.answered / this.sent,
      latency: summarize(this.hist),
      timeline: this.buckets.map((b) => b.done!),
      phases: this.phases.map((p) => ({
        name: p.phase.name,
        fromMs: p.phase.fromMs,
        toMs: p.phase.toMs,
        sent: p.sent,
        answered: p.answered,
        lost: p.sent - p.answered,
        late: p.late,
        servedRatio: p.sent === 0 ? null : p.answered / p.sent,
        latency: summarize(p.hist),
        ...(p.phase.keepHistogram ? { histogramB64: histogramToB64(p.hist) } : {}),
      })),
    };
    this.hist.destroy();
    this.intervalHist.destroy();
    for (const p of this.phases) p.hist.destroy();
    return result;
  }
}
