// Run one scenario under one policy: the simulated machine on virtual time, driven by weir's
// real Manager (sample every sensor -> policy.step -> apply every directive -> record), with
// the sim's sensors and hypervisor behind the same interfaces as the real host's.

import { sharesToWeight } from "../cgroup/values.ts";
import type { PartitionSpec } from "../core/model.ts";
import { type CpuMillis, MILLIS_PER_CPU } from "../core/units.ts";
import { type Config, parseConfig } from "../manager/config.ts";
import { buildManager } from "../manager/wiring.ts";
import type { Policy, PolicyKnobs } from "../policy/types.ts";
import { throughputFromSamples } from "../sensors/throughput.ts";
import type { DriftOptions } from "./drift.ts";
import type { LoadSchedule } from "./load.ts";
import {
  percentile,
  type RunMeasures,
  type RunResult,
  type RunSeries,
  reactionTime,
  recoveryTime,
} from "./measures.ts";
import { SimWorld } from "./world.ts";

export interface ScenarioPartition {
  id: string;
  kind: "network" | "batch";
  /** Offered load (network partitions). */
  load?: LoadSchedule;
  /** Packets per CPU-second at nominal clock (default 3,500). */
  velocityPacketsPerCpuSec?: number;
  queuePackets?: number;
  /** Threads that can run at once (default: all CPUs). */
  parallelism?: number;
  /** Bounds and goals the policy sees (defaults: min 0, max capacity, weight 100, importance 3). */
  spec?: Partial<Omit<PartitionSpec, "id" | "kind">>;
}

export interface ReactionSpec {
  partition: string;
  atMs: number;
  settleFromMs: number;
  untilMs: number;
}

export interface Scenario {
  name: string;
  description: string;
  cpus: number;
  /** Kept back from the policy's capacity (capacity = cpus x 1000 - reserve). */
  reserveCpuMillis: number;
  durationMs: number;
  /** Manager cycle interval. */
  intervalMs: number;
  /** Simulation tick. */
  tickMs: number;
  periodUsec?: number;
  seed: number;
  drift?: Partial<DriftOptions>;
  partitions: ScenarioPartition[];
  /**
   * A load step whose reaction time is measured: on `partition`, at `atMs`; the allocation the
   * policy settles on is the median of its caps over [settleFromMs, untilMs].
   */
  reaction?: ReactionSpec;
}

/** What a policy factory may know: the scenario. */
export interface PolicyContext {
  scenario: Scenario;
}

export type PolicyFactory = (ctx: PolicyContext) => Policy;

export interface RunOptions {
  knobs?: Partial<PolicyKnobs>;
  /** Keep per-cycle series (allocation, served, offered, CPU per partition). Default: <= 20 partitions. */
  series?: boolean;
  onProgress?: (fraction: number) => void;
}

const VELOCITY_DEFAULT = 3500;

export function capacityOf(scenario: Scenario): CpuMillis {
  return scenario.cpus * MILLIS_PER_CPU - scenario.reserveCpuMillis;
}

/**
 * The scenario as a weir config: one partition per simulated cgroup (named like it, the
 * sim's hypervisor standing in for the cgroup backend), with the bounds and goals it sets.
 */
export function configOf(scenario: Scenario): Config {
  const millis = (m: number) => `${m}m`;
  return parseConfig({
    intervalMs: scenario.intervalMs,
    capacity: { cpus: scenario.cpus, reserve: millis(scenario.reserveCpuMillis) },
    partitions: scenario.partitions.map((p) => {
      const s = p.spec ?? {};
      return {
        name: p.id,
        kind: p.kind,
        cgroup: p.id,
        // the sim's sensor counts its packets; a network partition names where they come from
        ...(p.kind === "network" ? { interfaces: ["sim"] } : {}),
        ...(s.minCpuMillis === undefined ? {} : { min: millis(s.minCpuMillis) }),
        ...(s.maxCpuMillis === undefined ? {} : { max: millis(s.maxCpuMillis) }),
        ...(s.weight === undefined ? {} : { weight: s.weight }),
        ...(s.importance === undefined ? {} : { importance: s.importance }),
        ...(s.capped === undefined ? {} : { capped: s.capped }),
        ...(s.goalPacketsPerSec === undefined
          ? {}
          : { goal: { packetsPerSec: s.goalPacketsPerSec } }),
      };
    }),
  });
}

