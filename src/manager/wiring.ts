// The one composition root: a validated config plus the factories of its parts (sensors,
// actuator backends, host CPU, clock) make a Manager. `weir run` takes every default (the
// real counter files, the backend each partition's `actuator` names, the wall clock); the
// simulator, the demo without root, the tests and the benchmarks pass their own parts, so
// nobody builds ManagerOptions by hand.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cpusetDirOf } from "../actuators/cpuset.ts";
import { createActuatorBackend, dryRun } from "../actuators/index.ts";
import type { QemuLocation } from "../actuators/qemu.ts";
import type {
  ActuatorBackend,
  ActuatorTarget,
  AllocationSnapshot,
  CpusetActuator,
  PartitionActuator,
} from "../actuators/types.ts";
import { type CgroupLayout, detectCgroupLayout, normalizeCgroupPath } from "../cgroup/layout.ts";
import { partitionCgroup } from "../cgroup/paths.ts";
import { ErrorCodes, isWeirError, WeirError } from "../core/errors.ts";
import type { Decision, Directive, PartitionId, PartitionSpec } from "../core/model.ts";
import { policyKnobsFrom } from "../policy/knobs.ts";
import type { Policy, PolicyKnobs } from "../policy/types.ts";
import { weirPolicy } from "../policy/weir.ts";
import { readLlc, wakeupSearchesCpus } from "../sensors/cpu-caches.ts";
import { onlineCpusFile, ReachableCpusReader } from "../sensors/cpuset.ts";
import { HeldHostCpu, hostCpuFromSamples } from "../sensors/host-cpu.ts";
import { parseCpuList } from "../sensors/parse.ts";
import { IDLE_CPU_READ_EVERY_MS, openPartitionSensor } from "../sensors/partition.ts";
import { bpfHandover } from "../sensors/source-bpf.ts";
import { counterSource } from "../sensors/sources.ts";
import { throughputFromSamples } from "../sensors/throughput.ts";
import type { PartitionSensor, SensorSpec } from "../sensors/types.ts";
import type { Config } from "./config.ts";
import type { PartitionConfig } from "./config-partition.ts";
import {
  capacityCpuMillis,
  checkCapacity,
  checkManagedCpus,
  effectiveConfig,
  partitionSpecs,
} from "./config-runtime.ts";
import { parsePacketSources, sensorSpecBase } from "./config-sensors.ts";
import type { HostCpuWiring } from "./host-cpu-sampler.ts";
import { Manager } from "./manager.ts";
import type {
  AgentReports,
  CrossCheckFn,
  ManagerOptions,
  PartitionWiring,
  ThroughputFn,
} from "./manager-options.ts";
import {
  type FoundCpusetEntry,
  type FoundValues,
  foundCpusetEntries,
  foundValueEntries,
  loadState,
  matchByCgroup,
  type PersistedState,
} from "./state-file.ts";
import type { PlacementDecision } from "./view.ts";

/**
 * The backends that write the partition's own cgroup's CFS quota (and report it through
 * `applied()`), so its sensor may read v1 throttling only under a quota they say is in force.
 */
const CGROUP_ACTUATORS: ReadonlySet<string> = new Set(["cgroup", "cgroup-v1", "cgroup-v2"]);

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

/**
 * What an agent-fed partition's host sensor reads: its cgroup's CPU counters and CPU delay,
 * no packet source (its packets are its agent's).
 */
export function cpuSensorSpecOf(p: PartitionConfig): SensorSpec {
  return { cgroup: p.cgroup, interfaces: [], packets: [] };
}

