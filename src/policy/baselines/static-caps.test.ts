import { describe, expect, it } from "vitest";
import { staticEqualCapsPolicy } from "./static-caps.ts";
import { input, spec, tp } from "./test-helpers.ts";

describe("static equal caps", () => {
  it("gives capacity / N to each partition, equal weight, whatever the traffic", () => {
    const p = staticEqualCapsPolicy();
    const specs = [spec("a"), spec("b"), spec("hog", "batch")];
    const out = p.step(input(0, specs, [tp("a", 1.9)], 1900), p.initialState());
    // 1,900 millicores / 3 = 633.3 -> 633 each; weight 100 (1024 shares) each.
    expect(out.directives.map((d) => [d.partition, d.cpuMillis, d.weight])).toEqual([
      ["a", 633, 100],
      ["b", 633, 100],
      ["hog", 633, 100],
    ]);
    // A container CPU limit: the entitlement is also a hard cap, no burst, normal class.
    for (const d of out.directives)
      expect([d.capCpuMillis, d.capReason, d.burstCpuMillis, d.idle]).toEqual([
        633,
        "capped",
        0,
        false,
      ]);
    const again = p.step(input(100, specs, [tp("a", 0)], 1900), out.state);
    expect(again.directives.map((d) => d.cpuMillis)).toEqual([633, 633, 633]);
  });

  it("keeps each cap within the partition's min and max", () => {
    const p = staticEqualCapsPolicy();
    const out = p.step(
      input(0, [
        spec("a", "network", { minCpuMillis: 800 }),
        spec("b", "network", { maxCpuMillis: 300 }),
      ]),
      p.initialState(),
    );
    // 2,000 / 2 = 1,000: a's min 800 is below it (1,000); b's max 300 cuts it.
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([1000, 300]);
  });
});