/** The simulated machine a scenario runs on (no partitions yet). */
export function worldOf(scenario: Scenario): SimWorld {
  return new SimWorld({
    cpus: scenario.cpus,
    tickMs: scenario.tickMs,
    seed: scenario.seed,
    ...(scenario.periodUsec === undefined ? {} : { periodUsec: scenario.periodUsec }),
    ...(scenario.drift === undefined ? {} : { drift: scenario.drift }),
  });
}

export function runScenario(
  scenario: Scenario,
  makePolicy: PolicyFactory,
  opts: RunOptions = {},
): RunResult {
  const wallStart = performance.now();
  const world = worldOf(scenario);
  for (const p of scenario.partitions) {
    if (p.kind === "network") {
      world.addNetwork(p.id, {
        load: p.load ?? (() => 0),
        velocityPacketsPerCpuSec: p.velocityPacketsPerCpuSec ?? VELOCITY_DEFAULT,
        ...(p.queuePackets === undefined ? {} : { queuePackets: p.queuePackets }),
        ...(p.parallelism === undefined ? {} : { parallelism: p.parallelism }),
      });
    } else world.addBatch(p.id, p.parallelism === undefined ? {} : { parallelism: p.parallelism });
  }
  const inner = makePolicy({ scenario });
  const stepUs: number[] = [];
  const timed = <T>(run: () => T): T => {
    const c0 = process.cpuUsage();
    const out = run();
    const c = process.cpuUsage(c0);
    stepUs.push(c.user + c.system);
    return out;
  };
  const innerTable = inner.stepTable?.bind(inner);
  const policy: Policy = {
    name: inner.name,
    initialState: () => inner.initialState(),
    step: (input, state) => timed(() => inner.step(input, state)),
    // the manager takes the columnar step when the policy has one: time that one then
    ...(innerTable ? { stepTable: (input, state) => timed(() => innerTable(input, state)) } : {}),
  };
  const hv = world.hypervisor;
  const { manager } = buildManager(configOf(scenario), {
    now: world.now,
    onlineCpus: scenario.cpus,
    actuators: { cgroup: hv },
    openSensor: (p) => world.sensor(p.name),
    hostCpu: null,
    throughput: (id, prev, next) => throughputFromSamples(id, prev, next, "sim"),
    policy,
    ...(opts.knobs ? { knobs: opts.knobs } : {}),
    historySize: 1,
  });

  const ids = scenario.partitions.map((p) => p.id);
  const handles = ids.map((id) => world.partition(id));
  const keepSeries = opts.series ?? ids.length <= 20;
  const series: RunSeries | undefined = keepSeries ? { tMs: [], partitions: {} } : undefined;
  if (series)
    for (const h of handles)
      series.partitions[h.id] = {
        kind: h.kind,
        capCpuMillis: [],
        servedPacketsPerSec: [],
        offeredPacketsPerSec: [],
        cpuMillis: [],
      };

  const reactionId = scenario.reaction?.partition;
  const reactionCaps: Array<{ tMs: number; cap: number | null }> = [];
  const reactionServe: Array<{ tMs: number; ok: boolean }> = [];
  const prevCounters = handles.map(() => ({
    offered: 0,
    served: 0,
    usageNs: 0,
  }));
  const capacityMillis = capacityOf(scenario);
  // What the kernel was told, in millicores: the cap where there is one, else the weight's
  // share of capacity (weights first: sharesToWeight(shares) / 10000 × capacity); a reaction is
  // the applied allocation moving, whichever way a policy expresses it.
  const applied = (id: string): number | null => {
    const cap = hv.capCpuMillis(id);
    if (cap !== null) return cap;
    if (hv.isIdle(id)) return null;
    return (sharesToWeight(hv.shares(id)) / 10_000) * capacityMillis;
  };
  const lastCap: Array<number | null> = ids.map((id) => hv.capCpuMillis(id));
  const lastApplied: Array<number | null> = ids.map(applied);
  let allocationChanges = 0;
  const cycleCpuUs: number[] = [];
  const cycles = Math.round(scenario.durationMs / scenario.intervalMs);

  for (let c = 0; c < cycles; c++) {
    const cpu0 = process.cpuUsage();
    manager.runCycle();
    const cpu = process.cpuUsage(cpu0);
    cycleCpuUs.push(cpu.user + cpu.system);
    for (let i = 0; i < ids.length; i++) {
      const cap = hv.capCpuMillis(ids[i]!);
      const now = applied(ids[i]!);
      if (now !== lastApplied[i]) allocationChanges++;
      lastCap[i] = cap;
      lastApplied[i] = now;
    }
    world.advance(scenario.intervalMs);
    const tMs = world.nowMs();
    const windowSec = scenario.intervalMs / 1000;
    if (series) series.tMs.push(tMs);
    for (let i = 0; i < handles.length; i++) {
      const h = handles[i]!;
      const prev = prevCounters[i]!;
      const usageNs = hv.stats(h.id).usageNs;
      const offered = h.counters.offeredPackets;
      const served = h.counters.servedPackets;
      if (series) {
        const s = series.partitions[h.id]!;
        s.capCpuMillis.push(lastCap[i]!);
        s.servedPacketsPerSec.push((served - prev.served) / windowSec);
        s.offeredPacketsPerSec.push((offered - prev.offered) / windowSec);
        s.cpuMillis.push(((usageNs - prev.usageNs) / 1e6 / scenario.intervalMs) * 1000);
      }
      if (h.id === reactionId) {
        reactionCaps.push({ tMs: tMs - scenario.intervalMs, cap: lastApplied[i]! });
        const o = offered - prev.offered;
        reactionServe.push({ tMs, ok: o === 0 || served - prev.served >= 0.9 * o });
      }
      prev.offered = offered;
      prev.served = served;
      prev.usageNs = usageNs;
    }
    opts.onProgress?.((c + 1) / cycles);
  }

  let offered = 0;
  let served = 0;
  let dropped = 0;
  let netNs = 0;
  let batchNs = 0;
  let writes = 0;
  let netPeriods = 0;
  let netThrottled = 0;
  for (const h of handles) {
    writes += hv.writeCount(h.id);
    const st = hv.stats(h.id);
    const ns = st.usageNs;
    if (h.kind === "network") {
      netPeriods += st.nrPeriods;
      netThrottled += st.nrThrottled;
      offered += h.counters.offeredPackets;
      served += h.counters.servedPackets;
      dropped += h.counters.droppedPackets;
      netNs += ns;
    } else batchNs += ns;
  }
  const durationNs = world.nowMs() * 1e6;
  const measures: RunMeasures = {
    offeredPackets: offered,
    servedPackets: served,
    droppedPackets: dropped,
    servedFraction: offered > 0 ? served / offered : 1,
    dropFraction: offered > 0 ? dropped / offered : 0,
    p50LatencyMs: world.latencyUs.getValueAtPercentile(50) / 1000,
    p99LatencyMs: world.latencyUs.getValueAtPercentile(99) / 1000,
    networkCpuCores: netNs / durationNs,
    batchCpuCores: batchNs / durationNs,
    networkThrottledFraction: netPeriods > 0 ? netThrottled / netPeriods : 0,
    allocationWrites: writes,
    allocationChanges,
    reactionMs: scenario.reaction ? reactionTime(reactionCaps, scenario.reaction) : null,
    recoveryMs: scenario.reaction ? recoveryTime(reactionServe, scenario.reaction.atMs) : null,
    managerCpuMs: cycleCpuUs.reduce((a, b) => a + b, 0) / 1000,
    managerCpuUsPerCycle: cycleCpuUs.reduce((a, b) => a + b, 0) / Math.max(1, cycleCpuUs.length),
    managerCpuUsP99PerCycle: percentile(cycleCpuUs, 0.99),
    policyStepUsPerCycle: stepUs.reduce((a, b) => a + b, 0) / Math.max(1, stepUs.length),
    policyStepUsP99PerCycle: percentile(stepUs, 0.99),
    processRssMb: process.memoryUsage().rss / 2 ** 20,
    cycles,
    wallMs: performance.now() - wallStart,
  };
  manager.shutdown("keep");
  const result: RunResult = {
    scenario: scenario.name,
    policy: policy.name,
    capacityCpuMillis: capacityMillis,
    measures,
  };
  if (series) result.series = series;
  return result;
}
