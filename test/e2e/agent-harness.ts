// Shared by agent-udp.e2e.test.ts and agent-shm.e2e.test.ts (root, real netns, cgroups and
// packets): two testbed partitions, a `weir agent` inside each partition's network namespace
// reporting its own counters over one transport, and weir's manager cycle in this process
// balancing CPU on those agent reports alone (no host sensors), writing real cgroups and
// sending directives back, which each agent hands to its hook.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import type { CycleRecord, Directive } from "../../src/core/model.ts";
import { parseConfig } from "../../src/manager/config.ts";
import { buildManager } from "../../src/manager/wiring.ts";
import { runLoad } from "../../src/testbed/load.ts";
import type { TestbedPartition, TestbedState } from "../../src/testbed/state.ts";
import { testbedDown, testbedUp } from "../../src/testbed/testbed.ts";
import { KeyRing, parseKeyHex } from "../../src/transport/codec.ts";
import type { ReportSource } from "../../src/transport/source.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const isRoot = process.getuid?.() === 0;
export const hasV1 = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
const KEYS = ["a1", "b2"].map((b) => b.repeat(32));

export interface AgentRun {
  records: CycleRecord[];
  /** When the load ran (epoch ms, the clock of CycleRecord.startedAtMs). */
  loadFromMs: number;
  loadToMs: number;
  hookLines: Record<string, string[]>;
  quotas: Record<string, number>;
  /** Packets per second the load generator really sent to each partition, over the run. */
  sentPerSec: Record<string, number>;
  /** cpu.shares of each partition's cgroup at the end of the run. */
  shares: Record<string, number>;
  source: ReportSource;
  maxVelocity: Record<string, number>;
  agentLogs: Record<string, string>;
}

