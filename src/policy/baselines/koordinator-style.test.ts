import { describe, expect, it } from "vitest";
import type { PolicyState } from "../types.ts";
import { koordinatorStylePolicy } from "./koordinator-style.ts";
import { input, spec, tp } from "./test-helpers.ts";

describe("Koordinator-style CPU suppress", () => {
  const specs = [
    spec("web"),
    spec("api"),
    spec("hog", "batch"),
    spec("etl", "batch", { weight: 300 }),
  ];

  it("caps best-effort at threshold x capacity minus latency-sensitive usage, shared by weight; never caps LS", () => {
    const p = koordinatorStylePolicy();
    const out = p.step(
      input(0, specs, [tp("web", 0.3), tp("api", 0.2), tp("hog", 1)], 2000),
      p.initialState(),
    );
    // 65 % of 2,000m = 1,300m; LS use 300m + 200m = 500m -> BE together 800m,
    // by weight 100:300 -> hog 200m, etl 600m.
    expect(out.directives.map((d) => [d.partition, d.cpuMillis])).toEqual([
      ["hog", 200],
      ["etl", 600],
    ]);
    // BestEffort pods: cpu.shares 2 = weight 1, normal class, the suppress amount as a hard cap.
    for (const d of out.directives) {
      expect([d.weight, d.idle, d.capReason, d.burstCpuMillis]).toEqual([
        1,
        false,
        "suppress-batch",
        0,
      ]);
      expect(d.capCpuMillis).toBe(d.cpuMillis);
    }
  });

  it("gives an LS partition with a configured max its own limit as a cap, and leaves the others alone", () => {
    const p = koordinatorStylePolicy();
    const out = p.step(
      input(
        0,
        [spec("web", "network", { maxCpuMillis: 700 }), spec("api"), spec("hog", "batch")],
        [tp("web", 0.3)],
      ),
      p.initialState(),
    );
    // web's limit 700m < capacity 2,000m -> cpu.max 700m; api has none -> no directive at all.
    const web = out.directives.find((d) => d.partition === "web");
    expect(web).toMatchObject({ capCpuMillis: 700, capReason: "max", weight: 100, idle: false });
    expect(out.directives.find((d) => d.partition === "api")).toBeUndefined();
  });

  it("decides once a second on the mean LS usage since the last decision, writing nothing in between", () => {
    const p = koordinatorStylePolicy();
    let state: PolicyState = p.step(
      input(0, specs, [tp("web", 0.1)], 2000),
      p.initialState(),
    ).state;
    const usages = [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0];
    for (let i = 0; i < usages.length; i++) {
      const out = p.step(input(100 * (i + 1), specs, [tp("web", usages[i]!)], 2000), state);
      expect(out.directives).toEqual([]);
      state = out.state;
    }
    const out = p.step(input(1000, specs, [tp("web", 1.0)], 2000), state);
    // mean LS over 10 cycles: (0.2+0.4+0.6+0.8+1.0*6)/10 = 0.8 cores = 800m; 1,300 - 800 = 500m -> 125 / 375.
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([125, 375]);
  });

  it("keeps a floor when LS use passes the threshold", () => {
    const p = koordinatorStylePolicy({ minBeCpuMillis: 40 });
    const out = p.step(input(0, specs, [tp("web", 1.5)], 2000), p.initialState());
    // 1,300 - 1,500 < 0 -> floor 40m, by weight 10 / 30.
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([10, 30]);
  });

  it("writes nothing when the quota would move by less than 1 % of capacity (bypass)", () => {
    const p = koordinatorStylePolicy();
    const first = p.step(input(0, specs, [tp("web", 0.5)], 2000), p.initialState());
    // 1,300 − 500 = 800m.
    expect(first.directives.map((d) => d.cpuMillis)).toEqual([200, 600]);
    // A second later LS uses 510m: 790m, 10m from 800m < 1 % of 2,000m = 20m -> bypassed.
    const second = p.step(input(1000, specs, [tp("web", 0.51)], 2000), first.state);
    expect(second.directives).toEqual([]);
    // 530m: 770m, 30m away -> written.
    const third = p.step(input(2000, specs, [tp("web", 0.53)], 2000), second.state);
    expect(third.directives.map((d) => d.cpuMillis)).toEqual([193, 578]);
  });

  it("lowers the quota at once but raises it by at most 10 % of capacity a decision", () => {
    const p = koordinatorStylePolicy();
    let out = p.step(input(0, specs, [tp("web", 1.2)], 2000), p.initialState());
    // 1,300 − 1,200 = 100m (by weight 25 / 75).
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([25, 75]);
    const totals: number[] = [];
    for (let t = 1000; t <= 5000; t += 1000) {
      out = p.step(input(t, specs, [tp("web", 0)], 2000), out.state);
      totals.push(out.directives.reduce((s, d) => s + d.cpuMillis, 0));
    }
    // LS idle: the formula says 1,300m; the quota climbs 100 -> 300 -> 500 -> ... (+200m = 10 % of 2,000m).
    expect(totals).toEqual([300, 500, 700, 900, 1100]);
    // LS back at 1,200m: straight down to 100m.
    out = p.step(input(6000, specs, [tp("web", 1.2)], 2000), out.state);
    expect(out.directives.reduce((s, d) => s + d.cpuMillis, 0)).toBe(100);
  });
});
