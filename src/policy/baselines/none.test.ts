import { describe, expect, it } from "vitest";
import { nonePolicy } from "./none.ts";
import { input, spec, tp } from "./test-helpers.ts";

describe("none (plain CFS)", () => {
  it("decides and writes nothing, whatever the traffic", () => {
    const p = nonePolicy();
    const out = p.step(
      input(0, [spec("a"), spec("hog", "batch")], [tp("a", 1.5), tp("hog", 0.5)]),
      p.initialState(),
    );
    expect(out.directives).toEqual([]);
    expect(out.decisions).toEqual([]);
  });
});
