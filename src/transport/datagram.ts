// Reports and directives as UDP datagrams: one datagram per message, never blocking,
// per-source token buckets in front of the verifier. The manager learns where to send a
// partition's directives from the source address of its last verified report (or from a fixed
// address in config). The manager's end reads its socket in batches (recvmmsg through koffi,
// udp-batch.ts) when libc's calls load, and through node:dgram otherwise or with
// WEIR_UDP=dgram; an agent's end is node:dgram.

import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { stepFreeNowMs } from "../core/clock.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Directive, PartitionId } from "../core/model.ts";
import {
  type DirectiveMessage,
  DirectiveVerifier,
  encodeDirective,
  type KeyRing,
  MAX_MESSAGE_BYTES,
  REPORT_BYTES,
  type RejectCounts,
  ReportVerifier,
} from "./codec.ts";
import { TokenBuckets } from "./rate-limit.ts";
import {
  type AgentChannel,
  type AgentReport,
  aborted,
  agentKeyRing,
  type ReportSource,
  ReportTable,
  type StalenessInfo,
} from "./source.ts";
import { BatchUdpSocket, ipv4ToU32, loadSocketCalls, u32ToIpv4 } from "./udp-batch.ts";

/**
 * How the manager's socket is read: "batch" (recvmmsg through koffi, at poll(): when latest()
 * is read, and every DRAIN_EVERY_MS while datagrams keep arriving) or "dgram" (node:dgram, a
 * callback per datagram as it arrives).
 */
export type UdpReceiveBackend = "batch" | "dgram";

/**
 * While datagrams arrive faster than the socket can hold until the next cycle's read (see
 * poll()), the batch socket is polled this often between reads.
 */
export const DRAIN_EVERY_MS = 10;
/**
 * What one report datagram takes of a socket's receive buffer in the kernel's accounting (its
 * truesize: the data and the buffer's own overhead), measured over loopback on Linux 6.18: a
 * stock 212,992-byte SO_RCVBUF (425,984 as the kernel counts it) held 512 reports before it
 * dropped, a 4 MiB one 10,082.
 */
export const DATAGRAM_BUFFER_BYTES = 832;
/** Between two reads the batch socket is let fill to at most this share of its buffer. */
const QUEUE_SHARE = 0.25;
/**
 * An unchanged directive is sent again after this long (default of
 * DatagramReportSourceOptions.directiveRefreshMs): UDP may lose one, and an agent that
 * restarted on the same port would otherwise wait for the next change.
 */
export const DIRECTIVE_REFRESH_MS = 1000;

/**
 * The silence after which an agent takes a directive of lower sequence as a restarted
 * manager's (VerifierOptions.restartAfterMs): three refreshes, so a directive captured earlier
 * and replayed in the quiet after a burst of changed ones (whose short gaps the verifier's
 * recent gap forgets at half weight a minute) is still refused. A manager restarted with its
 * clock stepped back reaches its agents this long after its last directive at most.
 */
export const DIRECTIVE_RESTART_AFTER_MS = 3 * DIRECTIVE_REFRESH_MS;
/** Datagrams one poll reads at most before it lets the event loop run (about 4 ms of work). */
const DRAIN_MAX = 2048;
/** Source names (address:port) kept for the batch path before the cache starts again. */
const SOURCE_CACHE_MAX = 65_536;

export interface UdpAddress {
  address: string;
  port: number;
}

