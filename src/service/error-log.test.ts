import { describe, expect, it } from "vitest";
import { PartitionErrorLog } from "./error-log.ts";

describe("PartitionErrorLog", () => {
  it("warns for the first of a run of the same error, counts the repeats, and ends the run when ok", () => {
    const log = new PartitionErrorLog();
    expect(log.size).toBe(0);
    // a write the kernel refuses every cycle: one warning, not one per cycle
    expect(log.report("p2", "error", "WEIR_APPLY_FAILED")).toBe(true);
    for (let i = 0; i < 9; i++) expect(log.report("p2", "error", "WEIR_APPLY_FAILED")).toBe(false);
    // another partition's error is its own run
    expect(log.report("p3", "gone", "WEIR_TARGET_GONE")).toBe(true);
    // a different code, or status, for the same partition is worth a warning again
    expect(log.report("p2", "gone", "WEIR_TARGET_GONE")).toBe(true);
    expect(log.report("p2", "gone", "WEIR_TARGET_GONE")).toBe(false);
    expect(log.size).toBe(2);
    // not ok yet: the run goes on
    expect(log.observe("p2", "error")).toBeNull();
    // ok again: the run ends with its repeats, and the next error is warned about again
    expect(log.observe("p2", "ok")).toBe(1);
    expect(log.observe("p2", "ok")).toBeNull();
    expect(log.report("p2", "error", "WEIR_APPLY_FAILED")).toBe(true);
    expect(log.observe("p3", "ok")).toBe(0);
    expect(log.observe("p2", "ok")).toBe(0);
    expect(log.size).toBe(0);
  });
});
