// One partition's sensor: its cgroup's CPU counters plus the packet counts of its counter
// sources (sources.ts), read on held descriptors into one CounterSample.
import type { CounterSample } from "../core/model.ts";
import { HeldCgroupCpuCounters } from "./cgroup.ts";
import { type CpuDelayOptions, HeldCpuDelay } from "./cpu-delay.ts";
import { counterSource, defaultPacketSources } from "./sources.ts";
import type {
  AgentPacketFeed,
  PacketCounter,
  PartitionSensor,
  Roots,
  SampleRound,
  SensorSpec,
} from "./types.ts";

/**
 * Opens every file a partition's sample needs and returns a sensor that re-reads them.
 *
 * Packets: the sum of the sources in `spec.packets` (default `defaultPacketSources`: host-side
 * `interfaces` when there are any, plus `pid`), each one a file beside this one:
 * - `interfaces` (source-interfaces.ts, sysfs): offered = offered-direction packets + drops,
 *   served = served-direction packets, dropped = offered-direction drops.
 * - `pid` (source-pid.ts): the namespace's UDP socket drops (snmp `Udp InErrors`) are added
 *   to dropped (they are already inside offered: those packets passed the interface). Its
 *   /proc/<pid>/net/dev is counted too when `spec.netnsInterfaces` is given, or when
 *   `spec.interfaces` is empty (then every interface but lo, offered = rx, served = tx).
 *   Host side and namespace side are not both counted by default: they see the same packets.
 *
 * Throws at open: CGROUP_GONE (no such cgroup), INTERFACE_GONE, PROCESS_GONE, and what a
 * source throws. `read()` throws the same codes when something vanishes, and COUNTER_MALFORMED.
 * An interface that is deleted and re-created is reopened on the next read (its counters
 * restart; throughputFromSamples treats the step back as a reset).
 *
 * CPU delay (`cpuDelayNs`, cpu-delay.ts) is counted from the sensor's opening, so it is 0
 * on the first read; it is absent from a sample when no source could be read.
 */
export interface PartitionSensorOptions {
  /** CPU delay sources (cpu-delay.ts), or false to not read CPU delay. Default: PSI, then schedstat. */
  cpuDelay?: CpuDelayOptions | false;
  /** The partition's name, for sources' errors (default: its cgroup path). */
  partition?: string;
  /** Agent reports, for a source fed by the partition's agent. */
  agentReports?: AgentPacketFeed;
  /**
   * Read CFS throttling (v1 `cpu.stat`) and CPU delay only when the partition served packets
   * since the previous read. In a window in which it served none, the throttling counters are
   * the last ones read (so the window shows none, and the next read's delta spans the windows
   * since) and the sample has no `cpuDelayNs` (so the window and the next have no delay
   * fraction). For a host-fed network partition without a goal: the policy reads neither
   * signal for one that served nothing (demand kind `idle`). Default: read them every time.
   */
  congestionOnlyWhenServing?: boolean;
}

export function openPartitionSensor(
  spec: SensorSpec,
  roots: Roots,
  opts: PartitionSensorOptions = {},
): PartitionSensor {
  const opened: Array<{ close(): void }> = [];
  try {
    const cpu = new HeldCgroupCpuCounters(roots.cgroupfs, spec.cgroup);
    opened.push(cpu);
    const delay =
      opts.cpuDelay === false ? null : new HeldCpuDelay(roots, cpu.cgroup, opts.cpuDelay);
    if (delay !== null) opened.push(delay);
    const counters: PacketCounter[] = [];
    for (const choice of spec.packets ?? defaultPacketSources(spec)) {
      const counter = counterSource(choice.name).open({
        partition: opts.partition ?? spec.cgroup,
        spec,
        roots,
        options: choice.options,
        ...(opts.agentReports ? { agentReports: opts.agentReports } : {}),
      });
      opened.push(counter);
      counters.push(counter);
    }
    return new Sensor(
      cpu,
      counters,
      delay,
      opts.congestionOnlyWhenServing === true && counters.length > 0,
    );
  } catch (e) {
    for (const o of opened) o.close();
    throw e;
  }
}

class Sensor implements PartitionSensor {
  private readonly cpu: HeldCgroupCpuCounters;
  private readonly counters: PacketCounter[];
  private readonly delay: HeldCpuDelay | null;
  private readonly congestionOnlyWhenServing: boolean;
  /** The previous sample (its served count and last throttling counters), for congestionOnlyWhenServing. */
  private last: CounterSample | null = null;

  constructor(
    cpu: HeldCgroupCpuCounters,
    counters: PacketCounter[],
    delay: HeldCpuDelay | null,
    congestionOnlyWhenServing: boolean,
  ) {
    this.cpu = cpu;
    this.counters = counters;
    this.delay = delay;
    this.congestionOnlyWhenServing = congestionOnlyWhenServing;
  }

  read(nowMs: number, round?: SampleRound): CounterSample {
    let offeredPackets = 0;
    let servedPackets = 0;
    let droppedPackets = 0;
    let ingressBytes: number | undefined;
    let egressBytes: number | undefined;
    for (const counter of this.counters) {
      const p = counter.read(round);
      offeredPackets += p.offeredPackets;
      servedPackets += p.servedPackets;
      droppedPackets += p.droppedPackets;
      if (p.ingressBytes !== undefined) ingressBytes = (ingressBytes ?? 0) + p.ingressBytes;
      if (p.egressBytes !== undefined) egressBytes = (egressBytes ?? 0) + p.egressBytes;
    }
    const last = this.last;
    const idle =
      this.congestionOnlyWhenServing && last !== null && servedPackets === last.servedPackets;
    let sample: CounterSample;
    // v2's usage and throttling are one file: only v1 saves a read by carrying them
    if (idle && this.cpu.cgroup.version === 1) {
      sample = {
        atMs: nowMs,
        offeredPackets,
        servedPackets,
        droppedPackets,
        cpuUsageNs: this.cpu.readUsageNs(),
        nrPeriods: last.nrPeriods,
        nrThrottled: last.nrThrottled,
        throttledNs: last.throttledNs,
      };
    } else {
      const c = this.cpu.read();
      sample = {
        atMs: nowMs,
        offeredPackets,
        servedPackets,
        droppedPackets,
        cpuUsageNs: c.usageNs,
        nrPeriods: c.nrPeriods,
        nrThrottled: c.nrThrottled,
        throttledNs: c.throttledNs,
      };
    }
    // bytes only from the sources that count them (bpf)
    if (ingressBytes !== undefined) sample.ingressBytes = ingressBytes;
    if (egressBytes !== undefined) sample.egressBytes = egressBytes;
    if (!idle) {
      const delayNs = this.delay?.read();
      if (delayNs !== undefined) sample.cpuDelayNs = delayNs;
    }
    if (this.congestionOnlyWhenServing) this.last = sample;
    return sample;
  }

  close(): void {
    this.cpu.close();
    for (const c of this.counters) c.close();
    this.delay?.close();
  }
}
