import { describe, expect, it } from "vitest";
import {
  BoundsError,
  checkBoundsChange,
  checkPartitionBounds,
  checkRule,
  PARTITION_BOUND_RULES,
  ruleText,
} from "./bounds.ts";
import { ErrorCodes } from "./errors.ts";

describe("checkRule", () => {
  it.each([
    [{ min: 0, max: 5 }, 5, null],
    [{ min: 0, max: 5 }, -0.1, "range"],
    [{ above: 0, max: 1 }, 0, "range"],
    [{ above: 0, max: 1 }, 1, null],
    [{ min: 0, max: 1000, integer: true }, 2.5, "integer-range"],
    [{ min: 0, max: 5 }, "0.2", "range"],
    [{ min: 0, max: 5 }, Number.NaN, "range"],
    [{ min: 0 }, Number.POSITIVE_INFINITY, "range"],
    [{ oneOf: ["share", "idle"] }, "idle", null],
    [{ oneOf: ["share", "idle"] }, "spare", "one-of"],
  ] as const)("%j with %j → %s", (rule, value, broken) => {
    const issue = checkRule("x", rule, value);
    expect(issue?.rule ?? null).toBe(broken);
    if (issue) expect(issue).toMatchObject({ field: "x", value });
  });

  it("says what the rule asks for", () => {
    expect(ruleText({ min: 0, max: 5 })).toBe("a number from 0 to 5");
    expect(ruleText({ above: 0, max: 1 })).toBe("a number above 0 and at most 1");
    expect(ruleText({ min: 1, max: 10_000, integer: true })).toBe("an integer from 1 to 10000");
    expect(ruleText({ oneOf: ["share", "idle"] })).toBe('one of "share", "idle"');
    expect(ruleText(PARTITION_BOUND_RULES.importance)).toBe(
      "an integer from 1 (most important) to 5",
    );
  });
});

const specs = [
  { id: "web", minCpuMillis: 100, maxCpuMillis: 1500, weight: 100, importance: 1 },
  { id: "batch", minCpuMillis: 0, maxCpuMillis: 2000, weight: 100, importance: 5 },
] as const;

describe("checkPartitionBounds", () => {
  it("checks each value, then min <= max, max <= capacity and the guarantees together", () => {
    expect(
      checkPartitionBounds(
        [
          { bounds: { minCpuMillis: 1500, maxCpuMillis: 1000, weight: 1, importance: 3 } },
          { bounds: { minCpuMillis: 800, maxCpuMillis: 2500, weight: 1, importance: 3 } },
        ],
        { capacityCpuMillis: 2000 },
      ),
    ).toEqual([
      {
        field: "maxCpuMillis",
        rule: "min-le-max",
        message: "must be >= minCpuMillis (1500m)",
        value: 1000,
        index: 0,
      },
      {
        field: "maxCpuMillis",
        rule: "max-le-capacity",
        message: "must be <= the capacity (2000m)",
        value: 2500,
        index: 1,
      },
      // 1,500m + 800m = 2,300m > 2,000m
      {
        field: "minCpuMillis",
        rule: "sum-min-le-capacity",
        message: "guarantees together must fit in the capacity (2000m)",
        value: 2300,
      },
    ]);
  });

  it("leaves the cross checks out while a value breaks its own rule", () => {
    expect(
      checkPartitionBounds(
        [{ bounds: { minCpuMillis: 3000, maxCpuMillis: 10, weight: 0, importance: 3 } }],
        { capacityCpuMillis: 2000 },
      ),
    ).toEqual([
      {
        field: "weight",
        rule: "weight-range",
        message: "must be an integer from 1 to 10000",
        value: 0,
        index: 0,
      },
    ]);
  });

  it("without a max or a capacity checks only the values", () => {
    expect(
      checkPartitionBounds([{ bounds: { minCpuMillis: 5000, weight: 1, importance: 5 } }], {
        capacityCpuMillis: null,
      }),
    ).toEqual([]);
  });

  it("names fields as the caller spells them", () => {
    const [issue] = checkPartitionBounds(
      [{ bounds: { minCpuMillis: 1000, maxCpuMillis: 500, weight: 1, importance: 1 } }],
      { capacityCpuMillis: null, label: (f) => (f === "minCpuMillis" ? "min" : f) },
    );
    expect(issue?.message).toBe("must be >= min (1000m)");
  });
});

describe("checkBoundsChange", () => {
  it("accepts a change that keeps every rule", () => {
    expect(checkBoundsChange(specs, "web", { minCpuMillis: 200, weight: 300 }, 2000)).toEqual([]);
  });

  it("blames the field that was set when min would pass max", () => {
    // web's max is 1500m: a min of 1600m alone would exceed it
    expect(checkBoundsChange(specs, "web", { minCpuMillis: 1600 }, null)).toEqual([
      {
        field: "minCpuMillis",
        rule: "min-le-max",
        message: "must be <= maxCpuMillis (1500m)",
        value: 1600,
      },
    ]);
    // web's min is 100m: a max of 50m alone would be under it
    expect(checkBoundsChange(specs, "web", { maxCpuMillis: 50 }, null)).toEqual([
      {
        field: "maxCpuMillis",
        rule: "min-le-max",
        message: "must be >= minCpuMillis (100m)",
        value: 50,
      },
    ]);
  });

  it("counts the others' guarantees against the capacity", () => {
    const withBatchMin = [specs[0], { ...specs[1], minCpuMillis: 500 }];
    // 1,600m + batch's 500m = 2,100m > 2,000m
    expect(
      checkBoundsChange(withBatchMin, "web", { minCpuMillis: 1600, maxCpuMillis: 1600 }, 2000),
    ).toEqual([
      {
        field: "minCpuMillis",
        rule: "sum-min-le-capacity",
        message: "guarantees together must fit in the capacity (2000m)",
        value: 2100,
      },
    ]);
  });

  it("checks values that came from a request body", () => {
    expect(checkBoundsChange(specs, "web", { minCpuMillis: "500m" }, null)).toEqual([
      {
        field: "minCpuMillis",
        rule: "cpu-millis",
        message: "must be a whole number of millicores >= 0",
        value: "500m",
      },
    ]);
  });

  it("refuses a partition that is not there", () => {
    expect(checkBoundsChange(specs, "nope", { weight: 2 }, null)).toEqual([
      {
        field: "partition",
        rule: "known-partition",
        message: "must be a managed partition",
        value: "nope",
      },
    ]);
  });

  it("BoundsError carries the issues and names them in its message", () => {
    const err = new BoundsError(checkBoundsChange(specs, "web", { weight: 0 }, null));
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.issues).toHaveLength(1);
    expect(err.message).toBe(
      "weight: must be an integer from 1 to 10000 (rule: weight-range): got 0",
    );
  });
});
