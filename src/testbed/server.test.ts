import { createHash } from "node:crypto";
import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { decodeReply, encodeRequest, REPLY_BYTES } from "./protocol.ts";
import { burnRounds, type PacketServer, startPacketServer } from "./server.ts";

const servers: PacketServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Send one datagram from a fresh socket and resolve with the first reply (or null after 2 s). */
async function ask(port: number, payload: Buffer): Promise<Buffer | null> {
  const sock = dgram.createSocket("udp4");
  try {
    return await new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), 2000);
      sock.once("message", (m) => {
        clearTimeout(t);
        resolve(m);
      });
      sock.send(payload, port, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
}

describe("burnRounds", () => {
  it("is SHA-256 chained rounds times", () => {
    const seed = Buffer.alloc(32, 7);
    const once = createHash("sha256").update(seed).digest();
    const twice = createHash("sha256").update(once).digest();
    expect(burnRounds(2, seed)).toEqual(twice);
    expect(burnRounds(0, seed)).toEqual(seed);
  });
});

describe("packet server (loopback)", () => {
  it("echoes the request's id and client time, adds its own time; ignores short requests", async () => {
    const s = await startPacketServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 10,
      maxLifetimeMs: 20_000,
      now: () => 1234.5,
    });
    servers.push(s);
    const req = encodeRequest(Buffer.alloc(64), 0xdeadbeef, 77, 42.25);
    const reply = await ask(s.port, req);
    expect(reply?.length).toBe(REPLY_BYTES);
    expect(decodeReply(reply!)).toEqual({
      runId: 0xdeadbeef,
      seq: 77,
      clientSendMs: 42.25,
      serverSendMs: 1234.5,
    });
    // the digest of 10 rounds over the 16-byte header padded to 32 bytes
    const seed = Buffer.alloc(32);
    req.copy(seed, 0, 0, 16);
    expect(reply!.subarray(24, 32)).toEqual(burnRounds(10, seed).subarray(0, 8));
    expect(await ask(s.port, Buffer.alloc(8))).toBeNull();
    expect([s.served(), s.ignored()]).toEqual([1, 1]);
  });

  it("closes on its signal and after its max lifetime", async () => {
    const ac = new AbortController();
    const a = await startPacketServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 1,
      maxLifetimeMs: 60_000,
      signal: ac.signal,
    });
    ac.abort();
    expect(await a.closed).toBe("signal");
    const b = await startPacketServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 1,
      maxLifetimeMs: 100,
    });
    expect(await b.closed).toBe("lifetime");
  });

  it("rejects bad options with the field and value", () => {
    expect(() => startPacketServer({ port: 0, costRounds: -1, maxLifetimeMs: 1000 })).toThrow(
      /'costRounds'.*-1/,
    );
    expect(() => startPacketServer({ port: 0, costRounds: 1, maxLifetimeMs: 0 })).toThrow(
      /'maxLifetimeMs'/,
    );
  });
});
