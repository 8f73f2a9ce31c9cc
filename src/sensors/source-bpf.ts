// Counter source `bpf`: the partition's packets counted in the kernel by eBPF programs
// attached to its cgroup v2 directory (src/bpf), for partitions with no interface or
// namespace of their own: systemd services, containers on the host network, processes
// sharing lo or eth0. Offered = ingress, served = egress by default (a server). Dropped = the
// UDP receive drops of the sockets its processes hold (socket-drops.ts).
import fs from "node:fs";
import path from "node:path";
import { CgroupSkbCounters, type CgroupSkbCounts } from "../bpf/cgroup-counters.ts";
import { cgroup2Mount, cgroupDir } from "../cgroup/layout.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CounterSource } from "./counter-source.ts";
import { parseCpuList } from "./parse.ts";
import { CgroupUdpDrops } from "./socket-drops.ts";
import type { OptionIssue, PacketCounter, PacketCounts } from "./types.ts";

type Hook = "ingress" | "egress";

export interface BpfSourceOptions {
  /** The hook whose packets arrive for the partition (default ingress). */
  offered: Hook;
  /** The hook whose packets the partition sends (default egress). */
  served: Hook;
  /**
   * Keep the map and programs pinned under /sys/fs/bpf/weir/<partition> and attached when weir
   * stops, so a restarted weir resumes the same counts (default false: detached at shutdown).
   */
  pin: boolean;
}

/** Where pinned objects live: one directory per partition in the bpf filesystem. */
export const BPF_PIN_ROOT = "/sys/fs/bpf/weir";

const HOOKS: readonly Hook[] = ["ingress", "egress"];

function parseBpfOptions(raw: unknown): { options: BpfSourceOptions } | { issues: OptionIssue[] } {
  const o = (raw ?? {}) as Record<string, unknown>;
  const issues: OptionIssue[] = [];
  for (const k of Object.keys(o))
    if (!["offered", "served", "pin"].includes(k))
      issues.push({
        path: [k],
        message: `is not an option of the bpf counter source (offered, served, pin) (rule: known-fields)`,
      });
  const hook = (k: "offered" | "served", dflt: Hook): Hook => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v === "string" && (HOOKS as readonly string[]).includes(v)) return v as Hook;
    issues.push({
      path: [k],
      message: `must be ingress or egress (rule: bpf-hook): got ${JSON.stringify(v)}`,
    });
    return dflt;
  };
  const offered = hook("offered", "ingress");
  const served = hook("served", "egress");
  if (o.pin !== undefined && typeof o.pin !== "boolean")
    issues.push({
      path: ["pin"],
      message: `must be true or false (rule: boolean): got ${JSON.stringify(o.pin)}`,
    });
  if (issues.length > 0) return { issues };
  return { options: { offered, served, pin: o.pin === true } };
}

const inodeOf = (dir: string): number | null => {
  try {
    return fs.statSync(dir).ino;
  } catch {
    return null;
  }
};

/** The partition's cgroup v2 directory: `<cgroupfs>/<cgroup>` on a v2 host, `<cgroupfs>/unified/<cgroup>` on a hybrid one. */
export function bpfCgroupDir(cgroupfs: string, cgroup: string, partition: string): string {
  const mount = cgroup2Mount(cgroupfs);
  if (mount === null)
    throw new WeirError(
      ErrorCodes.BPF_UNAVAILABLE,
      `partition ${partition}: no cgroup2 hierarchy under ${cgroupfs} (neither it nor ${path.join(cgroupfs, "unified")} is a cgroup2 mount), and eBPF counts per cgroup v2 directory: mount one (mount -t cgroup2 none ${path.join(cgroupfs, "unified")}) or count this partition with interfaces or pid`,
    );
  return cgroupDir(mount, cgroup);
}

function possibleCpus(sysfs: string): number {
  const file = path.join(sysfs, "devices/system/cpu/possible");
  return Math.max(...parseCpuList(fs.readFileSync(file, "utf8"), file)) + 1;
}

/**
 * What an opening of pinned counters tells the operator: programs taken off the cgroup the
 * partition had before (its `cgroup` changed between runs), or pins with no record of their
 * cgroup (made by a weir before the record), whose old cgroup, if it changed, keeps them.
 */
