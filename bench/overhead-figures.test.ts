import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type OverheadRun,
  parseHistogramTotals,
  parseProcCpuSplit,
  parseProcCpuTicks,
  parseProcMemoryMb,
  parseRunCounts,
  parseTraceDeoptLine,
  parseTraceGcLine,
  parseTraceOptLine,
  runtimeFigures,
  shebangCommand,
  shebangNodeFlags,
} from "./overhead-figures.ts";

describe("overhead: reading /proc/<pid>", () => {
  it("takes utime + stime (fields 14, 15) even when the command name has spaces and parentheses", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = "4242 (node (weir) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 137 42 0 0 20 0 11 0";
    expect(parseProcCpuTicks(stat)).toBe(137 + 42);
    expect(parseProcCpuSplit(stat)).toEqual({
      userTicks: 137,
      systemTicks: 42,
      minorFaults: 2000,
    });
  });

  it("reads node --trace-gc lines: kind, time since start and the main thread's pause", () => {
    expect(
      parseTraceGcLine(
        "[2461:0x11fbd8d0]       39 ms: Scavenge 3.8 (4.0) -> 3.4 (5.0) MB, 3.18 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
      ),
    ).toEqual({ atMs: 39, kind: "scavenge", pauseMs: 3.18 });
    expect(
      parseTraceGcLine(
        "[2469:0x6f71e50]    65114 ms: Mark-Compact (reduce) 13.9 (18.7) -> 10.6 (19.2) MB, 16.12 / 0.00 ms  (+ 2.1 ms in 12 steps since start of marking, biggest step 0.4 ms) (average mu = 1.000) finalize incremental marking via task; GC in old space requested",
      ),
    ).toEqual({ atMs: 65114, kind: "mark-compact", pauseMs: 16.12 });
    expect(parseTraceGcLine('{"level":30,"msg":"cycle"}')).toBeNull();
  });

  it("reads node --trace-opt's finished compilations: name, phases summed, the concurrent one", () => {
    const e = parseTraceOptLine(
      "[completed compiling 0x01c49ce70d21 <JSFunction runCycle (sfi = 0x1c49ce6c421)> (target TURBOFAN) - took 0.003, 0.954, 0.002 ms]",
    );
    expect(e?.name).toBe("runCycle");
    expect(e?.compileMs).toBeCloseTo(0.959, 9);
    expect(e?.concurrentMs).toBe(0.954);
    expect(
      parseTraceOptLine(
        "[completed compiling 0x01c49ce70c49 <JSFunction (sfi = 0x1c49ce6c369)> (target TURBOFAN) OSR - took 0.105, 3.991, 0.037 ms]",
      )?.name,
    ).toBe("");
    // the lines before and after a compilation are not one
    expect(
      parseTraceOptLine(
        "[completed optimizing 0x01c49ce70d21 <JSFunction f (sfi = 0x1c49ce6c421)> (target TURBOFAN)]",
      ),
    ).toBeNull();
    expect(
      parseTraceOptLine(
        "[compiling method 0x01c49ce70d21 <JSFunction f (sfi = 0x1c49ce6c421)> (target TURBOFAN), mode: ConcurrencyMode::kConcurrent]",
      ),
    ).toBeNull();
  });

  it("reads node --trace-deopt's bailouts: the function and the kind with the reason", () => {
    expect(
      parseTraceDeoptLine(
        "[bailout (kind: deopt-eager, reason: Insufficient type feedback for compare operation): begin. deoptimizing 0x01c49ce70c49 <JSFunction fold (sfi = 0x1c49ce6c369)>, 0x01c49ce715b1 <Code TURBOFAN>, opt id 0, bytecode offset 68",
      ),
    ).toEqual({
      name: "fold",
      reason: "deopt-eager: Insufficient type feedback for compare operation",
    });
    expect(parseTraceDeoptLine("[bailout (kind: deopt-eager, reason: x): end.")).toBeNull();
  });

  it("reads VmRSS and VmHWM in MB", () => {
    const status = "Name:\tnode\nVmHWM:\t  122880 kB\nVmRSS:\t  102400 kB\nThreads:\t11\n";
    expect(parseProcMemoryMb(status)).toEqual({ rssMb: 100, peakRssMb: 120 });
  });
});

