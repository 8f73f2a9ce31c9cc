// The accounting of one target of the closed-loop TCP generator (tcp-load.ts): requests by
// send time, replies and latency by arrival time, timeouts by when they were noticed, named
// phases by send time. Pure: no sockets, no clock; runTcpLoad feeds it, tests drive it with
// made-up times.
import type { Histogram } from "hdr-histogram-js";
import {
  histogramToB64,
  type LatencySummary,
  type LoadPhase,
  newHistogram,
  summarize,
  US_PER_MS,
} from "./load-stats.ts";

/** One second of one target. Requests by send time; replies and latency by arrival time. */
export interface TcpSecondStats {
  /** 0 for [0 s, 1 s) after the start. */
  second: number;
  /** Length of the second inside the run (sending time): 1000 except for the last one. */
  spanMs: number;
  /** Requests sent in this second. */
  sent: number;
  /** Replies that arrived in this second (the served rate). */
  answered: number;
  /** Requests that timed out in this second (by the time the timeout was noticed). */
  timedOut: number;
  /** Latency of the replies that arrived in this second. */
  p50Ms: number | null;
  p99Ms: number | null;
}

/** A phase (window by send time): the requests sent in it and what became of them. */
export interface TcpPhaseStats {
  name: string;
  fromMs: number;
  toMs: number;
  sent: number;
  answered: number;
  lost: number;
  timedOut: number;
  servedRatio: number | null;
  /** answered per second of the phase's window (clipped to the sending time). */
  requestsPerSec: number | null;
  latency: LatencySummary;
  /** The phase's latencies (µs) as histogramToB64 encodes them, when the phase asked for it. */
  histogramB64?: string;
}

export interface TcpErrorCounts {
  /** Connection attempts that failed (refused, unreachable, timed out). */
  connect: number;
  /** Connections that ended by error or by the server while a request was in flight. */
  reset: number;
  /** Replies that were malformed or did not match the request in flight. */
  protocol: number;
}

export interface TcpTargetResult {
  name: string;
  addr: string;
  port: number;
  connections: number;
  sent: number;
  answered: number;
  /** sent - answered: timed out, cut by a reset, or unanswered when the drain ended. */
  lost: number;
  timedOut: number;
  errors: TcpErrorCounts;
  /** Connections re-opened after a timeout or an error. */
  reconnects: number;
  servedRatio: number | null;
  /** answered / sending time. */
  requestsPerSec: number;
  latency: LatencySummary;
  timeline: TcpSecondStats[];
  phases: TcpPhaseStats[];
}

interface Bucket {
  sent: number;
  answered: number;
  timedOut: number;
  hist: Histogram | null;
  done: TcpSecondStats | null;
}

interface PhaseState {
  phase: LoadPhase;
  sent: number;
  answered: number;
  timedOut: number;
  hist: Histogram;
}

/**
 * The accounting of one target, on times relative to the run's start (ms). Pure: no
 * sockets, no clock; runTcpLoad feeds it, tests drive it with made-up times.
 */
export class TcpTargetAccount {
  sent = 0;
  answered = 0;
  timedOut = 0;
  readonly errors: TcpErrorCounts = { connect: 0, reset: 0, protocol: 0 };
  reconnects = 0;
  intervalSent = 0;
  intervalAnswered = 0;
  intervalHist = newHistogram(2);
  private readonly hist = newHistogram(3);
  private readonly buckets: Bucket[] = [];
  private readonly phases: PhaseState[];

  constructor(phases: LoadPhase[] = []) {
    this.phases = phases.map((phase) => ({
      phase,
      sent: 0,
      answered: 0,
      timedOut: 0,
      hist: newHistogram(3),
    }));
  }

  private bucket(tMs: number): Bucket {
    const second = Math.max(0, Math.floor(tMs / 1000));
    while (this.buckets.length <= second)
      this.buckets.push({ sent: 0, answered: 0, timedOut: 0, hist: null, done: null });
    return this.buckets[second]!;
  }

  private phasesAt(tSendMs: number): PhaseState[] {
    return this.phases.length === 0
      ? this.phases
      : this.phases.filter((p) => tSendMs >= p.phase.fromMs && tSendMs < p.phase.toMs);
  }

  onSent(tSendMs: number): void {
    this.sent++;
    this.intervalSent++;
    this.bucket(tSendMs).sent++;
    for (const p of this.phasesAt(tSendMs)) p.sent++;
  }

