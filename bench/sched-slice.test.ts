import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  customSlicesWork,
  defaultSliceNs,
  getSliceNs,
  setSliceNs,
  sliceCgroupTasks,
} from "./sched-slice.ts";

const root = process.getuid?.() === 0;

describe("sched-slice", () => {
  it("reads this thread's slice in force", () => {
    const ns = getSliceNs(process.pid);
    expect(ns).not.toBeNull();
    expect(ns).toBeGreaterThan(0);
  });

  it("a task that does not exist has no slice, and setting one reports it", () => {
    // pid_max is at most 2^22: this pid cannot exist
    expect(getSliceNs(2 ** 22 + 7)).toBeNull();
    expect(setSliceNs(2 ** 22 + 7, 100_000)).toBe(false);
  });

  it.runIf(root)("sets a custom slice and gives the default back (Linux ≥ 6.12)", (ctx) => {
    if (!customSlicesWork()) ctx.skip(); // an older kernel ignores the fair class's sched_runtime
    const tid = process.pid;
    const base = defaultSliceNs();
    try {
      expect(setSliceNs(tid, 100_000)).toBe(true);
      expect(getSliceNs(tid)).toBe(100_000);
      expect(setSliceNs(tid, 0)).toBe(true);
      expect(getSliceNs(tid)).toBe(base);
    } finally {
      setSliceNs(tid, 0);
    }
  });

  it.runIf(root)("slices every thread of a cgroup's processes and gives each back", async (ctx) => {
    if (!customSlicesWork()) ctx.skip();
    // a cgroup v1 cpu group of its own holding one sleeping child (a shell: one thread)
    const dir = path.join("/sys/fs/cgroup/cpu", `weir-slice-test-${process.pid}`);
    if (!fs.existsSync("/sys/fs/cgroup/cpu")) ctx.skip();
    fs.mkdirSync(dir);
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      fs.writeFileSync(path.join(dir, "cgroup.procs"), String(child.pid));
      const base = defaultSliceNs();
      const { tasks, undo } = sliceCgroupTasks([dir], 200_000);
      expect(tasks).toBe(1);
      expect(getSliceNs(child.pid!)).toBe(200_000);
      undo();
      expect(getSliceNs(child.pid!)).toBe(base);
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      fs.rmdirSync(dir);
    }
  });
});
