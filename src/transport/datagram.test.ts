import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import { encodeDirective, encodeReport, KeyRing, type ReportMessage } from "./codec.ts";
import { eventually, KEY_DB, KEY_WEB } from "./contract.ts";
import {
  DatagramAgentChannel,
  DatagramReportSource,
  DIRECTIVE_REFRESH_MS,
  DIRECTIVE_RESTART_AFTER_MS,
} from "./datagram.ts";

/** `src` after it read what its socket holds (its counters say what has been read). */
const polled = (src: DatagramReportSource) => {
  src.poll();
  return src;
};

const keys = new KeyRing([
  { index: 0, id: "web", key: KEY_WEB },
  { index: 1, id: "db", key: KEY_DB },
]);
let seq = 1;
const report = (over: Partial<ReportMessage> = {}): ReportMessage => ({
  partitionIndex: 0,
  sequence: seq++,
  timestampMs: Date.now(),
  rxPackets: 1,
  txPackets: 1,
  droppedPackets: 0,
  cpuUsageNs: 1,
  nrPeriods: 0,
  nrThrottled: 0,
  throttledNs: 0,
  velocityPacketsPerCpuSec: null,
  velocityWindowMs: 0,
  ...over,
});

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** db's agent (partition index 1) on loopback, reporting to `src`; closed after the test. */
async function dbAgent(src: DatagramReportSource) {
  const agent = await DatagramAgentChannel.open({
    partitionIndex: 1,
    key: KEY_DB,
    manager: src.address(),
    bind: { address: "127.0.0.1" },
  });
  closers.push(() => agent.close());
  return agent;
}

/** dbAgent, once `src` has accepted a report of its: `src` knows its address. */
async function reportingDbAgent(src: DatagramReportSource) {
  const agent = await dbAgent(src);
  const before = src.accepted();
  agent.publish(encodeReport(report({ partitionIndex: 1 }), KEY_DB));
  await eventually(() => (src.latest() && src.accepted() > before ? true : undefined));
  return agent;
}

async function rawSender() {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  closers.push(() => s.close());
  return s;
}

