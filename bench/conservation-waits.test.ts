import { describe, expect, it } from "vitest";
import type { RunOutcome, ScenarioName } from "./conservation-run.ts";
import { blockedNote, WAIT_COLUMNS, waitNote, waitRow } from "./conservation-waits.ts";
import type { WaitBreakdown } from "./sched-trace.ts";

const wait = (p: Partial<WaitBreakdown>): WaitBreakdown => ({
  spanMs: 2000,
  waits: 100,
  waitMs: 400,
  waitMsPerSec: 200,
  p99WaitUs: 3000,
  waitsOver1Ms: 40,
  otherCpu: { idle: 0, hog: 0.5, server: 0.3, generator: 0.2, other: 0 },
  ownCpu: { idle: 0, hog: 0, server: 1, generator: 0, other: 0 },
  pulls: 2,
  wakeups: 1000,
  wakeupsBesideFreeCpu: 300,
  blocked: { count: 0, longestMs: 0, longestBy: null },
  ...p,
});
const run = (
  scenario: ScenarioName,
  policy: string,
  w: WaitBreakdown | undefined,
  perReply: number,
): RunOutcome =>
  ({
    scenario,
    policy,
    rep: 0,
    cpuPerReplyUs: { a: perReply, b: perReply, c: perReply },
    ...(w ? { schedWait: w } : {}),
  }) as unknown as RunOutcome;

describe("conservation-real wait table and note", () => {
  it("gives per-second figures and splits the wait by what the other CPU ran", () => {
    const row = waitRow("x", [run("conserve", "weir", wait({}), 90)]);
    expect(row).toHaveLength(WAIT_COLUMNS.length + 1);
    // runs, wait ms/s, waits > 1 ms per s (40 in 2 s), p99 wait, hog-only 0.5 × 200, idle, server+generator, pulls/s, wake-ups %
    expect(row.slice(1)).toEqual([
      1,
      "200.0 [200.0]",
      "20.0 [20.0]",
      "3000 [3000]",
      "100.0 [100.0]",
      "0.0 [0.0]",
      "100.0 [100.0]",
      "1.0 [1.0]",
      "30.0 [30.0]",
    ]);
  });

  it("skips runs without a trace and says so with a dash", () => {
    const row = waitRow("x", [run("conserve", "weir", undefined, 90)]);
    expect(row[1]).toBe(0);
    expect(row[2]).toBe("–");
  });

  it("states the measured figures both ways, and nothing without a hog-stopped trace", () => {
    const outcomes = [
      run(
        "ref-udp",
        "none",
        wait({
          waitMsPerSec: 50,
          waitsOver1Ms: 4,
          otherCpu: { idle: 0.6, hog: 0, server: 0.4, generator: 0, other: 0 },
          pulls: 90,
          wakeupsBesideFreeCpu: 100,
        }),
        80,
      ),
      run("conserve", "weir", wait({}), 84),
      run("conserve", "static-weights", wait({ waitMsPerSec: 300 }), 86),
    ];
    const of = (s: ScenarioName, p?: string) =>
      outcomes.filter((o) => o.scenario === s && (p === undefined || o.policy === p));
    const note = waitNote("UDP", of, "conserve", "ref-udp")!;
    expect(note).toContain(
      "with the hog stopped 50.0 ms per second, 2.0 waits over 1 ms per second, 60 % of the waiting while the other CPU was idle, 45.0 queued servers pulled",
    );
    expect(note).toContain(
      "under weir 200.0 ms per second, 20.0 waits over 1 ms per second, 50 % of the waiting while the other CPU ran only the hog and 0 % while it was idle, 1.0 pulled per second",
    );
    expect(note).toContain("10 % with the hog stopped, 30 % beside it under weir");
    expect(note).toContain("static weights 300.0 ms per second, 50 % of it");
    expect(note).toContain(
      "80 µs with the hog stopped, 84 µs beside it under weir, 86 µs under static weights",
    );
    expect(
      waitNote(
        "UDP",
        (s, p) => of(s, p).filter((o) => o.scenario !== "ref-udp"),
        "conserve",
        "ref-udp",
      ),
    ).toBeNull();
  });

  it("counts the servers' sleeps in the kernel over every traced run, and names the longest's waker", () => {
    const blocked = (count: number, longestMs: number, longestBy: string | null) => ({
      count,
      longestMs,
      longestBy,
    });
    expect(blockedNote([run("conserve", "weir", undefined, 90)])).toBeNull();
    expect(
      blockedNote([run("conserve", "weir", wait({}), 90), run("tcp", "none", wait({}), 90)]),
    ).toBe(
      "Servers asleep in the kernel (uninterruptible sleep over 1 ms, scheduler trace, 2 runs, every policy): none.",
    );
    expect(
      blockedNote([
        run("conserve", "weir", wait({ blocked: blocked(2, 20.25, "kworker/0:1-50") }), 90),
        run("tcp", "none", wait({ blocked: blocked(1, 151.5, "kdamond.0-83") }), 90),
        run("tcp", "weir", wait({}), 90),
      ]),
    ).toBe(
      "Servers asleep in the kernel (uninterruptible sleep over 1 ms, scheduler trace, 3 runs, every policy): 3 in 2 runs, the longest 151.5 ms (woken by kdamond.0-83).",
    );
  });
});
