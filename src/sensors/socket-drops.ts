// UDP receive drops of the sockets a cgroup's processes hold, for partitions on the host
// network (counter source `bpf`): the host namespace's `Udp InErrors` is every tenant's, but
// `<procfs>/net/udp` and `udp6` give each socket's own `drops` (receive buffer full), and the
// partition's sockets are found through its processes' descriptors (`socket:[inode]` links
// under `<procfs>/<pid>/fd`). The eBPF ingress hook counts a datagram before the socket queues
// it, so these drops are already inside offered: they are reported as dropped, not added.
import fs from "node:fs";
import path from "node:path";

/** Re-list the partition's sockets every this many reads (servers keep their sockets). */
export const SOCKET_REFRESH_READS = 10;
/** Descendant cgroups walked below the partition's directory (its processes may sit lower). */
const MAX_CGROUP_DEPTH = 4;
/**
 * How long one read of the host's UDP tables serves every partition: a cycle samples its
 * partitions within a few ms, and the tables list every socket on the host, so each of N
 * partitions reading them again would cost N reads of the same text per cycle.
 */
export const UDP_TABLE_MAX_AGE_MS = 20;

/** `drops` per socket inode from the text of /proc/net/udp or /proc/net/udp6. */
export function parseUdpSocketDrops(
  text: string,
  into = new Map<number, number>(),
): Map<number, number> {
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
    if (f.length < 13) continue;
    const inode = Number(f[9]);
    const drops = Number(f[12]);
    if (Number.isSafeInteger(inode) && inode > 0 && Number.isSafeInteger(drops) && drops >= 0)
      into.set(inode, drops);
  }
  return into;
}

const tables = new Map<string, { atMs: number; drops: Map<number, number> }>();

/** Drops by inode from `<procfs>/net/udp` and `udp6`, read at most once per UDP_TABLE_MAX_AGE_MS. */
export function udpDropTable(procfs: string, nowMs = performance.now()): Map<number, number> {
  const held = tables.get(procfs);
  if (held && nowMs - held.atMs < UDP_TABLE_MAX_AGE_MS && nowMs >= held.atMs) return held.drops;
  const drops = new Map<number, number>();
  for (const f of ["udp", "udp6"]) {
    try {
      parseUdpSocketDrops(fs.readFileSync(path.join(procfs, "net", f), "utf8"), drops);
    } catch {
      // no IPv6 (udp6 absent), or no UDP at all: nothing to add
    }
  }
  tables.set(procfs, { atMs: nowMs, drops });
  return drops;
}

/** Processes in `cgroupDir` and its descendants (to MAX_CGROUP_DEPTH), from cgroup.procs. */
function cgroupPids(cgroupDir: string, depth = 0, out: number[] = []): number[] {
  let text = "";
  try {
    text = fs.readFileSync(path.join(cgroupDir, "cgroup.procs"), "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) if (line !== "") out.push(Number(line));
  if (depth < MAX_CGROUP_DEPTH)
    for (const e of fs.readdirSync(cgroupDir, { withFileTypes: true }))
      if (e.isDirectory()) cgroupPids(path.join(cgroupDir, e.name), depth + 1, out);
  return out;
}

/** Socket inodes the processes hold (a process that exits meanwhile is skipped). */
export function socketInodes(procfs: string, pids: readonly number[]): Set<number> {
  const inodes = new Set<number>();
  for (const pid of pids) {
    const fdDir = path.join(procfs, String(pid), "fd");
    let fds: string[];
    try {
      fds = fs.readdirSync(fdDir);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(path.join(fdDir, fd));
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(Number(m[1]));
    }
  }
  return inodes;
}

/**
 * Cumulative UDP receive drops of one cgroup's sockets. Each read adds the rise of every
 * socket's counter since the last read; a socket seen for the first time starts from its
 * current count (its earlier drops were before weir looked), and a closed socket's drops stay
 * in the total.
 */
export class CgroupUdpDrops {
  private total = 0;
  private readonly last = new Map<number, number>();
  private inodes = new Set<number>();
  private reads = 0;

  constructor(
    private readonly procfs: string,
    private readonly cgroupDir: string,
  ) {}

  read(nowMs = performance.now()): number {
    if (this.reads++ % SOCKET_REFRESH_READS === 0)
      this.inodes = socketInodes(this.procfs, cgroupPids(this.cgroupDir));
    if (this.inodes.size === 0) return this.total;
    const now = udpDropTable(this.procfs, nowMs);
    for (const inode of this.inodes) {
      const d = now.get(inode);
      if (d === undefined) continue;
      const before = this.last.get(inode);
      if (before !== undefined && d > before) this.total += d - before;
      this.last.set(inode, d);
    }
    for (const inode of this.last.keys()) if (!this.inodes.has(inode)) this.last.delete(inode);
    return this.total;
  }
}