export function pinNotes(
  partition: string,
  cgroupDir: string,
  c: Pick<CgroupSkbCounters, "resumed" | "movedFrom" | "unrecorded">,
): string[] {
  if (!c.resumed) return [];
  if (c.movedFrom !== null)
    return [
      `partition ${partition}: its pinned eBPF counters now count ${cgroupDir}; their programs were taken off ${c.movedFrom}, the cgroup it had before`,
    ];
  if (c.unrecorded)
    return [
      `partition ${partition}: its pinned eBPF counters carried no record of their cgroup (pinned by an older weir), now recorded as ${cgroupDir}; if the partition had another cgroup before, its programs are still attached there (bpftool cgroup tree; detach them or remove that cgroup)`,
    ];
  return [];
}

/**
 * Counters handed from a manager stopped for a reload to the next one this process builds
 * (`weir run`'s restarts: a SIGHUP, a change `discover:` found): kept attached and counting
 * instead of detached and loaded again (at 100 partitions counted so a restart took 170–190 ms
 * here, most of it loading and attaching 200 programs; 42–56 ms handed over), each by its
 * partition, its
 * cgroup v2 directory (the same inode) and `pin`.
 */
const parked = new Map<string, { counters: CgroupSkbCounters; ino: number }>();
let parking = false;

export const bpfHandover = {
  /** From now on a closed counter is kept attached for the next manager to take up. */
  park(): void {
    parking = true;
  },
  /** Stop keeping them; detach (close) every one not taken up. */
  settle(): void {
    parking = false;
    for (const p of parked.values()) p.counters.close();
    parked.clear();
  },
};

const countOf = (c: CgroupSkbCounts, hook: Hook): number =>
  hook === "ingress" ? c.ingressPackets : c.egressPackets;

export const bpfSource: CounterSource = {
  name: "bpf",
  description:
    "eBPF programs on the partition's cgroup v2 directory count its sockets' packets (offered = ingress, served = egress by default)",
  feed: "host",
  parseOptions: parseBpfOptions,
  open(ctx): PacketCounter {
    const o = (ctx.options as BpfSourceOptions | undefined) ?? {
      offered: "ingress",
      served: "egress",
      pin: false,
    };
    const dir = bpfCgroupDir(ctx.roots.cgroupfs, ctx.spec.cgroup, ctx.partition);
    // the counters the manager before this one kept attached for it (bpfHandover), while its
    // cgroup is the same directory (not removed and made again meanwhile)
    const key = `${ctx.partition}\0${dir}\0${o.pin}`;
    const kept = parked.get(key);
    if (kept) parked.delete(key);
    let counters: CgroupSkbCounters;
    let ino: number;
    if (kept && kept.ino === inodeOf(dir)) ({ counters, ino } = kept);
    else {
      kept?.counters.close();
      counters = new CgroupSkbCounters({
        partition: ctx.partition,
        cgroupDir: dir,
        possibleCpus: possibleCpus(ctx.roots.sysfs),
        pinDir: path.join(BPF_PIN_ROOT, ctx.partition),
        pin: o.pin,
      });
      for (const message of pinNotes(ctx.partition, dir, counters)) ctx.note?.(message);
      ino = fs.statSync(dir).ino;
    }
    // its sockets' own UDP receive drops (socket-drops.ts): the congestion signal veth
    // partitions get from their namespace's counters
    const drops = new CgroupUdpDrops(ctx.roots.procfs, dir);
    return {
      read(): PacketCounts {
        // the programs go with the directory: a removed (or re-made) cgroup counts no more
        let same = false;
        try {
          same = fs.statSync(dir).ino === ino;
        } catch {
          // gone
        }
        if (!same)
          throw new WeirError(
            ErrorCodes.CGROUP_GONE,
            `partition ${ctx.partition}: its cgroup v2 directory ${dir} is gone`,
          );
        const c = counters.read();
        return {
          offeredPackets: countOf(c, o.offered),
          servedPackets: countOf(c, o.served),
          droppedPackets: drops.read(),
          ingressBytes: c.ingressBytes,
          egressBytes: c.egressBytes,
        };
      },
      close: () => {
        if (!parking) {
          counters.close();
          return;
        }
        parked.get(key)?.counters.close();
        parked.set(key, { counters, ino });
      },
    };
  },
};
