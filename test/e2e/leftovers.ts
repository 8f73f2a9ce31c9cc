// What a testbed leaves behind, as the kernel lists it (ip, the cgroup trees, /proc), never
// as weir's own record says. Shared by the e2e tests that tear testbeds down.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { expect } from "vitest";
import type { TestbedState } from "../../src/testbed/state.ts";

const CPU = "/sys/fs/cgroup/cpu";
const CPUACCT = "/sys/fs/cgroup/cpuacct";
/** The hybrid host's cgroup2 mount, where the testbed also makes each cgroup (for cpu.pressure). */
const UNIFIED = "/sys/fs/cgroup/unified";

export const ipOut = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8" });

/** A pid is alive when /proc/<pid>/stat exists and its state is not zombie. */
export function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Pids of live processes carrying a tag of this prefix. */
export function taggedPids(prefix: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.startsWith(`--weir-tag=${prefix}/`)) && alive(Number(e)))
        out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export interface Recorded {
  prefix: string;
  stateFile: string;
  netns: string[];
  links: string[];
  cgroups: string[];
  pids: number[];
}

/** What the testbed's record says it made (taken before `down` deletes the record). */
export const snapshot = (s: TestbedState): Recorded => ({
  prefix: s.prefix,
  stateFile: s.stateFile,
  netns: s.resources.filter((r) => r.kind === "netns").map((r) => r.id),
  links: s.resources.filter((r) => r.kind === "link").map((r) => r.id),
  cgroups: s.resources.filter((r) => r.kind === "cgroup").map((r) => r.id),
  pids: s.resources.flatMap((r) => (r.kind === "process" && r.pid !== undefined ? [r.pid] : [])),
});

/** Nothing of the testbed is left: namespaces, links, cgroups, processes, state file. */
export function expectNothingLeft(rec: Recorded): void {
  const netns = ipOut("netns", "list")
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
  expect(netns.filter((n) => n.startsWith(`${rec.prefix}-`))).toEqual([]);
  for (const n of rec.netns) expect(netns).not.toContain(n);
  const links = ipOut("-o", "link")
    .split("\n")
    .map((l) => l.split(": ")[1]?.split("@")[0] ?? "")
    .filter(Boolean);
  expect(links.filter((l) => l.startsWith(`${rec.prefix}-`))).toEqual([]);
  for (const l of rec.links) expect(links).not.toContain(l);
  expect(existsSync(`${CPU}/${rec.prefix}`)).toBe(false);
  expect(existsSync(`${CPUACCT}/${rec.prefix}`)).toBe(false);
  expect(existsSync(`${UNIFIED}/${rec.prefix}`)).toBe(false);
  for (const d of rec.cgroups) expect(existsSync(d)).toBe(false);
  for (const p of rec.pids) expect(alive(p)).toBe(false);
  expect(taggedPids(rec.prefix)).toEqual([]);
  expect(existsSync(rec.stateFile)).toBe(false);
}
