import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  isAlive,
  parseProcStat,
  pidsWithArg,
  readCmdline,
  readProcStat,
  spawnInCgroups,
  stopProcesses,
} from "./procs.ts";

let dir: string;
const started: number[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "weir-procs-"));
});
afterEach(async () => {
  await stopProcesses(started.splice(0), { graceMs: 500 });
  rmSync(dir, { recursive: true, force: true });
});

const waitFor = async (cond: () => boolean, ms = 10_000) => {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

describe("/proc", () => {
  it("parses stat lines whose command holds spaces and parentheses", () => {
    const line =
      "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 3 1 0 0 20 0 1 0 987654 1000 200 18446744073709551615";
    expect(parseProcStat(line)).toEqual({ state: "S", startTime: 987654 });
    expect(parseProcStat("garbage")).toBeNull();
  });

  it("reads this process: alive, with its start time and argv", () => {
    const st = readProcStat(process.pid);
    expect(st?.startTime).toBeGreaterThan(0);
    expect(isAlive(process.pid)).toBe(true);
    expect(isAlive(process.pid, st!.startTime)).toBe(true);
    // same pid, other start time = another process that reused the pid
    expect(isAlive(process.pid, st!.startTime + 1)).toBe(false);
    expect(readCmdline(process.pid)?.[0]).toContain("node");
    expect(isAlive(2 ** 22 + 12345)).toBe(false);
  });
});

describe("spawnInCgroups", () => {
  it("puts the process into every cgroup dir before the program runs, and finds it by tag", async () => {
    const cg1 = join(dir, "cpu", "t");
    const cg2 = join(dir, "cpuacct", "t");
    mkdirSync(cg1, { recursive: true });
    mkdirSync(cg2, { recursive: true });
    const tag = `--weir-tag=unit-${process.pid}/a`;
    const sp = spawnInCgroups(
      [process.execPath, "-e", "setTimeout(() => {}, 20000)", "--", tag],
      [cg1, cg2],
      join(dir, "a.log"),
    );
    started.push(sp.pid);
    // Once the pid runs node (exec'd), sh has already written its own pid - the same pid -
    // into both cgroup.procs files (plain files in this fixture tree).
    expect(await waitFor(() => readCmdline(sp.pid)?.[0] === process.execPath)).toBe(true);
    expect(readFileSync(join(cg1, "cgroup.procs"), "utf8").trim()).toBe(String(sp.pid));
    expect(readFileSync(join(cg2, "cgroup.procs"), "utf8").trim()).toBe(String(sp.pid));
    expect(readCmdline(sp.pid)).toContain(tag);
    expect(pidsWithArg(tag)).toEqual([sp.pid]);
    expect(isAlive(sp.pid, sp.startTime)).toBe(true);
    expect(await stopProcesses([sp.pid], { graceMs: 2000 })).toEqual([]);
    expect(isAlive(sp.pid)).toBe(false);
    expect(pidsWithArg(tag)).toEqual([]);
  });

  it("never runs the program when a cgroup dir is missing", async () => {
    const marker = join(dir, "ran");
    const sp = spawnInCgroups(
      [process.execPath, "-e", `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "x")`],
      [join(dir, "no-such-cgroup")],
      join(dir, "b.log"),
    );
    expect(await waitFor(() => !isAlive(sp.pid))).toBe(true);
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(join(dir, "b.log"), "utf8")).toMatch(/no-such-cgroup/);
  });

  it("stopProcesses escalates to SIGKILL for a process that ignores SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"],
      {
        stdio: "ignore",
      },
    );
    const pid = child.pid!;
    started.push(pid);
    await new Promise((r) => setTimeout(r, 300)); // let it install its handler
    expect(await stopProcesses([pid], { graceMs: 300, killWaitMs: 3000 })).toEqual([]);
    expect(isAlive(pid)).toBe(false);
  });
});
