// Reports and directives as UDP datagrams (node:dgram): one datagram per message, never
// blocking, per-source token buckets in front of the verifier. The manager learns where to
// send a partition's directives from the source address of its last verified report
// (or from a fixed address in config).

import dgram from "node:dgram";
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
}

/** The manager's UDP endpoint: receives reports, sends directives. Open with `open()`. */
export class DatagramReportSource implements ReportSource {
  readonly transport = "udp" as const;
  private readonly socket: dgram.Socket;
  private readonly verifier: ReportVerifier;
  private readonly reports: ReportTable;
  private readonly limits: TokenBuckets;
  private readonly agentAddress = new Map<PartitionId, UdpAddress>();
  private readonly now: () => number;
  private received = 0;
  private sendErrors = 0;
  private closed = false;

  private constructor(
    private readonly opts: DatagramReportSourceOptions,
    socket: dgram.Socket,
  ) {
    this.socket = socket;
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
    socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo));
    // A socket error (e.g. ICMP unreachable surfaced on send) must never crash the manager.
    socket.on("error", () => {
      this.sendErrors++;
    });
  }

  static async open(opts: DatagramReportSourceOptions): Promise<DatagramReportSource> {
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
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.received++;
    const nowMs = this.now(); // one clock read per datagram, for the limit, the checks and the table
    const source = `${rinfo.address}:${rinfo.port}`;
    if (!this.limits.take(source, nowMs)) {
      this.verifier.count("rate_limited");
      return;
    }
    const r = this.verifier.verify(msg, nowMs);
    if (r.ok) {
      this.limits.trust(source);
      this.reports.accept(r, nowMs);
      const known = this.agentAddress.get(r.partition);
      if (known === undefined || known.port !== rinfo.port || known.address !== rinfo.address)
        this.agentAddress.set(r.partition, { address: rinfo.address, port: rinfo.port });
    }
  }

  async start(signal: AbortSignal): Promise<void> {
    await aborted(signal);
    this.close();
  }

  latest(): Map<PartitionId, AgentReport> {
    return this.reports.latest();
  }

  rejected(): RejectCounts {
    return this.verifier.rejected();
  }

  accepted(): number {
    return this.verifier.accepted();
  }

  /** Datagrams that reached the socket (accepted + rejected). */
  datagramsReceived(): number {
    return this.received;
  }

  /** Directive sends that failed (asynchronously) and socket errors. */
  errors(): number {
    return this.sendErrors;
  }

  sendDirective(partition: PartitionId, d: Directive): boolean {
    if (this.closed) return false;
    const index = this.opts.keys.index(partition);
    if (index === undefined) return false;
    const to = this.opts.directiveAddresses?.get(partition) ?? this.agentAddress.get(partition);
    if (to === undefined) return false;
    const bytes = encodeDirective(
      {
        partitionIndex: index,
        sequence: this.reports.nextDirectiveSequence(),
        timestampMs: this.now(),
        // the agent writes what it is given: the cap (Infinity = none), weight, idle class
        cpuMillis: d.capCpuMillis,
        weight: d.weight,
        cpuCount: d.cpuCount,
        idle: d.idle,
      },
      this.opts.keys.key(index)!,
    );
    this.socket.send(bytes, to.port, to.address, (err) => {
      if (err) this.sendErrors++;
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
    this.socket.close();
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
