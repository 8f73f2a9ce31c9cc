// Root, real cgroup v1: the manager SIGKILLed at 50 random points (seeded) and restarted each
// time, then its state file truncated, corrupted, and put on a small tmpfs that is full. What
// must hold: the cap in force is always one weir meant (or the value found), the state file
// always names the values found before weir first touched the cgroup, a restart resumes from
// it, SIGTERM restores those values, and nothing is left (no stray temporary files either).
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { alive } from "../e2e/leftovers.ts";
import {
  CPU_ROOT,
  cpuValues,
  hasV1,
  isRoot,
  makeCgroup,
  removeCgroups,
  sleep,
  startWeir,
  stopWeir,
  until,
  type Weir,
} from "./harness.ts";
import { checkAllocations } from "./invariants.ts";
import { recordRow } from "./reliability.ts";

const FILE = "test/faults/state-faults.faults.test.ts";
const P = `weirf-${process.pid}-state`;
const CG = `${P}/only`;
const CAP_QUOTA = 40_000; // max: 400m at the 100,000 µs period
const dir = mkdtempSync(path.join(tmpdir(), "weirf-state-"));
const MNT = path.join(dir, "full");
const started: Weir[] = [];

const mounted = () => readFileSync("/proc/mounts", "utf8").includes(` ${MNT} `);

afterAll(async () => {
  for (const w of started) await stopWeir(w, "SIGKILL");
  if (mounted()) execFileSync("umount", [MNT]);
  removeCgroups([CG, P]);
  rmSync(dir, { recursive: true, force: true });
});

function config(stateFile: string): string {
  const cfg = path.join(dir, `weir-${path.basename(path.dirname(stateFile))}.yaml`);
  writeFileSync(
    cfg,
    `capacity: { cpus: 2 }\nstateFile: ${stateFile}\nonShutdown: restore\npartitions:\n  - { name: only, cgroup: ${CG}, interfaces: [lo], min: 100m, max: 400m }\n`,
  );
  return cfg;
}

function launch(cfg: string): Weir {
  const w = startWeir(cfg);
  started.push(w);
  return w;
}

