// Packet activity counters: per-interface packets/bytes/drops from sysfs (host side), a
// network namespace's own view through <procfs>/<pid>/net/dev, and its UDP socket drops
// through <procfs>/<pid>/net/snmp. Held descriptors, re-read at offset 0.
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { type FailureClassifier, goneClassifier, HeldFile, readOnce } from "./held-file.ts";
import {
  INTERFACE_COUNTER_NAMES,
  type InterfaceCounters,
  parseCounterValue,
  parseNetDev,
  parseSnmpUdp,
  type UdpCounters,
} from "./parse.ts";
import type { Direction, InterfaceSpec, PacketCounts } from "./types.ts";

export type InterfaceCounterName = (typeof INTERFACE_COUNTER_NAMES)[number];

/**
 * The kernel's rule for interface names (dev_valid_name): 1-15 bytes, not "." or "..",
 * no "/", ":" or whitespace. Checked so a name can never walk out of <sysfs>/class/net.
 */
export function assertInterfaceName(name: string): void {
  if (name.length === 0 || name.length > 15 || name === "." || name === ".." || /[/:\s]/.test(name))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `interface name must be 1-15 characters without "/", ":" or spaces: current value is ${JSON.stringify(name)}`,
    );
}

function assertPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `pid must be a positive integer: current value is ${pid}`,
    );
}

export const interfaceCounterPath = (
  sysfs: string,
  ifname: string,
  counter: InterfaceCounterName,
): string => path.join(sysfs, "class/net", ifname, "statistics", counter);

export const netDevPath = (procfs: string, pid: number): string =>
  path.join(procfs, String(pid), "net/dev");
export const snmpPath = (procfs: string, pid: number): string =>
  path.join(procfs, String(pid), "net/snmp");

/** Names an interface in an INTERFACE_GONE error when its sysfs file is missing or stale. */
export const interfaceFailure = (ifname: string): FailureClassifier =>
  goneClassifier(ErrorCodes.INTERFACE_GONE, `interface ${ifname}`, true);

/** Names the pid in a PROCESS_GONE error; a dead pid is terminal (its number may be reused). */
export const processFailure = (pid: number): FailureClassifier =>
  goneClassifier(ErrorCodes.PROCESS_GONE, `process ${pid}`, false);

/** All six counters of one interface, open-read-close (for one-off reads, not the hot path). */
export function readInterfaceCounters(sysfs: string, ifname: string): InterfaceCounters {
  assertInterfaceName(ifname);
  const classify = interfaceFailure(ifname);
  const out = {} as InterfaceCounters;
  for (const name of INTERFACE_COUNTER_NAMES) {
    const file = interfaceCounterPath(sysfs, ifname, name);
    out[name] = parseCounterValue(readOnce(file, classify), file);
  }
  return out;
}

/** A namespace's interfaces as seen from inside it, open-read-close. */
export function readNetDev(procfs: string, pid: number): Map<string, InterfaceCounters> {
  assertPid(pid);
  const file = netDevPath(procfs, pid);
  return parseNetDev(readOnce(file, processFailure(pid)), file);
}

/** A namespace's UDP counters, open-read-close. */
export function readSnmpUdp(procfs: string, pid: number): UdpCounters {
  assertPid(pid);
  const file = snmpPath(procfs, pid);
  return parseSnmpUdp(readOnce(file, processFailure(pid)), file);
}

const packetsOf = (d: Direction): "rx_packets" | "tx_packets" =>
  d === "rx" ? "rx_packets" : "tx_packets";
const droppedOf = (d: Direction): "rx_dropped" | "tx_dropped" =>
  d === "rx" ? "rx_dropped" : "tx_dropped";

/**
 * How an interface's counters become a partition's packet counts.
 *
 * Offered counts what arrived for the partition *including what was dropped on arrival*:
 * a packet the interface drops in the offered direction is not in its `*_packets`
 * (tx_dropped never is; veth's rx_dropped is not either), so the drop is added. Packets
 * dropped later at a full socket already passed the interface and are in `*_packets`.
 * Served is the served direction's packets.
 */
export function packetCountsOf(c: InterfaceCounters, spec: InterfaceSpec): PacketCounts {
  const dropped = c[droppedOf(spec.offered)];
  return {
    offeredPackets: c[packetsOf(spec.offered)] + dropped,
    servedPackets: c[packetsOf(spec.served)],
    droppedPackets: dropped,
  };
}

/** The three sysfs files of one host-side interface a sample needs, held open. */
export class HeldInterfaceCounters {
  readonly spec: InterfaceSpec;
  private readonly offered: HeldFile;
  private readonly served: HeldFile;
  private readonly dropped: HeldFile;

