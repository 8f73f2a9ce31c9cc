// Waiting for a freshly started packet server (server.ts): a UDP probe and a TCP probe that
// each exchange one request, and the TCP connect with a timeout that the closed-loop
// generator (tcp-load.ts) opens its connections with.
import dgram from "node:dgram";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { decodeReply, encodeRequest, REQUEST_HEADER_BYTES } from "./protocol.ts";
import { encodeRequestFrame, replyReader } from "./tcp-protocol.ts";

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

/** Open one connection; resolves when connected, rejects on error or after timeoutMs. */
export function connect(addr: string, port: number, timeoutMs: number): Promise<net.Socket> {
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
