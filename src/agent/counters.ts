// What an agent reads about its own partition, from inside: its network namespace's
// interfaces and UDP socket drops (through /proc/<own pid>/net, parsed by src/sensors), and
// its CPU use from its own cgroup or, in a VM without one, from /proc/stat.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { HeldCgroupCpuCounters } from "../sensors/cgroup.ts";
import { HeldNamespaceCounters } from "../sensors/packets.ts";
import { malformed, udpSocketDrops } from "../sensors/parse.ts";
import type { InterfaceSpec } from "../sensors/types.ts";
import type { ReportMessage } from "../transport/codec.ts";

/**
 * Cumulative counters of the agent's own partition: the body of a report, as the wire format
 * names them. Here rxPackets are the packets that arrived (interface rx plus rx drops) and
 * droppedPackets the interface rx drops plus UDP socket drops.
 */
export type AgentCounters = Pick<
  ReportMessage,
  | "rxPackets"
  | "txPackets"
  | "droppedPackets"
  | "cpuUsageNs"
  | "nrPeriods"
  | "nrThrottled"
  | "throttledNs"
>;

export interface AgentCounterSource {
  /** Read everything once; throws WeirError when a counter cannot be read. */
  read(): AgentCounters;
  close(): void;
}

/** CPU time of the whole (virtual) machine from /proc/stat, the first `cpu ` line. */
export interface ProcStatCpu {
  /** user + nice + system + irq + softirq, in clock ticks (idle, iowait, steal excluded). */
  busyTicks: number;
  /** Number of `cpuN` lines (CPUs online). */
  onlineCpus: number;
}

/**
 * /proc/stat: `cpu  user nice system idle iowait irq softirq steal guest guest_nice` in
 * USER_HZ ticks. guest time is already inside user; steal is time the hypervisor took away,
 * not time this machine used.
 */
export function parseProcStat(text: string, file: string): ProcStatCpu {
  let busyTicks = -1;
  let onlineCpus = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("cpu ")) {
      const f = line.slice(4).trim().split(/\s+/).map(Number);
      if (f.length < 7 || f.some((x) => !Number.isSafeInteger(x) || x < 0))
        throw malformed(file, "first line is not `cpu` and 7+ tick counters", line);
      busyTicks = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!;
    } else if (/^cpu\d+ /.test(line)) onlineCpus++;
  }
  if (busyTicks < 0) throw malformed(file, 'no "cpu " line', text.slice(0, 200));
  return { busyTicks, onlineCpus };
}

/** Own cgroup paths from /proc/self/cgroup (v1 `N:cpu,cpuacct:/p`, v2 `0::/p`). */
export interface OwnCgroups {
  v1cpu?: string;
  v1cpuacct?: string;
  v2?: string;
}

export function parseProcSelfCgroup(text: string): OwnCgroups {
  const out: OwnCgroups = {};
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[2]!.split(",");
    const p = m[3]!;
    if (m[1] === "0" && m[2] === "") out.v2 = p;
    if (controllers.includes("cpu")) out.v1cpu = p;
    if (controllers.includes("cpuacct")) out.v1cpuacct = p;
  }
  return out;
}

/** The cgroup this process's CPU is charged to ("/" when at the root), or null. */
export function ownCgroupPath(procfs: string, pid: number | "self" = "self"): string | null {
  let text: string;
  try {
    text = readFileSync(path.join(procfs, String(pid), "cgroup"), "utf8");
  } catch {
    return null;
  }
  const c = parseProcSelfCgroup(text);
  return c.v1cpuacct ?? c.v1cpu ?? c.v2 ?? null;
}

/** /proc/stat re-read on a held descriptor. */
class ProcStatReader {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(64 * 1024);
  private readonly nsPerTick: number;
  constructor(
    readonly file: string,
    ticksPerSec: number,
  ) {
    this.nsPerTick = 1e9 / ticksPerSec;
    try {
      this.fd = openSync(file, "r");
    } catch (cause) {
      throw new WeirError(ErrorCodes.COUNTER_UNREADABLE, `cannot open ${file}`, { cause });
    }
  }
  usageNs(): number {
    const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    return parseProcStat(this.buf.toString("latin1", 0, n), this.file).busyTicks * this.nsPerTick;
  }
  close(): void {
    closeSync(this.fd);
  }
}

export interface OwnCountersOptions {
  procfs: string;
  cgroupfs: string;
  /** The agent's own pid (its /proc/<pid>/net is its namespace's view). */
  pid: number;
  /** Interfaces to count (default: every one but lo, offered = rx, served = tx). */
  interfaces?: InterfaceSpec[];
  /** cgroup whose CPU use is the partition's; null = the whole machine from /proc/stat (VM). */
  cgroup: string | null;
  /** USER_HZ for /proc/stat (100 on Linux). */
  ticksPerSec?: number;
}

/** The agent's counters from inside its partition, on held descriptors. */
export class OwnCounters implements AgentCounterSource {
  private readonly net: HeldNamespaceCounters;
  private readonly cgroupCpu: HeldCgroupCpuCounters | null;
  private readonly procStat: ProcStatReader | null;

  constructor(o: OwnCountersOptions) {
    this.net = new HeldNamespaceCounters(o.procfs, o.pid, o.interfaces);
    try {
      if (o.cgroup !== null) {
        this.cgroupCpu = new HeldCgroupCpuCounters(o.cgroupfs, o.cgroup);
        this.procStat = null;
      } else {
        this.cgroupCpu = null;
        this.procStat = new ProcStatReader(path.join(o.procfs, "stat"), o.ticksPerSec ?? 100);
      }
    } catch (e) {
      this.net.close();
      throw e;
    }
  }

  read(): AgentCounters {
    const p = this.net.readPackets();
    const socketDrops = udpSocketDrops(this.net.readUdp(false));
    const cpu = this.cgroupCpu
      ? this.cgroupCpu.read()
      : { usageNs: this.procStat!.usageNs(), nrPeriods: 0, nrThrottled: 0, throttledNs: 0 };
    return {
      rxPackets: p.offeredPackets,
      txPackets: p.servedPackets,
      droppedPackets: p.droppedPackets + socketDrops,
      cpuUsageNs: cpu.usageNs,
      nrPeriods: cpu.nrPeriods,
      nrThrottled: cpu.nrThrottled,
      throttledNs: cpu.throttledNs,
    };
  }

  close(): void {
    this.net.close();
    this.cgroupCpu?.close();
    this.procStat?.close();
  }
}
