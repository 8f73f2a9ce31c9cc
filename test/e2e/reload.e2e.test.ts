// Root, real cgroup v1: `weir run` reloads its config on SIGHUP, in the same process. A
// partition removed from the file gets the values weir found in its cgroup back, an added one
// is managed, one that stays keeps its cap; a file with a mistake is logged and the running
// config stays; SIGTERM then restores what weir found in every cgroup it still manages.
import type { ChildProcess } from "node:child_process";
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
import { sleep, until } from "./wait.ts";
import { spawnWeirRun, type WeirRun } from "./weir-run.ts";

const PREFIX = `weirt-${process.pid}-reload`;
const NAMES = ["a", "b", "c"] as const;
const isRoot = process.getuid?.() === 0;
const hasV1 = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
const dir = mkdtempSync(path.join(tmpdir(), "weir-e2e-reload-"));
const children: ChildProcess[] = [];
const made: string[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of made.reverse()) if (existsSync(d)) rmdirSync(d);
  rmSync(dir, { recursive: true, force: true });
});

const cpuDir = (n: string) => `/sys/fs/cgroup/cpu/${PREFIX}-${n}`;
const read = (n: string, file: string) => readFileSync(`${cpuDir(n)}/${file}`, "utf8").trim();
const quota = (n: string) => Number(read(n, "cpu.cfs_quota_us"));
const shares = (n: string) => Number(read(n, "cpu.shares"));

/** The config: these partitions (name, max), each on its own cgroup, counted on lo. */
const config = (parts: Array<[string, string]>, extra = "") =>
  `capacity: { cpus: 2 }\nonShutdown: restore\n${extra}partitions:\n${parts
    .map(
      ([n, max]) => `  - { name: ${n}, cgroup: ${PREFIX}-${n}, interfaces: [lo], max: ${max} }\n`,
    )
    .join("")}`;

/** Waits up to 30 s for `cond`; on a timeout the error says `what` and carries weir's log. */
async function waitFor(weir: WeirRun, cond: () => boolean, what: string): Promise<void> {
  try {
    await until(() => (cond() ? true : undefined), 30_000, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nweir's log:\n${weir.err()}`);
  }
}

describe.skipIf(!isRoot || !hasV1)("weir run: SIGHUP reloads the config (root, v1)", () => {
  it("restores a removed partition's cgroup, manages an added one, keeps a bad file out", async () => {
    for (const n of NAMES)
      for (const ctl of ["cpu", "cpuacct"]) {
        const d = `/sys/fs/cgroup/${ctl}/${PREFIX}-${n}`;
        mkdirSync(d);
        made.push(d);
      }
    // values an admin left: weir must give them back
    writeFileSync(`${cpuDir("b")}/cpu.shares`, "700");
    writeFileSync(`${cpuDir("c")}/cpu.shares`, "300");
    const cfg = path.join(dir, "weir.yaml");
    writeFileSync(
      cfg,
      config([
        ["a", "400m"],
        ["b", "300m"],
      ]),
    );
    const weir = spawnWeirRun(cfg, children);
    await waitFor(weir, () => quota("a") === 40_000 && quota("b") === 30_000, "a and b capped");
    expect(shares("b")).not.toBe(700);

    // b removed, c added
    writeFileSync(
      cfg,
      config([
        ["a", "400m"],
        ["c", "200m"],
      ]),
    );
    weir.child.kill("SIGHUP");
    await waitFor(weir, () => quota("c") === 20_000, "c capped after the reload");
    expect(weir.err()).toContain("reload: restarting the manager on the new config");
    expect(quota("b")).toBe(-1);
    expect(shares("b")).toBe(700);
    expect(quota("a")).toBe(40_000);

    // a mistake: logged, the running config stays
    writeFileSync(cfg, `${config([["a", "400m"]])}intervalMs: 5\n`);
    weir.child.kill("SIGHUP");
    await waitFor(
      weir,
      () => weir.err().includes("reload: the config was not reloaded"),
      "the bad file's error",
    );
    expect(weir.err()).toContain("(rule: too_small): got 5");
    await sleep(500);
    expect(weir.child.exitCode).toBeNull();
    expect(quota("c")).toBe(20_000);
    expect(quota("a")).toBe(40_000);

    weir.child.kill("SIGTERM");
    expect(await weir.exited).toBe(0);
    for (const n of NAMES) expect(quota(n)).toBe(-1);
    expect(shares("a")).toBe(1024);
    expect(shares("b")).toBe(700);
    expect(shares("c")).toBe(300);
  });
});
