// Build a Manager for a validated config on this host: sensors on the real counter files,
// the cgroup actuator (or the dry-run recorder), weir's policy, the state file.
import os from "node:os";
import { createActuatorBackend } from "../actuators/index.ts";
import type { ActuatorBackend } from "../actuators/types.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Decision, Directive } from "../core/model.ts";
import { policyKnobsFrom } from "../policy/knobs.ts";
import type { PolicyKnobs } from "../policy/types.ts";
import { weirPolicy } from "../policy/weir.ts";
import { HeldHostCpu, hostCpuFromSamples } from "../sensors/host-cpu.ts";
import { openPartitionSensor } from "../sensors/partition.ts";
import { counterSource } from "../sensors/sources.ts";
import { throughputFromSamples } from "../sensors/throughput.ts";
import type { SensorSpec } from "../sensors/types.ts";
import {
  type Config,
  capacityCpuMillis,
  checkCapacity,
  checkManagedCpus,
  type PartitionConfig,
  parsePacketSources,
  partitionSpecs,
  redactConfig,
  sensorSpecBase,
} from "./config.ts";
import {
  type AgentReports,
  type CrossCheckFn,
  Manager,
  type ManagerOptions,
  type PartitionWiring,
} from "./manager.ts";
import { loadState } from "./state-file.ts";

/** The policy's knobs for this config: its `policy:` settings on `capacity` millicores. */
export function knobsFromConfig(cfg: Config, capacity: number): PolicyKnobs {
  return policyKnobsFrom(cfg.policy, capacity);
}

/**
 * What a partition's host sensor reads: its cgroup, and the counter sources weir reads itself
 * (`packets:` without the agent-fed ones, which come through the agent's reports; without
 * `packets:`, interfaces and/or pid as before).
 */
export function sensorSpecOf(p: PartitionConfig): SensorSpec {
  const spec = sensorSpecBase(p);
  if (p.packets !== undefined) {
    const { choices, issues } = parsePacketSources(p.packets, spec);
    if (issues.length > 0)
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `partition ${p.name}: ${issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    spec.packets = choices.filter((c) => counterSource(c.name).feed === "host");
  }
  return spec;
}

export interface WiringHooks {
  now?: () => number;
  dryRun?: boolean;
  reports?: AgentReports;
  crossCheck?: CrossCheckFn;
  onChange?: (decision: Decision, directive: Directive) => void;
  onPartitionError?: ManagerOptions["onPartitionError"];
  onCycleError?: ManagerOptions["onCycleError"];
  /** Override the actuator backend (tests, simulator). */
  backend?: ActuatorBackend;
}

export interface Wired {
  manager: Manager;
  capacityCpuMillis: number;
  backendName: string;
  stateNote: string | null;
}

export function buildManager(cfg: Config, hooks: WiringHooks = {}): Wired {
  checkManagedCpus(cfg, os.availableParallelism());
  const capacity = capacityCpuMillis(cfg, os.availableParallelism());
  checkCapacity(cfg, capacity);
  const now = hooks.now ?? (() => performance.timeOrigin + performance.now());
  const backend =
    hooks.backend ??
    createActuatorBackend(hooks.dryRun ? "dry-run" : "cgroup", {
      cgroupfs: cfg.roots.cgroupfs,
      now,
    });
  const specs = partitionSpecs(cfg, capacity);
  const roots = cfg.roots;
  const partitions: PartitionWiring[] = cfg.partitions.map((p, i) => {
    const w: PartitionWiring = {
      spec: specs[i]!,
      source: p.source,
      openActuator: () => backend.open({ partition: p.name, cgroup: p.cgroup }),
    };
    if (p.source !== "agent")
      w.openSensor = () => openPartitionSensor(sensorSpecOf(p), roots, { partition: p.name });
    return w;
  });
  const loaded = cfg.stateFile ? loadState(cfg.stateFile) : null;
  const resume = loaded?.state
    ? { policyState: loaded.state.policyState, found: loaded.state.found }
    : undefined;
  const manager = new Manager({
    now,
    intervalMs: cfg.intervalMs,
    policy: weirPolicy,
    knobs: knobsFromConfig(cfg, capacity),
    partitions,
    throughput: throughputFromSamples,
    hostCpu: { open: () => new HeldHostCpu(roots.procfs), use: hostCpuFromSamples },
    staleAfterMs: cfg.staleAfterMs,
    historyMaxBytes: cfg.historyMaxBytes,
    retryGoneMs: cfg.retryGoneMs,
    maxConsecutiveCycleFailures: cfg.maxConsecutiveCycleFailures,
    redactedConfig: () => redactConfig(cfg),
    ...(resume ? { resume } : {}),
    ...(hooks.reports ? { reports: hooks.reports } : {}),
    ...(hooks.crossCheck ? { crossCheck: hooks.crossCheck } : {}),
    ...(hooks.onChange ? { onChange: hooks.onChange } : {}),
    ...(hooks.onPartitionError ? { onPartitionError: hooks.onPartitionError } : {}),
    ...(hooks.onCycleError ? { onCycleError: hooks.onCycleError } : {}),
  });
  return {
    manager,
    capacityCpuMillis: capacity,
    backendName: backend.name,
    stateNote: loaded?.note ?? null,
  };
}
