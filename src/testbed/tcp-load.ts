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
import type net from "node:net";
import { performance } from "node:perf_hooks";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { badOption, type GeneratorCost, generatorCost, type LoadPhase } from "./load-stats.ts";
import { connect } from "./probe.ts";
import { DEFAULT_REQUEST_BYTES, decodeReply, REQUEST_HEADER_BYTES } from "./protocol.ts";
import { TcpTargetAccount, type TcpTargetResult } from "./tcp-account.ts";
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

function validate(opts: TcpLoadOptions): void {
  const bad = badOption;
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
      ...generatorCost(cpu, wallMs, sent),
      cpuMicrosPerRequest: answered === 0 ? null : Math.round((cpuMicros / answered) * 10) / 10,
    },
  };
}
