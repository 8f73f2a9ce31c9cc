// One partition's sensor: its cgroup's CPU counters plus its packet counters, read on
// held descriptors into one CounterSample.
import type { CounterSample } from "../core/model.ts";
import { HeldCgroupCpuCounters } from "./cgroup.ts";
import { type CpuDelayOptions, HeldCpuDelay } from "./cpu-delay.ts";
import { HeldInterfaceCounters, HeldNamespaceCounters } from "./packets.ts";
import { udpSocketDrops } from "./parse.ts";
import type { PartitionSensor, Roots, SensorSpec } from "./types.ts";

/**
 * Opens every file a partition's sample needs and returns a sensor that re-reads them.
 *
 * Packets:
 * - `spec.interfaces` (host side, sysfs): offered = offered-direction packets + drops,
 *   served = served-direction packets, dropped = offered-direction drops.
 * - `spec.pid`: the namespace's UDP socket drops (snmp `Udp InErrors`) are added to
 *   dropped (they are already inside offered: those packets passed the interface). Its
 *   /proc/<pid>/net/dev is counted too when `spec.netnsInterfaces` is given, or when
 *   `spec.interfaces` is empty (then every interface but lo, offered = rx, served = tx).
 *   Host side and namespace side are not both counted by default: they see the same packets.
 *
 * Throws at open: CGROUP_GONE (no such cgroup), INTERFACE_GONE, PROCESS_GONE.
 * `read()` throws the same codes when something vanishes, and COUNTER_MALFORMED.
 * An interface that is deleted and re-created is reopened on the next read (its counters
 * restart; throughputFromSamples treats the step back as a reset).
 *
 * CPU delay (`cpuDelayNs`, cpu-delay.ts) is counted from the sensor's opening, so it is 0
 * on the first read; it is absent from a sample when no source could be read.
 */
export interface PartitionSensorOptions {
  /** CPU delay sources (cpu-delay.ts), or false to not read CPU delay. Default: PSI, then schedstat. */
  cpuDelay?: CpuDelayOptions | false;
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
    const interfaces: HeldInterfaceCounters[] = [];
    for (const ifspec of spec.interfaces) {
      const held = new HeldInterfaceCounters(roots.sysfs, ifspec);
      opened.push(held);
      interfaces.push(held);
    }
    let netns: HeldNamespaceCounters | null = null;
    if (spec.pid !== undefined) {
      const nsInterfaces =
        spec.netnsInterfaces !== undefined
          ? spec.netnsInterfaces
          : spec.interfaces.length === 0
            ? undefined
            : null;
      netns = new HeldNamespaceCounters(roots.procfs, spec.pid, nsInterfaces);
      opened.push(netns);
    }
    return new Sensor(cpu, interfaces, netns, delay);
  } catch (e) {
    for (const o of opened) o.close();
    throw e;
  }
}

class Sensor implements PartitionSensor {
  private readonly cpu: HeldCgroupCpuCounters;
  private readonly interfaces: HeldInterfaceCounters[];
  private readonly netns: HeldNamespaceCounters | null;
  private readonly delay: HeldCpuDelay | null;

  constructor(
    cpu: HeldCgroupCpuCounters,
    interfaces: HeldInterfaceCounters[],
    netns: HeldNamespaceCounters | null,
    delay: HeldCpuDelay | null,
  ) {
    this.cpu = cpu;
    this.interfaces = interfaces;
    this.netns = netns;
    this.delay = delay;
  }

  read(nowMs: number): CounterSample {
    const c = this.cpu.read();
    let offeredPackets = 0;
    let servedPackets = 0;
    let droppedPackets = 0;
    for (const i of this.interfaces) {
      const p = i.read();
      offeredPackets += p.offeredPackets;
      servedPackets += p.servedPackets;
      droppedPackets += p.droppedPackets;
    }
    if (this.netns !== null) {
      const p = this.netns.readPackets();
      offeredPackets += p.offeredPackets;
      servedPackets += p.servedPackets;
      droppedPackets += p.droppedPackets + udpSocketDrops(this.netns.readUdp(false));
    }
    const sample: CounterSample = {
      atMs: nowMs,
      offeredPackets,
      servedPackets,
      droppedPackets,
      cpuUsageNs: c.usageNs,
      nrPeriods: c.nrPeriods,
      nrThrottled: c.nrThrottled,
      throttledNs: c.throttledNs,
    };
    const delayNs = this.delay?.read();
    if (delayNs !== undefined) sample.cpuDelayNs = delayNs;
    return sample;
  }

  close(): void {
    this.cpu.close();
    for (const i of this.interfaces) i.close();
    this.netns?.close();
    this.delay?.close();
  }
}