/** The parts a Manager is made of; every one has the host's default. */
export interface ManagerParts {
  /** Clock for the cycle (default: the wall clock, ms). */
  now?: () => number;
  /** Clock for phase timings in records (default `now`; the simulator passes a real one). */
  timer?: () => number;
  /** The machine's CPUs (default: this host's); the simulator passes its own. */
  onlineCpus?: number;
  /**
   * Actuator backends by name, used instead of building the registered one of that name: the
   * simulator's hypervisor stands in for `cgroup`, a test's recorder for whatever it names.
   */
  actuators?: Readonly<Record<string, ActuatorBackend>>;
  /** `--dry-run`: every backend is opened with `openDryRun` (decides, writes nothing). */
  dryRun?: boolean;
  /** Opens a partition's host sensor (default: its real counter files under `roots`). */
  openSensor?: (p: PartitionConfig) => PartitionSensor;
  /**
   * Opens the host sensor of an agent-fed partition (`source: agent`): its cgroup's CPU
   * counters alone, whose throttling and CPU delay replace its reports' (withHostCongestion).
   * Default: its real cgroup files under `roots` (`cpuSensorSpecOf`), unless `openSensor`
   * stands in for the host's sensors; null: none (the reports' figures alone).
   */
  openAgentCpuSensor?: ((p: PartitionConfig) => PartitionSensor) | null;
  /** The host's CPU for `CycleRecord.host` (default /proc/stat under `roots.procfs`; null: none). */
  hostCpu?: HostCpuWiring | null;
  /** Counters -> throughput (default `throughputFromSamples`). */
  throughput?: ThroughputFn;
  /** The control law (default weir's); the simulator compares others. */
  policy?: Policy;
  /** Knobs over the config's (the simulator's experiments). */
  knobs?: Partial<PolicyKnobs>;
  /** Records kept for readers (default DEFAULT_HISTORY_SIZE). */
  historySize?: number;
  /** Estimated bytes of records kept (default: the config's `historyMaxBytes`). */
  historyMaxBytes?: number;
  /**
   * What `redactedConfig()` shows (default: the config, secrets redacted, with the bounds a
   * runtime change moved as they are in force: `effectiveConfig`).
   */
  redactedConfig?: () => unknown;
  reports?: AgentReports;
  crossCheck?: CrossCheckFn;
  onChange?: (decision: Decision, directive: Directive) => void;
  onPartitionError?: ManagerOptions["onPartitionError"];
  onCycleError?: ManagerOptions["onCycleError"];
  /**
   * Read each partition's reachable CPUs (its cpuset ∩ its threads' affinity, under `roots`) so
   * the capacity is at most 1000m per CPU they can reach (default: yes unless `actuators`
   * stands in for the backends — the simulator's partitions are not this host's cgroups).
   */
  reachableCpus?: boolean;
  onCapacityChange?: ManagerOptions["onCapacityChange"];
  onPlacementChange?: ManagerOptions["onPlacementChange"];
  onPlacementProblem?: ManagerOptions["onPlacementProblem"];
  /** A counter source's note on opening a partition's sensor (CounterSourceContext.note). */
  onSensorNote?: (partition: string, message: string) => void;
  onPlacementOpened?: ManagerOptions["onPlacementOpened"];
  /**
   * Resume from this instead of the state file: what a manager stopped for a reload kept
   * (src/service/reload.ts), the same as it saves. Its found values go by cgroup as a state
   * file's do: a partition that stays keeps them, a removed one's cgroup gets them back.
   */
  resumeState?: PersistedState;
}

/**
 * The CPUs placement may use: this host's online CPUs (`<sysfs>/devices/system/cpu/online`),
 * or 0..onlineCpus-1 when the caller gives the machine's CPU count (the simulator, tests) or
 * the file cannot be read.
 */
export function placementCpus(sysfs: string, onlineCpus: number, given: boolean): number[] {
  const count = () => Array.from({ length: Math.max(0, Math.floor(onlineCpus)) }, (_, i) => i);
  if (given) return count();
  const file = onlineCpusFile(sysfs);
  try {
    const cpus = parseCpuList(fs.readFileSync(file, "latin1"), file);
    return cpus.length > 0 ? cpus : count();
  } catch {
    return count();
  }
}

/**
 * Reads a cgroup's reachable CPUs on this host: its cpuset ∩ the affinity of the threads in
 * it (readReachableCpus). The layout is found on first use; null CPUs (unknown: the manager
 * reports the partition, reach.ts) while it cannot be, and it is looked for again next time.
 */
function reachReader(roots: Config["roots"]): (cgroupPath: string) => number[] | null {
  let layout: CgroupLayout | undefined;
  let reader: ReachableCpusReader | undefined;
  // each partition's threads file, found once (the layout does not change while weir runs)
  const threadsFiles = new Map<string, string>();
  return (cgroupPath) => {
    if (layout === undefined) {
      try {
        layout = detectCgroupLayout(roots.cgroupfs);
      } catch {
        return null;
      }
    }
    reader ??= new ReachableCpusReader(roots);
    let threads = threadsFiles.get(cgroupPath);
    if (threads === undefined) {
      threads = partitionCgroup(layout, cgroupPath).threadsFile;
      threadsFiles.set(cgroupPath, threads);
    }
    return reader.read(cgroupPath, threads)?.cpus ?? null;
  };
}

