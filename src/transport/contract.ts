// The one contract every ReportSource must meet, run against the shared-memory slots and
// the UDP channel alike (source-contract.test.ts). A transport supplies how to open a
// source on a key ring and how to open an agent's end for one partition.
import { afterEach, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import {
  emptyRejectCounts,
  encodeReport,
  KeyRing,
  parseKeyHex,
  type RejectReason,
  type ReportMessage,
} from "./codec.ts";
import type { AgentChannel, ReportSource } from "./source.ts";

export interface ContractSetup {
  keys: KeyRing;
  now: () => number;
  staleAfterMs: number;
}

export interface ContractHarness {
  source: ReportSource;
  /** Open an agent's end for slot/partition `index`, signing with `key`. */
  agent(index: number, key: Uint8Array): Promise<AgentChannel>;
  /** Remove whatever the harness made (files, sockets). */
  cleanup(): Promise<void> | void;
  /**
   * The transport gives each configured partition its own endpoint (a shared-memory slot):
   * an agent for a partition nobody configured has nothing to open and is refused there,
   * instead of having its reports rejected as `unknown_partition`.
   */
  endpointPerPartition?: boolean;
}

export interface ReportSourceContractOptions {
  name: string;
  open: (setup: ContractSetup) => Promise<ContractHarness>;
}

export const KEY_WEB = parseKeyHex("a1".repeat(32));
export const KEY_DB = parseKeyHex("b2".repeat(32));
export const KEY_STRANGER = parseKeyHex("c3".repeat(32));

/** Poll `fn` until it returns a value that is not undefined (or fail after `timeoutMs`). */
export async function eventually<T>(fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function reportSourceContract(o: ReportSourceContractOptions): void {
  describe(`ReportSource contract: ${o.name}`, () => {
    let clock = 1_800_000_000_000;
    const now = () => clock;
    const harnesses: ContractHarness[] = [];
    const agents: AgentChannel[] = [];
    // Partitions at indexes 0 and 2; index 1 is a slot nobody owns.
    const keys = new KeyRing([
      { index: 0, id: "web", key: KEY_WEB },
      { index: 2, id: "db", key: KEY_DB },
    ]);
    const open = async () => {
      const h = await o.open({ keys, now, staleAfterMs: 1000 });
      harnesses.push(h);
      return h;
    };
    const agent = async (h: ContractHarness, index: number, key: Uint8Array) => {
      const a = await h.agent(index, key);
      agents.push(a);
      return a;
    };
    afterEach(async () => {
      for (const a of agents.splice(0)) a.close();
      for (const h of harnesses.splice(0)) {
        h.source.close();
        await h.cleanup();
      }
      clock = 1_800_000_000_000;
    });

    let seq = 1;
    const report = (over: Partial<ReportMessage> = {}): ReportMessage => ({
      partitionIndex: 0,
      sequence: seq++,
      timestampMs: clock,
      rxPackets: 5000,
      txPackets: 4900,
      droppedPackets: 100,
      cpuUsageNs: 2_000_000_000,
      nrPeriods: 50,
      nrThrottled: 5,
      throttledNs: 1_000_000,
      velocityPacketsPerCpuSec: 2450,
      velocityWindowMs: 100,
      ...over,
    });
    const rejectedTotal = (s: ReportSource) =>
      Object.values(s.rejected()).reduce((a, b) => a + b, 0);
    // Sources are level-based: what arrived is looked at when the manager reads latest().
    const waitRejected = (s: ReportSource, reason: RejectReason, n: number) =>
      eventually(() => {
        s.latest();
        return s.rejected()[reason] >= n ? true : undefined;
      });

    it("starts empty: no reports, no rejections, every partition stale", async () => {
      const { source } = await open();
      expect(source.latest().size).toBe(0);
      expect(source.rejected()).toEqual(emptyRejectCounts());
      expect(source.accepted()).toBe(0);
      expect(source.isStale("web", clock)).toBe(true);
      expect([...source.staleness(clock)]).toEqual([
        ["web", { stale: true, silentForMs: null }],
        ["db", { stale: true, silentForMs: null }],
      ]);
    });

    it("delivers an agent's report as cumulative counters with its velocity", async () => {
      const h = await open();
      const a = await agent(h, 2, KEY_DB);
      const m = report({ partitionIndex: 2 });
      a.publish(encodeReport(m, KEY_DB));
      const r = await eventually(() => h.source.latest().get("db"));
      expect(r).toEqual({
        partition: "db",
        partitionIndex: 2,
        sequence: m.sequence,
        sentAtMs: clock,
        receivedAtMs: clock,
        sample: {
          atMs: clock,
          offeredPackets: 5000,
          servedPackets: 4900,
          droppedPackets: 100,
          cpuUsageNs: 2_000_000_000,
          nrPeriods: 50,
          nrThrottled: 5,
          throttledNs: 1_000_000,
        },
        velocityPacketsPerCpuSec: 2450,
        velocityWindowMs: 100,
      });
      expect(h.source.latest().has("web")).toBe(false);
      expect(h.source.accepted()).toBe(1);
    });

    it("keeps only the newest report per partition (level, not a queue)", async () => {
      const h = await open();
      const a = await agent(h, 0, KEY_WEB);
      a.publish(encodeReport(report({ rxPackets: 1 }), KEY_WEB));
      await eventually(() => h.source.latest().get("web"));
      a.publish(encodeReport(report({ rxPackets: 2 }), KEY_WEB));
      const r = await eventually(() => {
        const x = h.source.latest().get("web");
        return x?.sample.offeredPackets === 2 ? x : undefined;
      });
      expect(r.sample.offeredPackets).toBe(2);
      expect(h.source.latest().size).toBe(1);
    });

    it("rejects a report signed with another key as forged and never shows it", async () => {
      const h = await open();
      const a = await agent(h, 0, KEY_STRANGER);
      a.publish(encodeReport(report(), KEY_STRANGER));
      await waitRejected(h.source, "forged", 1);
      expect(h.source.latest().size).toBe(0);
      expect(rejectedTotal(h.source)).toBe(1);
    });

    it("rejects a replayed report and an older sequence", async () => {
      const h = await open();
      const a = await agent(h, 0, KEY_WEB);
      const first = encodeReport(report({ sequence: 1000 }), KEY_WEB);
      const older = encodeReport(report({ sequence: 999 }), KEY_WEB);
      a.publish(first);
      await eventually(() => h.source.latest().get("web"));
      a.publish(first);
      await waitRejected(h.source, "replayed", 1);
      a.publish(older);
      await waitRejected(h.source, "replayed", 2);
      expect(h.source.latest().get("web")?.sequence).toBe(1000);
      expect(rejectedTotal(h.source)).toBe(2);
    });

    it("rejects delayed reports, never compares clocks, and takes a restarted sender back", async () => {
      const h = await open();
      const a = await agent(h, 0, KEY_WEB);
      // the agent's clock is 60 s behind the manager's: no skew check, so accepted
      a.publish(encodeReport(report({ timestampMs: clock - 60_000, rxPackets: 1 }), KEY_WEB));
      await eventually(() =>
        h.source.latest().get("web")?.sample.offeredPackets === 1 ? true : undefined,
      );
      // 6 s older than the last one though no time passed here: delayed in transit
      a.publish(encodeReport(report({ timestampMs: clock - 66_000, rxPackets: 2 }), KEY_WEB));
      await waitRejected(h.source, "stale", 1);
      // its clock stepped 10 s ahead: a higher sequence, so accepted (not "future")
      a.publish(encodeReport(report({ timestampMs: clock - 50_000, rxPackets: 3 }), KEY_WEB));
      await eventually(() =>
        h.source.latest().get("web")?.sample.offeredPackets === 3 ? true : undefined,
      );
      // restarted after a step back: a lower sequence is a replay while the run goes on…
      const restarted = (rx: number) =>
        encodeReport(report({ sequence: 2, timestampMs: clock - 60_000, rxPackets: rx }), KEY_WEB);
      clock += 500;
      a.publish(restarted(4));
      await waitRejected(h.source, "replayed", 1);
      // …and starts a new run once nothing was accepted for a second
      clock += 500;
      a.publish(restarted(5));
      await eventually(() =>
        h.source.latest().get("web")?.sample.offeredPackets === 5 ? true : undefined,
      );
      expect(rejectedTotal(h.source)).toBe(2);
    });

    it("rejects a report for a partition nobody configured", async () => {
      const h = await open();
      if (h.endpointPerPartition) {
        await expect(agent(h, 1, KEY_STRANGER)).rejects.toThrow(/1/);
        expect(h.source.latest().size).toBe(0);
        return;
      }
      const a = await agent(h, 1, KEY_STRANGER);
      a.publish(encodeReport(report({ partitionIndex: 1 }), KEY_STRANGER));
      await waitRejected(h.source, "unknown_partition", 1);
      expect(h.source.latest().size).toBe(0);
    });

    it("sends a signed directive that the partition's agent verifies", async () => {
      const h = await open();
      const a = await agent(h, 2, KEY_DB);
      expect(h.source.sendDirective("nobody", cappedDirective("nobody", 1, 1, 1))).toBe(false);
      a.publish(encodeReport(report({ partitionIndex: 2 }), KEY_DB));
      await eventually(() => h.source.latest().get("db"));
      expect(h.source.sendDirective("db", cappedDirective("db", 1250, 320, 2))).toBe(true);
      const d = await eventually(() => a.pollDirective() ?? undefined);
      expect(d).toMatchObject({
        partitionIndex: 2,
        cpuMillis: 1250,
        weight: 320,
        cpuCount: 2,
        timestampMs: clock,
      });
      expect(a.rejected()).toEqual(emptyRejectCounts());
      // A newer directive supersedes; the agent sees the newest only.
      h.source.sendDirective("db", cappedDirective("db", 500, 100, 1));
      const d2 = await eventually(() => a.pollDirective() ?? undefined);
      expect(d2.cpuMillis).toBe(500);
      expect(d2.sequence).toBeGreaterThan(d.sequence);
    });

    it("marks a partition stale once it is silent longer than staleAfterMs", async () => {
      const h = await open();
      const a = await agent(h, 0, KEY_WEB);
      a.publish(encodeReport(report(), KEY_WEB));
      await eventually(() => h.source.latest().get("web"));
      expect(h.source.isStale("web", clock)).toBe(false);
      expect(h.source.isStale("web", clock + 1000)).toBe(false);
      expect(h.source.isStale("web", clock + 1001)).toBe(true);
      expect(h.source.staleness(clock + 400).get("web")).toEqual({
        stale: false,
        silentForMs: 400,
      });
      expect(h.source.isStale("db", clock)).toBe(true);
    });

    it("start() resolves when its signal aborts, and close() is idempotent", async () => {
      const h = await open();
      const ac = new AbortController();
      const running = h.source.start(ac.signal);
      ac.abort();
      await running;
      h.source.close();
      expect(h.source.sendDirective("web", cappedDirective("web", 1, 1, 1))).toBe(false);
    });
  });
}
