import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { CpuOnlineController, type HookResult, HookRunner } from "./apply.ts";

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-agent-`));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sysTree = () => {
  const d = tmp();
  cpSync(path.join(FIX, "sys"), d, { recursive: true });
  return d;
};
const online = (sys: string, n: number) =>
  readFileSync(path.join(sys, "devices/system/cpu", `cpu${n}`, "online"), "utf8").trim();

describe("CpuOnlineController (fixture sysfs: cpu0 fixed, cpu1-3 switchable)", () => {
  it("onlines exactly the first N CPUs, writing only what changes", () => {
    const sys = sysTree();
    const c = new CpuOnlineController(sys);
    expect(c.cpus().map((x) => [x.n, x.switchable, x.online])).toEqual([
      [0, false, true],
      [1, true, true],
      [2, true, true],
      [3, true, true],
    ]);
    const cpuDir = path.join(sys, "devices/system/cpu");
    expect(c.apply(2)).toEqual([
      path.join(cpuDir, "cpu2/online"),
      path.join(cpuDir, "cpu3/online"),
    ]);
    expect([online(sys, 1), online(sys, 2), online(sys, 3)]).toEqual(["1", "0", "0"]);
    expect(c.apply(2)).toEqual([]); // nothing changed, nothing written
    expect(c.apply(3)).toEqual([path.join(cpuDir, "cpu2/online")]);
    expect(c.apply(0)).toHaveLength(2); // never below one CPU: cpu0 stays, 1 and 2 go offline
    expect([online(sys, 1), online(sys, 2), online(sys, 3)]).toEqual(["0", "0", "0"]);
    expect(c.apply(64)).toHaveLength(3); // more than present: all online
  });

  it("says where it failed when the tree is missing", () => {
    expect(() => new CpuOnlineController(path.join(FIX, "nowhere")).apply(1)).toThrow(
      /cannot list/,
    );
  });
});

describe("HookRunner", () => {
  it("runs the hook with the allocation in its environment", async () => {
    const out = path.join(tmp(), "env.txt");
    const results: HookResult[] = [];
    const h = new HookRunner(
      `echo "$WEIR_CPU_MILLIS $WEIR_CPU_COUNT $WEIR_WEIGHT $WEIR_PARTITION_INDEX" > ${out}`,
      { onResult: (r) => results.push(r) },
    );
    h.trigger({ cpuMillis: 1500, cpuCount: 2, weight: 300, partitionIndex: 4 });
    await h.idle();
    expect(readFileSync(out, "utf8")).toBe("1500 2 300 4\n");
    expect(results).toMatchObject([{ exitCode: 0, timedOut: false }]);
  });

  it("coalesces allocations that arrive while a run is in progress: the newest runs next", async () => {
    const out = path.join(tmp(), "log.txt");
    const h = new HookRunner(`sleep 0.2; echo "$WEIR_CPU_MILLIS" >> ${out}`);
    h.trigger({ cpuMillis: 100, cpuCount: 1, weight: 10, partitionIndex: 0 });
    h.trigger({ cpuMillis: 200, cpuCount: 1, weight: 10, partitionIndex: 0 });
    h.trigger({ cpuMillis: 300, cpuCount: 1, weight: 10, partitionIndex: 0 });
    await h.idle();
    // The first trigger started at once (100); 200 was superseded by 300 before it started.
    expect(readFileSync(out, "utf8")).toBe("100\n300\n");
    expect(h.completedRuns).toBe(2);
  });

  it("kills a hook that runs past its timeout and reports a failing one", async () => {
    const results: HookResult[] = [];
    const slow = new HookRunner("sleep 30", { timeoutMs: 200, onResult: (r) => results.push(r) });
    slow.trigger({ cpuMillis: 1, cpuCount: 1, weight: 1, partitionIndex: 0 });
    await slow.idle();
    const failing = new HookRunner("exit 3", { onResult: (r) => results.push(r) });
    failing.trigger({ cpuMillis: 1, cpuCount: 1, weight: 1, partitionIndex: 0 });
    await failing.idle();
    expect(results).toMatchObject([
      { timedOut: true, signal: "SIGKILL" },
      { timedOut: false, exitCode: 3 },
    ]);
  });

  it("a timeout kills what the hook started too, not only its shell", async () => {
    const pidFile = path.join(tmp(), "pid");
    const h = new HookRunner(`sleep 30 & echo $! > ${pidFile}; wait`, { timeoutMs: 300 });
    h.trigger({ cpuMillis: 1, cpuCount: 1, weight: 1, partitionIndex: 0 });
    await h.idle();
    const pid = Number(readFileSync(pidFile, "utf8"));
    // the sleep the hook started is gone: no process, or a zombie waiting for its new parent
    const running = () => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && running(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(running()).toBe(false);
  });
});