/** A partition's actuator target: a QEMU guest (`qemu:`) or its cgroup. */
export function actuatorTarget(p: PartitionConfig): ActuatorTarget {
  if (p.qemu === undefined) return { partition: p.name, cgroup: p.cgroup };
  const qemu: QemuLocation = {
    cgroup: p.cgroup,
    qmpSocket: p.qemu.qmp,
    consoleLog: p.qemu.console,
  };
  if (p.qemu.minCpus !== undefined) qemu.minCpus = p.qemu.minCpus;
  if (p.qemu.maxCpus !== undefined) qemu.maxCpus = p.qemu.maxCpus;
  if (p.qemu.shrinkAfterMs !== undefined) qemu.shrinkAfterMs = p.qemu.shrinkAfterMs;
  return { partition: p.name, qemu };
}

export interface Wired {
  manager: Manager;
  capacityCpuMillis: number;
  /** The backends in use, by name ("cgroup", "cgroup (dry run)"), comma-separated. */
  backendName: string;
  stateNote: string | null;
  /**
   * Cpusets a killed run had placed, written back at start because placement is not in force
   * now (one line each: restored, or why not — those stay in the state file for the next start).
   */
  cpusetNotes: Array<{ restored: boolean; message: string }>;
  /**
   * Values found in cgroups no partition is on now (a partition removed, or moved to another
   * cgroup), written back at start (matchFound): one line each, restored or why not (those stay
   * in the state file for the next start).
   */
  foundNotes: Array<{ restored: boolean; message: string }>;
  /** Placement as configured, whether it is in force here, and why. */
  placement: PlacementDecision;
  /** The partitions' specs as the config gives them (before any change through the API). */
  configuredSpecs: PartitionSpec[];
}

/** Why servers here wait where placement would spare them (auto places for this reason). */
const NO_WAKEUP_SEARCH =
  "network and batch partitions share this host, whose CPUs share no last-level cache, so the kernel does not look for an idle CPU when a server wakes: it may wait on a busy CPU while another runs only idle-class batch";

/**
 * Whether weir places network partitions on CPUs here (config `placement.mode`): `spread`
 * always; `off` never; `auto` exactly where it protects latency — network and batch partitions
 * share the host, some network partition's backend can place it, there are two CPUs or more,
 * and the kernel does not search them for an idle one when a task wakes (no two share a
 * last-level cache: a host that reports no cache topology, as many VMs, shares none; where
 * /sys cannot be read, not). `why` says which held or which did not; for `off` it is the hint
 * that placement would help, or null.
 */
export function decidePlacement(
  cfg: { placement?: { mode: PlacementDecision["mode"] } } & {
    partitions: ReadonlyArray<{ kind: string }>;
  },
  canPlace: boolean,
  cpus: readonly number[],
  wakeupSearches: boolean,
): PlacementDecision {
  const mode = cfg.placement?.mode ?? "auto";
  if (mode === "spread") return { mode, inForce: true, why: "placement.mode is spread" };
  const kinds = new Set(cfg.partitions.map((p) => p.kind));
  const against = !kinds.has("network")
    ? "no network partition is configured"
    : !kinds.has("batch")
      ? "no batch partition shares the host with the network partitions"
      : !canPlace
        ? "no network partition's backend can be placed (a dry run, or a backend without cpusets)"
        : cpus.length < 2
          ? "this host has one CPU"
          : wakeupSearches
            ? "this host's CPUs share a last-level cache (or their topology cannot be read), so the kernel finds a woken server an idle CPU itself"
            : null;
  if (mode === "off")
    return {
      mode,
      inForce: false,
      why:
        against === null
          ? `placement is off (placement.mode: off), and ${NO_WAKEUP_SEARCH}. Without \`placement:\` (auto), or with \`placement: { mode: spread }\`, each network partition gets CPUs of its own (README, Configuration; docs/control-law.md, What the weights leave)`
          : null,
    };
  return against === null
    ? {
        mode,
        inForce: true,
        why: `placement (auto) is in force: ${NO_WAKEUP_SEARCH}; each network partition gets CPUs of its own (\`placement: { mode: off }\` keeps every CPU for every partition)`,
      }
    : { mode, inForce: false, why: `placement (auto) is not in force: ${against}` };
}

