// express.ts: the light-partition weight floor and a directive's weight with it.
import { describe, expect, it } from "vitest";
import {
  directedWeight,
  keepWeight,
  weightAt,
  weightBands,
  weightFloorsByImportance,
  weightFrame,
} from "./express.ts";
import { defaultPolicyKnobs } from "./knobs.ts";
import { weightForAllocation } from "./rules.ts";
import { seeded } from "./test-fixtures.ts";

describe("weightFloorsByImportance", () => {
  it("is the heaviest share at each importance or below, batch left out", () => {
    // capacity 1,700m; importance 3: a 400m, b 460m, c 916m; a batch row of 1,500m
    const floors = weightFloorsByImportance(
      4,
      Float64Array.of(400, 460, 916, 1500),
      Uint8Array.of(0, 0, 0, 1),
      Uint8Array.of(3, 3, 3, 3),
      Float64Array.of(1, 1, 1, 1, 1, 1),
      1700,
    );
    // c: 916 ÷ 1,700 × 10,000 = 5,388.2 → 5,388 at importance 3 and every more important
    // level; nothing at 4 and 5; the batch row (8,824 if it counted) does not
    expect([...floors]).toEqual([0, 5388, 5388, 5388, 0, 0]);
  });

  it("takes each row's weight with its own divisor, so a level never gets a floor from above", () => {
    // levels 1, 3, 5 present: divisors 1, 2, 2, 4, 4. gold (1) 120m, c (3) 906m, dust (5) 600m
    const floors = weightFloorsByImportance(
      3,
      Float64Array.of(120, 906, 600),
      Uint8Array.of(0, 0, 0),
      Uint8Array.of(1, 3, 5),
      Float64Array.of(1, 1, 2, 2, 4, 4),
      1700,
    );
    // gold 120 ÷ 1,700 × 10,000 = 706; c 906 ÷ 1,700 ÷ 2 × 10,000 = 2,665; dust 600 ÷ 1,700 ÷
    // 4 × 10,000 = 882. 5: 882; 4: 882; 3: max(2,665, 882); 2: 2,665; 1: max(706, 2,665)
    expect([...floors]).toEqual([0, 2665, 2665, 2665, 882, 882]);
  });

  it("is 0 everywhere without capacity rows, and the minimum weight for a 0m entitlement", () => {
    const none = weightFloorsByImportance(
      0,
      new Float64Array(0),
      new Uint8Array(0),
      new Uint8Array(0),
      Float64Array.of(1, 1, 1, 1, 1, 1),
      1700,
    );
    expect([...none]).toEqual([0, 0, 0, 0, 0, 0]);
    const zero = weightFloorsByImportance(
      1,
      Float64Array.of(0),
      Uint8Array.of(0),
      Uint8Array.of(2),
      Float64Array.of(1, 1, 1, 1, 1, 1),
      1700,
    );
    expect([...zero]).toEqual([0, 1, 1, 0, 0, 0]);
  });
});

describe("directedWeight with a floor", () => {
  const bands = weightBands(defaultPolicyKnobs(1700), 1700, 17);

  it("is the larger of the share and the floor, inside the weight band", () => {
    // 240m of 1,700m: share 1,412; floor 5,329 → 5,329 (no previous weight)
    expect(directedWeight(false, 240, 1700, Number.NaN, bands.normal, 1, 5329)).toBe(5329);
    // a floor under the share changes nothing: 906m → 5,329
    expect(directedWeight(false, 906, 1700, Number.NaN, bands.normal, 1, 1412)).toBe(5329);
    // the floor moved from 5,329 to 5,800 (+8.8 %, inside the 15 % band up): kept
    expect(directedWeight(false, 240, 1700, 5329, bands.normal, 1, 5800)).toBe(
      keepWeight(5329, 5800, bands.normal),
    );
    expect(directedWeight(false, 240, 1700, 5329, bands.normal, 1, 5800)).toBe(5329);
    // the floor gone (constrained now): 1,412 is 73 % under 5,329, past the 37.5 % band down
    expect(directedWeight(false, 240, 1700, 5329, bands.normal, 1, 0)).toBe(1412);
    // batch: the minimum whatever the floor
    expect(directedWeight(true, 240, 1700, Number.NaN, bands.normal, 1, 5329)).toBe(1);
  });
});

describe("weightAt's share by one multiplication", () => {
  it("rounds to weightForAllocation's whole number, at and a few doubles around every half", () => {
    const rnd = seeded(5);
    const divisors = Float64Array.of(1, 1, 2, 3, 4.5, 7, 1, 1);
    let checked = 0;
    for (const capacity of [1, 1700, 3000, 16_000, 1_800_000, 18_000_000, 0.3]) {
      const bands = weightBands(defaultPolicyKnobs(capacity), capacity, 25);
      const frame = weightFrame(divisors, capacity, bands);
      for (let trial = 0; trial < 400; trial++) {
        const imp = 1 + Math.floor(rnd() * 5);
        const divisor = divisors[imp]!;
        // a cpu whose share is a whole number and a half (ties and the doubles beside them),
        // or any cpu; and the edges: 0, NaN, Infinity, a share far above the weights
        const half = Math.floor(rnd() * 12_000) + 0.5;
        let cpu = (half * capacity * divisor) / 10_000;
        const ulps = Math.floor(rnd() * 9) - 4;
        for (let k = 0; k < Math.abs(ulps); k++) cpu = nextDouble(cpu, Math.sign(ulps));
        if (trial % 7 === 0) cpu = rnd() * capacity;
        if (trial === 1) cpu = 0;
        if (trial === 2) cpu = Number.NaN;
        if (trial === 3) cpu = Number.POSITIVE_INFINITY;
        if (trial === 4) cpu = capacity * 1e6;
        const got = weightAt(
          capacity,
          frame.fraction,
          frame.stepOf,
          frame.moves,
          cpu,
          imp,
          divisor,
          frame.weightPerMilli[imp]!,
          Number.NaN, // no previous weight: nothing kept
          0,
          false,
          0,
        );
        expect(Object.is(got, weightForAllocation(cpu, capacity, divisor))).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(2800);
  });
});

/** The next double after x toward +Infinity (dir 1) or −Infinity (dir −1), for finite x > 0. */
function nextDouble(x: number, dir: number): number {
  const b = new BigInt64Array(Float64Array.of(x).buffer);
  b[0] = b[0]! + BigInt(dir);
  return new Float64Array(b.buffer)[0]!;
}