  onReply(tSendMs: number, tReplyMs: number): void {
    const us = Math.max(1, Math.round((tReplyMs - tSendMs) * US_PER_MS));
    this.answered++;
    this.intervalAnswered++;
    this.hist.recordValue(us);
    this.intervalHist.recordValue(us);
    const b = this.bucket(tReplyMs);
    b.answered++;
    if (b.done === null) {
      b.hist ??= newHistogram(2);
      b.hist.recordValue(us);
    }
    for (const p of this.phasesAt(tSendMs)) {
      p.answered++;
      p.hist.recordValue(us);
    }
  }

  onTimeout(tSendMs: number, tNoticedMs: number): void {
    this.timedOut++;
    this.bucket(tNoticedMs).timedOut++;
    for (const p of this.phasesAt(tSendMs)) p.timedOut++;
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

  /** Seconds before `tMs` can gain no more replies: summarise them and free their histograms. */
  finalizeBefore(tMs: number, endMs = Number.POSITIVE_INFINITY): void {
    const upTo = Math.min(this.buckets.length, Math.floor(tMs / 1000));
    for (let s = 0; s < upTo; s++) this.finalize(s, endMs);
  }

  private finalize(second: number, endMs: number): void {
    const b = this.buckets[second]!;
    if (b.done) return;
    const lat = b.hist ? summarize(b.hist) : null;
    b.done = {
      second,
      spanMs: Math.round(Math.max(0, Math.min(1000, endMs - second * 1000))),
      sent: b.sent,
      answered: b.answered,
      timedOut: b.timedOut,
      p50Ms: lat?.p50Ms ?? null,
      p99Ms: lat?.p99Ms ?? null,
    };
    b.hist?.destroy();
    b.hist = null;
  }

  /** The totals, timeline and phases after the run; frees the histograms. */
  result(sendingMs: number): Omit<TcpTargetResult, "name" | "addr" | "port" | "connections"> {
    // Replies in the drain after sending stopped belong to the last second of the timeline.
    const lastSecond = Math.max(0, Math.ceil(sendingMs / 1000) - 1);
    if (this.buckets.length > lastSecond + 1) {
      const tail = this.buckets.splice(lastSecond + 1);
      const last = this.bucket(lastSecond * 1000);
      for (const b of tail) {
        last.sent += b.sent;
        last.answered += b.answered;
        last.timedOut += b.timedOut;
        if (last.done) {
          // already summarised (sending ended exactly on a second): counts only
          last.done.sent = last.sent;
          last.done.answered = last.answered;
          last.done.timedOut = last.timedOut;
        }
        if (b.hist && !last.done) {
          last.hist ??= newHistogram(2);
          last.hist.add(b.hist);
        }
        b.hist?.destroy();
      }
    }
    this.finalizeBefore(Number.POSITIVE_INFINITY, sendingMs);
    const out = {
      sent: this.sent,
      answered: this.answered,
      lost: this.sent - this.answered,
      timedOut: this.timedOut,
      errors: { ...this.errors },
      reconnects: this.reconnects,
      servedRatio: this.sent === 0 ? null : this.answered / this.sent,
      requestsPerSec: sendingMs > 0 ? Math.round((this.answered / sendingMs) * 10_000) / 10 : 0,
      latency: summarize(this.hist),
      timeline: this.buckets.map((b) => b.done!),
      phases: this.phases.map((p) => {
        const spanMs = Math.max(0, Math.min(p.phase.toMs, sendingMs) - p.phase.fromMs);
        return {
          name: p.phase.name,
          fromMs: p.phase.fromMs,
          toMs: p.phase.toMs,
          sent: p.sent,
          answered: p.answered,
          lost: p.sent - p.answered,
          timedOut: p.timedOut,
          servedRatio: p.sent === 0 ? null : p.answered / p.sent,
          requestsPerSec: spanMs > 0 ? Math.round((p.answered / spanMs) * 10_000) / 10 : null,
          latency: summarize(p.hist),
          ...(p.phase.keepHistogram ? { histogramB64: histogramToB64(p.hist) } : {}),
        };
      }),
    };
    this.hist.destroy();
    this.intervalHist.destroy();
    for (const p of this.phases) p.hist.destroy();
    return out;
  }
}
