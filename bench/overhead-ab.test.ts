// overhead-ab's variant names: `name`, `name@DIR`, `#N` partitions and `%CPUS` pinning on either.
import { describe, expect, it } from "vitest";
import { VARIANTS, variantOf } from "./overhead-ab.ts";

describe("variantOf", () => {
  it("finds a variant by name, with another package's bin after @ and a partition count after #", () => {
    const base = VARIANTS.find((v) => v.name === "base")!;
    expect(variantOf("base", VARIANTS)).toBe(base);
    const at = variantOf("base@/tmp/other", VARIANTS);
    expect(at).toMatchObject({ name: "base@/tmp/other", bin: "/tmp/other/bin/weir.js" });
    expect(at.partitions).toBeUndefined();
    expect(variantOf("base#10", VARIANTS)).toMatchObject({
      name: "base#10",
      nodeFlags: base.nodeFlags,
      partitions: 10,
    });
    expect(variantOf("base@/tmp/other#1", VARIANTS)).toMatchObject({
      name: "base@/tmp/other#1",
      bin: "/tmp/other/bin/weir.js",
      partitions: 1,
    });
  });

  it("pins a variant to the CPUs after %, on top of the rest", () => {
    const base = VARIANTS.find((v) => v.name === "base")!;
    expect(variantOf("base%1", VARIANTS)).toMatchObject({
      name: "base%1",
      nodeFlags: base.nodeFlags,
      cpus: "1",
    });
    expect(variantOf("base@/tmp/other#10%0-1", VARIANTS)).toMatchObject({
      name: "base@/tmp/other#10%0-1",
      bin: "/tmp/other/bin/weir.js",
      partitions: 10,
      cpus: "0-1",
    });
    expect(variantOf("base", VARIANTS).cpus).toBeUndefined();
    for (const bad of ["base%", "base%x", "base%1;rm"])
      expect(() => variantOf(bad, VARIANTS)).toThrow(/%CPUS wants a CPU list/);
  });

  it("refuses an unknown name and a partition count outside 1..100", () => {
    expect(() => variantOf("nope", VARIANTS)).toThrow(/no variant nope/);
    for (const bad of ["base#0", "base#101", "base#1.5", "base#x"])
      expect(() => variantOf(bad, VARIANTS)).toThrow(/#N wants a whole number 1\.\.100/);
  });
});