/**
 * The eBPF counters of the partitions a manager closes from now on stay attached for the next
 * manager this process builds (a reload's restart, service/run.ts): buildManager takes up those
 * of its partitions and detaches the rest (`releaseKeptCounters`).
 */
export const keepCountersForNextManager = (): void => bpfHandover.park();

/** Detach the counters kept for a next manager that none took up (and keep no more). */
export const releaseKeptCounters = (): void => bpfHandover.settle();

export function buildManager(cfg: Config, parts: ManagerParts = {}): Wired {
  try {
    return buildManagerOf(cfg, parts);
  } finally {
    // the Manager opened its partitions (taking up the counters kept for it): the rest go
    releaseKeptCounters();
  }
}

function buildManagerOf(cfg: Config, parts: ManagerParts): Wired {
  const onlineCpus = parts.onlineCpus ?? os.availableParallelism();
  checkManagedCpus(cfg, onlineCpus);
  const capacity = capacityCpuMillis(cfg, onlineCpus);
  checkCapacity(cfg, capacity);
  const now = parts.now ?? (() => performance.timeOrigin + performance.now());
  const roots = cfg.roots;
  // one backend per name the partitions use, built once
  const backends = new Map<string, ActuatorBackend>();
  const backendOf = (name: string): ActuatorBackend => {
    let b = backends.get(name);
    if (!b) {
      b = parts.actuators?.[name] ?? createActuatorBackend(name, { roots, now });
      if (parts.dryRun) b = dryRun(b);
      backends.set(name, b);
    }
    return b;
  };
  const openSensor =
    parts.openSensor ??
    ((p: PartitionConfig) =>
      openPartitionSensor(sensorSpecOf(p), roots, {
        partition: p.name,
        ...(parts.onSensorNote ? { onNote: (m: string) => parts.onSensorNote!(p.name, m) } : {}),
        // the policy reads throttling and CPU delay of a partition that served nothing only
        // when it has a goal (demand.ts): for the others they are read when it serves, and
        // its CPU used (credited nothing: demand kind `idle`) once a second
        congestionOnlyWhenServing:
          p.kind === "network" && p.goal === undefined && p.source === "host",
        idleCpuReadEveryMs: IDLE_CPU_READ_EVERY_MS,
        // v1 throttling counters move only under a CFS quota, which the cgroup actuator writes
        // (or found) and says (PartitionSlot.observeAllocation); a dry run writes nothing, and
        // a backend given by the caller may not write the cgroup
        throttlingOnlyUnderQuota:
          CGROUP_ACTUATORS.has(p.actuator) &&
          parts.actuators?.[p.actuator] === undefined &&
          !parts.dryRun,
      }));
  const openAgentCpu =
    parts.openAgentCpuSensor !== undefined
      ? parts.openAgentCpuSensor
      : parts.openSensor
        ? null
        : (p: PartitionConfig) =>
            openPartitionSensor(cpuSensorSpecOf(p), roots, { partition: p.name });
  const specs = partitionSpecs(cfg, capacity);
  // the bounds the config gives, to tell which ones a runtime change (PATCH) moved
  const configuredSpecs = specs.map((s) => ({ ...s }));
  const reach = (parts.reachableCpus ?? parts.actuators === undefined) ? reachReader(roots) : null;
  /** The CPUs placement may use (and that `auto` looks at). */
  const hostCpus = placementCpus(roots.sysfs, onlineCpus, parts.onlineCpus !== undefined);
  // a dry run writes no cpuset, so its backends have none to open
  const placement = decidePlacement(
    cfg,
    cfg.partitions.some((p) => p.kind === "network" && !!backendOf(p.actuator).openCpuset),
    hostCpus,
    wakeupSearchesHere(roots.sysfs, hostCpus),
  );
  const placing = placement.inForce;
  const partitions: PartitionWiring[] = cfg.partitions.map((p, i) => {
    const backend = backendOf(p.actuator);
    const w: PartitionWiring = {
      spec: specs[i]!,
      source: p.source,
      openActuator: () => backend.open(actuatorTarget(p)),
    };
    if (reach) w.reachableCpus = () => reach(p.cgroup);
    if (placing && p.kind === "network" && backend.openCpuset) {
      const openCpuset = backend.openCpuset.bind(backend);
      w.openCpuset = (found?: string) => openCpuset(actuatorTarget(p), found);
    }
    if (p.source !== "agent") w.openSensor = () => openSensor(p);
    else if (openAgentCpu) w.openSensor = () => openAgentCpu(p);
    w.foundAt = { cgroup: normalizeCgroupPath(p.cgroup), actuator: p.actuator };
    return w;
  });
  const loaded = parts.resumeState
    ? { state: parts.resumeState, note: null }
    : cfg.stateFile
      ? loadState(cfg.stateFile)
      : null;
  // The values found before weir first wrote each cgroup go to the partition on that cgroup now
  // (renamed or not); those of a cgroup no partition is on any more (removed from the config,
  // or moved to another cgroup) are written back here with onShutdown: restore: nothing else
  // would ever write them (an orderly stop restores only the partitions it runs).
  // why a cgroup no partition is on now is not written back at start; null: it is
  const notWrittenBack = (actuator: string): string | null =>
    parts.dryRun
      ? "a dry run writes nothing"
      : cfg.onShutdown !== "restore"
        ? "onShutdown is keep"
        : CGROUP_ACTUATORS.has(actuator)
          ? null
          : `its backend ${actuator} is not a cgroup's`;
  const matched = loaded?.state
    ? matchFound(loaded.state, cfg.partitions, (e) => {
        const refused = notWrittenBack(e.actuator);
        if (refused !== null) return { error: refused };
        let a: PartitionActuator | undefined;
        try {
          a = backendOf(e.actuator).open({ partition: e.partition, cgroup: e.cgroup });
          const r = a.restore(e);
          if (r.error) return { error: r.error.message };
          return { written: r.written };
        } catch (err) {
          const code = isWeirError(err) ? err.code : undefined;
          if (code === ErrorCodes.TARGET_GONE || code === ErrorCodes.CGROUP_GONE)
            return { gone: true };
          return { error: (err as Error).message };
        } finally {
          a?.close();
        }
      })
    : null;
  // A cpuset found before weir first wrote it goes to the partition on that cgroup now (renamed
  // or not). A run killed while placing left its partitions' cpusets narrowed: without placement
  // in force now, nothing else would ever write them back (an orderly stop restores only what
  // placement opened), so they are restored here; and so, with onShutdown: restore, is the cpuset
  // of a cgroup no partition is on any more (removed from the config, or moved to another cgroup).
  const restoreCpuset = (actuator: string, target: ActuatorTarget, cpus: string): FoundRestore => {
    const backend = backendOf(actuator);
    if (!backend.openCpuset) return { error: "its backend has no cpuset" };
    let c: CpusetActuator | undefined;
    try {
      c = backend.openCpuset(target, cpus);
      const r = c.restore();
      if (r.error) return { error: r.error.message };
      return { written: r.written };
    } catch (err) {
      if ("cgroup" in target && cpusetGone(roots.cgroupfs, target.cgroup)) return { gone: true };
      return { error: (err as Error).message };
    } finally {
      c?.close();
    }
  };
  const cpusets = loaded?.state
    ? matchFoundCpusets(
        loaded.state,
        cfg.partitions,
        placing ? null : (p, cpus) => restoreCpuset(p.actuator, actuatorTarget(p), cpus),
        (e) => {
          const refused = notWrittenBack(e.actuator);
          return refused !== null
            ? { error: refused }
            : restoreCpuset(e.actuator, { partition: e.partition, cgroup: e.cgroup }, e.cpus);
        },
      )
    : null;
  const cpusetNotes = cpusets?.notes ?? [];
  const foundCpusets = cpusets && Object.keys(cpusets.found).length > 0 ? cpusets.found : undefined;
  const resume =
    loaded?.state && matched
      ? {
          policyState: loaded.state.policyState,
          found: matched.found,
          ...(matched.unmanaged.length > 0 ? { foundUnmanaged: matched.unmanaged } : {}),
          ...(foundCpusets ? { foundCpusets } : {}),
          ...(cpusets?.unmanaged.length ? { foundCpusetsUnmanaged: cpusets.unmanaged } : {}),
        }
      : undefined;
  const hostCpu =
    parts.hostCpu === undefined
      ? { open: () => new HeldHostCpu(roots.procfs), use: hostCpuFromSamples }
      : parts.hostCpu;
  const opts: ManagerOptions = {
    now,
    intervalMs: cfg.intervalMs,
    policy: parts.policy ?? weirPolicy,
    knobs: { ...knobsFromConfig(cfg, capacity), ...parts.knobs, capacityCpuMillis: capacity },
    partitions,
    throughput: parts.throughput ?? throughputFromSamples,
    staleAfterMs: cfg.staleAfterMs,
    historyMaxBytes: parts.historyMaxBytes ?? cfg.historyMaxBytes,
    retryGoneMs: cfg.retryGoneMs,
    maxConsecutiveCycleFailures: cfg.maxConsecutiveCycleFailures,
    redactedConfig:
      parts.redactedConfig ?? (() => effectiveConfig(cfg, configuredSpecs, manager.specs())),
  };
  if (hostCpu) opts.hostCpu = hostCpu;
  if (resume) opts.resume = resume;
  if (parts.timer) opts.timer = parts.timer;
  if (parts.historySize !== undefined) opts.historySize = parts.historySize;
  if (parts.reports) opts.reports = parts.reports;
  if (parts.crossCheck) opts.crossCheck = parts.crossCheck;
  if (parts.onChange) opts.onChange = parts.onChange;
  if (parts.onPartitionError) opts.onPartitionError = parts.onPartitionError;
  if (parts.onCycleError) opts.onCycleError = parts.onCycleError;
  if (parts.onCapacityChange) opts.onCapacityChange = parts.onCapacityChange;
  opts.placementDecision = placement;
  if (placing) {
    opts.placement = {
      fillFraction: cfg.placement.fill,
      cpus: hostCpus,
    };
    if (parts.onPlacementChange) opts.onPlacementChange = parts.onPlacementChange;
    if (parts.onPlacementProblem) opts.onPlacementProblem = parts.onPlacementProblem;
    if (parts.onPlacementOpened) opts.onPlacementOpened = parts.onPlacementOpened;
  }
  const manager = new Manager(opts);
  return {
    manager,
    capacityCpuMillis: capacity,
    backendName: [...backends.values()].map((b) => b.name).join(", "),
    stateNote: loaded?.note ?? null,
    cpusetNotes,
    foundNotes: matched?.notes ?? [],
    placement,
    configuredSpecs: configuredSpecs.map((x) => ({ ...x })),
  };
}

