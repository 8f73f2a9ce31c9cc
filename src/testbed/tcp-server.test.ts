import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { decodeReply } from "./protocol.ts";
import { burnRounds } from "./server.ts";
import { encodeFrame, encodeRequestFrame, replyReader } from "./tcp-protocol.ts";
import { startTcpServer, type TcpServer } from "./tcp-server.ts";

const servers: TcpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Connect, write `bytes`, collect reply bodies until `want` arrived or the server closed (2 s at most). */
async function exchange(
  port: number,
  bytes: Buffer,
  want: number,
): Promise<{ replies: Buffer[]; closedByServer: boolean }> {
  const sock = net.connect({ port, host: "127.0.0.1" });
  const reader = replyReader();
  const replies: Buffer[] = [];
  try {
    return await new Promise((resolve) => {
      const t = setTimeout(() => resolve({ replies, closedByServer: false }), 2000);
      sock.on("data", (c: Buffer) => {
        replies.push(...reader.push(c).frames.map((f) => Buffer.from(f)));
        if (replies.length >= want) {
          clearTimeout(t);
          resolve({ replies, closedByServer: false });
        }
      });
      sock.on("error", () => {});
      sock.on("close", () => {
        clearTimeout(t);
        resolve({ replies, closedByServer: true });
      });
      sock.write(bytes);
    });
  } finally {
    sock.destroy();
  }
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe("TCP packet server (loopback)", () => {
  it("answers pipelined requests in order, each after costRounds of SHA-256", async () => {
    const s = await startTcpServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 10,
      maxLifetimeMs: 20_000,
      now: () => 99.5,
    });
    servers.push(s);
    const reqs = [1, 2, 3].map((seq) => encodeRequestFrame(0xabc, seq, seq * 1.5, 64));
    const { replies } = await exchange(s.port, Buffer.concat(reqs), 3);
    expect(replies.map((r) => decodeReply(r))).toEqual(
      [1, 2, 3].map((seq) => ({ runId: 0xabc, seq, clientSendMs: seq * 1.5, serverSendMs: 99.5 })),
    );
    const seed = Buffer.alloc(32);
    reqs[0]!.copy(seed, 0, 4, 20);
    expect(replies[0]!.subarray(24, 32)).toEqual(burnRounds(10, seed).subarray(0, 8));
    expect(s.stats()).toMatchObject({ served: 3, badFrames: 0, accepted: 1 });
  });

  it("closes a connection on garbage or an oversized frame, counts it, and keeps serving others", async () => {
    const s = await startTcpServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 1,
      maxLifetimeMs: 20_000,
      maxRequestBytes: 128,
    });
    servers.push(s);
    const garbage = await exchange(s.port, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
    expect(garbage).toEqual({ replies: [], closedByServer: true });
    // a good request then an oversized header: the good one is answered, then the close
    const mixed = await exchange(
      s.port,
      Buffer.concat([encodeRequestFrame(1, 1, 0, 16), encodeFrame(Buffer.alloc(129))]),
      2,
    );
    expect(mixed.replies.length).toBe(1);
    expect(mixed.closedByServer).toBe(true);
    const short = await exchange(s.port, encodeFrame(Buffer.alloc(8)), 1);
    expect(short).toEqual({ replies: [], closedByServer: true });
    const good = await exchange(s.port, encodeRequestFrame(2, 5, 0, 128), 1);
    expect(decodeReply(good.replies[0]!)?.seq).toBe(5);
    await until(() => s.stats().open === 0);
    expect(s.stats()).toEqual({ served: 2, badFrames: 3, accepted: 4, open: 0 });
  });

  it("ends at its max lifetime (dropping open connections) and on its signal", async () => {
    const a = await startTcpServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 1,
      maxLifetimeMs: 300,
    });
    const held = net.connect({ port: a.port, host: "127.0.0.1" });
    held.on("error", () => {});
    const heldClosed = new Promise((r) => held.on("close", r));
    expect(await a.closed).toBe("lifetime");
    await heldClosed;
    const ac = new AbortController();
    const b = await startTcpServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 1,
      maxLifetimeMs: 60_000,
      signal: ac.signal,
    });
    ac.abort();
    expect(await b.closed).toBe("signal");
  });

  it("rejects bad options naming field, rule and value", () => {
    expect(() => startTcpServer({ port: 0, costRounds: -1, maxLifetimeMs: 1 })).toThrow(
      "'costRounds' must be an integer within 0..1000000: current value is -1",
    );
    expect(() =>
      startTcpServer({ port: 0, costRounds: 1, maxLifetimeMs: 1, maxRequestBytes: 8 }),
    ).toThrow("'maxRequestBytes' must be an integer within 16..65535: current value is 8");
  });
});
