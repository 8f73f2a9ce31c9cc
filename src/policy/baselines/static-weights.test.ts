import { describe, expect, it } from "vitest";
import { staticWeightOf, staticWeightsPolicy } from "./static-weights.ts";
import { input, spec, tp } from "./test-helpers.ts";

describe("static weights (hand-tuned, no manager)", () => {
  it("maps importance to fixed weights, puts batch in the idle class, caps nothing", () => {
    const p = staticWeightsPolicy();
    const specs = [
      spec("gold", "network", { importance: 1 }),
      spec("bronze", "network", { importance: 5 }),
      spec("hog", "batch"),
    ];
    const out = p.step(input(0, specs, [tp("gold", 0.1), tp("hog", 1.9)], 2000), p.initialState());
    // Weights 1000 and 100: under full contention gold gets 2,000 × 1000/1100 = 1,818.2 -> 1,818m,
    // bronze 2,000 × 100/1100 = 181.8 -> 182m; the hog is idle class, entitled to nothing.
    // Their max is 2,000m = capacity: no cap.
    expect(
      out.directives.map((d) => [d.partition, d.weight, d.idle, d.cpuMillis, d.capCpuMillis]),
    ).toEqual([
      ["gold", 1000, false, 1818, Number.POSITIVE_INFINITY],
      ["bronze", 100, false, 182, Number.POSITIVE_INFINITY],
      ["hog", 1, true, 0, Number.POSITIVE_INFINITY],
    ]);
    expect(out.directives.every((d) => d.capReason === null && d.burstCpuMillis === 0)).toBe(true);
    // Same directives whatever the traffic: nothing is measured.
    const again = p.step(input(100, specs, [tp("gold", 1.9)], 2000), out.state);
    expect(again.directives).toEqual(out.directives);
  });

  it("scales the tier weight by the configured weight, and caps only at a configured max", () => {
    // Importance 3 = 320; configured weight 250 -> 320 × 2.5 = 800.
    expect(staticWeightOf(3, 250)).toBe(800);
    expect(staticWeightOf(5, 1)).toBe(1);
    const p = staticWeightsPolicy();
    const out = p.step(
      input(0, [spec("a", "network", { maxCpuMillis: 300 }), spec("b")], [], 2000),
      p.initialState(),
    );
    // Both importance 3 (320 each): a's share 1,000m is cut to its max 300m, written as cpu.max.
    expect(out.directives[0]).toMatchObject({
      cpuMillis: 300,
      weight: 320,
      capCpuMillis: 300,
      capReason: "max",
      burstCpuMillis: 0,
    });
    expect(out.directives[1]).toMatchObject({ cpuMillis: 1000, capCpuMillis: Infinity });
  });
});