/** Whether a wake-up on this host searches its CPUs for an idle one (true when unknown: no hint). */
function wakeupSearchesHere(sysfs: string, cpus: readonly number[]): boolean {
  try {
    return wakeupSearchesCpus(readLlc(path.join(sysfs, "devices", "system", "cpu")), cpus);
  } catch {
    return true;
  }
}

/** What writing back one cgroup's found values gave: the files written, the cgroup gone, or why not. */
export type FoundRestore = { written: string[] } | { gone: true } | { error: string };

/** A note of the start: a value written back (or forgotten, its cgroup gone), or why not. */
type StartNote = { restored: boolean; message: string };

/**
 * The entries of cgroups no partition is on now, each given to `restore`: written back, or the
 * cgroup gone, it is forgotten; otherwise it stays (`unmanaged`, saved again). Entries without a
 * cgroup (an older weir's file) whose partition is not configured stay as they are. A line each;
 * `what`: what was found there ("the values", `the cpuset.cpus "0-1"`); `plural`: the values.
 */
function writeBackUnmanaged<
  E extends { partition: PartitionId; cgroup?: string; actuator?: string },
>(
  left: { byCgroup: readonly E[]; byName: readonly E[] },
  restore: (e: E & { cgroup: string; actuator: string }) => FoundRestore,
  what: (e: E) => string,
  plural: boolean,
): { unmanaged: E[]; notes: StartNote[] } {
  const are = plural ? "are" : "is";
  const unmanaged: E[] = [];
  const notes: StartNote[] = [];
  for (const e of left.byName) {
    unmanaged.push(e);
    notes.push({
      restored: false,
      message: `${e.partition}: no such partition in this config, and the state file does not say which cgroup ${what(e)} weir found for it ${are} from (an older weir wrote it): not written back; kept in the state file`,
    });
  }
  for (const e of left.byCgroup) {
    const at = { ...e, cgroup: e.cgroup!, actuator: e.actuator ?? "cgroup" };
    const r = restore(at);
    const head = `${e.partition}: no partition is on its cgroup ${at.cgroup} now`;
    const found = `${what(e)} weir found there`;
    if ("gone" in r)
      notes.push({
        restored: true,
        message: `${head}, and the cgroup is gone: ${found} ${are} forgotten`,
      });
    else if ("written" in r)
      notes.push({
        restored: true,
        message:
          r.written.length > 0
            ? `${head}: ${found} before it first wrote ${plural ? "them" : "it"} ${are} back (${r.written.join(", ")} written)`
            : `${head}: it already holds ${found}`,
      });
    else {
      unmanaged.push(e);
      notes.push({
        restored: false,
        message: `${head}; ${found} ${are} not written back (${r.error}): kept in the state file`,
      });
    }
  }
  return { unmanaged, notes };
}

