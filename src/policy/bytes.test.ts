import { describe, expect, it } from "vitest";
import { sameBytes } from "./bytes.ts";

describe("sameBytes", () => {
  it("compares the bytes, not the numbers: NaN equals itself, -0 differs from 0", () => {
    const a = new Float64Array([1, Number.NaN, 0]);
    const b = new Float64Array([1, Number.NaN, 0]);
    expect(sameBytes(a, b)).toBe(true);
    b[2] = -0; // -0 === 0, but its sign bit differs
    expect(sameBytes(a, b)).toBe(false);
  });

  it("finds a difference in any byte, whole words and the tail alike", () => {
    const buf = new ArrayBuffer(4 * 7 + 3); // 7 words and 3 bytes
    const other = new ArrayBuffer(buf.byteLength);
    const a = new Uint8Array(buf);
    const b = new Uint8Array(other);
    expect(sameBytes(a, b)).toBe(true);
    for (const at of [0, 13, 27, 28, 30]) {
      b[at] = 1;
      expect(sameBytes(a, b)).toBe(false);
      b[at] = 0;
    }
    expect(sameBytes(a, b)).toBe(true);
  });

  it("compares unaligned views and views of one buffer", () => {
    const buf = new Uint8Array([9, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    const x = new Uint8Array(buf.buffer, 1, 5); // offset 1: not word-aligned
    const y = new Uint8Array(buf.buffer, 6, 5);
    expect(sameBytes(x, y)).toBe(true);
    expect(sameBytes(x, new Uint8Array(buf.buffer, 5, 5))).toBe(false);
    expect(sameBytes(x, x)).toBe(true);
  });

  it("differs when the lengths do", () => {
    expect(sameBytes(new Float64Array(2), new Float64Array(3))).toBe(false);
    expect(sameBytes(new Float64Array(0), new Uint8Array(0))).toBe(true);
  });
});
