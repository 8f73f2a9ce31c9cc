import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { Policy } from "../policy/types.ts";
import { HeldHostCpu, hostCpuFromSamples } from "../sensors/host-cpu.ts";
import { throughputFromSamples } from "../sensors/throughput.ts";
import { HostCpuSampler } from "./host-cpu-sampler.ts";
import { Manager } from "./manager.ts";

// The kernel's /proc/stat text (src/sensors/fixtures/proc/stat) with its cpu line rewritten
// per test: `cpu  <user> 0 <system> <idle> 0 0 0 <steal> 0 0`.
const FIXTURE = fs.readFileSync(
  path.join(import.meta.dirname, "../sensors/fixtures/proc/stat"),
  "latin1",
);
const statText = (user: number, system: number, idle: number, steal: number): string =>
  FIXTURE.replace(/^cpu {2}.*$/m, `cpu  ${user} 0 ${system} ${idle} 0 0 0 ${steal} 0 0`);

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function procRoot(text: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "weir-hostsampler-"));
  tmpDirs.push(d);
  fs.writeFileSync(path.join(d, "stat"), text);
  return d;
}

const wiring = (procfs: string, retryMs = 1000) => ({
  open: () => new HeldHostCpu(procfs),
  use: hostCpuFromSamples,
  retryMs,
});

describe("HostCpuSampler", () => {
  it("null first, then the window's figures; null while unreadable; back after the retry delay", () => {
    const root = procRoot(statText(1000, 100, 5000, 0));
    const stat = path.join(root, "stat");
    const sampler = new HostCpuSampler(wiring(root));
    expect(sampler.sample(0)).toBeNull(); // no previous reading yet
    // +120 user, +40 system, +40 idle = 200 ticks on 2 CPUs: 0.2 idle, 160/200 * 2 = 1.6 cores
    fs.writeFileSync(stat, statText(1120, 140, 5040, 0));
    expect(sampler.sample(1000)).toEqual({
      cpus: 2,
      idleFraction: 0.2,
      busyCores: 1.6,
      stealFraction: 0,
    });
    // a cpu line that does not parse: null, and the message says why
    fs.writeFileSync(stat, "garbage\n");
    expect(sampler.sample(2000)).toBeNull();
    expect(sampler.lastError).toMatch(/stat: first line is not the aggregate "cpu" line/);
    // the file is back, but the retry delay (1000 ms) has not passed
    fs.writeFileSync(stat, statText(1200, 160, 5100, 0));
    expect(sampler.sample(2500)).toBeNull();
    // reopened at 3000: a fresh first reading (null), then figures again
    expect(sampler.sample(3000)).toBeNull();
    // +100 idle, +50 user, +50 steal = 200: idle 0.5, busy 0.25 * 2 = 0.5 cores, steal 0.25
    fs.writeFileSync(stat, statText(1250, 160, 5200, 50));
    expect(sampler.sample(4000)).toEqual({
      cpus: 2,
      idleFraction: 0.5,
      busyCores: 0.5,
      stealFraction: 0.25,
    });
    expect(sampler.lastError).toBeNull();
    sampler.close();
  });

  it("a procfs without stat: null every cycle, never a throw", () => {
    const sampler = new HostCpuSampler(wiring("/nonexistent-procfs", 0));
    expect(sampler.sample(0)).toBeNull();
    expect(sampler.sample(100)).toBeNull();
    expect(sampler.lastError).toContain("/nonexistent-procfs/stat");
  });
});

describe("Manager records the host's CPU", () => {
  // No partitions: the cycle is only the host sample and an empty step.
  const emptyPolicy: Policy = {
    name: "empty",
    initialState: () => ({ partitions: {} }),
    step: (_input, state) => ({ directives: [], decisions: [], state }),
  };
  const build = (hostCpu?: ReturnType<typeof wiring>) => {
    let nowMs = 0;
    const manager = new Manager({
      now: () => nowMs,
      intervalMs: 100,
      policy: emptyPolicy,
      knobs: defaultPolicyKnobs(2000),
      partitions: [],
      throughput: throughputFromSamples,
      ...(hostCpu ? { hostCpu } : {}),
    });
    return {
      manager,
      cycleAt: (ms: number) => {
        nowMs = ms;
        return manager.runCycle();
      },
    };
  };

  it("fills CycleRecord.host each cycle, null when /proc/stat cannot be read", () => {
    const root = procRoot(statText(0, 0, 0, 0));
    const stat = path.join(root, "stat");
    const { manager, cycleAt } = build(wiring(root));
    expect(cycleAt(0).host).toBeNull();
    // +20 idle of 20 ticks: an idle host
    fs.writeFileSync(stat, statText(0, 0, 20, 0));
    expect(cycleAt(100).host).toEqual({ cpus: 2, idleFraction: 1, busyCores: 0, stealFraction: 0 });
    // /proc/stat unreadable (content that does not parse): the cycle completes, host is null
    fs.writeFileSync(stat, "cpu  1 2\n");
    const r = cycleAt(200);
    expect(r.host).toBeNull();
    expect(r.cycle).toBe(3);
    manager.shutdown("keep");
  });

  it("leaves `host` out of the record when the manager has no host CPU wiring", () => {
    const { cycleAt } = build();
    expect("host" in cycleAt(0)).toBe(false);
  });
});
