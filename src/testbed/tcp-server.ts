// The closed-loop side of the packet server: TCP, length-framed requests (tcp-protocol.ts),
// each costing `costRounds` chained SHA-256 hashes like the UDP server's, one reply per
// request in order. Bad input (wrong magic, a body too short or over the limit) closes
// that connection and is counted; the server keeps running. It closes by itself after
// `maxLifetimeMs`, destroying the connections still open.
import net from "node:net";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { REPLY_BYTES, REQUEST_HEADER_BYTES } from "./protocol.ts";
import { burnRounds } from "./server.ts";
import {
  DEFAULT_MAX_REQUEST_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  MAX_FRAME_BODY_BYTES,
  requestReader,
} from "./tcp-protocol.ts";

export interface TcpServerOptions {
  port: number;
  /** Address to bind; default all. */
  host?: string;
  /** SHA-256 rounds per request, as the UDP server. */
  costRounds: number;
  /** The server closes by itself after this long, whatever happens. */
  maxLifetimeMs: number;
  /** Largest request body accepted (default 4096, at most 65535). */
  maxRequestBytes?: number;
  /** Connections open at once; more are refused by the kernel's accept path (default 1024). */
  maxConnections?: number;
  signal?: AbortSignal;
  now?: () => number;
}

export type CloseReason = "closed" | "lifetime" | "signal";

export interface TcpServerStats {
  /** Requests answered. */
  served: number;
  /** Connections closed because of bad input (bad magic, too short, too long). */
  badFrames: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections open now. */
  open: number;
}

export interface TcpServer {
  port: number;
  stats(): TcpServerStats;
  close(): Promise<CloseReason>;
  closed: Promise<CloseReason>;
}

function checkOptions(opts: TcpServerOptions): void {
  const bad = (field: string, rule: string, v: unknown): never => {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'${field}' ${rule}: current value is ${JSON.stringify(v)}`,
    );
  };
  if (!Number.isInteger(opts.costRounds) || opts.costRounds < 0 || opts.costRounds > 1_000_000)
    bad("costRounds", "must be an integer within 0..1000000", opts.costRounds);
  if (!(opts.maxLifetimeMs > 0)) bad("maxLifetimeMs", "must be > 0", opts.maxLifetimeMs);
  const m = opts.maxRequestBytes;
  if (
    m !== undefined &&
    !(Number.isInteger(m) && m >= REQUEST_HEADER_BYTES && m <= MAX_FRAME_BODY_BYTES)
  )
    bad("maxRequestBytes", `must be an integer within 16..${MAX_FRAME_BODY_BYTES}`, m);
  const c = opts.maxConnections;
  if (c !== undefined && !(Number.isInteger(c) && c > 0))
    bad("maxConnections", "must be a positive integer", c);
}

/** The reply frame for one request body (digest over the body's 16-byte header, zero-padded to 32). */
export function replyFrameFor(body: Buffer, costRounds: number, nowMs: number): Buffer {
  const seed = Buffer.alloc(32);
  body.copy(seed, 0, 0, REQUEST_HEADER_BYTES);
  const digest = burnRounds(costRounds, seed);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + REPLY_BYTES);
  out.writeUInt16LE(FRAME_MAGIC, 0);
  out.writeUInt16LE(REPLY_BYTES, 2);
  body.copy(out, FRAME_HEADER_BYTES, 0, REQUEST_HEADER_BYTES);
  out.writeDoubleLE(nowMs, FRAME_HEADER_BYTES + 16);
  digest.copy(out, FRAME_HEADER_BYTES + 24, 0, 8);
  return out;
}

export function startTcpServer(opts: TcpServerOptions): Promise<TcpServer> {
  checkOptions(opts);
  const now = opts.now ?? Date.now;
  const maxRequestBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const stats: TcpServerStats = { served: 0, badFrames: 0, accepted: 0, open: 0 };
  const sockets = new Set<net.Socket>();
  let closing = false;

  const server = net.createServer({ noDelay: true }, (sock) => {
    if (closing) {
      sock.destroy();
      return;
    }
    stats.accepted++;
    stats.open++;
    sockets.add(sock);
    const reader = requestReader(maxRequestBytes);
    sock.on("data", (chunk: Buffer) => {
      if (reader.error) return; // already closing after bad input
      const { frames, error } = reader.push(chunk);
      // Answer the complete frames that came before any bad one, then close.
      for (const body of frames) {
        sock.write(replyFrameFor(body, opts.costRounds, now()));
        stats.served++;
      }
      if (error) {
        stats.badFrames++;
        sock.destroySoon(); // flush the replies already written, then close
      }
    });
    // Resets, EPIPE: that connection ends, the server goes on.
    sock.on("error", () => {});
    sock.on("close", () => {
      stats.open--;
      sockets.delete(sock);
    });
  });
  server.maxConnections = opts.maxConnections ?? 1024;

  let resolveClosed!: (why: CloseReason) => void;
  const closed = new Promise<CloseReason>((r) => {
    resolveClosed = r;
  });
  const shut = (why: CloseReason): Promise<CloseReason> => {
    if (closing) return closed;
    closing = true;
    clearTimeout(lifetime);
    opts.signal?.removeEventListener("abort", onAbort);
    server.close(() => resolveClosed(why));
    for (const s of sockets) s.destroy();
    return closed;
  };
  const onAbort = () => void shut("signal");
  const lifetime = setTimeout(() => void shut("lifetime"), opts.maxLifetimeMs);
  lifetime.unref?.();
  server.on("error", () => {});

  return new Promise((resolve, reject) => {
    const onListenError = (err: Error) => {
      clearTimeout(lifetime);
      reject(
        new WeirError(ErrorCodes.TESTBED, `TCP packet server cannot listen: ${err.message}`, {
          cause: err,
        }),
      );
    };
    server.once("error", onListenError);
    server.listen({ port: opts.port, host: opts.host, backlog: 511 }, () => {
      server.off("error", onListenError);
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
      const addr = server.address();
      resolve({
        port: typeof addr === "object" && addr ? addr.port : opts.port,
        stats: () => ({ ...stats }),
        close: () => shut("closed"),
        closed,
      });
    });
  });
}
