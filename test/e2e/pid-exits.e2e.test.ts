// Root, real cgroup v1, a real process: `weir run` manages one capped partition whose
// configured `pid` is a real `sleep`. The process is killed under the running manager: the
// partition must turn `stale` (never `gone`), its cap must decay to its guarantee (100m =
// 10000 us per 100000 us period), and on SIGTERM weir must restore the quota it found (-1),
// which it could not when a dead pid closed the partition's actuator. No CPU load (~6 s).
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
import type { CycleRecord } from "../../src/core/model.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const CGROUP = `weirt${process.pid % 100000}pid`;
const isRoot = process.getuid?.() === 0;
const hasV1 = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
const DIRS = ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct"].map((root) =>
  path.join(root, CGROUP),
);
const dir = mkdtempSync(path.join(tmpdir(), "weir-e2e-pid-"));
let sleeper: ChildProcess | null = null;
let weir: ChildProcess | null = null;

afterAll(() => {
  weir?.kill("SIGKILL");
  sleeper?.kill("SIGKILL");
  for (const d of DIRS) if (existsSync(d)) rmdirSync(d);
  rmSync(dir, { recursive: true, force: true });
});

const quota = () => Number(readFileSync(path.join(DIRS[0]!, "cpu.cfs_quota_us"), "utf8"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot || !hasV1)("a partition whose pid exits (root, v1)", () => {
  it("stays managed: stale at its guarantee, never gone, and its cgroup is restored on SIGTERM", async () => {
    for (const d of DIRS) mkdirSync(d, { recursive: true });
    const foundQuota = quota();
    expect(foundQuota).toBe(-1);
    sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
    const pid = sleeper.pid!;
    const cfgPath = path.join(dir, "weir.yaml");
    writeFileSync(
      cfgPath,
      [
        "intervalMs: 100",
        "capacity: { cpus: 1 }",
        "retryGoneMs: 500",
        "onShutdown: restore",
        "partitions:",
        "  - name: web",
        `    cgroup: ${CGROUP}`,
        `    pid: ${pid}`,
        "    min: 100m",
        "    capped: true",
      ].join("\n"),
    );
    weir = spawn(
      process.execPath,
      [path.join(REPO, "bin/weir.js"), "run", "-c", cfgPath, "--json"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const records: CycleRecord[] = [];
    let buf = "";
    let stderr = "";
    weir.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('{"cycle"')) records.push(JSON.parse(line) as CycleRecord);
      }
    });
    weir.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) =>
      weir!.on("exit", (code) => resolve(code)),
    );
    const web = (r: CycleRecord) => r.partitions.find((p) => p.id === "web")!;

    for (let i = 0; i < 100 && records.length < 10; i++) await sleep(100);
    expect(records.length, stderr).toBeGreaterThanOrEqual(10);
    expect(web(records.at(-1)!).status).toBe("ok");
    // capped with an idle capacity: its entitlement is above its guarantee before the kill
    expect(web(records.at(-1)!).directive!.cpuMillis).toBeGreaterThan(100);
    expect(quota()).toBeGreaterThan(10_000);

    const killedAt = records.length;
    sleeper.kill("SIGKILL");
    await new Promise((r) => sleeper!.once("exit", r));
    await sleep(2500); // 25 cycles, 4 retries of the dead pid
    const after = records.slice(killedAt);
    expect(after.length).toBeGreaterThanOrEqual(15);
    // never gone (the actuator stays); stale from the first cycle that saw the pid gone
    expect(after.every((r) => web(r).status !== "gone")).toBe(true);
    const last = web(after.at(-1)!);
    expect(last.status).toBe("stale");
    expect(last.error?.code).toBe("WEIR_PROCESS_GONE");
    // held to its 100m guarantee: capped at 100m = 100 * 100000 / 1000 = 10000 us
    expect(last.directive!.cpuMillis).toBe(100);
    expect(quota()).toBe(10_000);

    weir.kill("SIGTERM");
    expect(await exited, stderr).toBe(0);
    weir = null;
    // restored to what weir found: no cap
    expect(quota()).toBe(foundQuota);
  });
});
