import { describe, expect, it } from "vitest";
import { guestWideStalls, parseCyclictest } from "./stall-probe.ts";

// cyclictest 2.40's output with -q and --spike, as it printed it on the 2-CPU test machine
const OUTPUT = `T: 0 ( 8859) P:95 I:5000 C:   2999 Min:     19 Act:   40 Avg:   60 Max:    5431
T: 1 ( 8860) P:95 I:5000 C:   2727 Min:     12 Act:   42 Avg:   45 Max:    3730

T: 0 Spike:    5431: TS:  29927485397
T: 1 Spike:    3730: TS:  29927485492
T: 1 Spike:    2100: TS:  29930000000
spikes = 3
`;

describe("stall probe: cyclictest's output", () => {
  it("reads each thread's wake-ups and latest wake-up, and every spike", () => {
    expect(parseCyclictest(OUTPUT)).toEqual({
      maxLateUs: [5431, 3730],
      wakeups: [2999, 2727],
      spikes: [
        { thread: 0, lateUs: 5431, atUs: 29927485397 },
        { thread: 1, lateUs: 3730, atUs: 29927485492 },
        { thread: 1, lateUs: 2100, atUs: 29930000000 },
      ],
    });
  });
  it("refuses output without a thread summary", () => {
    expect(() => parseCyclictest("sched_setscheduler: Operation not permitted\n")).toThrow(
      /no thread summary/,
    );
  });
});

describe("stall probe: guest-wide stalls", () => {
  const spike = (thread: number, lateUs: number, atUs: number) => ({ thread, lateUs, atUs });
  it("counts an instant at which every CPU woke late, as the least of their lateness", () => {
    // both CPUs late within 95 µs: one stall of at least 3.73 ms; CPU 1's later spike is its own
    expect(guestWideStalls(parseCyclictest(OUTPUT).spikes, 2)).toEqual([3730]);
  });
  it("does not join spikes further apart than the window, nor count a CPU twice", () => {
    const spikes = [
      spike(0, 12_000, 1_000_000),
      spike(0, 9_000, 1_000_500), // CPU 0 again: still one CPU
      spike(1, 40_000, 1_003_000), // 3 ms after the first: not together
      spike(0, 41_000, 1_003_400), // with CPU 1 within 2 ms: a stall of at least 40 ms
    ];
    expect(guestWideStalls(spikes, 2)).toEqual([40_000]);
    expect(guestWideStalls(spikes, 2, 5_000)).toEqual([9_000]);
    expect(guestWideStalls(spikes, 3)).toEqual([]);
    expect(guestWideStalls([], 2)).toEqual([]);
  });
  it("on one CPU, every spike is the whole guest", () => {
    expect(guestWideStalls([spike(0, 2500, 10), spike(0, 3000, 50_000)], 1)).toEqual([2500, 3000]);
  });
});
