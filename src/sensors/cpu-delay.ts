// CPU delay of one partition: time its tasks were runnable but waiting for a CPU (WLM's
// execution delay), as one cumulative nanosecond counter. Two sources, tried in order:
// - "psi": the "some" total of `cpu.pressure` of the partition's cgroup in a v2 hierarchy
//   (on a hybrid host `<cgroupfs>/unified/<path>`, which has cpu.pressure even without the
//   cpu controller), used only while the partition's processes are really in that cgroup;
// - "schedstat": the sum of `run_delay` (`/proc/<tid>/schedstat`) over the partition's
//   threads (v1 `tasks`, v2 `cgroup.threads`), on one held descriptor per thread.
import fs from "node:fs";
import path from "node:path";
import type { PartitionCgroup } from "../cgroup/paths.ts";
import { HeldFile } from "./held-file.ts";
import { parseIdList, parsePressureTotals, parseSchedstatRunDelayNs } from "./parse.ts";
import type { Roots } from "./types.ts";

export type CpuDelaySource = "psi" | "schedstat";

export interface CpuDelayOptions {
  /** Sources to try, in order of preference. Default `["psi", "schedstat"]`. */
  sources?: readonly CpuDelaySource[];
}

export const defaultCpuDelaySources: readonly CpuDelaySource[] = ["psi", "schedstat"];

/** Where a partition's CPU delay can be read from. */
export interface CpuDelayPaths {
  /** The v2 cgroup dir whose `cpu.pressure` covers the partition; null when no v2 hierarchy is mounted. */
  psiDir: string | null;
  /**
   * v1 only: the cpu cgroup dir whose `cgroup.procs` must equal `psiDir`'s for PSI to be
   * the partition's (a process is in a v1 and a v2 cgroup at once, not necessarily the
   * same path). Null on v2, where `psiDir` is the partition's own cgroup.
   */
  membersDir: string | null;
  /** The partition's thread list: v1 `<cpu dir>/tasks`, v2 `<dir>/cgroup.threads`. */
  threadsFile: string;
}

/** The files a partition's CPU delay is read from, by where its cgroup is (src/cgroup). */
export const cpuDelayPaths = (cgroup: PartitionCgroup): CpuDelayPaths => ({
  psiDir: cgroup.pressure,
  membersDir: cgroup.version === 1 ? cgroup.cpu : null,
  threadsFile: cgroup.threadsFile,
});

/** Same members, in any order (both lists come from cgroup.procs files). */
export function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  return x.every((v, i) => v === y[i]);
}

/** run_delay bookkeeping of one thread. */
interface TidState {
  file: HeldFile;
  runDelayNs: number;
  /** The read pass that last saw it (threads not seen in a pass are closed). */
  pass: number;
}

/** A missing cpu.pressure is looked for again after this many reads (10 s at 10 cycles/s). */
export const PSI_RECHECK_READS = 100;

/**
 * A partition's CPU delay on held descriptors. `read()` returns the delay accumulated
 * since this object was made (ns, never decreasing), or undefined when no source could be
 * read this time. Only deltas are accumulated: between two reads of the same source (PSI
 * total; run_delay of a thread seen in both reads). A thread's delay before its first
 * read and after its last one is not counted; a change of source adds nothing for that
 * window. Never throws: a source that fails is skipped for that read.
 */
export class HeldCpuDelay {
  readonly paths: CpuDelayPaths;
  private readonly sources: readonly CpuDelaySource[];
  private readonly procfs: string;
  private psiFile: HeldFile | null = null;
  private psiProcs: HeldFile | null = null;
  private v1Procs: HeldFile | null = null;
  private threads: HeldFile | null = null;
  private readonly tids = new Map<number, TidState>();
  private pass = 0;
  private lastPsiUs = -1;
  /** Reads since cpu.pressure was last found missing, counting from 1 (0: not missing). */
  private psiMissingReads = 0;
  /** cpu.pressure's path, and the `skipped` text while it is missing (made on first use). */
  private psiMissing: { file: string; message: string } | null = null;
  private totalNs = 0;
  /** The source the last read used (null: none worked). */
  source: CpuDelaySource | null = null;
  /** Why the last read's preferred source was skipped, if it was (for logs and tests). */
  skipped: string | null = null;

  constructor(roots: Pick<Roots, "procfs">, cgroup: PartitionCgroup, opts: CpuDelayOptions = {}) {
    this.paths = cpuDelayPaths(cgroup);
    this.sources = opts.sources ?? defaultCpuDelaySources;
    this.procfs = roots.procfs;
  }