export interface DatagramReportSourceOptions {
  keys: KeyRing;
  /** Where to listen (default 127.0.0.1, port 0 = any free port). */
  bind?: Partial<UdpAddress>;
  /**
   * Per-source limit (source = address:port) for sources whose reports verified, default 200/s
   * with a burst of 50; all other sources share one bucket (default the same rate and burst).
   */
  rateLimit?: {
    ratePerSec: number;
    burst: number;
    unknownRatePerSec?: number;
    unknownBurst?: number;
    maxSources?: number;
  };
  /** Fixed directive addresses per partition (otherwise: the last verified report's source). */
  directiveAddresses?: ReadonlyMap<PartitionId, UdpAddress>;
  /** Socket receive buffer, bytes (default 4 MiB; the kernel caps it at rmem_max). */
  receiveBufferBytes?: number;
  staleAfterMs?: number;
  maxAgeMs?: number;
  maxFutureMs?: number;
  now?: () => number;
  /** Default "batch" where libc's socket calls load (WEIR_UDP=dgram forces "dgram"). */
  receive?: UdpReceiveBackend;
  /**
   * A directive equal on the wire (cap, weight, CPU count, idle class) to the last one sent to
   * the same address is sent again only after this long (default DIRECTIVE_REFRESH_MS; 0: every
   * one is sent). A changed directive or a new address is sent at once.
   */
  directiveRefreshMs?: number;
}

/** The last directive sent to a partition's agent: what it said, where to, when. */
interface SentDirective {
  capCpuMillis: number;
  weight: number;
  cpuCount: number;
  idle: boolean;
  address: string;
  port: number;
  atMs: number;
}

/** The manager's UDP endpoint: receives reports, sends directives. Open with `open()`. */
export class DatagramReportSource implements ReportSource {
  readonly transport = "udp" as const;
  /** node:dgram's socket (the "dgram" backend), or null. */
  private readonly socket: dgram.Socket | null;
  /** The batch socket (the "batch" backend), or null. */
  private readonly batch: BatchUdpSocket | null;
  private readonly verifier: ReportVerifier;
  private readonly reports: ReportTable;
  private readonly limits: TokenBuckets;
  private readonly agentAddress = new Map<PartitionId, UdpAddress>();
  private readonly now: () => number;
  private received = 0;
  private sendErrors = 0;
  private closed = false;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  /** The clock read once per poll (every datagram a poll reads arrived by then). */
  private pollNowMs = 0;
  /** address × 65536 + port → its source name and address (the batch path's senders). */
  private readonly sources = new Map<number, { source: string; address: string }>();
  /** Datagrams the batch socket may hold between two reads (QUEUE_SHARE of its buffer). */
  private readonly queueBound: number;
  /** When the last poll read the socket, when latest() was last read, and the gap before it. */
  private lastPollAtMs = Number.NaN;
  private lastLatestAtMs = Number.NaN;
  private cycleGapMs = Number.NaN;
  private readonly sent = new Map<PartitionId, SentDirective>();
  private directivesSent = 0;

  private constructor(
    private readonly opts: DatagramReportSourceOptions,
    socket: dgram.Socket | BatchUdpSocket,
  ) {
    this.socket = socket instanceof BatchUdpSocket ? null : socket;
    this.batch = socket instanceof BatchUdpSocket ? socket : null;
    // a buffer that could not be read back counts as the stock one (212,992 bytes, doubled)
    const bufferBytes = this.batch?.receiveBufferBytes || 425_984;
    this.queueBound = Math.max(16, Math.floor((bufferBytes / DATAGRAM_BUFFER_BYTES) * QUEUE_SHARE));
    this.now = opts.now ?? stepFreeNowMs;
    this.verifier = new ReportVerifier({
      keys: opts.keys,
      maxAgeMs: opts.maxAgeMs,
      maxFutureMs: opts.maxFutureMs,
      now: this.now,
    });
    this.reports = new ReportTable(opts.keys.ids(), opts.staleAfterMs ?? 3000, this.now);
    const rl = opts.rateLimit ?? { ratePerSec: 200, burst: 50 };
    this.limits = new TokenBuckets({ ...rl, now: this.now });
    if (this.socket !== null) {
      this.socket.on("message", (msg, rinfo) =>
        this.take(
          msg,
          0,
          msg.length,
          `${rinfo.address}:${rinfo.port}`,
          rinfo.address,
          rinfo.port,
          this.now(),
        ),
      );
      // A socket error (e.g. ICMP unreachable surfaced on send) must never crash the manager.
      this.socket.on("error", () => {
        this.sendErrors++;
      });
    }
  }

