// Root, a real cgroup v1: weir is SIGKILLed after writing a cap — the cap stays valid; a
// restarted weir resumes from the state file and, on SIGTERM, restores the value found before
// weir ever touched the cgroup (not the one it wrote itself before the crash).
import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const REPO = path.resolve(import.meta.dirname, "../..");
const CG = `weirt-${process.pid}-restart`;
const CPU = `/sys/fs/cgroup/cpu/${CG}`;
const CPUACCT = `/sys/fs/cgroup/cpuacct/${CG}`;
const isRoot = process.getuid?.() === 0;
const hasV1 = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
const dir = mkdtempSync(path.join(tmpdir(), "weir-e2e-restart-"));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of [CPU, CPUACCT]) if (existsSync(d)) rmdirSync(d);
  rmSync(dir, { recursive: true, force: true });
});

const quota = () => Number(readFileSync(`${CPU}/cpu.cfs_quota_us`, "utf8"));

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

function startWeir(cfg: string): {
  child: ChildProcess;
  exited: Promise<number | null>;
  err: () => string;
} {
  const child = spawn(
    process.execPath,
    [path.join(REPO, "bin/weir.js"), "run", "-c", cfg, "--json"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  children.push(child);
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  return { child, exited: new Promise((r) => child.on("exit", (code) => r(code))), err: () => err };
}

describe.skipIf(!isRoot || !hasV1)("weir run: crash, restart, restore (root, v1)", () => {
  it("keeps the last cap after SIGKILL and restores the originally found value after restart + SIGTERM", async () => {
    mkdirSync(CPU);
    mkdirSync(CPUACCT);
    const found = quota(); // -1: unlimited, as the kernel makes it
    const stateFile = path.join(dir, "state.json");
    const cfg = path.join(dir, "weir.yaml");
    // one partition counted on lo, capped at 0.4 CPU: with nothing else to share, weir grants it max
    writeFileSync(
      cfg,
      `capacity: { cpus: 2 }\nstateFile: ${stateFile}\nonShutdown: restore\npartitions:\n  - name: only\n    cgroup: ${CG}\n    interfaces: [lo]\n    max: 400m\n`,
    );
    const first = startWeir(cfg);
    expect(await until(() => quota() === 40_000, 20_000), first.err()).toBe(true);
    expect(await until(() => existsSync(stateFile), 5000)).toBe(true);
    first.child.kill("SIGKILL");
    await first.exited;
    // what weir last wrote stays valid after a crash
    expect(quota()).toBe(40_000);
    const saved = JSON.parse(readFileSync(stateFile, "utf8")) as {
      found: Record<string, { values: Record<string, string> }>;
    };
    expect(saved.found.only?.values["cpu.cfs_quota_us"]?.trim()).toBe(String(found));

    const second = startWeir(cfg);
    expect(await until(() => second.err().includes("resumed from"), 30_000), second.err()).toBe(
      true,
    );
    await new Promise((r) => setTimeout(r, 1000)); // a few cycles
    expect(quota()).toBe(40_000); // unchanged value: not rewritten, still in force
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    // restored to what weir found before it first touched the cgroup
    expect(quota()).toBe(found);
  });
});
