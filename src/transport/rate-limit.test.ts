import { describe, expect, it } from "vitest";
import { TokenBuckets } from "./rate-limit.ts";

describe("TokenBuckets", () => {
  it("allows a burst, then the refill rate, per source", () => {
    let t = 0;
    const b = new TokenBuckets({ ratePerSec: 10, burst: 3, now: () => t });
    expect([b.take("a"), b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, true, false]);
    expect(b.take("b")).toBe(true); // another source has its own bucket
    t = 99; // 0.99 tokens refilled
    expect(b.take("a")).toBe(false);
    t = 200; // +1.01 since t=99 -> 1 whole token... refilled from 0.99 (kept) to 2.0
    expect(b.take("a")).toBe(true);
    expect(b.take("a")).toBe(true);
    expect(b.take("a")).toBe(false);
    t = 10_000; // refill caps at the burst
    expect([b.take("a"), b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, true, false]);
  });

  it("remembers at most maxSources, forgetting the least recently seen", () => {
    const t = 0;
    const b = new TokenBuckets({ ratePerSec: 1, burst: 1, maxSources: 2, now: () => t });
    expect(b.take("a")).toBe(true);
    expect(b.take("b")).toBe(true);
    expect(b.take("a")).toBe(false); // a is now most recent
    expect(b.take("c")).toBe(true); // evicts b
    expect(b.sources).toBe(2);
    expect(b.take("a")).toBe(false); // a kept its empty bucket
    expect(b.take("b")).toBe(true); // b was forgotten: fresh bucket (evicts c)
  });

  it("refuses nonsense settings", () => {
    expect(() => new TokenBuckets({ ratePerSec: 0, burst: 1 })).toThrow(/ratePerSec/);
    expect(() => new TokenBuckets({ ratePerSec: 1, burst: 0 })).toThrow(/burst/);
  });
});
