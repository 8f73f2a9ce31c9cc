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
  /** A source's note on its opening (CounterSourceContext.note). */
  onNote?: (message: string) => void;
  /**
   * Read CFS throttling (v1 `cpu.stat`) and CPU delay only when the partition served packets
   * since the previous read. In a window in which it served none, the throttling counters are
   * the last ones read (so the window shows none, and the next read's delta spans the windows
   * since) and the sample has no `cpuDelayNs` (so the window and the next have no delay
   * fraction). For a host-fed network partition without a goal: the policy reads neither
   * signal for one that served nothing (demand kind `idle`). Default: read them every time.
   */
  congestionOnlyWhenServing?: boolean;
  /**
   * With congestionOnlyWhenServing: in a window that served nothing, read CPU used only when
   * this long (ms) has passed since the CPU counters were last read; a sample that does not
   * read them carries the last ones read and when (`cpuAtMs`), and throughputFromSamples rates
   * them over their own span (`cpuWindowMs`). So a partition that serves nothing costs one read
   * of its CPU counters per this interval instead of one a cycle, and its CPU used is at most
   * this old (plus a cycle). A window that serves reads everything, as before; if the read
   * before it was skipped, its CPU used is over the span since the last read and it has no
   * velocity. The first deadline after opening is spread over the interval by the cgroup's
   * path (`idleCpuReadPhaseMs`), so partitions that fall idle together are not all read in one
   * cycle. Default 0: read every time.
   */
  idleCpuReadEveryMs?: number;
  /**
   * v1 only: read CFS throttling (`cpu.stat`) only while a quota may be in force on the cgroup,
   * as its owner says (`PartitionSensor.quotaInForce`: the actuator's own writes, a quota found
   * at open, a configured `max`). v1's throttling counters (`nr_periods`, `nr_throttled`,
   * `throttled_time`) move only while the cgroup has a CFS quota, so without one the sample
   * carries the last ones read (the window shows none, as a read would) and an uncapped
   * partition reads `cpuacct.usage` alone: one read instead of two. The first read reads them
   * (the baseline), as does every read until the owner says no quota is in force, and the
   * first read after a quota went (what it counted before it went). A quota written by anyone
   * but weir is not seen. v2's `cpu.stat` holds CPU used too, so there nothing is saved.
   * Default: read them every time.
   */
  throttlingOnlyUnderQuota?: boolean;
}

/**
 * How long a host-fed network partition without a goal that serves nothing may leave its CPU
 * used unread (`weir run`'s sensors; PartitionSensorOptions.idleCpuReadEveryMs): 1 s, so its
 * CPU used in the records, the API and the policy's yield (demand.ts `useNeed`) is at most
 * about a second old. Its demand is 0 whatever it uses (demand kind `idle`).
 */
export const IDLE_CPU_READ_EVERY_MS = 1000;

/**
 * Where in [0, everyMs) a partition's first deadline for an idle CPU read falls, from its
 * cgroup path (FNV-1a): spread over the interval, the same on every run.
 */
export function idleCpuReadPhaseMs(cgroupPath: string, everyMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < cgroupPath.length; i++) {
    h ^= cgroupPath.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h / 2 ** 32) * everyMs;
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
        ...(opts.onNote ? { note: opts.onNote } : {}),
      });
      opened.push(counter);
      counters.push(counter);
    }
    const onlyWhenServing = opts.congestionOnlyWhenServing === true && counters.length > 0;
    const everyMs = onlyWhenServing ? Math.max(0, opts.idleCpuReadEveryMs ?? 0) : 0;
    return new Sensor(
      cpu,
      counters,
      delay,
      onlyWhenServing,
      {
        everyMs,
        phaseMs: everyMs > 0 ? idleCpuReadPhaseMs(spec.cgroup, everyMs) : 0,
      },
      opts.throttlingOnlyUnderQuota === true && cpu.cgroup.version === 1,
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
  /** idleCpuReadEveryMs (0: off) and the first deadline's phase. */
  private readonly idleCpu: { everyMs: number; phaseMs: number };
  /** An idle window reads the CPU counters from this time on (NaN: no read yet). */
  private nextIdleCpuReadAtMs = Number.NaN;
  /** throttlingOnlyUnderQuota (v1 only). */
  private readonly throttlingOnlyUnderQuota: boolean;
  /** What the owner said last (quotaInForce): null = not said, so read. */
  private quota: boolean | null = null;
  /** A quota went since the last read of the throttling counters: read them once more. */
  private throttlingDue = false;
  /** The last throttling counters read (carried while no quota is in force); NaN: none yet. */
  private nrPeriods = Number.NaN;
  private nrThrottled = Number.NaN;
  private throttledNs = Number.NaN;

  constructor(
    cpu: HeldCgroupCpuCounters,
    counters: PacketCounter[],
    delay: HeldCpuDelay | null,
    congestionOnlyWhenServing: boolean,
    idleCpu: { everyMs: number; phaseMs: number },
    throttlingOnlyUnderQuota: boolean,
  ) {
    this.throttlingOnlyUnderQuota = throttlingOnlyUnderQuota;
    this.cpu = cpu;
    this.counters = counters;
    this.delay = delay;
    this.congestionOnlyWhenServing = congestionOnlyWhenServing;
    this.idleCpu = idleCpu;
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
    const { everyMs } = this.idleCpu;
    if (idle && everyMs > 0 && nowMs < this.nextIdleCpuReadAtMs) {
      // nothing served and the CPU counters were read recently enough: carried, with when
      sample = {
        atMs: nowMs,
        offeredPackets,
        servedPackets,
        droppedPackets,
        cpuUsageNs: last.cpuUsageNs,
        nrPeriods: last.nrPeriods,
        nrThrottled: last.nrThrottled,
        throttledNs: last.throttledNs,
        cpuAtMs: last.cpuAtMs ?? last.atMs,
      };
    } else if (idle && this.cpu.cgroup.version === 1) {
      // v2's usage and throttling are one file: only v1 saves a read by carrying them
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
    } else if (
      this.throttlingOnlyUnderQuota &&
      this.quota === false &&
      !this.throttlingDue &&
      !Number.isNaN(this.nrPeriods)
    ) {
      // no CFS quota in force since the throttling counters were last read: they have not moved
      sample = {
        atMs: nowMs,
        offeredPackets,
        servedPackets,
        droppedPackets,
        cpuUsageNs: this.cpu.readUsageNs(),
        nrPeriods: this.nrPeriods,
        nrThrottled: this.nrThrottled,
        throttledNs: this.throttledNs,
      };
    } else {
      const c = this.cpu.read();
      this.nrPeriods = c.nrPeriods;
      this.nrThrottled = c.nrThrottled;
      this.throttledNs = c.throttledNs;
      this.throttlingDue = false;
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
    if (everyMs > 0 && sample.cpuAtMs === undefined)
      this.nextIdleCpuReadAtMs = Number.isNaN(this.nextIdleCpuReadAtMs)
        ? nowMs + this.idleCpu.phaseMs
        : nowMs + everyMs;
    if (this.congestionOnlyWhenServing) this.last = sample;
    return sample;
  }

  quotaInForce(inForce: boolean | null): void {
    if (this.quota !== false && inForce === false) this.throttlingDue = true;
    this.quota = inForce;
  }

  close(): void {
    this.cpu.close();
    for (const c of this.counters) c.close();
    this.delay?.close();
  }
}
