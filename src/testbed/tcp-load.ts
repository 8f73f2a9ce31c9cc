// Closed-loop TCP load generator: N connections per target, each with one request in
// flight; a connection sends its next request when the reply to the previous one arrives
// (after an optional think time). The offered rate therefore follows what the server
// serves, unlike runLoad's open loop. Counts requests, replies and timeouts, records
// latency (send -> reply, the client's clock) in HDR histograms, a per-second timeline,
// named phases, and the generator's own CPU cost.
//
// Every run is bounded by `durationMs` and by `maxRequests` (total over all targets).
// A request not answered within `timeoutMs` counts as timed out and its connection is
// closed and re-opened (the stream cannot be re-synchronised past a missing reply).
import net from "node:net";
import { performance } from "node:perf_hooks";
import type { Histogram } from "hdr-histogram-js";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  type GeneratorCost,
  type LatencySummary,
  type LoadPhase,
  newHistogram,
  summarize,
  US_PER_MS,
} from "./load.ts";
import { DEFAULT_REQUEST_BYTES, decodeReply, REQUEST_HEADER_BYTES } from "./protocol.ts";
import { encodeRequestFrame, MAX_FRAME_BODY_BYTES, replyReader } from "./tcp-protocol.ts";

export interface TcpLoadTarget {
  name: string;
  addr: string;
  port: number;
  /** Overrides the run's connection count for this target. */
  connections?: number;
}

export interface TcpLoadOptions {
  targets: TcpLoadTarget[];
  /** Connections per target (default 4, within 1..1024). */
  connections?: number;
  /** Pause between a reply and the connection's next request (default 0). */
  thinkMs?: number;
  /** Stop sending after this long. */
  durationMs: number;
  /** Stop sending after this many requests in total. */
  maxRequests: number;
  /** A request unanswered this long times out; its connection is re-opened. Default 2000 ms. */
  timeoutMs?: number;
  /** Opening every connection at the start may take this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Request body bytes (16..65535, default 64). */
  requestBytes?: number;
  phases?: LoadPhase[];
  signal?: AbortSignal;
  /** Called every `reportIntervalMs` with what happened in that interval. */
  onTick?: (progress: TcpLoadProgress) => void;
  reportIntervalMs?: number;
}

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

export interface TcpGeneratorCost extends GeneratorCost {
  /** Generator CPU per answered request (send + receive + accounting), microseconds. */
  cpuMicrosPerRequest: number | null;
}

export interface TcpLoadResult {
  mode: "tcp";
  startedAtEpochMs: number;
  /** How long sending went on. */
  sendingMs: number;
  stoppedBy: "duration" | "maxRequests" | "signal";
  timeoutMs: number;
  thinkMs: number;
  totals: {
    sent: number;
    answered: number;
    lost: number;
    timedOut: number;
    errors: number;
    reconnects: number;
    requestsPerSec: number;
  };
  targets: TcpTargetResult[];
  generator: TcpGeneratorCost;
}

export interface TcpTargetProgress {
  name: string;
  /** Connections open now. */
  open: number;
  sent: number;
  answered: number;
  timedOut: number;
  /** Requests sent per second over the last interval. */
  requestsPerSec: number;
  /** Replies per second over the last interval. */
  repliesPerSec: number;
  /** p99 latency of the replies that arrived in the last interval. */
  p99Ms: number | null;
}

export interface TcpLoadProgress {
  elapsedMs: number;
  intervalMs: number;
  targets: TcpTargetProgress[];
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
        };
      }),
    };
    this.hist.destroy();
    this.intervalHist.destroy();
    for (const p of this.phases) p.hist.destroy();
    return out;
  }
}