describe("overhead: the cycle-time histogram from /metrics", () => {
  it("takes _sum and _count, with or without labels", () => {
    const text = [
      "# TYPE weir_cycle_duration_seconds histogram",
      'weir_cycle_duration_seconds_bucket{le="0.001"} 3',
      "weir_cycle_duration_seconds_sum 0.0123",
      "weir_cycle_duration_seconds_count 7",
      'weir_other_sum{x="1"} 9',
    ].join("\n");
    expect(parseHistogramTotals(text, "weir_cycle_duration_seconds")).toEqual({
      sum: 0.0123,
      count: 7,
    });
    expect(parseHistogramTotals(text, "weir_other")).toEqual({ sum: 9, count: Number.NaN });
  });

  it("takes the cycles, their time and the reports accepted (0 when the counter is absent)", () => {
    const text = [
      "weir_cycle_duration_seconds_sum 0.5",
      "weir_cycle_duration_seconds_count 200",
      "weir_reports_accepted_total 20000",
    ].join("\n");
    expect(parseRunCounts(text)).toEqual({ cycles: 200, cycleSeconds: 0.5, reports: 20000 });
    expect(parseRunCounts(text.split("\n").slice(0, 2).join("\n")).reports).toBe(0);
  });
});

describe("overhead: what the report says", () => {
  it("reports medians with the range; the budgets only on the compiled runtime", () => {
    const run = (runtime: OverheadRun["runtime"], cpu: number, rssMb: number): OverheadRun => ({
      runtime,
      startupMs: 500,
      measuredSeconds: 20,
      cpuSeconds: cpu * 20,
      cpuShareOfOneCore: cpu,
      rssMb,
      peakRssMb: rssMb + 10,
      cycles: 200,
      cycleMsMean: 1,
      reportsPerCycle: runtime === "agents" ? 100 : 0,
    });
    const runs = [
      run("compiled", 0.012, 70),
      run("tsx", 0.03, 120),
      run("agents", 0.06, 90),
      run("compiled", 0.008, 75),
      run("compiled", 0.009, 90),
    ];
    const [cpu, rss] = runtimeFigures("compiled", runs);
    // CPU: 0.8, 0.9, 1.2 % -> median 0.9 %, meets <= 1 %.
    expect(cpu).toMatchObject({
      value: 0.9,
      reps: 3,
      range: [0.8, 1.2],
      target: "<= 1 %",
      meets: true,
    });
    // the range and the count are fields the report prints beside the value, not words in the name
    expect(cpu!.name).not.toContain("range");
    // RSS: 70, 75, 90 MB -> median 75 MB, meets <= 80 MB.
    expect(rss).toMatchObject({
      value: 75,
      reps: 3,
      range: [70, 90],
      target: "<= 80 MB",
      meets: true,
    });
    const tsx = runtimeFigures("tsx", runs);
    expect(tsx[0]).toMatchObject({ value: 3 });
    expect(tsx.every((f) => f.target === undefined)).toBe(true);
    // agents: its own figures, named so, and no budget (the budgets are the idle partitions')
    const agents = runtimeFigures("agents", runs);
    expect(agents[0]).toMatchObject({ value: 6, reps: 1 });
    expect(agents[0]!.name).toContain("agents over UDP");
    expect(agents.every((f) => f.target === undefined)).toBe(true);
  });
});

describe("shebangNodeFlags", () => {
  it("reads the node flags of a bin's first line", () => {
    expect(shebangNodeFlags("#!/usr/bin/env -S node --max-semi-space-size=4\n// x\n")).toEqual([
      "--max-semi-space-size=4",
    ]);
    expect(shebangNodeFlags("#!/usr/bin/env node\nimport x;\n")).toEqual([]);
    expect(shebangNodeFlags("#!/usr/bin/env -S node --a --b=1")).toEqual(["--a", "--b=1"]);
    expect(() => shebangNodeFlags("#!/bin/sh\n")).toThrow("not a node bin's first line");
  });

  it("reads the variables env sets before node", () => {
    expect(shebangCommand("#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --a=4 --b\n")).toEqual({
      env: { MALLOC_ARENA_MAX: "2" },
      nodeFlags: ["--a=4", "--b"],
    });
    expect(shebangCommand("#!/usr/bin/env -S A=1 B_2= node\n")).toEqual({
      env: { A: "1", B_2: "" },
      nodeFlags: [],
    });
    expect(shebangCommand("#!/usr/bin/env -S node --a")).toEqual({ env: {}, nodeFlags: ["--a"] });
    expect(() => shebangCommand("#!/usr/bin/env -S =1 node\n")).toThrow("not a node bin's");
  });

  it("the package's bin gives the flags docs/performance.md explains", () => {
    const bin = readFileSync(new URL("../bin/weir.js", import.meta.url), "utf8");
    expect(shebangCommand(bin)).toEqual({
      env: { MALLOC_ARENA_MAX: "2" },
      nodeFlags: ["--max-semi-space-size=2", "--v8-pool-size=1", "--interrupt-budget=8192"],
    });
  });
});
