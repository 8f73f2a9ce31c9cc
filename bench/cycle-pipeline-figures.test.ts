import { describe, expect, it } from "vitest";
import {
  allocationsByFunction,
  cpuMsOf,
  fileKind,
  type HeapProfileNode,
  PhaseTotals,
  type PipelineRun,
  parseBuildOption,
  positiveIntOption,
  RUN_LINE_PREFIX,
  readsByKind,
  runFromOutput,
  summarize,
} from "./cycle-pipeline-figures.ts";

const run = (build: string, round: number, cpuUsPerCycle: number): PipelineRun => ({
  build,
  round,
  cycles: 6000,
  cpuUsPerCycle,
  wallUsPerCycle: cpuUsPerCycle - 10,
  phasedCpuUsPerCycle: cpuUsPerCycle + 20,
  phaseCpuUs: { sample: 40, reports: 5, step: 60, apply: 25, record: cpuUsPerCycle - 110 },
  clockReadUs: 2,
  partitionsOk: 100,
  partitions: 100,
});

describe("cycle-pipeline: the phases of a pass", () => {
  it("sums each phase from the records' CPU timings, and the record phase as the rest of the call", () => {
    const t = new PhaseTotals();
    // cycle 1: the call took 0.2 ms of CPU; the record's phases 0.05 + 0.01 + 0.06 + 0.03 = 0.15
    t.add({ sample: 0.05, reports: 0.01, policy: 0.06, apply: 0.03, total: 0.15 }, 0.2);
    // cycle 2: 0.1 ms; phases 0.03 + 0 + 0.04 + 0.01 = 0.08
    t.add({ sample: 0.03, reports: 0, policy: 0.04, apply: 0.01, total: 0.08 }, 0.1);
    expect(t.cycles).toBe(2);
    const { total, phases } = t.perCycleUs();
    expect(total).toBeCloseTo(150, 9); // (0.2 + 0.1) ms / 2 cycles
    expect(phases.sample).toBeCloseTo(40, 9); // (0.05 + 0.03) / 2
    expect(phases.reports).toBeCloseTo(5, 9);
    expect(phases.step).toBeCloseTo(50, 9); // (0.06 + 0.04) / 2
    expect(phases.apply).toBeCloseTo(20, 9);
    expect(phases.record).toBeCloseTo(35, 9); // (0.2 − 0.15 + 0.1 − 0.08) / 2
    const sum = Object.values(phases).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(total, 9);
  });

  it("takes process CPU as user + system, µs to ms", () => {
    expect(cpuMsOf({ user: 1500, system: 250 })).toBe(1.75);
  });
});

describe("cycle-pipeline: options and the child's line", () => {
  it("reads --build NAME=DIR and refuses what is not", () => {
    expect(parseBuildOption("main=/work/main")).toEqual({ name: "main", dir: "/work/main" });
    expect(parseBuildOption("new=.")).toEqual({ name: "new", dir: "." });
    expect(() => parseBuildOption("/work/main")).toThrow(/NAME=DIR/);
    expect(() => parseBuildOption("main=")).toThrow(/NAME=DIR/);
    expect(() => parseBuildOption("a b=/x")).toThrow(/letters, digits/);
  });

  it("reads positive integer options, with their fallback when absent", () => {
    expect(positiveIntOption(["--cycles", "6000"], "--cycles", 1)).toBe(6000);
    expect(positiveIntOption([], "--cycles", 42)).toBe(42);
    expect(() => positiveIntOption(["--cycles", "0"], "--cycles", 1)).toThrow(/positive integer/);
    expect(() => positiveIntOption(["--cycles", "1.5"], "--cycles", 1)).toThrow(/got "1.5"/);
    expect(() => positiveIntOption(["--cycles"], "--cycles", 1)).toThrow(/got null/);
  });

  it("finds the run among a child's other output, the last one when there are two", () => {
    const a = run("main", 0, 150);
    const b = run("main", 1, 140);
    const out = `a warning\n${RUN_LINE_PREFIX}${JSON.stringify(a)}\n${RUN_LINE_PREFIX}${JSON.stringify(b)}\n`;
    expect(runFromOutput(out)).toEqual(b);
    expect(runFromOutput("nothing\n")).toBeNull();
  });
});