/** mulberry32: a small seeded generator, so a failing run's kill points can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const foundIn = (file: string): { quota?: string; shares?: string } | null => {
  try {
    const s = JSON.parse(readFileSync(file, "utf8")) as {
      found: Record<string, { values: Record<string, string> }>;
    };
    const v = s.found.only?.values ?? {};
    return { quota: v["cpu.cfs_quota_us"]?.trim(), shares: v["cpu.shares"]?.trim() };
  } catch {
    return null;
  }
};

describe.skipIf(!isRoot || !hasV1)("weir's state across crashes (root, v1)", () => {
  it("manager SIGKILLed at 50 random points, restarted each time", async () => {
    makeCgroup(CG);
    const original = cpuValues(CG);
    const stateDir = path.join(dir, "kill");
    mkdirSync(stateDir);
    const stateFile = path.join(stateDir, "state.json");
    const cfg = config(stateFile);
    const SEED = 10;
    const rand = seeded(SEED);
    const quotasSeen = new Set<number>();
    let resumed = 0;
    let killedBeforeCap = 0;
    let badFound = 0;
    let maxRecords = 0;
    const violations: string[] = [];
    const delays: number[] = [];
    for (let i = 0; i < 50; i++) {
      const w = launch(cfg);
      const delayMs = Math.round(rand() * 1500);
      delays.push(delayMs);
      await sleep(delayMs);
      w.child.kill("SIGKILL");
      await w.exited;
      const q = cpuValues(CG).quota;
      quotasSeen.add(q);
      if (q === original.quota) killedBeforeCap++;
      if (w.stderr().includes("resumed from")) resumed++;
      const f = foundIn(stateFile);
      if (f && (f.quota !== String(original.quota) || f.shares !== String(original.shares)))
        badFound++;
      maxRecords = Math.max(maxRecords, w.records.length);
      violations.push(...checkAllocations(w.records, { only: 100 }).violations);
    }
    // a last, orderly run resumes and restores the values found before the first run
    const last = launch(cfg);
    const lastResumed = await until(() => last.stderr().includes("resumed from"), 30_000);
    const capBack = await until(() => cpuValues(CG).quota === CAP_QUOTA, 10_000);
    const exit = await stopWeir(last);
    const after = cpuValues(CG);
    const stray = readdirSync(stateDir).filter((f) => f !== "state.json");
    removeCgroups([CG, P]);
    const nothingLeft =
      !existsSync(path.join(CPU_ROOT, P)) && started.every((w) => !alive(w.child.pid!));
    const okQuotas = [...quotasSeen].every((q) => q === original.quota || q === CAP_QUOTA);
    const holds =
      okQuotas &&
      badFound === 0 &&
      violations.length === 0 &&
      lastResumed &&
      capBack &&
      exit.code === 0 &&
      after.quota === original.quota &&
      after.shares === original.shares &&
      stray.length === 0 &&
      nothingLeft;
    const sorted = [...delays].sort((a, b) => a - b);
    recordRow({
      id: "07-manager-sigkill-50",
      file: FILE,
      test: "manager SIGKILLed at 50 random points",
      fault: `weir SIGKILLed 50 times at random points (seed ${SEED}: ${sorted[0]}–${sorted[sorted.length - 1]} ms after spawn), restarted each time`,
      mustHold:
        "the quota in force is the one found or weir's cap, never another; the state file always names the values found before the first run; the next run resumes; SIGTERM restores the found values; no stray temporary files",
      observed: `quotas seen after the kills: ${[...quotasSeen].sort((a, b) => a - b).join(", ")} µs (${killedBeforeCap} kills before the first write); ${resumed} runs said "resumed from"; state files with other found values: ${badFound}; up to ${maxRecords} cycles a run, ${violations.length} allocation violations; last run resumed: ${lastResumed}, cap back: ${capBack}; SIGTERM exit ${exit.code}, quota ${after.quota} and shares ${after.shares} (found ${original.quota}, ${original.shares}); stray files: ${stray.length}; nothing left: ${nothingLeft}`,
      holds,
    });
    expect(okQuotas, [...quotasSeen].join(",")).toBe(true);
    expect(badFound).toBe(0);
    expect(violations).toEqual([]);
    expect(lastResumed).toBe(true);
    expect(capBack).toBe(true);
    expect(exit.code).toBe(0);
    expect(after).toEqual(original);
    expect(stray).toEqual([]);
    expect(nothingLeft).toBe(true);
  });

  it("state file truncated, corrupt, unwritable", async () => {
    makeCgroup(CG);
    const original = cpuValues(CG);
    const cases: string[] = [];
    let holds = true;
    // truncated to nothing, truncated mid-way, and scribbled over
    for (const [name, damage] of [
      ["truncated to 0 bytes", (t: string) => t.slice(0, 0)],
      ["truncated to half", (t: string) => t.slice(0, Math.floor(t.length / 2))],
      ["corrupt (bytes scribbled)", (t: string) => `\u0000\u00ff${t.slice(7)}`],
    ] as const) {
      const sd = path.join(dir, name.replace(/\W+/g, "-"));
      mkdirSync(sd);
      const stateFile = path.join(sd, "state.json");
      const cfg = config(stateFile);
      // a run that leaves a valid state file, then the damage
      const first = launch(cfg);
      await until(() => existsSync(stateFile) && cpuValues(CG).quota === CAP_QUOTA, 30_000);
      await stopWeir(first);
      writeFileSync(stateFile, damage(readFileSync(stateFile, "utf8")));
      const w = launch(cfg);
      const said = await until(
        () => /state file .* (is not valid JSON|has an unknown shape)/.test(w.stderr()),
        30_000,
      );
      const managed = await until(() => cpuValues(CG).quota === CAP_QUOTA, 10_000);
      const rewritten = await until(
        () => foundIn(stateFile)?.quota === String(original.quota),
        5000,
      );
      const exit = await stopWeir(w);
      const back = cpuValues(CG);
      const ok = said && managed && rewritten && exit.code === 0 && back.quota === original.quota;
      holds &&= ok;
      cases.push(
        `${name}: said so and started fresh: ${said}; cap written: ${managed}; valid file again: ${rewritten}; exit ${exit.code}, quota restored to ${back.quota}`,
      );
    }
    // a full tmpfs: the state file cannot be written at all
    mkdirSync(MNT);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "weirf-full", MNT]);
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${MNT}/filler`, "bs=4k"], { stdio: "ignore" });
    } catch {
      // dd stops with ENOSPC: the tmpfs is full
    }
    const fillerBytes = statSync(`${MNT}/filler`).size;
    const stateFile = path.join(MNT, "state", "state.json");
    mkdirSync(path.dirname(stateFile));
    const w = launch(config(stateFile));
    const warned = await until(() => w.stderr().includes("cannot save state file"), 30_000);
    const managed = await until(() => cpuValues(CG).quota === CAP_QUOTA, 10_000);
    await sleep(1500); // more save attempts, each failing
    const exit = await stopWeir(w);
    const back = cpuValues(CG);
    const onTmpfs = readdirSync(path.dirname(stateFile));
    const inv = checkAllocations(w.records, { only: 100 });
    execFileSync("umount", [MNT]);
    const unmounted = !mounted();
    removeCgroups([CG, P]);
    const fullOk =
      warned &&
      managed &&
      exit.code === 0 &&
      back.quota === original.quota &&
      onTmpfs.length === 0 &&
      inv.violations.length === 0 &&
      unmounted;
    holds &&= fullOk;
    cases.push(
      `full 64 KiB tmpfs (${fillerBytes} bytes of filler): warned "cannot save state file": ${warned}; cap written: ${managed}; ${w.records.length} cycles, ${inv.violations.length} violations; exit ${exit.code}, quota restored to ${back.quota}; files left on the tmpfs: ${onTmpfs.length}; unmounted: ${unmounted}`,
    );
    recordRow({
      id: "08-state-file-damaged",
      file: FILE,
      test: "state file truncated, corrupt, unwritable",
      fault: "the state file truncated (0 bytes, half), scribbled over, or on a full tmpfs",
      mustHold:
        "weir says why it ignores the file and starts fresh; it keeps managing; a damaged file is replaced by a valid one; an unwritable one is warned about, leaves no partial file, and SIGTERM still restores",
      observed: cases.join("; "),
      holds,
    });
    expect(cases.join("\n")).not.toMatch(/: false|quota restored to (?!-1\b)/);
    expect(holds).toBe(true);
  });
});