describe.each(["batch", "dgram"] as const)("UDP report source (%s)", (receive) => {
  it("reads its socket the way it was asked to", async () => {
    const src = await DatagramReportSource.open({ keys, receive });
    closers.push(() => src.close());
    expect(src.backend()).toBe(receive);
  });

  it("drops datagrams over a source's rate as rate_limited, per source", async () => {
    const src = await DatagramReportSource.open({
      keys,
      receive,
      rateLimit: { ratePerSec: 0.001, burst: 3 },
    });
    closers.push(() => src.close());
    const a = await rawSender();
    const b = await rawSender();
    const { port } = src.address();
    for (let i = 0; i < 10; i++) a.send(encodeReport(report(), KEY_WEB), port, "127.0.0.1");
    await eventually(() => (polled(src).datagramsReceived() >= 10 ? true : undefined));
    b.send(encodeReport(report({ partitionIndex: 1 }), KEY_DB), port, "127.0.0.1");
    await eventually(() => (polled(src).datagramsReceived() >= 11 ? true : undefined));
    expect(src.accepted()).toBe(4); // 3 from a (its burst), 1 from b
    expect(src.rejected().rate_limited).toBe(7);
    expect([...src.latest().keys()].sort()).toEqual(["db", "web"]);
  });

  it("rejects an oversized datagram and a truncated one without reading further", async () => {
    const src = await DatagramReportSource.open({ keys, receive });
    closers.push(() => src.close());
    const a = await rawSender();
    const { port } = src.address();
    a.send(Buffer.alloc(9000, 0x57), port, "127.0.0.1");
    a.send(Buffer.alloc(3), port, "127.0.0.1");
    a.send(Buffer.alloc(0), port, "127.0.0.1");
    await eventually(() => (polled(src).datagramsReceived() >= 3 ? true : undefined));
    expect(src.rejected()).toMatchObject({ oversized: 1, truncated: 2 });
    expect(src.accepted()).toBe(0);
  });

  it("answers directives to the address the partition's verified report came from", async () => {
    const src = await DatagramReportSource.open({ keys, receive });
    closers.push(() => src.close());
    const agent = await dbAgent(src);
    const d = cappedDirective("db", 800, 100, 1);
    expect(src.sendDirective("db", d)).toBe(false); // no verified report yet: address unknown
    // A forged report from elsewhere must not teach the manager an address.
    const spoofer = await rawSender();
    spoofer.send(
      encodeReport(report({ partitionIndex: 1 }), KEY_WEB),
      src.address().port,
      "127.0.0.1",
    );
    await eventually(() => (polled(src).rejected().forged === 1 ? true : undefined));
    expect(src.sendDirective("db", d)).toBe(false);
    agent.publish(encodeReport(report({ partitionIndex: 1 }), KEY_DB));
    await eventually(() => src.latest().get("db"));
    expect(src.sendDirective("db", d)).toBe(true);
    const got = await eventually(() => agent.pollDirective() ?? undefined);
    expect(got).toMatchObject({ cpuMillis: 800, weight: 100, cpuCount: 1, partitionIndex: 1 });
  });

  it("sends an unchanged directive again only after directiveRefreshMs; a change or a new address at once", async () => {
    let skewMs = 0;
    const src = await DatagramReportSource.open({
      keys,
      receive,
      now: () => Date.now() + skewMs,
    });
    closers.push(() => src.close());
    const settled = () => new Promise((r) => setTimeout(r, 50));
    const a = await reportingDbAgent(src);
    const d = cappedDirective("db", 800, 100, 1);
    expect(src.sendDirective("db", d)).toBe(true);
    expect(await eventually(() => a.pollDirective() ?? undefined)).toMatchObject({ weight: 100 });
    // the next cycles' equal directive: held back, though the agent has it (true)
    expect(src.sendDirective("db", cappedDirective("db", 800, 100, 1))).toBe(true);
    expect(src.directivesSentCount()).toBe(1);
    await settled();
    expect(a.pollDirective()).toBeNull();
    // a changed weight goes at once
    expect(src.sendDirective("db", cappedDirective("db", 800, 120, 1))).toBe(true);
    expect(await eventually(() => a.pollDirective() ?? undefined)).toMatchObject({ weight: 120 });
    // unchanged, DIRECTIVE_REFRESH_MS later: sent again
    skewMs += DIRECTIVE_REFRESH_MS;
    expect(src.sendDirective("db", cappedDirective("db", 800, 120, 1))).toBe(true);
    expect(await eventually(() => a.pollDirective() ?? undefined)).toMatchObject({ weight: 120 });
    expect(src.directivesSentCount()).toBe(3);
    // the agent restarted on another port: its first report teaches the address, sent at once
    const b = await reportingDbAgent(src);
    expect(src.sendDirective("db", cappedDirective("db", 800, 120, 1))).toBe(true);
    expect(await eventually(() => b.pollDirective() ?? undefined)).toMatchObject({ weight: 120 });
    expect(src.directivesSentCount()).toBe(4);
  });

  it("sends every directive with directiveRefreshMs 0", async () => {
    const src = await DatagramReportSource.open({ keys, receive, directiveRefreshMs: 0 });
    closers.push(() => src.close());
    const agent = await reportingDbAgent(src);
    for (let i = 0; i < 3; i++) {
      expect(src.sendDirective("db", cappedDirective("db", 800, 100, 1))).toBe(true);
      expect(await eventually(() => agent.pollDirective() ?? undefined)).toMatchObject({
        weight: 100,
      });
    }
    expect(src.directivesSentCount()).toBe(3);
  });

  it("binds a name as its IPv4 address, and refuses one that does not resolve, naming it", async () => {
    const src = await DatagramReportSource.open({
      keys,
      receive,
      bind: { address: "localhost", port: 0 },
    });
    closers.push(() => src.close());
    expect(src.address().address).toBe("127.0.0.1");
    await expect(
      DatagramReportSource.open({
        keys,
        receive,
        bind: { address: "no.such.host.invalid", port: 0 },
      }),
    ).rejects.toThrow(/cannot bind UDP no\.such\.host\.invalid:0/);
  });
});

