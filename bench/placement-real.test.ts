import { describe, expect, it } from "vitest";
import {
  hostIdlePercent,
  type PlacementRun,
  parseLoadsOption,
  parseSliceOption,
  parseVariantsOption,
  policyOf,
  ratiosPerRep,
  shares,
  spreadByLoad,
  VARIANTS,
  worstRatio,
} from "./placement-real.ts";

const run = (a: number, b: number, c: number): PlacementRun => ({
  p99Ms: { a, b, c },
  hostIdle: 0,
  hogCores: 1,
});

describe("spreadByLoad", () => {
  it("packs heaviest first onto the least loaded CPU", () => {
    expect(spreadByLoad({ a: 0.1, b: 0.15, c: 0.2 }, 2)).toEqual({ c: 0, b: 1, a: 1 });
  });
  it("breaks ties by name and by the lowest CPU", () => {
    expect(spreadByLoad({ y: 1, x: 1, z: 1 }, 2)).toEqual({ x: 0, y: 1, z: 0 });
  });
  it("puts everything on the one CPU there is", () => {
    expect(spreadByLoad({ a: 3, b: 1 }, 1)).toEqual({ a: 0, b: 0 });
  });
});

describe("worstRatio", () => {
  it("takes the worst partition's ratio", () => {
    expect(worstRatio(run(6, 4, 4), run(4, 4, 2), ["a", "b", "c"])).toBe(2);
  });
  it("skips a partition missing in either run", () => {
    expect(worstRatio(run(6, Number.NaN, 3), run(4, 4, 2), ["a", "b", "c"])).toBe(1.5);
  });
});

describe("ratiosPerRep", () => {
  const reps = [
    {
      ref: run(4, 4, 4),
      "ref-spread": run(2, 2, 2),
      sw: run(8, 4, 4),
      "sw-spread": run(5, 4, 4),
      weir: run(6, 4, 4),
      "weir-placed": run(4, 5, 4),
    },
    { ref: run(4, 4, 4), sw: run(4, 4, 4) },
  ];
  it("gives each repetition's ratio against its own reference, NaN where a run is missing", () => {
    const names = ["a", "b", "c"];
    expect(ratiosPerRep(reps, "sw", "ref", names)).toEqual([2, 1]);
    expect(ratiosPerRep(reps, "weir", "ref", names)).toEqual([1.5, Number.NaN]);
    expect(ratiosPerRep(reps, "weir-placed", "ref", names)).toEqual([1.25, Number.NaN]);
    // against the spread reference: the hog's harm with the placement alone
    expect(ratiosPerRep(reps, "sw-spread", "ref", names)).toEqual([1.25, Number.NaN]);
    expect(ratiosPerRep(reps, "sw-spread", "ref-spread", names)).toEqual([2.5, Number.NaN]);
    expect(ratiosPerRep(reps, "weir-slice", "ref", names)).toEqual([Number.NaN, Number.NaN]);
  });
});

describe("shares", () => {
  it("placements seen, most frequent first", () => {
    expect(
      shares(
        new Map([
          ["a 0-1", 1],
          ["a 0", 3],
        ]),
      ),
    ).toBe("a 0: 75 %; a 0-1: 25 %");
    expect(shares(new Map())).toBe("none seen");
  });
});

describe("parseLoadsOption", () => {
  it("defaults to every load and keeps the canonical order", () => {
    expect(parseLoadsOption([])).toEqual(["udp", "udp-staggered", "tcp"]);
    expect(parseLoadsOption(["--reps", "3", "--loads", "tcp,udp"])).toEqual(["udp", "tcp"]);
    expect(parseLoadsOption(["--loads", "udp-staggered"])).toEqual(["udp-staggered"]);
  });
  it("names a load it does not know", () => {
    expect(() => parseLoadsOption(["--loads", "udp,quic"])).toThrow(/--loads.*got "quic"/);
    expect(() => parseLoadsOption(["--loads"])).toThrow(/--loads/);
  });
});

describe("parseVariantsOption", () => {
  it("defaults to the report's six, ref first", () => {
    expect(parseVariantsOption([])).toEqual([...VARIANTS]);
    expect(VARIANTS[0]).toBe("ref");
  });

  it("runs what it names in that order, ref first (added when missing, never twice)", () => {
    expect(parseVariantsOption(["--variants", "weir,weir-slice"])).toEqual([
      "ref",
      "weir",
      "weir-slice",
    ]);
    expect(parseVariantsOption(["--variants", "weir-no-floor,ref,weir,weir"])).toEqual([
      "ref",
      "weir-no-floor",
      "weir",
    ]);
  });

  it("names the list it takes when given another variant", () => {
    expect(() => parseVariantsOption(["--variants", "weir,fast"])).toThrow(
      /--variants: a comma-separated list of ref, .*sw-slice; got "fast"/,
    );
    expect(() => parseVariantsOption(["--variants"])).toThrow(/got null/);
  });
});

describe("parseSliceOption", () => {
  it("is 100 µs unless given, and takes the kernel's range only", () => {
    expect(parseSliceOption([])).toBe(100);
    expect(parseSliceOption(["--slice-us", "750"])).toBe(750);
    expect(() => parseSliceOption(["--slice-us", "50"])).toThrow(/100 to 100000.*got "50"/);
    expect(() => parseSliceOption(["--slice-us", "1.5e3x"])).toThrow(/--slice-us/);
  });
});

describe("policyOf", () => {
  it("maps every variant to the policy it runs", () => {
    expect(policyOf("ref")).toBe("none");
    expect(policyOf("ref-spread")).toBe("none");
    expect(policyOf("sw")).toBe("static-weights");
    expect(policyOf("sw-spread")).toBe("static-weights");
    expect(policyOf("sw-slice")).toBe("static-weights");
    expect(policyOf("weir")).toBe("weir");
    expect(policyOf("weir-placed")).toBe("weir");
    expect(policyOf("weir-slice")).toBe("weir");
    expect(policyOf("weir-no-floor")).toBe("weir-no-floor");
  });
});

describe("hostIdlePercent", () => {
  it("gives the run's idle fraction in percent, as the table's header says", () => {
    // a run with the hog stopped beside three servers at 0.45 cores of 2 CPUs: about 70 % idle
    expect(hostIdlePercent({ hostIdle: 0.7 })).toBeCloseTo(70, 10);
    expect(hostIdlePercent({ hostIdle: 0.004 })).toBeCloseTo(0.4, 10);
  });
});
