// express.ts: the light-partition weight floor and a directive's weight with it.
import { describe, expect, it } from "vitest";
import { sameDirective } from "../core/directive.ts";
import {
  CapCode,
  directedWeight,
  directiveAt,
  isDirectiveAt,
  keepWeight,
  StepDirectives,
  weightBands,
  weightFloorsByImportance,
} from "./express.ts";
import { defaultPolicyKnobs } from "./knobs.ts";
import { partitionTable } from "./table.ts";
import { spec } from "./test-fixtures.ts";

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

describe("isDirectiveAt and StepDirectives.atOrSame", () => {
  type Args = Parameters<typeof directiveAt>;
  const argSets: Args[] = [];
  for (const code of Object.values(CapCode))
    for (const batch of [false, true])
      for (const [cpu, max] of [
        [0, 4000],
        [250, 4000],
        [1500, 1500],
        [2600, 3000],
      ] as const)
        for (const donor of [0, 100_000])
          argSets.push(["p", cpu, 120, code, batch, max, 2000, 0.25, donor]);

  it("says true for what directiveAt makes of the same arguments, false when any argument differs", () => {
    for (const args of argSets) {
      const d = directiveAt(...args);
      expect(isDirectiveAt(d, ...args)).toBe(true);
      for (const other of argSets) {
        const o = directiveAt(...other);
        // exactly when sameDirective says the two objects are equal
        expect(isDirectiveAt(d, ...other)).toBe(sameDirective(d, o));
      }
      // a field changed on the object itself
      for (const change of [
        { partition: "q" },
        { weight: 121 },
        { cpuCount: d.cpuCount + 1 },
        { burstCpuMillis: d.burstCpuMillis + 1 },
        { capPeriodUs: 5000 },
      ])
        expect(isDirectiveAt({ ...d, ...change }, ...args)).toBe(false);
    }
  });

  it("atOrSame gives the previous object when equal (and at() gives it after), else a new one", () => {
    const table = partitionTable([spec("a"), spec("b", { maxCpuMillis: 500 }), spec("c")]);
    const step = () =>
      new StepDirectives(
        table,
        Float64Array.of(300, 500, 0),
        Float64Array.of(1500, 2500, 1),
        Uint8Array.of(CapCode.none, CapCode.max, CapCode.none),
        2000,
        0.1,
      );
    const first = step();
    const prev = [0, 1, 2].map((i) => first.at(i));
    const next = step();
    expect(next.atOrSame(0, prev[0]!)).toBe(prev[0]);
    expect(next.at(0)).toBe(prev[0]);
    // a changed directive: a new object, equal to what at() makes
    const changed = { ...prev[1]!, weight: 7 };
    const b = next.atOrSame(1, changed);
    expect(b).not.toBe(changed);
    expect(b).toEqual(step().at(1));
    // no previous one, or a row already made: at()'s object
    const c = next.atOrSame(2, null);
    expect(c).toEqual(prev[2]);
    expect(next.atOrSame(2, prev[2]!)).toBe(c);
    expect(() => next.atOrSame(3, prev[0]!)).toThrow(RangeError);
  });
});