describe("UDP report source, batch reads", () => {
  it("reads more than a batch in one drain, each datagram from its own sender, in order", async () => {
    const src = await DatagramReportSource.open({
      keys,
      receive: "batch",
      rateLimit: { ratePerSec: 1e6, burst: 1e6 },
    });
    closers.push(() => src.close());
    const a = await rawSender();
    const b = await rawSender();
    const { port } = src.address();
    // 150 reports from a (web), 150 from b (db): more than two batches of 64 each
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 150; i++) {
      for (const [s, idx, key] of [
        [a, 0, KEY_WEB],
        [b, 1, KEY_DB],
      ] as const)
        sends.push(
          new Promise((r) =>
            s.send(encodeReport(report({ partitionIndex: idx }), key), port, "127.0.0.1", () =>
              r(),
            ),
          ),
        );
    }
    await Promise.all(sends);
    await eventually(() => (polled(src).datagramsReceived() >= 300 ? true : undefined));
    // every one verified (a replay or a reorder would be rejected: sequences rise per partition)
    expect(src.accepted()).toBe(300);
    expect(src.datagramsReceived()).toBe(300);
    expect(Object.values(src.rejected()).reduce((x, y) => x + y, 0)).toBe(0);
    // directives go back to each partition's own sender
    const got = (s: dgram.Socket) =>
      new Promise<number>((r) => s.once("message", (m) => r(m.length)));
    const fromA = got(a);
    const fromB = got(b);
    expect(src.sendDirective("web", cappedDirective("web", 500, 100, 1))).toBe(true);
    expect(src.sendDirective("db", cappedDirective("db", 500, 100, 1))).toBe(true);
    expect(await fromA).toBeGreaterThan(0);
    expect(await fromB).toBeGreaterThan(0);
  });

  it("reads the socket when latest() is read, and on its own while datagrams keep coming", async () => {
    const src = await DatagramReportSource.open({ keys, receive: "batch" });
    closers.push(() => src.close());
    const timer = () => (src as unknown as { pollTimer: unknown }).pollTimer;
    const a = await rawSender();
    const { port } = src.address();
    expect(src.poll()).toBe(0);
    expect(timer()).toBeNull(); // an empty poll leaves none due: an idle socket costs no wake-up
    await new Promise<void>((r) =>
      a.send(encodeReport(report(), KEY_WEB), port, "127.0.0.1", () => r()),
    );
    await new Promise((r) => setTimeout(r, 50)); // nothing reads the socket meanwhile
    expect(src.datagramsReceived()).toBe(0); // the counters say what has been read
    await eventually(() => src.latest().get("web")); // the manager's read of its reports
    expect(src.accepted()).toBe(1);
    expect(timer()).not.toBeNull(); // the poll that read it left the next one due
    // that one (DRAIN_EVERY_MS later) finds nothing and leaves none due
    await eventually(() => (timer() === null ? true : undefined));
  });

  it("reads between cycles only when reports come too fast for the socket to hold them until the next", async () => {
    let t = 50_000;
    const src = await DatagramReportSource.open({
      keys,
      receive: "batch",
      now: () => t,
      // 64 KiB asked: 128 KiB as the kernel counts it (under any rmem_max from the stock one
      // up), 157 report datagrams; the queue bound a quarter of that, 39
      receiveBufferBytes: 65_536,
      rateLimit: { ratePerSec: 1e6, burst: 1e6 },
    });
    closers.push(() => src.close());
    const timer = () => (src as unknown as { pollTimer: unknown }).pollTimer;
    const a = await rawSender();
    const { port } = src.address();
    const send = (count: number) =>
      Promise.all(
        Array.from(
          { length: count },
          () =>
            new Promise<void>((r) =>
              a.send(encodeReport(report({ timestampMs: t }), KEY_WEB), port, "127.0.0.1", () =>
                r(),
              ),
            ),
        ),
      );
    // two cycles' reads, 100 ms apart: the next is due at 50,200
    src.latest();
    t += 100;
    src.latest();
    // 10 ms later one report: 0.1 a ms, 9 more by the next read — no read of its own
    t += 10;
    await send(1);
    expect(src.poll()).toBe(1);
    expect(timer()).toBeNull();
    // 10 ms later 100: 10 a ms, 800 by the next read, over the bound — read again in 10 ms
    t += 10;
    await send(100);
    expect(src.poll()).toBe(100);
    expect(timer()).not.toBeNull();
    expect(src.accepted()).toBe(101);
  });

  it("sends a directive again at the next cycle when the kernel refused the last", async () => {
    // port 0 as the agent's fixed address: sendto refuses it (EINVAL)
    const src = await DatagramReportSource.open({
      keys,
      receive: "batch",
      directiveAddresses: new Map([["db", { address: "127.0.0.1", port: 0 }]]),
    });
    closers.push(() => src.close());
    const d = cappedDirective("db", 800, 100, 1);
    expect(src.sendDirective("db", d)).toBe(true);
    expect(src.errors()).toBe(1);
    expect(src.sendDirective("db", d)).toBe(true); // not held back as sent
    expect(src.errors()).toBe(2);
    expect(src.directivesSentCount()).toBe(2);
  });

  it("reads on its own while the next cycle's read is late", async () => {
    let t = 50_000;
    const src = await DatagramReportSource.open({ keys, receive: "batch", now: () => t });
    closers.push(() => src.close());
    const timer = () => (src as unknown as { pollTimer: unknown }).pollTimer;
    const a = await rawSender();
    src.latest();
    t += 100;
    src.latest();
    t += 150; // the read due at 50,200 has not come
    await new Promise<void>((r) =>
      a.send(
        encodeReport(report({ timestampMs: t }), KEY_WEB),
        src.address().port,
        "127.0.0.1",
        () => r(),
      ),
    );
    expect(src.poll()).toBe(1);
    expect(timer()).not.toBeNull();
  });

  it("an agent drops directives it cannot verify and counts them", async () => {
    const agent = await DatagramAgentChannel.open({
      partitionIndex: 1,
      key: KEY_DB,
      manager: { address: "127.0.0.1", port: 9 },
      bind: { address: "127.0.0.1" },
    });
    closers.push(() => agent.close());
    const s = await rawSender();
    s.send(Buffer.from("not a directive at all"), agent.address().port, "127.0.0.1");
    await eventually(() => (agent.rejected().malformed === 1 ? true : undefined));
    expect(agent.pollDirective()).toBeNull();
  });

  it("an agent refuses a directive replayed within DIRECTIVE_RESTART_AFTER_MS of the last", async () => {
    // before it knows the manager's cadence: a captured directive replayed 1.5 s after the
    // last real one (past the verifier's 1 s floor, inside the refresh's three) is refused
    let t = 1_000_000;
    const agent = await DatagramAgentChannel.open({
      partitionIndex: 1,
      key: KEY_DB,
      manager: { address: "127.0.0.1", port: 9 },
      bind: { address: "127.0.0.1" },
      now: () => t,
    });
    closers.push(() => agent.close());
    const s = await rawSender();
    const directive = (sequence: number, cpuMillis: number) =>
      encodeDirective(
        { partitionIndex: 1, sequence, timestampMs: t, cpuMillis, weight: 100, cpuCount: 1 },
        KEY_DB,
      );
    const deliver = async (bytes: Uint8Array) => {
      const before = agent.rejected().replayed;
      s.send(bytes, agent.address().port, "127.0.0.1");
      return eventually(() => {
        const d = agent.pollDirective();
        if (d !== null) return `cap ${d.cpuMillis}`;
        return agent.rejected().replayed > before ? "replayed" : undefined;
      });
    };
    const captured = directive(10, 0);
    expect(await deliver(captured)).toBe("cap 0");
    expect(await deliver(directive(11, 500))).toBe("cap 500");
    t += 1500;
    expect(await deliver(captured)).toBe("replayed");
    t += DIRECTIVE_RESTART_AFTER_MS; // a manager restarted with its clock stepped back is taken
    expect(await deliver(directive(5, 700))).toBe("cap 700");
  });
});
