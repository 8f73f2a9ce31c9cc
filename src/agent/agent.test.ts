import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { CgroupBackend } from "../actuators/cgroup.ts";
import { RecordingBackend } from "../actuators/recording.ts";
import { cappedDirective } from "../core/directive.ts";
import { KeyRing, parseKeyHex } from "../transport/codec.ts";
import { eventually } from "../transport/contract.ts";
import { DatagramAgentChannel, DatagramReportSource } from "../transport/datagram.ts";
import { ShmAgentChannel, ShmReportSource } from "../transport/shm-source.ts";
import { Agent, type AgentEvent, velocityOf } from "./agent.ts";
import { CpuOnlineController, HookRunner } from "./apply.ts";
import type { AgentCounterSource, AgentCounters } from "./counters.ts";

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const KEY = parseKeyHex("4b".repeat(32));
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-agent-`));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

/** Counters that advance as a test says: an in-memory partition. */
class ScriptedCounters implements AgentCounterSource {
  c: AgentCounters = {
    rxPackets: 0,
    txPackets: 0,
    droppedPackets: 0,
    cpuUsageNs: 0,
    nrPeriods: 0,
    nrThrottled: 0,
    throttledNs: 0,
  };
  fail = false;
  read(): AgentCounters {
    if (this.fail) throw new Error("counter file vanished");
    return { ...this.c };
  }
  close(): void {}
}

let n = 0;
function shmPair(now: () => number) {
  const file = `/dev/shm/weirt-${process.pid}-agent-${n++}`;
  const keys = new KeyRing([{ index: 3, id: "web", key: KEY }]);
  const source = new ShmReportSource({ path: file, keys, slotCount: 4, now });
  const channel = new ShmAgentChannel({ path: file, partitionIndex: 3, key: KEY, now });
  cleanups.push(() => rmSync(file, { force: true, recursive: true }));
  cleanups.push(() => source.close());
  return { source, channel };
}

describe("velocityOf", () => {
  const at = (tx: number, cpuNs: number): AgentCounters => ({
    rxPackets: tx,
    txPackets: tx,
    droppedPackets: 0,
    cpuUsageNs: cpuNs,
    nrPeriods: 0,
    nrThrottled: 0,
    throttledNs: 0,
  });
  it("is served packets per CPU-second over the window", () => {
    // 400 packets for 0.1 CPU-s = 4000 packets per CPU-second
    expect(velocityOf(at(1000, 1e9), at(1400, 1.1e9), 1e6)).toBe(4000);
  });
  it("is unknown below the CPU floor and across a counter reset", () => {
    expect(velocityOf(at(0, 0), at(10, 5e5), 1e6)).toBeNull();
    expect(velocityOf(at(1000, 1e9), at(10, 2e9), 1e6)).toBeNull();
  });
});

describe("Agent over its shared-memory slot", () => {
  it("reports cumulative counters and its own velocity; the manager reads them", () => {
    let t = 1_800_000_000_000;
    const now = () => t;
    const { source, channel } = shmPair(now);
    const counters = new ScriptedCounters();
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters,
      intervalMs: 100,
      now,
    });
    cleanups.push(() => agent.close());
    const first = agent.tick();
    expect(first?.velocityPacketsPerCpuSec).toBeNull(); // no window yet
    t += 100;
    counters.c = {
      ...counters.c,
      rxPackets: 520,
      txPackets: 500,
      droppedPackets: 20,
      cpuUsageNs: 50_000_000,
    };
    agent.tick();
    const r = source.latest().get("web")!;
    // 500 packets over 0.05 CPU-s = 10,000 packets per CPU-second, window 100 ms
    expect(r.velocityPacketsPerCpuSec).toBe(10_000);
    expect(r.velocityWindowMs).toBe(100);
    expect(r.sample).toMatchObject({
      atMs: t,
      offeredPackets: 520,
      servedPackets: 500,
      droppedPackets: 20,
    });
    expect(agent.stats()).toMatchObject({ reports: 2, errors: 0 });
  });

  it("skips a report when its counters fail, and says so", () => {
    const { channel } = shmPair(Date.now);
    const counters = new ScriptedCounters();
    const events: AgentEvent[] = [];
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters,
      intervalMs: 100,
      onEvent: (e) => events.push(e),
    });
    cleanups.push(() => agent.close());
    counters.fail = true;
    expect(agent.tick()).toBeNull();
    expect(events).toEqual([
      { kind: "error", where: "counters", code: "ERROR", message: "counter file vanished" },
    ]);
    expect(agent.stats().errors).toBe(1);
  });

  it("applies a directive to its own cgroup, CPUs and hook, once per change", async () => {
    const { source, channel } = shmPair(Date.now);
    const backend = new RecordingBackend();
    backend.create("part/web");
    const sys = tmp();
    cpSync(path.join(FIX, "sys"), sys, { recursive: true });
    const hookOut = path.join(tmp(), "hook.txt");
    const hook = new HookRunner(
      `echo "$WEIR_CPU_MILLIS/$WEIR_CPU_COUNT/$WEIR_WEIGHT" >> ${hookOut}`,
    );
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters: new ScriptedCounters(),
      intervalMs: 100,
      actuator: backend.open({ partition: "web", cgroup: "part/web" }),
      cpuOnline: new CpuOnlineController(sys),
      hook,
    });
    cleanups.push(() => agent.close());
    agent.tick();
    source.latest();
    expect(agent.pollDirective()).toBeNull();
    source.sendDirective("web", cappedDirective("web", 1500, 250, 2));
    expect(agent.pollDirective()).toMatchObject({ cpuMillis: 1500, weight: 250, cpuCount: 2 });
    await hook.idle();
    expect(backend.view("part/web")).toMatchObject({ weight: 250 });
    expect(backend.files("part/web")!["cpu.max"]).toBe("150000 100000");
    expect(readFileSync(path.join(sys, "devices/system/cpu/cpu2/online"), "utf8")).toBe("0");
    expect(readFileSync(hookOut, "utf8")).toBe("1500/2/250\n");
    // The same allocation again (next cycle): nothing rewritten, no hook run.
    backend.clearWrites();
    source.sendDirective("web", cappedDirective("web", 1500, 250, 2));
    expect(agent.pollDirective()).not.toBeNull();
    await hook.idle();
    expect(backend.writes()).toEqual([]);
    expect(hook.completedRuns).toBe(1);
    expect(agent.stats()).toMatchObject({ directives: 2, applied: 1 });
  });

  it("onlines a CPU that appears after the directive (a hot-plugged vCPU arrives offline)", () => {
    const { source, channel } = shmPair(Date.now);
    const sys = tmp();
    cpSync(path.join(FIX, "sys"), sys, { recursive: true });
    const cpuDir = path.join(sys, "devices/system/cpu");
    // The guest has cpu0 and cpu1; cpu2 and cpu3 are not plugged yet.
    rmSync(path.join(cpuDir, "cpu2"), { recursive: true });
    rmSync(path.join(cpuDir, "cpu3"), { recursive: true });
    const events: AgentEvent[] = [];
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters: new ScriptedCounters(),
      intervalMs: 100,
      cpuOnline: new CpuOnlineController(sys),
      onEvent: (e) => events.push(e),
    });
    cleanups.push(() => agent.close());
    expect(agent.reconcileCpus()).toEqual([]); // nothing applied yet: nothing to keep
    source.sendDirective("web", cappedDirective("web", 3000, 300, 3));
    expect(agent.pollDirective()).toMatchObject({ cpuCount: 3 });
    expect(agent.reconcileCpus()).toEqual([]); // cpu0, cpu1 online: all there are
    // The host hot-plugs cpu2: it appears offline.
    cpSync(path.join(FIX, "sys/devices/system/cpu/cpu1"), path.join(cpuDir, "cpu2"), {
      recursive: true,
    });
    writeFileSync(path.join(cpuDir, "cpu2/online"), "0");
    expect(agent.reconcileCpus()).toEqual([path.join(cpuDir, "cpu2/online")]);
    expect(readFileSync(path.join(cpuDir, "cpu2/online"), "utf8")).toBe("1");
    expect(events.at(-1)).toEqual({
      kind: "cpus",
      cpuCount: 3,
      written: [path.join(cpuDir, "cpu2/online")],
    });
    expect(agent.reconcileCpus()).toEqual([]); // in line: nothing rewritten
  });

  it("writes its delegated cgroup through the real cgroup v1 file backend (fixture tree)", () => {
    const { source, channel } = shmPair(Date.now);
    const cgroupfs = tmp();
    cpSync(path.join(FIX, "cgroup"), cgroupfs, { recursive: true });
    const actuator = new CgroupBackend({ cgroupfs }).open({ partition: "web", cgroup: "part/web" });
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters: new ScriptedCounters(),
      intervalMs: 100,
      actuator,
    });
    cleanups.push(() => agent.close());
    source.sendDirective("web", cappedDirective("web", 750, 100, 1));
    agent.pollDirective();
    // 750 millicores at a 100,000 us period = 75,000 us quota
    expect(readFileSync(path.join(cgroupfs, "cpu/part/web/cpu.cfs_quota_us"), "utf8").trim()).toBe(
      "75000",
    );
  });

  it("run() reports on its interval and picks up directives until aborted", async () => {
    const { source, channel } = shmPair(Date.now);
    const counters = new ScriptedCounters();
    const seen: number[] = [];
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters,
      intervalMs: 20,
      directivePollMs: 5,
      onEvent: (e) => {
        if (e.kind === "directive") seen.push(e.directive.cpuMillis);
      },
    });
    cleanups.push(() => agent.close());
    const ac = new AbortController();
    const running = agent.run(ac.signal);
    await eventually(() => (agent.stats().reports >= 3 ? true : undefined));
    source.sendDirective("web", cappedDirective("web", 600, 100, 1));
    await eventually(() => (seen.length > 0 ? true : undefined));
    ac.abort();
    await running;
    expect(seen).toEqual([600]);
    expect(source.latest().get("web")!.sequence).toBeGreaterThan(0);
  });
});

describe("Agent over UDP", () => {
  it("reports to the manager and receives its directive back", async () => {
    const keys = new KeyRing([{ index: 3, id: "web", key: KEY }]);
    const source = await DatagramReportSource.open({ keys });
    cleanups.push(() => source.close());
    const channel = await DatagramAgentChannel.open({
      partitionIndex: 3,
      key: KEY,
      manager: source.address(),
      bind: { address: "127.0.0.1" },
    });
    const agent = new Agent({
      partitionIndex: 3,
      key: KEY,
      channel,
      counters: new ScriptedCounters(),
      intervalMs: 100,
    });
    cleanups.push(() => agent.close());
    agent.tick();
    await eventually(() => source.latest().get("web"));
    expect(source.sendDirective("web", cappedDirective("web", 900, 90, 1))).toBe(true);
    const d = await eventually(() => agent.pollDirective() ?? undefined);
    expect(d.cpuMillis).toBe(900);
  });
});
