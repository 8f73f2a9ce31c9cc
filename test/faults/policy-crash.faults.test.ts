// Root, real cgroup v1: weir's service (the code `weir run` runs: loop, API, metrics, restore)
// in this process with weir's policy wrapped so that chosen steps throw. What must hold: a
// failed cycle writes nothing (a bounds change made while cycles fail reaches the kernel only
// after they stop failing), failures are counted (weir_cycle_failures_total), fewer than
// maxConsecutiveCycleFailures in a row do not stop weir, that many do (CYCLE_CRASH_LOOP), and
// the stop restores the values found.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/manager/config.ts";
import type { Policy } from "../../src/policy/types.ts";
import { weirPolicy } from "../../src/policy/weir.ts";
import { type RunningManager, startManager } from "../../src/service/run.ts";
import { cpuValues, hasV1, isRoot, makeCgroup, removeCgroups, sleep, until } from "./harness.ts";
import { checkAllocations } from "./invariants.ts";
import { recordRow } from "./reliability.ts";

const FILE = "test/faults/policy-crash.faults.test.ts";
const TEST = "exceptions injected into the policy";
const P = `weirf-${process.pid}-policy`;
const CG = `${P}/only`;
const MAX_FAILURES = 5;
const dir = mkdtempSync(path.join(tmpdir(), "weirf-policy-"));
const ac = new AbortController();
let running: RunningManager | null = null;

afterAll(async () => {
  ac.abort();
  await running?.done.catch(() => {});
  removeCgroups([CG, P]);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!isRoot || !hasV1)("policy exceptions (root, v1)", () => {
  it(TEST, async () => {
    makeCgroup(CG);
    const found = cpuValues(CG);
    let throwsLeft = 0;
    const policy: Policy = {
      name: "weir (faults: throws on demand)",
      initialState: () => weirPolicy.initialState(),
      step(input, state) {
        if (throwsLeft > 0) {
          throwsLeft--;
          throw new Error("injected: policy step failed");
        }
        return weirPolicy.step(input, state);
      },
    };
    const cfg = parseConfig(
      {
        capacity: { cpus: 2 },
        maxConsecutiveCycleFailures: MAX_FAILURES,
        api: { listen: "127.0.0.1:0" },
        partitions: [{ name: "only", cgroup: CG, interfaces: ["lo"], min: "100m", max: "400m" }],
      },
      "faults.yaml",
    );
    const logLines: string[] = [];
    const logger = pino({ level: "info" }, { write: (s: string) => void logLines.push(s) });
    const records: import("../../src/core/model.ts").CycleRecord[] = [];
    running = await startManager({
      cfg,
      logger,
      signal: ac.signal,
      hooks: { policy },
      onRecord: (r) => records.push(r),
    });
    const { manager, api } = running;
    let stopped: unknown = null;
    running.done.catch((e) => {
      stopped = e;
    });
    const quota = () => cpuValues(CG).quota;
    expect(await until(() => quota() === 40_000, 20_000)).toBe(true);

    // 1. three failures in a row (fewer than the bound), a bounds change made meanwhile
    throwsLeft = 3;
    await until(() => manager.cycleFailures().total >= 1, 5000);
    manager.updateBounds("only", { maxCpuMillis: 300 });
    const during: number[] = [];
    while (manager.cycleFailures().consecutive > 0 || throwsLeft > 0) {
      during.push(quota());
      await sleep(20);
    }
    const afterFailures = manager.cycleFailures();
    const applied = await until(() => quota() === 30_000, 5000);
    const metrics = await (await fetch(`${api!.url}/metrics`)).text();
    const counted = /weir_cycle_failures_total\{code="([^"]+)"\} (\d+)/.exec(metrics);
    const recordsBefore = records.length;
    await sleep(500);
    const cyclesAfterRecovery = records.length - recordsBefore;

    // 2. failures without end: weir stops after MAX_FAILURES in a row and restores
    throwsLeft = Number.POSITIVE_INFINITY;
    const tCrash = Date.now();
    const crashed = await until(() => stopped !== null, 10_000);
    const crashMs = Date.now() - tCrash;
    const final = manager.cycleFailures();
    const restored = cpuValues(CG);
    const crashCode = (stopped as { code?: string } | null)?.code;
    const logged = logLines.filter((l) => l.includes("cycle failed")).length;
    const inv = checkAllocations(records, { only: 100 });
    removeCgroups([CG, P]);

    const holds =
      during.every((q) => q === 40_000) &&
      afterFailures.total === 3 &&
      applied &&
      counted?.[2] === "3" &&
      cyclesAfterRecovery >= 2 &&
      crashed &&
      crashCode === "WEIR_CYCLE_CRASH_LOOP" &&
      final.consecutive === MAX_FAILURES &&
      final.total === 3 + MAX_FAILURES &&
      restored.quota === found.quota &&
      inv.violations.length === 0;
    recordRow({
      id: "12-policy-exception",
      file: FILE,
      test: TEST,
      fault: `the policy step throws: 3 cycles in a row, then every cycle (maxConsecutiveCycleFailures: ${MAX_FAILURES})`,
      mustHold:
        "a failed cycle writes nothing (the last safe values stay); failures are counted; fewer than the bound in a row do not stop weir; the bound stops it with CYCLE_CRASH_LOOP, restoring the values found",
      observed: `quota read ${during.length} times while cycles failed: always ${[...new Set(during)].join(", ")} µs (a bounds change to 300m made meanwhile); then written as 30000: ${applied}; metric weir_cycle_failures_total{code="${counted?.[1]}"} ${counted?.[2]}; ${cyclesAfterRecovery} cycles in 0.5 s after; endless failures stopped weir after ${crashMs} ms with ${crashCode}, ${final.consecutive} in a row (${final.total} in all), ${logged} "cycle failed" log lines; quota then ${restored.quota} (found ${found.quota}); ${records.length} records, ${inv.violations.length} allocation violations`,
      holds,
    });
    expect([...new Set(during)]).toEqual([40_000]);
    expect(afterFailures.total).toBe(3);
    expect(applied).toBe(true);
    expect(counted?.[2]).toBe("3");
    expect(cyclesAfterRecovery).toBeGreaterThanOrEqual(2);
    expect(crashed).toBe(true);
    expect(crashCode).toBe("WEIR_CYCLE_CRASH_LOOP");
    expect(final).toEqual({ total: 3 + MAX_FAILURES, consecutive: MAX_FAILURES });
    expect(restored).toEqual(found);
    expect(inv.violations).toEqual([]);
  });
});