  constructor(sysfs: string, spec: InterfaceSpec) {
    assertInterfaceName(spec.name);
    this.spec = spec;
    const opts = { sizeHint: 32, reopenOnStale: true, classify: interfaceFailure(spec.name) };
    const files: HeldFile[] = [];
    try {
      for (const name of [packetsOf(spec.offered), packetsOf(spec.served), droppedOf(spec.offered)])
        files.push(new HeldFile(interfaceCounterPath(sysfs, spec.name, name), opts));
    } catch (e) {
      for (const f of files) f.close();
      throw e;
    }
    [this.offered, this.served, this.dropped] = files as [HeldFile, HeldFile, HeldFile];
  }

  read(): PacketCounts {
    const offered = parseCounterValue(this.offered.read(), this.offered.path);
    const served = parseCounterValue(this.served.read(), this.served.path);
    const dropped = parseCounterValue(this.dropped.read(), this.dropped.path);
    return { offeredPackets: offered + dropped, servedPackets: served, droppedPackets: dropped };
  }

  /** Descriptors reopened after the interface was re-created. */
  get reopens(): number {
    return this.offered.reopens + this.served.reopens + this.dropped.reopens;
  }

  close(): void {
    this.offered.close();
    this.served.close();
    this.dropped.close();
  }
}

/**
 * A network namespace seen through one of its processes: held /proc/<pid>/net/dev and
 * /net/snmp. Those descriptors keep working (and keep the namespace alive) after the
 * process exits, so liveness is checked on a held /proc/<pid>/comm, which fails with ESRCH
 * once that very process is gone, even if its pid number is reused.
 */
export class HeldNamespaceCounters {
  readonly pid: number;
  private readonly comm: HeldFile;
  private readonly dev: HeldFile | null;
  private readonly snmp: HeldFile;
  private readonly interfaces: InterfaceSpec[] | null | undefined;
  private closed = false;

  /**
   * @param interfaces interfaces inside the namespace to count; null = read no net/dev
   *   (only socket drops); undefined = every interface but `lo`, offered = rx, served = tx.
   */
  constructor(procfs: string, pid: number, interfaces: InterfaceSpec[] | null | undefined) {
    assertPid(pid);
    this.pid = pid;
    this.interfaces = interfaces;
    const opts = { reopenOnStale: false, classify: processFailure(pid) };
    this.comm = new HeldFile(path.join(procfs, String(pid), "comm"), { ...opts, sizeHint: 64 });
    try {
      this.snmp = new HeldFile(snmpPath(procfs, pid), { ...opts, sizeHint: 4096 });
    } catch (e) {
      this.comm.close();
      throw e;
    }
    try {
      this.dev =
        interfaces === null
          ? null
          : new HeldFile(netDevPath(procfs, pid), { ...opts, sizeHint: 2048 });
    } catch (e) {
      this.comm.close();
      this.snmp.close();
      throw e;
    }
  }

  /** Throws PROCESS_GONE (and releases the namespace) once the process has exited. */
  private checkAlive(): void {
    if (this.closed) throw processFailure(this.pid)(this.comm.path, goneError());
    try {
      this.comm.read();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Packet counts summed over the chosen interfaces (zeros when net/dev is not read). */
  readPackets(): PacketCounts {
    this.checkAlive();
    const sum: PacketCounts = { offeredPackets: 0, servedPackets: 0, droppedPackets: 0 };
    if (this.dev === null) return sum;
    const all = parseNetDev(this.dev.read(), this.dev.path);
    const specs =
      this.interfaces ??
      [...all.keys()]
        .filter((n) => n !== "lo")
        .map((name): InterfaceSpec => ({ name, offered: "rx", served: "tx" }));
    for (const spec of specs) {
      const c = all.get(spec.name);
      if (c === undefined)
        throw new WeirError(
          ErrorCodes.INTERFACE_GONE,
          `interface ${spec.name} is gone from the namespace of process ${this.pid} (${this.dev.path})`,
          { retryable: true },
        );
      const p = packetCountsOf(c, spec);
      sum.offeredPackets += p.offeredPackets;
      sum.servedPackets += p.servedPackets;
      sum.droppedPackets += p.droppedPackets;
    }
    return sum;
  }

  /** UDP counters of the namespace. Call after readPackets (or alone: it checks liveness too). */
  readUdp(checkAlive = true): UdpCounters {
    if (checkAlive) this.checkAlive();
    return parseSnmpUdp(this.snmp.read(), this.snmp.path);
  }

  close(): void {
    this.closed = true;
    this.comm.close();
    this.dev?.close();
    this.snmp.close();
  }
}

function goneError(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error("process exited");
  err.code = "ESRCH";
  return err;
}