  static async open(opts: DatagramReportSourceOptions): Promise<DatagramReportSource> {
    const want = opts.receive ?? (process.env.WEIR_UDP === "dgram" ? "dgram" : "batch");
    const calls = want === "batch" ? loadSocketCalls() : null;
    if (calls !== null)
      return new DatagramReportSource(
        opts,
        BatchUdpSocket.open(
          calls,
          await ipv4Of(opts.bind?.address ?? "127.0.0.1", opts.bind?.port ?? 0),
          opts.bind?.port ?? 0,
          opts.receiveBufferBytes ?? 4 * 1024 * 1024,
          MAX_MESSAGE_BYTES + 1,
        ),
      );
    const socket = dgram.createSocket({ type: "udp4", reuseAddr: false });
    await bindSocket(socket, opts.bind?.address ?? "127.0.0.1", opts.bind?.port ?? 0);
    try {
      socket.setRecvBufferSize(opts.receiveBufferBytes ?? 4 * 1024 * 1024);
    } catch {
      // best effort: the kernel default still works, only bursts drop sooner
    }
    return new DatagramReportSource(opts, socket);
  }

  /** The bound address (agents send reports here). */
  address(): UdpAddress {
    if (this.batch !== null) return this.batch.address();
    const a = this.socket!.address();
    return { address: a.address, port: a.port };
  }

  /** How this source reads its socket. */
  backend(): UdpReceiveBackend {
    return this.batch !== null ? "batch" : "dgram";
  }

  /**
   * One datagram, `bytes[at, at + length)` from `address`:`port` (`source` is the two as a
   * name), at `nowMs` (the dgram path reads the clock per datagram, a poll once).
   */
  private take(
    bytes: Uint8Array,
    at: number,
    length: number,
    source: string,
    address: string,
    port: number,
    nowMs: number,
  ): void {
    this.received++;
    if (!this.limits.take(source, nowMs)) {
      this.verifier.count("rate_limited");
      return;
    }
    const r = this.verifier.settle(this.verifier.inspectAt(bytes, at, length, nowMs));
    if (r.ok) {
      this.limits.trust(source);
      this.reports.accept(r, nowMs);
      const known = this.agentAddress.get(r.partition);
      if (known === undefined || known.port !== port || known.address !== address)
        this.agentAddress.set(r.partition, { address, port });
    }
  }

  /** The batch path's callback: the sender's name from the cache, then take(). */
  private readonly onBatchDatagram = (
    bytes: Uint8Array,
    at: number,
    length: number,
    a: number,
    port: number,
  ): void => {
    const key = a * 65536 + port;
    let s = this.sources.get(key);
    if (s === undefined) {
      if (this.sources.size >= SOURCE_CACHE_MAX) this.sources.clear();
      const address = u32ToIpv4(a);
      s = { source: `${address}:${port}`, address };
      this.sources.set(key, s);
    }
    this.take(bytes, at, length, s.source, s.address, port, this.pollNowMs);
  };

  /**
   * Read what the batch socket holds, as the shared-memory source's poll() scans its slots
   * (node:dgram delivers as datagrams come: 0). latest() polls (every manager cycle); the
   * counters report what has been read. A poll that read datagrams leaves the next one due
   * when they come too fast for the socket to hold them until the next cycle (drainDue): every
   * DRAIN_EVERY_MS, at once when it stopped at DRAIN_MAX, so the kernel's buffer is emptied
   * long before it fills. Reports at the pace of agents (100 at 10 a second) wait for the
   * cycle's read and cost no wake-up of their own, nor does an idle socket. Returns the
   * datagrams read.
   */
  poll(): number {
    const batch = this.batch;
    if (batch === null || this.closed) return 0;
    const nowMs = this.now();
    this.pollNowMs = nowMs;
    let n = 0;
    try {
      n = batch.drain(this.onBatchDatagram, DRAIN_MAX);
    } catch {
      this.sendErrors++; // a socket error: counted, never thrown at the manager
    }
    const sinceMs = nowMs - this.lastPollAtMs;
    this.lastPollAtMs = nowMs;
    if (n > 0 && this.pollTimer === null && (n >= DRAIN_MAX || this.drainDue(n, sinceMs, nowMs))) {
      this.pollTimer = setTimeout(this.onPollTimer, n >= DRAIN_MAX ? 0 : DRAIN_EVERY_MS);
      this.pollTimer.unref?.();
    }
    return n;
  }

