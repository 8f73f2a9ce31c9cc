import { describe, expect, it } from "vitest";
import { TokenBuckets } from "./rate-limit.ts";

describe("TokenBuckets", () => {
  it("allows a known source a burst, then the refill rate", () => {
    let t = 0;
    const b = new TokenBuckets({ ratePerSec: 10, burst: 3, now: () => t });
    expect(b.take("a")).toBe(true); // unknown: from the shared bucket (3 → 2)
    b.trust("a"); // verified: its own bucket, full less the message taken (2)
    expect([b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, false]);
    expect(b.take("b")).toBe(true); // another source draws from the shared bucket (2 → 1)
    t = 99; // 0.99 tokens refilled
    expect(b.take("a")).toBe(false);
    t = 200; // +1.01 since t=99: from 0.99 (kept) to 2.0
    expect(b.take("a")).toBe(true);
    expect(b.take("a")).toBe(true);
    expect(b.take("a")).toBe(false);
    t = 10_000; // refill caps at the burst
    expect([b.take("a"), b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, true, false]);
  });

  it("gives all unknown sources one shared bucket: new sources start with nothing of their own", () => {
    const t = 0;
    const b = new TokenBuckets({ ratePerSec: 1, burst: 2, now: () => t });
    expect([b.take("x"), b.take("y"), b.take("z"), b.take("w")]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(b.sources).toBe(0); // no memory per unknown source
  });

  it("lets 10,000 spoofed sources through at the unknown budget while known agents keep their rate", () => {
    let t = 0;
    const b = new TokenBuckets({
      ratePerSec: 200,
      burst: 50,
      unknownRatePerSec: 100,
      unknownBurst: 20,
      now: () => t,
    });
    // two agents known before the flood
    for (const agent of ["10.0.0.1:4000", "10.0.0.2:4000"]) {
      expect(b.take(agent)).toBe(true);
      b.trust(agent);
    }
    t = 1000; // the shared bucket is full again (20)
    // one second of flood: 10,000 spoofed sources, 10 datagrams each (100,000 in all, one
    // every 10 µs), and each agent's report every 10 ms
    let spoofedPassed = 0;
    let agentPassed = 0;
    let agentSent = 0;
    for (let i = 0; i < 100_000; i++) {
      t = 1000 + i / 100;
      if (b.take(`192.0.2.${i % 250}:${1024 + (i % 10_000)}`)) spoofedPassed++;
      if (i % 1000 === 0)
        for (const agent of ["10.0.0.1:4000", "10.0.0.2:4000"]) {
          agentSent++;
          if (b.take(agent)) agentPassed++;
        }
    }
    // the shared bucket's 20 at the start + 100/s × 999.99 ms refilled = 119 whole tokens
    expect(spoofedPassed).toBe(119);
    // 100 reports a second each, under their own 200/s: every one passes
    expect([agentSent, agentPassed]).toEqual([200, 200]);
    expect(b.sources).toBe(2);
  });

  it("remembers at most maxSources known sources, forgetting the least recently seen", () => {
    const t = 0;
    const b = new TokenBuckets({ ratePerSec: 1, burst: 1, maxSources: 2, now: () => t });
    b.trust("a");
    b.trust("b");
    expect(b.take("a")).toBe(false); // a's own bucket: burst 1 less the message trusted = 0
    b.trust("c"); // evicts b (a was seen more recently)
    expect(b.sources).toBe(2);
    expect(b.take("a")).toBe(false); // a kept its empty bucket
    expect(b.take("b")).toBe(true); // b is unknown again: from the shared bucket (1 → 0)
    expect(b.take("b")).toBe(false);
  });

  it("refuses nonsense settings", () => {
    expect(() => new TokenBuckets({ ratePerSec: 0, burst: 1 })).toThrow(/ratePerSec/);
    expect(() => new TokenBuckets({ ratePerSec: 1, burst: 0 })).toThrow(/burst/);
    expect(() => new TokenBuckets({ ratePerSec: 1, burst: 1, unknownRatePerSec: 0 })).toThrow(
      /unknownRatePerSec/,
    );
    expect(() => new TokenBuckets({ ratePerSec: 1, burst: 1, unknownBurst: 0.5 })).toThrow(
      /unknownBurst/,
    );
  });
});