function validate(opts: TcpLoadOptions): void {
  const bad = (field: string, rule: string, v: unknown): never => {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'${field}' ${rule}: current value is ${JSON.stringify(v)}`,
    );
  };
  const connOk = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1024;
  if (opts.targets.length === 0) bad("targets", "must name at least one target", opts.targets);
  if (!(opts.durationMs > 0 && Number.isFinite(opts.durationMs)))
    bad("durationMs", "must be > 0", opts.durationMs);
  if (!(Number.isInteger(opts.maxRequests) && opts.maxRequests > 0))
    bad("maxRequests", "must be a positive integer", opts.maxRequests);
  if (opts.connections !== undefined && !connOk(opts.connections))
    bad("connections", "must be an integer within 1..1024", opts.connections);
  for (const t of opts.targets) {
    if (t.connections !== undefined && !connOk(t.connections))
      bad(`targets.${t.name}.connections`, "must be an integer within 1..1024", t.connections);
    if (!(Number.isInteger(t.port) && t.port > 0 && t.port < 65_536))
      bad(`targets.${t.name}.port`, "must be an integer within 1..65535", t.port);
  }
  if (opts.thinkMs !== undefined && !(opts.thinkMs >= 0 && opts.thinkMs <= 60_000))
    bad("thinkMs", "must be within 0..60000", opts.thinkMs);
  if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0 && Number.isFinite(opts.timeoutMs)))
    bad("timeoutMs", "must be > 0", opts.timeoutMs);
  const rb = opts.requestBytes;
  if (
    rb !== undefined &&
    !(Number.isInteger(rb) && rb >= REQUEST_HEADER_BYTES && rb <= MAX_FRAME_BODY_BYTES)
  )
    bad("requestBytes", `must be an integer within 16..${MAX_FRAME_BODY_BYTES}`, rb);
}

interface InFlight {
  seq: number;
  sentAt: number;
}

/** Open one connection; resolves when connected, rejects on error or after timeoutMs. */
function connect(addr: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: addr, port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect to ${addr}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once("error", (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    });
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.removeAllListeners("error");
      // Until the caller attaches its own handlers (maybe several event-loop turns later,
      // while other connections open), an error must not throw; "close" then tells.
      sock.on("error", () => {});
      resolve(sock);
    });
  });
}

/** Run closed-loop TCP load against the targets; resolves after sending stopped and replies drained. */
export async function runTcpLoad(opts: TcpLoadOptions): Promise<TcpLoadResult> {
  validate(opts);
  const thinkMs = opts.thinkMs ?? 0;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const reportIntervalMs = opts.reportIntervalMs ?? 1000;
  const requestBytes = opts.requestBytes ?? DEFAULT_REQUEST_BYTES;
  const phases = opts.phases ?? [];
  const runBase = (Math.random() * 0xffffffff) >>> 0;

  const targets = opts.targets.map((t, i) => ({
    target: t,
    connections: t.connections ?? opts.connections ?? 4,
    runId: (runBase + i) >>> 0,
    account: new TcpTargetAccount(phases),
    seq: 0,
  }));
  type Tgt = (typeof targets)[number];

  // Open every connection first, so the run measures requests, not handshakes.
  const initial: net.Socket[][] = targets.map(() => []);
  try {
    await Promise.all(
      targets.map(async (t, ti) => {
        for (let c = 0; c < t.connections; c++) {
          initial[ti]!.push(await connect(t.target.addr, t.target.port, connectTimeoutMs));
        }
      }),
    );
  } catch (err) {
    for (const s of initial.flat()) s.destroy();
    throw new WeirError(
      ErrorCodes.TESTBED,
      `cannot open the TCP connections: ${(err as Error).message}`,
      { cause: err },
    );
  }

  const startedAtEpochMs = Date.now();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const rel = (at: number) => at - start;
  let totalSent = 0;
  let sending = true;
  let stoppedBy: TcpLoadResult["stoppedBy"] = "duration";
  let sendingEnd = 0;
  let finishSending: () => void = () => {};
  const sendingDone = new Promise<void>((r) => {
    finishSending = r;
  });
  const stopSending = (why: TcpLoadResult["stoppedBy"]) => {
    if (!sending) return;
    sending = false;
    stoppedBy = why;
    sendingEnd = performance.now();
    finishSending();
  };

  class Conn {
    sock: net.Socket | null = null;
    inflight: InFlight | null = null;
    think: NodeJS.Timeout | null = null;
    closed = false;

    constructor(readonly t: Tgt) {}

    attach(sock: net.Socket): void {
      this.sock = sock;
      if (sock.destroyed || sock.readyState !== "open") {
        this.fail("reset");
        return;
      }
      const reader = replyReader();
      sock.on("data", (chunk: Buffer) => {
        if (this.sock !== sock) return;
        const { frames, error } = reader.push(chunk);
        for (const body of frames) this.onReply(body);
        if (error) this.fail("protocol");
      });
      sock.on("error", () => {});
      sock.on("close", () => {
        if (this.sock === sock) this.fail("reset");
      });
      this.sendNext();
    }

    sendNext(): void {
      this.think = null;
      if (!sending || this.closed || !this.sock || this.inflight) return;
      if (totalSent >= opts.maxRequests) {
        stopSending("maxRequests");
        return;
      }
      const seq = this.t.seq++ >>> 0;
      const sentAt = performance.now();
      this.inflight = { seq, sentAt };
      totalSent++;
      this.t.account.onSent(rel(sentAt));
      this.sock.write(encodeRequestFrame(this.t.runId, seq, sentAt, requestBytes));
      if (totalSent >= opts.maxRequests) stopSending("maxRequests");
    }

    onReply(body: Buffer): void {
      const at = performance.now();
      const r = decodeReply(body);
      const f = this.inflight;
      if (!r || !f || r.runId !== this.t.runId || r.seq !== f.seq) {
        this.fail("protocol");
        return;
      }
      this.inflight = null;
      this.t.account.onReply(rel(f.sentAt), rel(at));
      if (!sending) return;
      if (thinkMs > 0) this.think = setTimeout(() => this.sendNext(), thinkMs);
      else this.sendNext();
    }

    /** Drop the connection (counting what it cut) and, while sending goes on, open a new one. */
    fail(kind: "reset" | "protocol" | "timeout"): void {
      const sock = this.sock;
      this.sock = null;
      sock?.destroy();
      if (this.inflight) {
        if (kind === "timeout")
          this.t.account.onTimeout(rel(this.inflight.sentAt), rel(performance.now()));
        else this.t.account.errors[kind]++;
        this.inflight = null;
      } else if (kind === "protocol") this.t.account.errors.protocol++;
      if (this.think) clearTimeout(this.think);
      this.think = null;
      if (!sending || this.closed) return;
      this.t.account.reconnects++;
      void this.reopen();
    }

    async reopen(): Promise<void> {
      while (sending && !this.closed) {
        try {
          const sock = await connect(
            this.t.target.addr,
            this.t.target.port,
            Math.min(connectTimeoutMs, timeoutMs),
          );
          if (!sending || this.closed) {
            sock.destroy();
            return;
          }
          this.attach(sock);
          return;
        } catch {
          this.t.account.errors.connect++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }

    close(): void {
      this.closed = true;
      if (this.think) clearTimeout(this.think);
      const sock = this.sock;
      this.sock = null;
      sock?.destroy();
    }
  }

  const conns: Conn[] = [];
  targets.forEach((t, ti) => {
    for (const sock of initial[ti]!) {
      const c = new Conn(t);
      conns.push(c);
      c.attach(sock);
    }
  });

  // Periodic: time out stuck requests, report progress, end the run at its duration.
  let lastReportT = 0;
  const report = (t: number) => {
    const intervalMs = t - lastReportT;
    lastReportT = t;
    for (const tg of targets) tg.account.finalizeBefore(t);
    const perSec = intervalMs > 0 ? 1000 / intervalMs : 0;
    const progress: TcpLoadProgress = {
      elapsedMs: Math.round(t),
      intervalMs: Math.round(intervalMs),
      targets: targets.map((tg) => {
        const i = tg.account.takeInterval();
        return {
          name: tg.target.name,
          open: conns.filter((c) => c.t === tg && c.sock !== null).length,
          sent: tg.account.sent,
          answered: tg.account.answered,
          timedOut: tg.account.timedOut,
          requestsPerSec: Math.round(i.sent * perSec),
          repliesPerSec: Math.round(i.answered * perSec),
          p99Ms: i.p99Ms,
        };
      }),
    };
    if (!opts.onTick) return;
    try {
      opts.onTick(progress);
    } catch {
      // a broken progress callback must not stop the load
    }
  };
  const sweep = () => {
    const nowMs = performance.now();
    for (const c of conns)
      if (c.inflight && nowMs - c.inflight.sentAt > timeoutMs) c.fail("timeout");
  };
  const sweepMs = Math.max(5, Math.min(100, timeoutMs / 4));
  const timer = setInterval(() => {
    const nowMs = performance.now();
    const t = rel(nowMs);
    sweep();
    if (sending && t - lastReportT >= reportIntervalMs) report(t);
    if (sending && t >= opts.durationMs) stopSending("duration");
  }, sweepMs);
  const onAbort = () => stopSending("signal");
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });

  await sendingDone;
  opts.signal?.removeEventListener("abort", onAbort);
  const sendingMs = sendingEnd - start;
  // Drain: replies to the requests in flight, until each is answered or timed out (the sweep).
  while (conns.some((c) => c.inflight !== null)) await new Promise((r) => setTimeout(r, 5));
  clearInterval(timer);
  for (const c of conns) c.close();
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  if (opts.onTick) report(Math.max(sendingMs, lastReportT));

  const results: TcpTargetResult[] = targets.map((tg) => ({
    name: tg.target.name,
    addr: tg.target.addr,
    port: tg.target.port,
    connections: tg.connections,
    ...tg.account.result(sendingMs),
  }));
  const sum = (f: (t: TcpTargetResult) => number) => results.reduce((a, t) => a + f(t), 0);
  const answered = sum((t) => t.answered);
  const sent = sum((t) => t.sent);
  const cpuMicros = cpu.user + cpu.system;
  return {
    mode: "tcp",
    startedAtEpochMs,
    sendingMs: Math.round(sendingMs),
    stoppedBy,
    timeoutMs,
    thinkMs,
    totals: {
      sent,
      answered,
      lost: sum((t) => t.lost),
      timedOut: sum((t) => t.timedOut),
      errors: sum((t) => t.errors.connect + t.errors.reset + t.errors.protocol),
      reconnects: sum((t) => t.reconnects),
      requestsPerSec: sendingMs > 0 ? Math.round((answered / sendingMs) * 10_000) / 10 : 0,
    },
    targets: results,
    generator: {
      wallMs: Math.round(wallMs),
      cpuUserMs: Math.round(cpu.user / 1000),
      cpuSystemMs: Math.round(cpu.system / 1000),
      cpuCores: Math.round((cpuMicros / 1000 / wallMs) * 1000) / 1000,
      cpuMicrosPer1000Packets: sent === 0 ? null : Math.round((cpuMicros / sent) * 1000),
      cpuMicrosPerRequest: answered === 0 ? null : Math.round((cpuMicros / answered) * 10) / 10,
    },
  };
}

/** Open one TCP connection and exchange one request until the server answers (true) or `timeoutMs` passes. */
export async function probeTcpServer(
  addr: string,
  port: number,
  opts: { timeoutMs: number; everyMs?: number },
): Promise<boolean> {
  const deadline = performance.now() + opts.timeoutMs;
  while (performance.now() < deadline) {
    const left = deadline - performance.now();
    try {
      const sock = await connect(addr, port, Math.max(1, left));
      const ok = await new Promise<boolean>((resolve) => {
        const reader = replyReader();
        const timer = setTimeout(() => resolve(false), Math.max(1, deadline - performance.now()));
        sock.on("data", (chunk: Buffer) => {
          const { frames } = reader.push(chunk);
          if (frames.length > 0) {
            clearTimeout(timer);
            resolve(decodeReply(frames[0]!)?.seq === 1);
          }
        });
        sock.on("error", () => {});
        sock.on("close", () => {
          clearTimeout(timer);
          resolve(false);
        });
        sock.write(encodeRequestFrame(0, 1, performance.now(), REQUEST_HEADER_BYTES));
      });
      sock.destroy();
      if (ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 200));
  }
  return false;
}
