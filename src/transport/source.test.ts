import { describe, expect, it } from "vitest";
import type { Throughput } from "../core/model.ts";
import { crossCheck, stalenessOf } from "./source.ts";

const tp = (over: Partial<Throughput> = {}): Throughput => ({
  partition: "web",
  windowMs: 100,
  offeredPacketsPerSec: 10_000,
  servedPacketsPerSec: 9_000,
  droppedPacketsPerSec: 1_000,
  cpuCores: 0.5,
  throttledFraction: 0.2,
  rawVelocityPacketsPerCpuSec: 18_000,
  source: "host",
  ...over,
});

describe("crossCheck", () => {
  it("returns the host's numbers without a flag when the agent agrees within tolerance", () => {
    // served 9,000 vs 8,000: |diff| 1,000 <= 0.25 * 9,000 = 2,250
    const out = crossCheck(tp(), tp({ source: "agent", servedPacketsPerSec: 8_000 }), 0.25);
    expect(out).toEqual(tp());
    expect(out.disagreement).toBeUndefined();
  });

  it("flags a disagreement and keeps the host's numbers when the agent inflates its load", () => {
    // offered 40,000 vs 10,000: |diff| 30,000 > 0.25 * 40,000 = 10,000 -> flagged
    // cpu 0.5 vs 0.52: |diff| 0.02 <= max(0.02, 0.25 * 0.52 = 0.13) -> not flagged
    const agent = tp({ source: "agent", offeredPacketsPerSec: 40_000, cpuCores: 0.52 });
    const out = crossCheck(tp(), agent, 0.25);
    expect(out.offeredPacketsPerSec).toBe(10_000);
    expect(out.source).toBe("host");
    expect(out.disagreement).toBe(
      "agent disagrees with host (offered: agent 40000 pps, host 10000 pps)",
    );
  });

  it("ignores differences below the absolute floors at low rates", () => {
    // served 10 vs 25 pps: 100 % apart but |diff| 15 <= 20 pps floor
    const host = tp({ offeredPacketsPerSec: 10, servedPacketsPerSec: 10, droppedPacketsPerSec: 0 });
    const agent = { ...host, servedPacketsPerSec: 25, source: "agent" as const };
    expect(crossCheck(host, agent, 0.1).disagreement).toBeUndefined();
    expect(crossCheck(host, agent, { relative: 0.1, packetsPerSec: 5 }).disagreement).toContain(
      "served: agent 25 pps, host 10 pps",
    );
  });

  it("names every field that differs, CPU included, and drops a stale flag from the host input", () => {
    const out = crossCheck(
      tp({ disagreement: "old" }),
      tp({ source: "agent", cpuCores: 1.5, droppedPacketsPerSec: 0 }),
      0.25,
    );
    expect(out.disagreement).toBe(
      "agent disagrees with host (dropped: agent 0 pps, host 1000 pps; cpu: agent 1.500 cores, host 0.500 cores)",
    );
  });
});

describe("stalenessOf", () => {
  it("is stale before any report and after more than staleAfterMs of silence", () => {
    expect(stalenessOf(undefined, 5000, 1000)).toEqual({ stale: true, silentForMs: null });
    expect(stalenessOf(4000, 5000, 1000)).toEqual({ stale: false, silentForMs: 1000 });
    expect(stalenessOf(3999, 5000, 1000)).toEqual({ stale: true, silentForMs: 1001 });
    // a report stamped after "now" (clock jitter) counts as just heard
    expect(stalenessOf(5100, 5000, 1000)).toEqual({ stale: false, silentForMs: 0 });
  });
});