describe("cycle-pipeline: the summary", () => {
  it("gives each build's median [min–max] and each round's difference from the first build", () => {
    const runs = [
      run("main", 0, 160),
      run("new", 0, 120),
      run("new", 1, 130),
      run("main", 1, 150),
      run("main", 2, 155),
      run("new", 2, 160),
    ];
    const lines = summarize(runs, ["main", "new"]);
    expect(lines[1]).toBe(
      "main (3 runs, 6000 cycles each): 155.0 [150.0–160.0] (wall 145.0 [140.0–150.0]); partitions ok 100/100",
    );
    // the record phase is cpuUsPerCycle − 110: 40, 45, 50
    expect(lines[2]).toBe(
      "  by phase (a second pass with the CPU clock read at each phase's boundaries): total 175.0 [170.0–180.0] = sample 40.0 [40.0], reports 5.0 [5.0], step 60.0 [60.0], apply 25.0 [25.0], record 45.0 [40.0–50.0]; one clock read 2.0 [2.0] (7 a cycle)",
    );
    expect(lines[3]).toMatch(/^new \(3 runs/);
    // per round: 120 − 160, 130 − 150, 160 − 155
    expect(lines[5]).toBe(
      "new − main per round: -40.0, -20.0, +5.0 µs (median -20.0; lower in 2 of 3)",
    );
  });
});

describe("cycle-pipeline: the files a cycle reads", () => {
  it("makes every partition's file, the tool's parent and a pid one kind", () => {
    expect(fileKind("/sys/fs/cgroup/cpuacct/weir-cycle-pipeline-4242/p007/cpuacct.usage")).toBe(
      "/sys/fs/cgroup/cpuacct/weir-cycle-pipeline-<pid>/pNNN/cpuacct.usage",
    );
    expect(fileKind("/proc/4242/net/dev")).toBe("/proc/<pid>/net/dev");
    expect(fileKind("/proc/stat")).toBe("/proc/stat");
  });

  it("counts reads a cycle per kind, mean and median µs, the most time a cycle first", () => {
    const cg = (i: number) => `/sys/fs/cgroup/cpuacct/weir-cycle-pipeline-1/p00${i}/cpuacct.usage`;
    const rows = readsByKind(
      [
        { file: cg(1), ns: 2000 },
        { file: cg(2), ns: 4000 },
        { file: cg(3), ns: 12000 },
        { file: "/proc/stat", ns: 10000 },
      ],
      2,
    );
    // cpuacct.usage: 3 reads over 2 cycles, mean (2 + 4 + 12) / 3 = 6 µs, 9 µs a cycle;
    // /proc/stat: 0.5 a cycle at 10 µs, 5 µs a cycle
    expect(rows).toEqual([
      {
        file: "/sys/fs/cgroup/cpuacct/weir-cycle-pipeline-<pid>/pNNN/cpuacct.usage",
        perCycle: 1.5,
        meanUs: 6,
        medianUs: 4,
      },
      { file: "/proc/stat", perCycle: 0.5, meanUs: 10, medianUs: 10 },
    ]);
  });

  it("prints the first run's reads with their total a cycle", () => {
    const r = {
      ...run("main", 0, 150),
      reads: [
        { file: "/proc/stat", perCycle: 1, meanUs: 10, medianUs: 9 },
        { file: "/proc/<pid>/net/dev", perCycle: 1, meanUs: 5, medianUs: 4 },
      ],
    };
    const lines = summarize([r], ["main"]);
    expect(lines.slice(3)).toEqual([
      "main: files read (round 0, a third pass, wall time around each fs.readSync): 2.0 reads a cycle, 15.0 µs a cycle",
      "  1.00 a cycle, 10.00 µs mean (median 9.00): /proc/stat",
      "  1.00 a cycle, 5.00 µs mean (median 4.00): /proc/<pid>/net/dev",
    ]);
  });
});

describe("cycle-pipeline: what a cycle allocates", () => {
  const node = (
    functionName: string,
    url: string,
    lineNumber: number,
    selfSize: number,
    children: HeapProfileNode[] = [],
  ): HeapProfileNode => ({ callFrame: { functionName, url, lineNumber }, selfSize, children });

  it("sums self sizes per function over the tree, per cycle, largest first", () => {
    // the same function reached through two callers counts once, with both sizes
    const head = node("(root)", "", -1, 0, [
      node("runCycle", "file:///work/x/dist/src/manager/manager.js", 117, 4000, [
        node("read", "file:///work/x/dist/src/sensors/partition.js", 182, 6000),
        node("", "file:///work/x/dist/src/policy/table.js", 9, 1000),
      ]),
      node("listOnTimeout", "node:internal/timers", 511, 500, [
        node("read", "file:///work/x/dist/src/sensors/partition.js", 182, 3000),
      ]),
    ]);
    const a = allocationsByFunction(head, 10, 3);
    expect(a.bytesPerCycle).toBe(1450);
    expect(a.top).toEqual([
      { fn: "read dist/src/sensors/partition.js:183", bytesPerCycle: 900 },
      { fn: "runCycle dist/src/manager/manager.js:118", bytesPerCycle: 400 },
      { fn: "(anonymous) dist/src/policy/table.js:10", bytesPerCycle: 100 },
    ]);
  });

  it("prints the first run's allocations with each function's share", () => {
    const r = {
      ...run("main", 0, 150),
      heap: {
        bytesPerCycle: 4096,
        top: [
          { fn: "read src/sensors/partition.ts:183", bytesPerCycle: 3072 },
          { fn: "(garbage)", bytesPerCycle: 1024 },
        ],
      },
    };
    expect(summarize([r], ["main"]).slice(3)).toEqual([
      "main: JS heap allocated a cycle (round 0, a pass under V8's sampling heap profiler, objects the collectors freed included): 4.0 KiB; by function (self):",
      "     3.00 KiB  75.0 %  read src/sensors/partition.ts:183",
      "     1.00 KiB  25.0 %  (garbage)",
    ]);
  });
});
