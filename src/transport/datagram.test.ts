import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import { encodeReport, KeyRing, type ReportMessage } from "./codec.ts";
import { eventually, KEY_DB, KEY_WEB } from "./contract.ts";
import { DatagramAgentChannel, DatagramReportSource } from "./datagram.ts";

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

async function rawSender() {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  closers.push(() => s.close());
  return s;
}

describe("UDP report source", () => {
  it("drops datagrams over a source's rate as rate_limited, per source", async () => {
    const src = await DatagramReportSource.open({
      keys,
      rateLimit: { ratePerSec: 0.001, burst: 3 },
    });
    closers.push(() => src.close());
    const a = await rawSender();
    const b = await rawSender();
    const { port } = src.address();
    for (let i = 0; i < 10; i++) a.send(encodeReport(report(), KEY_WEB), port, "127.0.0.1");
    await eventually(() => (src.datagramsReceived() >= 10 ? true : undefined));
    b.send(encodeReport(report({ partitionIndex: 1 }), KEY_DB), port, "127.0.0.1");
    await eventually(() => (src.datagramsReceived() >= 11 ? true : undefined));
    expect(src.accepted()).toBe(4); // 3 from a (its burst), 1 from b
    expect(src.rejected().rate_limited).toBe(7);
    expect([...src.latest().keys()].sort()).toEqual(["db", "web"]);
  });

  it("rejects an oversized datagram and a truncated one without reading further", async () => {
    const src = await DatagramReportSource.open({ keys });
    closers.push(() => src.close());
    const a = await rawSender();
    const { port } = src.address();
    a.send(Buffer.alloc(9000, 0x57), port, "127.0.0.1");
    a.send(Buffer.alloc(3), port, "127.0.0.1");
    a.send(Buffer.alloc(0), port, "127.0.0.1");
    await eventually(() => (src.datagramsReceived() >= 3 ? true : undefined));
    expect(src.rejected()).toMatchObject({ oversized: 1, truncated: 2 });
    expect(src.accepted()).toBe(0);
  });

  it("answers directives to the address the partition's verified report came from", async () => {
    const src = await DatagramReportSource.open({ keys });
    closers.push(() => src.close());
    const agent = await DatagramAgentChannel.open({
      partitionIndex: 1,
      key: KEY_DB,
      manager: src.address(),
      bind: { address: "127.0.0.1" },
    });
    closers.push(() => agent.close());
    const d = cappedDirective("db", 800, 100, 1);
    expect(src.sendDirective("db", d)).toBe(false); // no verified report yet: address unknown
    // A forged report from elsewhere must not teach the manager an address.
    const spoofer = await rawSender();
    spoofer.send(
      encodeReport(report({ partitionIndex: 1 }), KEY_WEB),
      src.address().port,
      "127.0.0.1",
    );
    await eventually(() => (src.rejected().forged === 1 ? true : undefined));
    expect(src.sendDirective("db", d)).toBe(false);
    agent.publish(encodeReport(report({ partitionIndex: 1 }), KEY_DB));
    await eventually(() => src.latest().get("db"));
    expect(src.sendDirective("db", d)).toBe(true);
    const got = await eventually(() => agent.pollDirective() ?? undefined);
    expect(got).toMatchObject({ cpuMillis: 800, weight: 100, cpuCount: 1, partitionIndex: 1 });
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
});