  read(): number | undefined {
    this.skipped = null;
    for (const src of this.sources) {
      try {
        const delta = src === "psi" ? this.psiDeltaNs() : this.schedstatDeltaNs();
        if (delta === null) continue;
        this.totalNs += this.source === src ? delta : 0;
        this.source = src;
        return this.totalNs;
      } catch (e) {
        this.skipped = `${src}: ${(e as Error).message}`;
      }
    }
    this.source = null;
    return undefined;
  }

  close(): void {
    for (const f of [this.psiFile, this.psiProcs, this.v1Procs, this.threads]) f?.close();
    this.psiFile = this.psiProcs = this.v1Procs = this.threads = null;
    for (const t of this.tids.values()) t.file.close();
    this.tids.clear();
  }

  /** PSI "some" delta since the last PSI read, ns; null when PSI is not the partition's. */
  private psiDeltaNs(): number | null {
    const { psiDir, membersDir } = this.paths;
    if (psiDir === null) return null;
    if (this.psiFile === null) {
      // a cgroup2 directory that is not there (a v1 partition on a hybrid host, most often)
      // is looked for again every PSI_RECHECK_READS reads, not on every one (a stat per
      // partition per cycle was a seventh of an idle manager's system calls); the path and
      // the message are made once, not per read
      this.psiMissing ??= { file: path.join(psiDir, "cpu.pressure"), message: "" };
      const { file } = this.psiMissing;
      if (this.psiMissingReads > 0 && this.psiMissingReads++ % PSI_RECHECK_READS !== 0) {
        this.skipped = this.psiMissing.message;
        return null;
      }
      if (!fs.existsSync(file)) {
        this.psiMissingReads = 1;
        this.psiMissing.message = `psi: no ${file}`;
        this.skipped = this.psiMissing.message;
        return null;
      }
      this.psiMissingReads = 0;
      this.psiFile = new HeldFile(file, { sizeHint: 256 });
    }
    if (membersDir !== null) {
      this.psiProcs ??= new HeldFile(path.join(psiDir, "cgroup.procs"), { sizeHint: 256 });
      this.v1Procs ??= new HeldFile(path.join(membersDir, "cgroup.procs"), { sizeHint: 256 });
      const inV2 = parseIdList(this.psiProcs.read(), this.psiProcs.path);
      const inV1 = parseIdList(this.v1Procs.read(), this.v1Procs.path);
      if (!sameMembers(inV1, inV2)) {
        this.skipped = `psi: ${psiDir} holds pids [${inV2.join(" ")}], the partition's cpu cgroup [${inV1.join(" ")}]`;
        this.lastPsiUs = -1;
        return null;
      }
    }
    const us = parsePressureTotals(this.psiFile.read(), this.psiFile.path).someTotalUs;
    // a cgroup re-created under the same path starts again at 0: no delta for that window
    const delta = this.lastPsiUs >= 0 && us >= this.lastPsiUs ? (us - this.lastPsiUs) * 1000 : 0;
    this.lastPsiUs = us;
    return delta;
  }

  /** Sum of run_delay deltas of the threads seen in this read and the previous one, ns. */
  private schedstatDeltaNs(): number {
    if (this.source !== "schedstat") {
      // a fresh baseline: values held from an earlier stretch would count time PSI counted
      for (const t of this.tids.values()) t.file.close();
      this.tids.clear();
    }
    this.threads ??= new HeldFile(this.paths.threadsFile, { sizeHint: 512 });
    const ids = parseIdList(this.threads.read(), this.threads.path);
    const pass = ++this.pass;
    let delta = 0;
    for (const tid of ids) {
      const known = this.tids.get(tid);
      if (known !== undefined) {
        try {
          const v = parseSchedstatRunDelayNs(known.file.read(), known.file.path);
          if (v >= known.runDelayNs) delta += v - known.runDelayNs;
          known.runDelayNs = v;
          known.pass = pass;
          continue;
        } catch {
          // the thread exited (and its id may be reused): start again from a fresh descriptor
          known.file.close();
          this.tids.delete(tid);
        }
      }
      try {
        const file = new HeldFile(path.join(this.procfs, String(tid), "schedstat"), {
          sizeHint: 64,
          reopenOnStale: false,
        });
        try {
          const runDelayNs = parseSchedstatRunDelayNs(file.read(), file.path);
          this.tids.set(tid, { file, runDelayNs, pass });
        } catch {
          file.close();
        }
      } catch {
        // exited between the list and the open
      }
    }
    for (const [tid, t] of this.tids)
      if (t.pass !== pass) {
        t.file.close();
        this.tids.delete(tid);
      }
    return delta;
  }

  /** Threads whose descriptors are held (for tests and the benchmark). */
  get heldThreads(): number {
    return this.tids.size;
  }
}
