import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import {
  BATCH,
  BatchUdpSocket,
  ipv4ToU32,
  loadSocketCalls,
  type OnDatagram,
  u32ToIpv4,
} from "./udp-batch.ts";

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe("IPv4 addresses as 32 bits", () => {
  it("reads dotted quads and refuses anything else", () => {
    expect(ipv4ToU32("127.0.0.1")).toBe(0x7f000001);
    expect(ipv4ToU32("0.0.0.0")).toBe(0);
    expect(ipv4ToU32("255.255.255.255")).toBe(0xffffffff);
    expect(ipv4ToU32("198.18.0.1")).toBe(0xc6120001);
    for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "localhost", "::1", "", " 1.2.3.4"])
      expect(ipv4ToU32(bad), bad).toBeNull();
  });

  it("writes them back", () => {
    for (const a of ["127.0.0.1", "0.0.0.0", "255.255.255.255", "198.18.0.1", "10.1.200.3"])
      expect(u32ToIpv4(ipv4ToU32(a)!)).toBe(a);
  });
});

describe.skipIf(loadSocketCalls() === null)("a UDP socket read in batches", () => {
  async function sender(): Promise<dgram.Socket> {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    closers.push(() => s.close());
    return s;
  }
  const send = (s: dgram.Socket, b: Uint8Array, port: number) =>
    new Promise<void>((r) => s.send(b, port, "127.0.0.1", () => r()));
  /** Drain until `n` datagrams were read (a busy machine may deliver loopback late), 3 s at most. */
  async function drainUntil(sock: BatchUdpSocket, n: number, on: OnDatagram = () => {}) {
    let read = 0;
    for (const t0 = Date.now(); read < n && Date.now() - t0 < 3000; ) {
      read += sock.drain(on, 10_000);
      if (read < n) await new Promise((r) => setTimeout(r, 5));
    }
    return read;
  }
  const open = () => {
    const sock = BatchUdpSocket.open(loadSocketCalls()!, "127.0.0.1", 0, 1 << 20, 17);
    closers.push(() => sock.close());
    return sock;
  };

  it("reads every queued datagram, in order, with its sender, capped at its slot", async () => {
    const sock = open();
    const { address, port } = sock.address();
    expect(address).toBe("127.0.0.1");
    expect(port).toBeGreaterThan(0);
    const s = await sender();
    const n = 2 * BATCH + 5;
    for (let i = 0; i < n; i++) await send(s, Uint8Array.of(i & 255, 1, 2), port);
    await send(s, new Uint8Array(100).fill(9), port); // longer than the 17-byte slot
    await send(s, new Uint8Array(0), port);
    const got: Array<{ first: number; length: number; from: string }> = [];
    const read = await drainUntil(sock, n + 2, (bytes, at, length, a, p) => {
      got.push({ first: length > 0 ? bytes[at]! : -1, length, from: `${u32ToIpv4(a)}:${p}` });
    });
    expect(read).toBe(n + 2);
    const from = `127.0.0.1:${s.address().port}`;
    for (let i = 0; i < n; i++) expect(got[i]).toEqual({ first: i & 255, length: 3, from });
    expect(got[n]).toEqual({ first: 9, length: 17, from });
    expect(got[n + 1]).toEqual({ first: -1, length: 0, from });
    expect(sock.drain(() => {}, 10_000)).toBe(0); // nothing left: never blocks
  });

  it("stops at its limit in whole batches and leaves the rest queued", async () => {
    const sock = open();
    const s = await sender();
    for (let i = 0; i < 3 * BATCH; i++) await send(s, Uint8Array.of(1), sock.address().port);
    await new Promise((r) => setTimeout(r, 50)); // let the loopback queue them all
    expect(sock.drain(() => {}, 1)).toBe(BATCH);
    expect(await drainUntil(sock, 2 * BATCH)).toBe(2 * BATCH);
  });

  it("sends from its own address, and reads nothing after close", async () => {
    const sock = open();
    const s = await sender();
    const got = new Promise<{ msg: Buffer; port: number }>((r) =>
      s.once("message", (msg, rinfo) => r({ msg, port: rinfo.port })),
    );
    expect(sock.send(Uint8Array.of(7, 7), "127.0.0.1", s.address().port)).toBe(true);
    expect(await got).toEqual({ msg: Buffer.from([7, 7]), port: sock.address().port });
    expect(sock.send(Uint8Array.of(1), "not-an-address", 9)).toBe(false);
    sock.close();
    expect(sock.drain(() => {}, 10)).toBe(0);
    expect(sock.send(Uint8Array.of(1), "127.0.0.1", 9)).toBe(false);
  });

  it("says why it cannot bind, naming the address", () => {
    const a = open();
    expect(() =>
      BatchUdpSocket.open(loadSocketCalls()!, "127.0.0.1", a.address().port, 0, 17),
    ).toThrow(
      new RegExp(
        `cannot bind UDP 127\\.0\\.0\\.1:${a.address().port}: bind: Address already in use`,
      ),
    );
    expect(() => BatchUdpSocket.open(loadSocketCalls()!, "example.org", 0, 0, 17)).toThrow(
      /cannot bind UDP example\.org:0: the address must be an IPv4 literal/,
    );
  });
});