/**
 * The state file's found values, matched to the configured partitions by the cgroup they were
 * found in, not by name: a partition renamed on the same cgroup keeps them (its cgroup holds
 * what the last run wrote, not what weir found), and one moved to another cgroup does not take
 * its old cgroup's (its new cgroup's own are read at open). Entries from a file that did not
 * record the cgroup go by name, as before. Those of cgroups no partition is on now go to
 * `restore`: written back, or the cgroup gone, they are forgotten; otherwise they stay
 * (`unmanaged`, saved again). `notes`: a line for each of those.
 */
export function matchFound(
  state: Pick<PersistedState, "found" | "foundUnmanaged">,
  partitions: ReadonlyArray<Pick<PartitionConfig, "name" | "cgroup">>,
  restore: (e: FoundValues & { cgroup: string; actuator: string }) => FoundRestore,
): {
  found: Record<PartitionId, AllocationSnapshot>;
  unmanaged: FoundValues[];
  notes: StartNote[];
} {
  const m = matchByCgroup(foundValueEntries(state), partitions);
  const found: Record<PartitionId, AllocationSnapshot> = {};
  for (const [name, e] of m.matched) found[name] = { partition: name, values: e.values };
  return { found, ...writeBackUnmanaged(m, restore, () => "the values", true) };
}