  /**
   * Whether a poll that read `n` datagrams, `sinceMs` after the one before, must be followed by
   * another before the next cycle's: when, at the rate they came, the socket would hold more
   * than its queue bound (a quarter of its buffer) by the time the next latest() is due (one
   * cycle — the last gap between two latest() reads — after the last). Yes while no cycle is
   * known yet (fewer than two latest() reads) or the next one is already late.
   */
  private drainDue(n: number, sinceMs: number, nowMs: number): boolean {
    const untilCycleMs = this.lastLatestAtMs + this.cycleGapMs - nowMs; // NaN: no cycle yet
    if (!(untilCycleMs > 0)) return true;
    // NaN (no poll before): as if they all came within the last DRAIN_EVERY_MS
    const perMs = n / (Number.isNaN(sinceMs) ? DRAIN_EVERY_MS : Math.max(sinceMs, DRAIN_EVERY_MS));
    return perMs * untilCycleMs > this.queueBound;
  }

  private readonly onPollTimer = (): void => {
    this.pollTimer = null;
    this.poll();
  };

  async start(signal: AbortSignal): Promise<void> {
    await aborted(signal);
    this.close();
  }

  latest(): Map<PartitionId, AgentReport> {
    const nowMs = this.now();
    this.cycleGapMs = nowMs - this.lastLatestAtMs;
    this.lastLatestAtMs = nowMs;
    this.poll();
    return this.reports.latest();
  }

  rejected(): RejectCounts {
    return this.verifier.rejected();
  }

  accepted(): number {
    return this.verifier.accepted();
  }

  /** Datagrams read from the socket so far (accepted + rejected). */
  datagramsReceived(): number {
    return this.received;
  }

  /** Directive sends that failed (asynchronously) and socket errors. */
  errors(): number {
    return this.sendErrors;
  }

  /** Directives sent (a repeat of an unchanged one held back is not counted). */
  directivesSentCount(): number {
    return this.directivesSent;
  }

  /**
   * Sends the directive to the partition's agent, unless it is the one last sent to the same
   * address less than directiveRefreshMs ago (the manager hands every directive every cycle:
   * the agent applies only changes, and each datagram would cost both ends a system call and
   * a wake-up). True when the agent has been sent it (now or then); false as ReportSource says.
   */
  sendDirective(partition: PartitionId, d: Directive): boolean {
    if (this.closed) return false;
    const index = this.opts.keys.index(partition);
    if (index === undefined) return false;
    const to = this.opts.directiveAddresses?.get(partition) ?? this.agentAddress.get(partition);
    if (to === undefined) return false;
    const nowMs = this.now();
    const last = this.sent.get(partition);
    const idle = d.idle === true;
    if (
      last !== undefined &&
      last.capCpuMillis === d.capCpuMillis &&
      last.weight === d.weight &&
      last.cpuCount === d.cpuCount &&
      last.idle === idle &&
      last.port === to.port &&
      last.address === to.address &&
      nowMs - last.atMs < (this.opts.directiveRefreshMs ?? DIRECTIVE_REFRESH_MS)
    )
      return true;
    const record: SentDirective = {
      capCpuMillis: d.capCpuMillis,
      weight: d.weight,
      cpuCount: d.cpuCount,
      idle,
      address: to.address,
      port: to.port,
      atMs: nowMs,
    };
    this.sent.set(partition, record);
    this.directivesSent++;
    // a send that failed is forgotten, so the next cycle's directive goes out again
    const failed = () => {
      this.sendErrors++;
      if (this.sent.get(partition) === record) this.sent.delete(partition);
    };
    const bytes = encodeDirective(
      {
        partitionIndex: index,
        sequence: this.reports.nextDirectiveSequence(),
        timestampMs: nowMs,
        // the agent writes what it is given: the cap (Infinity = none), weight, idle class
        cpuMillis: d.capCpuMillis,
        weight: d.weight,
        cpuCount: d.cpuCount,
        idle: d.idle,
      },
      this.opts.keys.key(index)!,
    );
    if (this.batch !== null) {
      if (!this.batch.send(bytes, to.address, to.port)) failed();
    } else
      this.socket!.send(bytes, to.port, to.address, (err) => {
        if (err) failed();
      });
    return true;
  }

