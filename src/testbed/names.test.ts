import { describe, expect, it } from "vitest";
import {
  cgroupRel,
  defaultStateFile,
  hostIfName,
  MAX_IFNAME_BYTES,
  netnsName,
  processTag,
  tagArg,
  validatePartitionName,
  validatePrefix,
} from "./names.ts";

describe("names", () => {
  it("accepts prefixes and partition names of the documented shape", () => {
    expect(validatePrefix("weir")).toBe("weir");
    expect(validatePrefix("weirt-1234-ab")).toBe("weirt-1234-ab");
    expect(validatePartitionName("p1")).toBe("p1");
  });

  it("rejects bad prefixes and names, naming the field and the value", () => {
    expect(() => validatePrefix("Weir")).toThrow(/'prefix' .*current value is "Weir"/);
    expect(() => validatePrefix("weir-")).toThrow(/'prefix'/);
    expect(() => validatePrefix("")).toThrow(/'prefix'/);
    expect(() => validatePrefix("a/b")).toThrow(/'prefix'/);
    // a dash in a partition name would make "<prefix>-<name>" ambiguous between testbeds
    expect(() => validatePartitionName("web-1")).toThrow(/'name' .*"web-1"/);
    expect(() => validatePartitionName("1web")).toThrow(/'name'/);
  });

  it("keeps readable interface names when they fit in 15 bytes, hashes them otherwise", () => {
    expect(hostIfName("weir", "p1")).toBe("weir-p1");
    const long = hostIfName("weirt-123456-crash", "p1");
    expect(long).toMatch(/^wv[0-9a-f]{12}$/);
    expect(long.length).toBeLessThanOrEqual(MAX_IFNAME_BYTES);
    // deterministic, and different per prefix and per name
    expect(hostIfName("weirt-123456-crash", "p1")).toBe(long);
    expect(hostIfName("weirt-123456-crash", "p2")).not.toBe(long);
    expect(hostIfName("weirt-123457-crash", "p1")).not.toBe(long);
  });

  it("derives every other name from prefix and partition name", () => {
    expect(netnsName("weir", "p1")).toBe("weir-p1");
    expect(cgroupRel("weir", "p1")).toBe("weir/p1");
    expect(tagArg(processTag("weir", "hog1"))).toBe("--weir-tag=weir/hog1");
    expect(defaultStateFile("weir")).toBe("/run/weir/testbed-weir.json");
  });
});