/**
 * The state file's found cpusets (placement), matched as matchFound matches found values: each
 * to the partition on the cgroup it was found in (by name where the file did not record one).
 * `restoreMatched` (placement not in force: a killed run's narrowing nothing else would write
 * back): each matched one is written back now, and kept in `found` only where that failed; null
 * (placement in force): all are kept in `found`, for placement to restore. Those of cgroups no
 * partition is on go to `restore`, as in matchFound. A line for each one written back or not.
 */
export function matchFoundCpusets(
  state: Pick<PersistedState, "foundCpusets" | "foundCpusetsUnmanaged">,
  partitions: readonly PartitionConfig[],
  restoreMatched: ((p: PartitionConfig, cpus: string) => FoundRestore) | null,
  restore: (e: FoundCpusetEntry & { cgroup: string; actuator: string }) => FoundRestore,
): { found: Record<PartitionId, string>; unmanaged: FoundCpusetEntry[]; notes: StartNote[] } {
  const m = matchByCgroup(foundCpusetEntries(state), partitions);
  const found: Record<PartitionId, string> = {};
  const notes: StartNote[] = [];
  const byName = new Map(partitions.map((p) => [p.name, p]));
  for (const [id, e] of m.matched) {
    const p = byName.get(id)!;
    const r = restoreMatched?.(p, e.cpus);
    if (r === undefined || !("written" in r)) found[id] = e.cpus;
    if (r === undefined) continue;
    if ("written" in r)
      notes.push({
        restored: true,
        message:
          r.written.length > 0
            ? `${id}: placement is not in force; its cpuset.cpus, narrowed by a killed run, is back to "${e.cpus}" as found`
            : `${id}: its cpuset.cpus already holds "${e.cpus}" as found`,
      });
    else
      notes.push({
        restored: false,
        message: `${id}: a killed run placed it; its cpuset.cpus could not be restored to "${e.cpus}": ${"error" in r ? r.error : "its cgroup is gone"}; kept in the state file`,
      });
  }
  const left = writeBackUnmanaged(m, restore, (e) => `the cpuset.cpus "${e.cpus}"`, false);
  return { found, unmanaged: left.unmanaged, notes: [...left.notes, ...notes] };
}

/** The cgroup's cpuset directory is not there (the cgroup removed). */
function cpusetGone(cgroupfs: string, cgroup: string): boolean {
  try {
    return !fs.existsSync(cpusetDirOf(cgroupfs, cgroup));
  } catch {
    return false;
  }
}
