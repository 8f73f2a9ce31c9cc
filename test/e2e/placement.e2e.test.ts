// Root, real cgroup v1 (cpu, cpuacct and cpuset hierarchies) and at least 2 CPUs: `weir run`
// with `placement:` (spread; and auto, the default, where this host's CPUs share no last-level
// cache) places two network partitions on a CPU each through their cpuset.cpus,
// does not rewrite the files while the placement holds, leaves a batch partition (which has
// no cpuset) alone, and on SIGTERM restores the cpusets it found. Creates
// /sys/fs/cgroup/{cpu,cpuacct,cpuset}/weirt-<pid>-place[/a,/b,/hog] with no process in them,
// and removes them after; the only process it starts is weir, stopped by pid.
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readLlc, wakeupSearchesCpus } from "../../src/sensors/cpu-caches.ts";
import { onlineCpusFile } from "../../src/sensors/cpuset.ts";
import { parseCpuList } from "../../src/sensors/parse.ts";
import { fillCpuset } from "../../src/testbed/cgroups.ts";
import { spawnWeirRun } from "./weir-run.ts";

const ROOT = "/sys/fs/cgroup";
const CG = `weirt-${process.pid}-place`;
const isRoot = process.getuid?.() === 0;
const hasV1Cpuset =
  fs.existsSync(path.join(ROOT, "cpu", "cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(ROOT, "cpuset", "cpuset.cpus"));
const rootCpus = hasV1Cpuset
  ? fs.readFileSync(path.join(ROOT, "cpuset", "cpuset.cpus"), "latin1").trim()
  : "";
const twoCpus = /^0-([1-9]\d*)$/.test(rootCpus) && os.cpus().length >= 2;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-e2e-place-"));
const made: string[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, "SIGKILL");
  for (const d of [...made].reverse())
    for (let i = 0; i < 50; i++) {
      try {
        if (fs.existsSync(d)) fs.rmdirSync(d);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  fs.rmSync(tmp, { recursive: true, force: true });
});

function mkdir(dir: string): void {
  fs.mkdirSync(dir);
  made.push(dir);
}

/** A v1 cpuset cgroup holding its parent's CPUs and memory nodes (a new one holds none). */
function mkCpuset(dir: string): void {
  mkdir(dir);
  fillCpuset(dir);
}

const cpusetFile = (p: string) => path.join(ROOT, "cpuset", CG, p, "cpuset.cpus");
const cpus = (p: string) => fs.readFileSync(cpusetFile(p), "latin1").trim();

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

/**
 * A config placing a and b (network) beside hog (batch), with `extra` lines first (`placement`:
 * its section, or null for none: the default).
 */
function writeConfig(
  file: string,
  extra: string[] = [],
  placement: string | null = "placement: { mode: spread, fill: 0.8 }",
): string {
  fs.writeFileSync(
    file,
    [
      "capacity: { cpus: 2 }",
      "api: { enabled: false }",
      ...extra,
      ...(placement === null ? [] : [placement]),
      "partitions:",
      `  - { name: a, cgroup: ${CG}/a, interfaces: [lo] }`,
      `  - { name: b, cgroup: ${CG}/b, interfaces: [lo] }`,
      `  - { name: hog, cgroup: ${CG}/hog, kind: batch }`,
      "",
    ].join("\n"),
  );
  return file;
}

/** `weir run -c cfg --json`, its stderr collected (its log) and its exit awaited. */
const startWeir = (cfg: string) => spawnWeirRun(cfg, children);

describe.skipIf(!isRoot || !hasV1Cpuset || !twoCpus)(
  "weir run with placement (root, v1 cpuset)",
  () => {
    it("writes each network partition's cpuset.cpus once, not again while it holds, restores it on SIGTERM", async () => {
      for (const h of ["cpu", "cpuacct"]) {
        mkdir(path.join(ROOT, h, CG));
        for (const p of ["a", "b", "hog"]) mkdir(path.join(ROOT, h, CG, p));
      }
      mkCpuset(path.join(ROOT, "cpuset", CG));
      for (const p of ["a", "b"]) mkCpuset(path.join(ROOT, "cpuset", CG, p));
      const found = cpus("a");
      expect(found).toBe(rootCpus);
      const weir = startWeir(writeConfig(path.join(tmp, "weir.yaml")));
      // two light partitions: one CPU each
      expect(
        await until(() => /^\d+$/.test(cpus("a")) && /^\d+$/.test(cpus("b")), 20_000),
        weir.err(),
      ).toBe(true);
      expect(cpus("a")).not.toBe(cpus("b"));
      const placedA = cpus("a");
      // while the placement holds nothing is rewritten (a write moves the file's mtime)
      for (const p of ["a", "b"]) fs.utimesSync(cpusetFile(p), 0, 0);
      await new Promise((r) => setTimeout(r, 2000)); // 20 cycles
      for (const p of ["a", "b"]) expect(fs.statSync(cpusetFile(p)).mtimeMs).toBe(0);
      expect(cpus("a")).toBe(placedA);
      // the log says where, once; and that the batch partition (no cpuset) is not placed
      expect(weir.err().match(/placement: [ab] on CPU \d, [ab] on CPU \d/g) ?? []).toHaveLength(1);
      expect(weir.err()).not.toMatch(/hog: placement is not available/);
      process.kill(weir.child.pid!, "SIGTERM");
      expect(await weir.exited).toBe(0);
      expect(cpus("a")).toBe(found);
      expect(cpus("b")).toBe(found);
    });

    it("with no placement: section (auto) it places exactly where this host's CPUs share no last-level cache, and says so", async () => {
      // the cgroups of the first test (made once: this test runs after it)
      const found = cpus("a");
      expect(found).toBe(rootCpus);
      const online = parseCpuList(fs.readFileSync(onlineCpusFile("/sys"), "latin1"), "online");
      let searches = true;
      try {
        searches = wakeupSearchesCpus(readLlc(), online);
      } catch {
        // topology cannot be read: auto does not place
      }
      const weir = startWeir(writeConfig(path.join(tmp, "weir-auto.yaml"), [], null));
      expect(
        await until(() => /placement \(auto\) is (not )?in force/.test(weir.err()), 20_000),
        weir.err(),
      ).toBe(true);
      if (searches) {
        expect(weir.err()).toMatch(
          /placement \(auto\) is not in force: this host's CPUs share a last-level cache/,
        );
        await new Promise((r) => setTimeout(r, 1000)); // 10 cycles
        expect([cpus("a"), cpus("b")]).toEqual([found, found]);
      } else {
        expect(weir.err()).toMatch(
          /placement \(auto\) is in force: network and batch partitions share this host/,
        );
        expect(
          await until(() => /^\d+$/.test(cpus("a")) && /^\d+$/.test(cpus("b")), 20_000),
          weir.err(),
        ).toBe(true);
      }
      process.kill(weir.child.pid!, "SIGTERM");
      expect(await weir.exited).toBe(0);
      expect([cpus("a"), cpus("b")]).toEqual([found, found]);
    });

    it("after a crash (SIGKILL) the placement stays; the restarted manager restores what the first one found", async () => {
      // the cgroups of the test above (made once: this test runs after it)
      const found = cpus("a");
      expect(found).toBe(rootCpus);
      const state = path.join(tmp, "state.json");
      const cfg = writeConfig(path.join(tmp, "weir-state.yaml"), [`stateFile: ${state}`]);
      const start = () => startWeir(cfg);
      const first = start();
      expect(
        await until(() => /^\d+$/.test(cpus("a")) && /^\d+$/.test(cpus("b")), 20_000),
        first.err(),
      ).toBe(true);
      // the state file has the found values before (or as) the first write lands
      expect(
        await until(() => {
          try {
            return JSON.parse(fs.readFileSync(state, "utf8")).foundCpusets?.a?.cpus === found;
          } catch {
            return false;
          }
        }, 5_000),
      ).toBe(true);
      const placedA = cpus("a");
      process.kill(first.child.pid!, "SIGKILL");
      await first.exited;
      // what was last written stays valid
      expect(cpus("a")).toBe(placedA);
      const second = start();
      // its first cycle has opened the cpusets (the placement's one log line)
      expect(await until(() => /placement: /.test(second.err()), 20_000), second.err()).toBe(true);
      process.kill(second.child.pid!, "SIGTERM");
      expect(await second.exited, second.err()).toBe(0);
      // restored to what the first manager found, not to the placement the second found
      expect(cpus("a")).toBe(found);
      expect(cpus("b")).toBe(found);
    });
  },
);
