import { afterEach, describe, expect, it } from "vitest";
import { KeyRing, parseKeyHex } from "../src/transport/codec.ts";
import { DatagramReportSource } from "../src/transport/datagram.ts";
import { agentsAtTick, runAgents } from "./udp-agents.ts";

const KEY_HEX = "a5".repeat(32);
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe("udp-agents: stand-ins for agents reporting over UDP", () => {
  it("spreads the agents over the ticks of an interval, each once", () => {
    expect(agentsAtTick(0, 10, 25)).toEqual([0, 10, 20]);
    expect(agentsAtTick(13, 10, 25)).toEqual([3, 13, 23]);
    const all = Array.from({ length: 10 }, (_, t) => agentsAtTick(t, 10, 25)).flat();
    expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it("sends reports the manager's UDP source verifies and accepts, every agent's", async () => {
    const partitions = 5;
    const src = await DatagramReportSource.open({
      keys: new KeyRing(
        Array.from({ length: partitions }, (_, i) => ({
          index: i,
          id: `p${i}`,
          key: parseKeyHex(KEY_HEX),
        })),
      ),
    });
    closers.push(() => src.close());
    const sent = await runAgents({
      port: src.address().port,
      partitions,
      intervalMs: 50,
      durationMs: 400,
      keyHex: KEY_HEX,
      packetsPerSec: 1000,
    });
    // about 400 ms ÷ 50 ms = 8 reports per agent, one every 5 ms in all
    expect(sent.errors).toBe(0);
    expect(sent.sent).toBeGreaterThanOrEqual(partitions * 3);
    const latest = src.latest();
    expect(src.accepted()).toBe(sent.sent);
    expect(Object.values(src.rejected()).reduce((a, b) => a + b, 0)).toBe(0);
    expect([...latest.keys()].sort()).toEqual(["p0", "p1", "p2", "p3", "p4"]);
  });
});