  isStale(partition: PartitionId, nowMs: number): boolean {
    return this.reports.isStale(partition, nowMs);
  }

  staleness(nowMs: number): Map<PartitionId, StalenessInfo> {
    return this.reports.staleness(nowMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.batch?.close();
    this.socket?.close();
  }
}

export interface DatagramAgentChannelOptions {
  partitionIndex: number;
  key: Uint8Array;
  /** The manager's report address. */
  manager: UdpAddress;
  /** Local address to send from and receive directives on (default 0.0.0.0, any port). */
  bind?: Partial<UdpAddress>;
  maxAgeMs?: number;
  maxFutureMs?: number;
  /** Default DIRECTIVE_RESTART_AFTER_MS. */
  restartAfterMs?: number;
  now?: () => number;
}

/** An agent's UDP end: reports to the manager, keeps the newest verified directive. */
export class DatagramAgentChannel implements AgentChannel {
  readonly transport = "udp" as const;
  private readonly verifier: DirectiveVerifier;
  private pending: DirectiveMessage | null = null;
  private sendErrors = 0;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly opts: DatagramAgentChannelOptions,
  ) {
    this.verifier = new DirectiveVerifier({
      keys: agentKeyRing(opts.partitionIndex, opts.key),
      maxAgeMs: opts.maxAgeMs,
      maxFutureMs: opts.maxFutureMs,
      restartAfterMs: opts.restartAfterMs ?? DIRECTIVE_RESTART_AFTER_MS,
      now: opts.now,
    });
    socket.on("message", (msg) => {
      const r = this.verifier.verify(msg);
      if (r.ok && (this.pending === null || r.message.sequence > this.pending.sequence))
        this.pending = r.message;
    });
    socket.on("error", () => {
      this.sendErrors++;
    });
  }

  static async open(opts: DatagramAgentChannelOptions): Promise<DatagramAgentChannel> {
    const socket = dgram.createSocket("udp4");
    await bindSocket(socket, opts.bind?.address ?? "0.0.0.0", opts.bind?.port ?? 0);
    return new DatagramAgentChannel(socket, opts);
  }

  address(): UdpAddress {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  publish(report: Uint8Array): void {
    if (this.closed) return;
    if (report.length !== REPORT_BYTES || report.length > MAX_MESSAGE_BYTES)
      throw new RangeError(`a report is ${REPORT_BYTES} bytes: got ${report.length}`);
    // dgram may read the buffer after send() returns: hand it a private copy.
    this.socket.send(
      Buffer.from(report),
      this.opts.manager.port,
      this.opts.manager.address,
      (err) => {
        if (err) this.sendErrors++;
      },
    );
  }

  pollDirective(): DirectiveMessage | null {
    const d = this.pending;
    this.pending = null;
    return d;
  }

  rejected(): RejectCounts {
    return this.verifier.rejected();
  }

  errors(): number {
    return this.sendErrors;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}

/** An IPv4 literal as given; a name resolved to its first IPv4 address, as node:dgram's bind does. */
async function ipv4Of(address: string, port: number): Promise<string> {
  if (ipv4ToU32(address) !== null) return address;
  try {
    return (await lookup(address, { family: 4 })).address;
  } catch (err) {
    throw new WeirError(
      ErrorCodes.TRANSPORT,
      `cannot bind UDP ${address}:${port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

function bindSocket(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.close();
      reject(
        new WeirError(ErrorCodes.TRANSPORT, `cannot bind UDP ${address}:${port}: ${err.message}`, {
          cause: err,
        }),
      );
    };
    socket.once("error", onError);
    socket.bind(port, address, () => {
      socket.off("error", onError);
      resolve();
    });
  });
}
