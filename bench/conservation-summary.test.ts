import { describe, expect, it } from "vitest";
import { hogCapFiles, REFERENCE_HOG_CAP, type RunOutcome } from "./conservation-run.ts";
import { hogCapNote, hogShareOfLeftover } from "./conservation-summary.ts";

describe("conservation-real summary: the idle row's attribution", () => {
  it("gives the hog's share of the CPU that other work left, not of the whole host", () => {
    // 2 CPUs, 5 % idle (0.1 cores), the hog used 1.4 cores: others took 0.5, the hog had 1.4 of 1.5.
    expect(hogShareOfLeftover({ hogCores: 1.4, hostIdle: 0.05, hostCpus: 2 })).toBeCloseTo(
      1.4 / 1.5,
      12,
    );
    // nothing idle: the hog took everything it was left, whatever others used
    expect(hogShareOfLeftover({ hogCores: 1.2, hostIdle: 0, hostCpus: 2 })).toBe(1);
    // the hog held back to 0.5 cores with 1.5 cores idle
    expect(hogShareOfLeftover({ hogCores: 0.5, hostIdle: 0.75, hostCpus: 2 })).toBe(0.25);
  });
});

describe("conservation-real: the hand-set hog cap (issue 9's cap experiment)", () => {
  it("writes the quota and burst of the cap per period", () => {
    expect(hogCapFiles(REFERENCE_HOG_CAP)).toEqual({
      periodUs: 100_000,
      quotaUs: 100_000,
      burstUs: 100_000,
    });
    // 800m over 20 ms periods, burst half the quota; a burst above the quota is held to it
    expect(hogCapFiles({ capMillis: 800, periodUs: 20_000, burstFraction: 0.5 })).toEqual({
      periodUs: 20_000,
      quotaUs: 16_000,
      burstUs: 8_000,
    });
    expect(hogCapFiles({ capMillis: 1500, periodUs: 10_000, burstFraction: 2 }).burstUs).toBe(
      15_000,
    );
  });

  it("compares the capped runs with the same policy's uncapped ones, medians", () => {
    const run = (hostIdle: number, hogCores: number, p99: number, pulls: number) =>
      ({
        hostIdle,
        hogCores,
        p99Ms: { a: p99 },
        schedWait: { p99WaitUs: p99 * 400, pulls, spanMs: 2000 },
      }) as unknown as RunOutcome;
    const capped = [run(0.1, 0.95, 6, 4), run(0.12, 0.96, 8, 6), run(0.2, 0.9, 7, 2)];
    const uncapped = [run(0.01, 1.2, 9, 0), run(0.02, 1.1, 10, 2)];
    const note = hogCapNote(capped, uncapped, (o) => (o.p99Ms.a ?? 0) / 5);
    expect(note).toContain(
      "worst p99 ÷ no-hog 1.40×, host idle 12.0 %, hog 0.95 cores, servers' p99 wait 2800 µs, 2.0 queued servers pulled /s",
    );
    expect(note).toContain(
      "the same without the cap: worst p99 ÷ no-hog 1.90×, host idle 1.5 %, hog 1.15 cores, servers' p99 wait 3800 µs, 0.5 queued servers pulled /s",
    );
    expect(note).toContain("medians over 3 runs");
    expect(hogCapNote([], uncapped, () => 1)).toBeNull();
  });
});
