import { describe, expect, it } from "vitest";
import { type CpuProfile, shortUrl, summarizeCpuProfile } from "./cpu-profile.ts";

const frame = (functionName: string, url = "", lineNumber = -1) => ({
  functionName,
  url,
  lineNumber,
});

/** Samples every 1,000 µs from t = 0: `ids` in order. */
function profile(ids: number[]): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: frame("(root)") },
      { id: 2, callFrame: frame("(idle)") },
      { id: 3, callFrame: frame("step", "file:///x/dist/src/policy/weir.js", 122) },
      { id: 4, callFrame: frame("read") },
      { id: 5, callFrame: frame("", "file:///x/src/manager/manager.ts", 0) },
    ],
    startTime: 0,
    endTime: ids.length * 1000,
    samples: ids,
    timeDeltas: ids.map(() => 1000),
  };
}

describe("summarizeCpuProfile", () => {
  it("ranks self time, leaves idle out of the busy total, and names frames by package path", () => {
    const s = summarizeCpuProfile(profile([3, 3, 3, 4, 2, 2, 5, 3, 4, 2]));
    // a sample's time is the delta to the next one; the last sample has none
    expect(s.rows.map((r) => [r.fn, r.selfMs])).toEqual([
      ["step src/policy/weir.js:123", 4],
      ["read", 2],
      ["(anonymous) src/manager/manager.ts", 1],
    ]);
    expect(s.busyMs).toBe(7);
    expect(s.rows[0]!.share).toBeCloseTo(4 / 7);
  });

  it("counts only the samples inside the window", () => {
    // samples at t = 1, 2, …, 10 ms; window [3 ms, 5 ms] holds the 3rd to 5th
    const s = summarizeCpuProfile(profile([4, 4, 3, 3, 3, 4, 4, 4, 4, 4]), {
      fromUs: 3000,
      toUs: 5000,
    });
    expect(s.rows).toEqual([{ fn: "step src/policy/weir.js:123", selfMs: 3, share: 1 }]);
    expect(s.windowMs).toBe(2);
  });

  it("keeps the top N", () => {
    expect(summarizeCpuProfile(profile([3, 4, 5, 3]), { top: 1 }).rows).toHaveLength(1);
  });
});

describe("shortUrl", () => {
  it("cuts a script's URL to its package path", () => {
    expect(shortUrl("file:///work/x/dist/bench/overhead.js")).toBe("bench/overhead.js");
    expect(shortUrl("file:///work/x/node_modules/prom-client/lib/util.js")).toBe(
      "node_modules/prom-client/lib/util.js",
    );
    expect(shortUrl("node:internal/timers")).toBe("timers");
    expect(shortUrl("")).toBe("");
  });
});