export interface AgentScenario {
  prefix: string;
  transport: "udp" | "shm";
  /** Open the manager's report source on the keys (partition a = index 0, b = index 1). */
  openSource: (keys: KeyRing, partitions: TestbedPartition[]) => Promise<ReportSource>;
  /** Extra `weir agent` arguments for partition i (transport address). */
  agentArgs: (i: number, p: TestbedPartition, source: ReportSource) => string[];
  /** Config `transport:` block (validation only: the source above is what runs). */
  transportConfig: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the scenario and tears everything down (agents, manager, testbed, files) even on
 * failure. Load: a at 600 pps, b at 60 pps, 9 s, at most 9,000 packets.
 */
export async function runAgentScenario(s: AgentScenario): Promise<AgentRun> {
  const dir = mkdtempSync(path.join(tmpdir(), `weirt-${process.pid}-agent-e2e-`));
  let tb: TestbedState | null = null;
  const agents: ChildProcess[] = [];
  let source: ReportSource | null = null;
  let shutdown: (() => void) | null = null;
  try {
    tb = await testbedUp({
      prefix: s.prefix,
      partitions: [{ name: "a" }, { name: "b" }],
      costRounds: 300,
      maxLifetimeMs: 120_000,
    });
    const parts = tb.partitions;
    const keys = new KeyRing(
      parts.map((p, i) => ({ index: i, id: p.name, key: parseKeyHex(KEYS[i]!) })),
    );
    source = await s.openSource(keys, parts);
    const agentLogs: Record<string, string> = {};
    const hookFiles: Record<string, string> = {};
    parts.forEach((p, i) => {
      const keyFile = path.join(dir, `${p.name}.key`);
      writeFileSync(keyFile, KEYS[i]!, { mode: 0o600 });
      hookFiles[p.name] = path.join(dir, `${p.name}.hook`);
      agentLogs[p.name] = "";
      const child = spawn(
        "nsenter",
        [
          `--net=/run/netns/${p.netns}`,
          "--",
          process.execPath,
          path.join(REPO, "bin/weir.js"),
          "agent",
          "--index",
          String(i),
          "--key-file",
          keyFile,
          "--transport",
          s.transport,
          ...s.agentArgs(i, p, source!),
          "--interval-ms",
          "100",
          // CPU of the partition's cgroup (where its packet server runs), read from inside.
          "--cgroup",
          p.cgroup,
          "--hook",
          `echo "$WEIR_CPU_MILLIS $WEIR_CPU_COUNT $WEIR_WEIGHT" >> ${hookFiles[p.name]}`,
          "--duration-ms",
          "60000",
          "--json",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      child.stderr!.on("data", (d: Buffer) => {
        agentLogs[p.name] += d.toString();
      });
      agents.push(child);
    });

    const cfg = parseConfig({
      intervalMs: 100,
      capacity: { cpus: 2, reserve: "200m" },
      onShutdown: "restore",
      policy: { leftover: "idle" },
      staleAfterMs: 3000,
      transport: s.transportConfig,
      partitions: parts.map((p, i) => ({
        name: p.name,
        cgroup: p.cgroup,
        source: "agent",
        agent: { key: KEYS[i] },
        min: "50m",
      })),
    });
    const src = source;
    const { manager } = buildManager(cfg, { reports: src });
    shutdown = () => manager.shutdown("restore");
    const records: CycleRecord[] = [];
    const maxVelocity: Record<string, number> = { a: 0, b: 0 };
    let running = true;
    const cycles = (async () => {
      while (running) {
        records.push(manager.runCycle());
        for (const [id, r] of src.latest())
          maxVelocity[id] = Math.max(maxVelocity[id] ?? 0, r.velocityPacketsPerCpuSec ?? 0);
        await sleep(100);
      }
    })();
    // Both agents report before any load starts (startup through tsx is slow on a busy machine).
    for (let i = 0; i < 300 && src.latest().size < 2; i++) await sleep(100);
    expect(src.latest().size, JSON.stringify(agentLogs)).toBe(2);
    const loadFromMs = Date.now();
    const load = await runLoad({
      targets: [
        {
          name: "a",
          addr: parts[0]!.nsAddr,
          port: parts[0]!.port,
          schedule: { kind: "constant", pps: 600 },
        },
        {
          name: "b",
          addr: parts[1]!.nsAddr,
          port: parts[1]!.port,
          schedule: { kind: "constant", pps: 60 },
        },
      ],
      durationMs: 9000,
      maxPackets: 9000,
    });
    const loadToMs = Date.now();
    // 5,940 scheduled; a stalled generator on a busy machine sends fewer (the checks below
    // compare with what it really sent)
    expect(load.totals.sent).toBeGreaterThan(1000);
    const sentPerSec = Object.fromEntries(
      load.targets.map((t) => [t.name, t.sent / Math.max(1, load.sendingMs / 1000)]),
    );
    running = false;
    await cycles;
    // The last cycle's directive reaches each agent and its hook (allow a slow machine 10 s).
    const lastDirective = (id: string) =>
      records.at(-1)!.partitions.find((p) => p.id === id)!.directive!;
    const hookLast = (id: string) =>
      existsSync(hookFiles[id]!)
        ? readFileSync(hookFiles[id]!, "utf8").trim().split("\n").at(-1)
        : "";
    for (let i = 0; i < 100; i++) {
      if (
        parts.every((p) => {
          const d = lastDirective(p.name);
          return hookLast(p.name) === hookLineFor(d);
        })
      )
        break;
      await sleep(100);
    }
    const quotas = Object.fromEntries(
      parts.map((p) => [
        p.name,
        Number(readFileSync(`/sys/fs/cgroup/cpu/${p.cgroup}/cpu.cfs_quota_us`, "utf8")),
      ]),
    );
    const shares = Object.fromEntries(
      parts.map((p) => [
        p.name,
        Number(readFileSync(`/sys/fs/cgroup/cpu/${p.cgroup}/cpu.shares`, "utf8")),
      ]),
    );
    const hookLines = Object.fromEntries(
      parts.map((p) => [
        p.name,
        existsSync(hookFiles[p.name]!)
          ? readFileSync(hookFiles[p.name]!, "utf8").trim().split("\n")
          : [],
      ]),
    );
    return {
      records,
      loadFromMs,
      loadToMs,
      hookLines,
      quotas,
      shares,
      sentPerSec,
      source: src,
      maxVelocity,
      agentLogs,
    };
  } finally {
    shutdown?.();
    for (const a of agents) a.kill("SIGTERM");
    await Promise.all(
      agents.map((a) =>
        a.exitCode !== null || a.signalCode !== null
          ? Promise.resolve()
          : new Promise((r) => a.once("exit", r)),
      ),
    );
    source?.close();
    if (tb) await testbedDown(tb.stateFile).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** What the agent's hook prints for a directive: the cap ("max" = none), CPUs, weight. */
export function hookLineFor(d: Directive): string {
  const cap = Number.isFinite(d.capCpuMillis) ? String(Math.round(d.capCpuMillis)) : "max";
  return `${cap} ${d.cpuCount} ${d.weight}`;
}

/** What both transports must show. */
export function checkAgentRun(run: AgentRun): void {
  const { records } = run;
  const withData = records.filter((r) => r.partitions.every((p) => p.throughput !== null));
  // a cycle has agent throughput only when a new report arrived since the last one: on a
  // loaded host many cycles miss one, so the counts below are deliberately low
  expect(withData.length).toBeGreaterThan(10);
  // Every throughput came from the agents: no host sensor is open for these partitions.
  for (const r of withData)
    for (const p of r.partitions) expect(p.throughput!.source).toBe("agent");
  // The last 3 s of load: the agents saw the real traffic inside their namespaces.
  const window = withData.filter(
    (r) => r.startedAtMs > run.loadToMs - 3000 && r.startedAtMs <= run.loadToMs,
  );
  expect(window.length).toBeGreaterThanOrEqual(5);
  const part = (r: CycleRecord, id: string) => r.partitions.find((p) => p.id === id)!;
  const offeredA = mean(window.map((r) => part(r, "a").throughput!.offeredPacketsPerSec));
  const offeredB = mean(window.map((r) => part(r, "b").throughput!.offeredPacketsPerSec));
  const allocA = mean(window.map((r) => part(r, "a").directive!.cpuMillis));
  const allocB = mean(window.map((r) => part(r, "b").directive!.cpuMillis));
  // 600 and 60 pps scheduled; the agents count what really arrived (generous bounds around
  // what the generator sent: it shares 2 busy cores and may stall)
  expect(offeredA).toBeGreaterThan(0.5 * run.sentPerSec.a!);
  expect(offeredA).toBeLessThan(1200);
  expect(offeredB).toBeLessThan(offeredA / 3);
  expect(run.maxVelocity.a).toBeGreaterThan(0); // a velocity computed inside the partition
  // The manager balanced on agent reports alone: a (10x the traffic) had more CPU.
  expect(allocA).toBeGreaterThan(allocB);
  const last = records[records.length - 1]!;
  const dir = (id: string) => part(last, id).directive!;
  // The kernel holds the last directive the agent applied to itself: weights first, so the
  // weight as cpu.shares (round(weight x 1024 / 100)) and no cap (quota -1)...
  expect(dir("a").capCpuMillis).toBe(Number.POSITIVE_INFINITY);
  expect(run.quotas.a).toBe(-1);
  expect(run.shares.a).toBe(Math.round((dir("a").weight * 1024) / 100));
  // ...and each agent's hook ran with it.
  for (const id of ["a", "b"]) {
    const d = dir(id);
    expect(run.hookLines[id]!.length, run.agentLogs[id]).toBeGreaterThan(0);
    expect(run.hookLines[id]!.at(-1)).toBe(hookLineFor(d));
  }
  console.info(
    `agent e2e: offered a ${offeredA.toFixed(0)} pps, b ${offeredB.toFixed(0)} pps (agent reports); ` +
      `allocation a ${allocA.toFixed(0)}m, b ${allocB.toFixed(0)}m (last 3 s of load); max velocity a ${run.maxVelocity.a!.toFixed(0)} pkt/CPU-s; ` +
      `hook runs a ${run.hookLines.a!.length}, b ${run.hookLines.b!.length}; reports accepted ${run.source.accepted()}`,
  );
  const rejected = Object.entries(run.source.rejected()).filter(([, n]) => n > 0);
  expect(rejected).toEqual([]);
}
