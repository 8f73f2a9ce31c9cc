// A Manager on the real testbed, made by weir's composition root (`buildManager`): the testbed's
// partitions and hogs become a config (their cgroups, host veths and server pids — or
// `packets: bpf` for host-network partitions; the bounds and goals each benchmark sets), so
// the real benchmarks run what `weir run` runs — the real sensors, the cgroup backend, the
// same wiring — with the policy under test.
import os from "node:os";
import type { ActuatorBackend } from "../src/actuators/types.ts";
import type { PartitionSpec } from "../src/core/model.ts";
import { parseConfig } from "../src/manager/config.ts";
import type { Manager } from "../src/manager/manager.ts";
import type { PlacementChange } from "../src/manager/placement-step.ts";
import { buildManager } from "../src/manager/wiring.ts";
import type { Policy } from "../src/policy/types.ts";
import { weirPolicy } from "../src/policy/weir.ts";
import type { TestbedState } from "../src/testbed/state.ts";

export interface TestbedManagerOptions {
  /** Millicores the policy shares out (the rest of this host's CPUs is the reserve). */
  capacityCpuMillis: number;
  intervalMs: number;
  policy: Policy;
  /** The config's `policy:` section (knobs by their config keys); absent = the defaults. */
  policySettings?: Record<string, unknown>;
  /**
   * The config's `placement:` section. Absent: weir's own policy runs with the config's default
   * (auto: on this host placed where network and batch partitions share CPUs that share no
   * last-level cache), and a baseline with placement off — a baseline never places.
   */
  placement?: { mode: "off" | "spread" | "auto"; fill: number };
  now: () => number;
  /** The cgroup backend to write through (default: the registered one, built here). */
  backend?: ActuatorBackend;
  /** Sample /proc/stat into CycleRecord.host (default false). */
  hostCpu?: boolean;
  /** Records kept (default 1: benchmarks read them through subscribe). */
  historySize?: number;
  /** Each change of the placement (diagnostics: overload-trace). */
  onPlacementChange?: (change: PlacementChange) => void;
}

const millis = (m: number) => `${m}m`;

/**
 * The `placement:` section for `o`: as given; absent, the default for weir (its variants carry
 * its name too) and off for a baseline.
 */
const placementOf = (o: TestbedManagerOptions) =>
  o.placement
    ? { placement: o.placement }
    : o.policy.name === weirPolicy.name
      ? {}
      : { placement: { mode: "off" as const } };

/**
 * The host's CPUs, not this process's: the goal benchmarks pin themselves to one CPU (their
 * generator's), which `os.availableParallelism()` would report as the host.
 */
const hostCpus = (): number => os.cpus().length;

/** `specs` (one per testbed partition or hog, by name) as a weir config on this host. */
export function testbedConfig(tb: TestbedState, specs: PartitionSpec[], o: TestbedManagerOptions) {
  const onlineCpus = hostCpus();
  return parseConfig({
    intervalMs: o.intervalMs,
    ...(o.policySettings ? { policy: o.policySettings } : {}),
    ...placementOf(o),
    capacity: { cpus: onlineCpus, reserve: millis(onlineCpus * 1000 - o.capacityCpuMillis) },
    partitions: specs.map((spec) => {
      const p = tb.partitions.find((x) => x.name === spec.id);
      const h = tb.hogs.find((x) => x.name === spec.id);
      if (!p && !h) throw new Error(`testbed has no partition or hog named ${spec.id}`);
      return {
        name: spec.id,
        kind: spec.kind,
        cgroup: (p ?? h)!.cgroup,
        // a host-network partition is counted by eBPF on its cgroup; a netns one by its veth
        ...(p?.hostNetwork
          ? { packets: "bpf" }
          : {
              interfaces: p ? [{ name: p.hostIf, offered: "tx", served: "rx" }] : [],
              ...(p?.serverPid ? { pid: p.serverPid } : {}),
            }),
        min: millis(spec.minCpuMillis),
        max: millis(spec.maxCpuMillis),
        weight: spec.weight,
        importance: spec.importance,
        ...(spec.capped === undefined ? {} : { capped: spec.capped }),
        ...(spec.goalPacketsPerSec === undefined
          ? {}
          : { goal: { packetsPerSec: spec.goalPacketsPerSec } }),
      };
    }),
  });
}

export function testbedManager(
  tb: TestbedState,
  specs: PartitionSpec[],
  o: TestbedManagerOptions,
): Manager {
  return buildManager(testbedConfig(tb, specs, o), {
    now: o.now,
    onlineCpus: hostCpus(),
    policy: o.policy,
    historySize: o.historySize ?? 1,
    ...(o.backend ? { actuators: { cgroup: o.backend } } : {}),
    // the testbed's cgroups are this host's: the capacity follows the CPUs they can reach
    reachableCpus: true,
    ...(o.hostCpu ? {} : { hostCpu: null }),
    ...(o.onPlacementChange ? { onPlacementChange: o.onPlacementChange } : {}),
  }).manager;
}
