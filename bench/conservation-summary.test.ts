import { describe, expect, it } from "vitest";
import { histogramToB64, newHistogram } from "../src/testbed/load-stats.ts";
import { hogCapFiles, REFERENCE_HOG_CAP, type RunOutcome } from "./conservation-run.ts";
import {
  hogCapNote,
  hogShareOfLeftover,
  overloadCycleMet,
  overloadGoalEvidence,
  placementNote,
  stallNotes,
  summariseConservation,
} from "./conservation-summary.ts";

/** The summary of three repetitions' outcomes, as the benchmark makes it (timings unused here). */
const summarise = (outcomes: RunOutcome[], ppsPerCore = 10_000) =>
  summariseConservation(outcomes, {
    reps: 3,
    timing: { warmupMs: 1, measureMs: 1, idleMeasureMs: 1, overloadMeasureMs: 1, stepAtMs: 1 },
    ppsPerCore,
    notes: [],
  });

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

describe("conservation-real: cycles the importance-1 partition meets its goal", () => {
  it("counts the manager's cycles at or above the goal, leaving out cycles without a reading", () => {
    expect(overloadCycleMet([100, 99, 101, Number.NaN], 100)).toBeCloseTo(2 / 3, 12);
    expect(overloadCycleMet([4600, 4594], 4594)).toBe(1); // at the goal counts as met
    expect(overloadCycleMet([], 100)).toBeNaN();
    expect(overloadCycleMet([Number.NaN], 100)).toBeNaN();
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

describe("conservation-real: where weir loses in overload, and why", () => {
  it("says what a was served against its goal and its offer when a baseline's p99 of a is lower", () => {
    const ppsPerCore = 10_000; // a: offered 6,000/s, goal 5,000/s; b's goal 4,500/s
    const run = (policy: string, rep: number, a: number, bc: number, p99: number) =>
      ({
        scenario: "overload",
        policy,
        rep,
        hostIdle: 0.01,
        hogCores: 0.3,
        hostCpus: 2,
        served: { a: 1, b: 1, c: 1 },
        p99Ms: { a: p99, b: 50, c: 50 },
        perSecond: { a: [a, a], b: [bc / 2, bc / 2], c: [bc / 2, bc / 2] },
        writesPerPartitionSec: 0.1,
        hogCappedFraction: 0.2,
        netDelay: 0.4,
        netThrottled: 0.3,
        hogCapReasons: {},
        hogCapMillis: 10,
        waitPerRunUs: {},
        cpuPerReplyUs: {},
      }) as unknown as RunOutcome;
    const outcomes = [0, 1, 2].flatMap((rep) => [
      run("weir", rep, 5_100, 9_000, 60),
      run("static-weights", rep, 5_990, 8_000, 20),
    ]);
    const result = summarise(outcomes, ppsPerCore);
    const note = result.notes?.find((n) => n.startsWith("Where weir loses — overload"));
    expect(note).toContain(
      "static weights (idle-class batch): lower p99 (20.0 vs 60.0 ms, medians)",
    );
    expect(note).toContain(
      "weir served a 5100/s (1.02× its goal of 5000/s, 85 % of the 6000/s offered) and b + c 9000/s (medians)",
    );
  });
});

describe("conservation-real: the pooled p99 ratio beside the per-repetition one", () => {
  /** 100 requests: `slow` of them at `slowMs`, the rest at 1 ms (a histogram per partition). */
  const hist = (slow: number, slowMs: number) => {
    const h = newHistogram(3);
    for (let i = 0; i < 100; i++) h.recordValue(i < slow ? slowMs * 1000 : 1000);
    const b64 = histogramToB64(h);
    h.destroy();
    return b64;
  };
  const run = (scenario: string, policy: string, rep: number, p99: number, b64: string) =>
    ({
      scenario,
      policy,
      rep,
      hostIdle: 0.01,
      hogCores: 1,
      hostCpus: 2,
      served: { a: 1, b: 1, c: 1 },
      p99Ms: { a: p99, b: p99, c: p99 },
      latencyB64: { a: b64, b: b64, c: b64 },
      writesPerPartitionSec: 0.1,
      hogCappedFraction: 0,
      netDelay: 0,
      netThrottled: 0,
      hogCapReasons: {},
      hogCapMillis: Number.NaN,
      waitPerRunUs: {},
      cpuPerReplyUs: {},
    }) as unknown as RunOutcome;
  it("reports weir's pooled ratio as a figure and every policy's in a table", () => {
    // weir: 2 slow (at 1.5 ms) of 100 in every repetition → pooled p99 1.5 ms; the reference:
    // one repetition with 2 slow at 1.9 ms, two with none → pooled p99 1 ms (2 of 300).
    const outcomes = [0, 1, 2].flatMap((rep) => [
      run("conserve", "weir", rep, 1.5, hist(2, 1.5)),
      run("ref-udp", "plain-cfs", rep, rep === 0 ? 1.9 : 1, hist(rep === 0 ? 2 : 0, 1.9)),
    ]);
    const result = summarise(outcomes);
    const perRep = result.figures.find((f) =>
      f.name.startsWith("weir, UDP: worst partition of each repetition"),
    );
    expect(perRep?.value).toBe(1.5); // ratios 1.5/1.9, 1.5, 1.5
    expect(perRep?.target).toBeUndefined(); // shown, not the verdict
    const perPartition = result.figures.find((f) =>
      f.name.startsWith("weir, UDP: p99 with hog ÷ without, each partition's median"),
    );
    expect(perPartition).toMatchObject({
      value: 1.5,
      reps: 3,
      range: [0.79, 1.5],
      target: "<= 1.2",
    });
    expect(perPartition?.meets).toBe(false);
    const pooled = result.figures.find((f) =>
      f.name.startsWith("weir, UDP: worst partition p99 with hog ÷ without, every repetition's"),
    );
    expect(pooled).toMatchObject({ value: 1.5, reps: 3, range: [1.5, 1.5], target: "<= 1.2" });
    expect(pooled?.meets).toBe(false);
    const table = result.tables?.find((t) => t.title.startsWith("p99 of every repetition's"));
    const weirRow = table?.rows.find((r) => String(r[0]).startsWith("weir"));
    expect(weirRow?.slice(1, 5)).toEqual(["1.5", "1.5", "1.5", "1.50 [1.50–1.50]"]);
    const refRow = table?.rows.find((r) => String(r[0]).startsWith("reference: plain CFS"));
    expect(refRow?.slice(1, 5)).toEqual(["1.0", "1.0", "1.0", "1"]);
  });

  it("reads the no-hog reference against itself with both statistics, without a target", () => {
    // the second reference's p99s ÷ the first's: a 1.2 then 1.0 then 1.4 (median 1.2), b always 1.1
    const p99s = [
      [1.2, 1.1],
      [1.0, 1.1],
      [1.4, 1.1],
    ] as const;
    const outcomes = [0, 1, 2].flatMap((rep) => [
      run("conserve", "weir", rep, 1, hist(0, 1)),
      run("ref-udp", "none", rep, 1, hist(0, 1)),
      {
        ...run("ref-udp-2", "none", rep, 1, hist(0, 1)),
        p99Ms: { a: p99s[rep]![0], b: p99s[rep]![1], c: 1 },
      } as RunOutcome,
    ]);
    const figures = summarise(outcomes).figures;
    const aa = (s: string) =>
      figures.find((f) => f.name.startsWith("reference against itself, UDP") && f.name.includes(s));
    // each partition's median: a 1.2, b 1.1, c 1 → a's 1.2 [1.0–1.4]
    expect(aa("each partition's median")).toMatchObject({ value: 1.2, range: [1, 1.4], reps: 3 });
    // the worst of each repetition: 1.2, 1.1, 1.4 → 1.2
    expect(aa("worst partition of each repetition")).toMatchObject({
      value: 1.2,
      range: [1.1, 1.4],
    });
    expect(aa("each partition's median")?.target).toBeUndefined();
    // no second reference (an older report's runs): no such figure
    expect(
      summarise(outcomes.filter((o) => o.scenario !== "ref-udp-2")).figures.some((f) =>
        f.name.startsWith("reference against itself"),
      ),
    ).toBe(false);
  });

  it("says where a baseline's pooled ratio beats weir's when weir's misses the target", () => {
    const tcpRun = (policy: string, rep: number, slowMs: number) =>
      run("tcp", policy, rep, slowMs, hist(2, slowMs));
    // pooled p99: weir 1.5 ms, static weights 1.1 ms, the reference 1 ms (no slow requests)
    const outcomes = [0, 1, 2].flatMap((rep) => [
      tcpRun("weir", rep, 1.5),
      tcpRun("static-weights", rep, 1.1),
      run("ref-tcp", "plain-cfs", rep, 1, hist(0, 1)),
    ]);
    const notes = summarise(outcomes).notes ?? [];
    const note = notes.find((n) => n.startsWith("Where weir loses — tcp"));
    expect(note).toContain(
      "static weights (idle-class batch): lower p99 ratio with every repetition's requests pooled (1.10× vs 1.50×); lower p99 ratio by each partition's median over repetitions (1.10× vs 1.50×; its worst partition a, weir's a) — with the host 1.0 % idle against weir's 1.0 %, the hog at 1.00 against 1.00 cores",
    );
  });

  it("says where a baseline's ratio beats weir's by over 0.05 even when weir's meets the target", () => {
    const tcpRun = (policy: string, rep: number, slowMs: number) =>
      run("tcp", policy, rep, slowMs, hist(2, slowMs));
    // weir 1.15× (within 1.2), static weights 1.05×, Koordinator-style 1.12× (within 0.05 of weir)
    const outcomes = [0, 1, 2].flatMap((rep) => [
      tcpRun("weir", rep, 1.15),
      tcpRun("static-weights", rep, 1.05),
      tcpRun("koordinator-style", rep, 1.12),
      run("ref-tcp", "plain-cfs", rep, 1, hist(0, 1)),
    ]);
    const note = (summarise(outcomes).notes ?? []).find((n) =>
      n.startsWith("Where weir loses — tcp"),
    );
    expect(note).toContain(
      "static weights (idle-class batch): lower p99 ratio with every repetition's requests pooled (1.05× vs 1.15×); lower p99 ratio by each partition's median over repetitions (1.05× vs 1.15×; its worst partition a, weir's a)",
    );
    expect(note).not.toContain("Koordinator-style");
  });

  it("says what a baseline's p99 win cost it: the host it left idle, the hog's CPU, the servers' waits", () => {
    const traced = (o: RunOutcome, hostIdle: number, hogCores: number, waitMsPerSec: number) =>
      ({ ...o, hostIdle, hogCores, schedWait: { waitMsPerSec } }) as unknown as RunOutcome;
    const udp = (policy: string, rep: number, p99: number) =>
      run("conserve", policy, rep, p99, hist(2, p99));
    // Koordinator-style: a lower p99 with a third of the host idle and the hog held to 0.66 cores
    const outcomes = [0, 1, 2].flatMap((rep) => [
      traced(udp("weir", rep, 1.5), 0.04, 1.32, 197.2),
      traced(udp("koordinator-style", rep, 1.1), 0.351, 0.66, 298.6),
      run("ref-udp", "plain-cfs", rep, 1, hist(0, 1)),
    ]);
    const notes = summarise(outcomes).notes ?? [];
    const note = notes.find((n) => n.startsWith("Where weir loses — conserve"));
    expect(note).toContain(
      "lower p99 ratio with every repetition's requests pooled (1.10× vs 1.50×); lower p99 ratio by each partition's median over repetitions (1.10× vs 1.50×; its worst partition a, weir's a) — with the host 35.1 % idle against weir's 4.0 %, the hog at 0.66 against 1.32 cores, the servers waiting for a CPU 298.6 against 197.2 ms a second",
    );
  });
});

describe("conservation-real: what weir's placement was", () => {
  const run = (policy: string, placement?: RunOutcome["placement"]) =>
    ({ policy, ...(placement ? { placement } : {}) }) as RunOutcome;
  it("says once per distinct answer how many of weir's runs it held for, and nothing of other policies", () => {
    const on = {
      mode: "auto" as const,
      inForce: true,
      why: "placement (auto) is in force: no shared cache",
    };
    const off = { mode: "off" as const, inForce: false, why: null };
    expect(
      placementNote([
        run("weir", on),
        run("weir", on),
        run("weir", off),
        run("static-weights", on),
        run("weir"),
      ]),
    ).toEqual([
      "weir's placement (config `placement.mode`: the default, `auto`, unless a row says otherwise), as its log said at start in 2 runs: placement (auto) is in force: no shared cache.",
      "weir's placement (config `placement.mode`: the default, `auto`, unless a row says otherwise), as its log said at start in 1 run: placement.mode off: not in force.",
    ]);
    expect(placementNote([run("weir")])).toEqual([]);
  });
});

describe("conservation-real: the machine's stalls beside weir's misses", () => {
  const run = (
    scenario: string,
    policy: string,
    rep: number,
    p99: number,
    stalls: RunOutcome["stalls"],
  ) =>
    ({
      scenario,
      policy,
      rep,
      p99Ms: { a: p99, b: p99 / 2, c: p99 / 2 },
      stalls,
    }) as unknown as RunOutcome;
  it("says how late the probe woke, how often the guest stood still, and what it saw where weir missed", () => {
    const notes = stallNotes([
      run("conserve", "weir", 0, 5, { maxLateMs: 3, guestWideMs: [] }),
      run("ref-udp", "none", 0, 5, { maxLateMs: 2, guestWideMs: [] }),
      run("conserve", "weir", 1, 60, { maxLateMs: 48.2, guestWideMs: [2.5, 47.9] }),
      run("ref-udp", "none", 1, 5, { maxLateMs: 4, guestWideMs: [] }),
      run("tcp", "weir", 0, 5, { maxLateMs: 5, guestWideMs: [] }),
      run("ref-tcp", "none", 0, 5, { maxLateMs: 6, guestWideMs: [3.1] }),
    ]);
    expect(notes).toHaveLength(2);
    expect(notes[0]).toContain("its latest wake-up per run 4.5 [2.0–48.2] ms over 6 runs");
    expect(notes[0]).toContain(
      "every CPU more than 2 ms late at once (the guest stood still) in 2 of them, the longest 47.9 ms",
    );
    expect(notes[1]).toBe(
      "UDP, repetition 2: weir's p99 12.00× the reference's (partition a, 60.0 ms against 5.0 ms); the stall probe's latest wake-up 48.2 ms in weir's run (guest-wide stalls of 2.5, 47.9 ms) and 4.0 ms in the reference's (no guest-wide stall).",
    );
  });
  it("says when there was no probe, and nothing for runs from before it", () => {
    expect(stallNotes([run("conserve", "weir", 0, 5, null)])).toEqual([
      "No stall probe: cyclictest (Debian: `apt-get install rt-tests`) is not installed.",
    ]);
    expect(
      stallNotes([{ ...run("conserve", "weir", 0, 5, null), stallsError: "cyclictest exited 1" }]),
    ).toEqual(["No stall probe: cyclictest failed (cyclictest exited 1)."]);
    expect(stallNotes([{ scenario: "conserve", policy: "weir" } as RunOutcome])).toEqual([]);
  });
});

describe("overloadGoalEvidence", () => {
  it("says the goal set what a got when a was served under 99 % of its offer, and its CPU wait when it got the offer", () => {
    expect(overloadGoalEvidence(4412, 3864, 4637, 10609)).toBe(
      "weir served a 4412/s (1.14× its goal of 3864/s, 95 % of the 4637/s offered) and b + c 10609/s (medians): the goal, not a's offer, sets what a gets, and a's requests beyond it wait in its queue.",
    );
    expect(overloadGoalEvidence(3039, 2534, 3041, 8650)).toBe(
      "weir served a 3039/s (1.20× its goal of 2534/s, 100 % of the 3041/s offered) and b + c 8650/s (medians): a got its whole offer, so what is left of its p99 is its wait for a CPU beside b's and c's servers.",
    );
  });
});
