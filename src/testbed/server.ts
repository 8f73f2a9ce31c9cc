// The packet server that runs inside a partition: UDP request/response where every
// request costs `costRounds` chained SHA-256 hashes, so the CPU a partition is allowed
// decides how many requests per second it can serve. Replies echo the request's id and
// the client's send time (see protocol.ts), so the client measures latency itself.
import { createHash } from "node:crypto";
import dgram from "node:dgram";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { REPLY_BYTES, REQUEST_HEADER_BYTES } from "./protocol.ts";

export interface PacketServerOptions {
  port: number;
  /** Address to bind; default all (inside a namespace that is its one veth and lo). */
  host?: string;
  /** SHA-256 rounds per request (600 costs ~0.2-0.3 ms of CPU on these machines). */
  costRounds: number;
  /** The server closes by itself after this long, whatever happens. */
  maxLifetimeMs: number;
  signal?: AbortSignal;
  now?: () => number;
}

export interface PacketServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Requests answered so far. */
  served(): number;
  /** Malformed (too short) requests ignored so far. */
  ignored(): number;
  close(): Promise<"closed" | "lifetime" | "signal">;
  /** Resolves when the server has closed (signal, close(), or max lifetime). */
  closed: Promise<"closed" | "lifetime" | "signal">;
}

/** `rounds` chained SHA-256 over a 32-byte seed; returns the last digest. */
export function burnRounds(rounds: number, seed: Buffer): Buffer {
  let d = seed;
  for (let i = 0; i < rounds; i++) d = createHash("sha256").update(d).digest();
  return d;
}

export function startPacketServer(opts: PacketServerOptions): Promise<PacketServer> {
  if (!Number.isInteger(opts.costRounds) || opts.costRounds < 0 || opts.costRounds > 1_000_000) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'costRounds' must be an integer within 0..1000000: current value is ${opts.costRounds}`,
    );
  }
  if (!(opts.maxLifetimeMs > 0)) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'maxLifetimeMs' must be > 0: current value is ${opts.maxLifetimeMs}`,
    );
  }
  const now = opts.now ?? Date.now;
  const sock = dgram.createSocket({ type: "udp4" });
  let served = 0;
  let ignored = 0;
  let resolveClosed!: (why: "closed" | "lifetime" | "signal") => void;
  const closed = new Promise<"closed" | "lifetime" | "signal">((r) => {
    resolveClosed = r;
  });
  let closing = false;
  const shut = (why: "closed" | "lifetime" | "signal") => {
    if (closing) return closed;
    closing = true;
    clearTimeout(lifetime);
    opts.signal?.removeEventListener("abort", onAbort);
    sock.close(() => resolveClosed(why));
    return closed;
  };
  const onAbort = () => void shut("signal");
  const lifetime = setTimeout(() => void shut("lifetime"), opts.maxLifetimeMs);
  lifetime.unref?.();

  const seed = Buffer.alloc(32);
  sock.on("message", (msg, rinfo) => {
    if (msg.length < REQUEST_HEADER_BYTES) {
      ignored++;
      return;
    }
    msg.copy(seed, 0, 0, REQUEST_HEADER_BYTES);
    const digest = burnRounds(opts.costRounds, seed);
    const reply = Buffer.allocUnsafe(REPLY_BYTES);
    msg.copy(reply, 0, 0, REQUEST_HEADER_BYTES);
    reply.writeDoubleLE(now(), 16);
    digest.copy(reply, 24, 0, 8);
    served++;
    sock.send(reply, rinfo.port, rinfo.address);
  });
  // A send error (e.g. ENOBUFS) must not kill the server; the client counts the loss.
  sock.on("error", () => {});

  return new Promise((resolve, reject) => {
    const onListenError = (err: Error) =>
      reject(
        new WeirError(ErrorCodes.TESTBED, `packet server cannot bind: ${err.message}`, {
          cause: err,
        }),
      );
    sock.once("error", onListenError);
    sock.bind(opts.port, opts.host, () => {
      sock.off("error", onListenError);
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
      resolve({
        port: sock.address().port,
        served: () => served,
        ignored: () => ignored,
        close: () => shut("closed"),
        closed,
      });
    });
  });
}
