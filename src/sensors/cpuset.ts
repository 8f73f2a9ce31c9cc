// The CPUs a partition's tasks may run on: its cgroup's effective cpuset where one is
// readable, intersected with the host's online CPUs (the online CPUs alone where no cpuset
// is). Read once at start (not on the hot path); parsed by parseCpuList.
import fs from "node:fs";
import path from "node:path";
import { cgroup2Mount } from "../cgroup/layout.ts";
import { cpusetFiles } from "../cgroup/paths.ts";
import { HeldFile } from "./held-file.ts";
import { parseCpuList } from "./parse.ts";
import type { Roots } from "./types.ts";

export interface PartitionCpus {
  /** CPU numbers, ascending. */
  cpus: number[];
  /** The files the list came from, e.g. ".../cpuset.effective_cpus ∩ .../cpu/online". */
  source: string;
}

const isFile = (p: string): boolean => {
  try {
    // no exception for a missing file: a sweep over 10,000 partitions asks for many
    return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
};

/** `<sysfs>/devices/system/cpu/online`. */
export const onlineCpusFile = (sysfs: string): string =>
  path.join(sysfs, "devices", "system", "cpu", "online");

/** A CPU list file's CPUs, or null when it is missing, unreadable, malformed or empty. */
function readCpuListOrNull(file: string): number[] | null {
  return cpuListOrNull(readSmallFile(file), file);
}

/**
 * The CPUs a partition can run on, from the first readable, non-empty cpuset file
 * (`cpusetFiles`, src/cgroup) intersected with the online CPUs, or the online CPUs alone. Null when
 * neither can be read. Never throws: callers only warn from it.
 */
export function readPartitionCpus(
  roots: Pick<Roots, "cgroupfs" | "sysfs">,
  cgroupPath: string,
): PartitionCpus | null {
  const onlineFile = onlineCpusFile(roots.sysfs);
  return partitionCpus(roots.cgroupfs, cgroupPath, readCpuListOrNull(onlineFile), onlineFile);
}

function partitionCpus(
  cgroupfs: string,
  cgroupPath: string,
  online: number[] | null,
  onlineFile: string,
): PartitionCpus | null {
  let files: string[] = [];
  try {
    files = cpusetFiles(cgroupfs, cgroupPath);
  } catch {
    // a path with ".." is refused by config validation already; fall back to online CPUs
  }
  for (const file of files) {
    if (!isFile(file)) continue;
    const cpuset = readCpuListOrNull(file);
    if (cpuset === null) continue;
    return withOnline(cpuset, file, online, onlineFile);
  }
  return online === null ? null : { cpus: online, source: onlineFile };
}

/**
 * The CPUs a set of threads may run on: the union of their affinity masks
 * (`<procfs>/<tid>/status`, `Cpus_allowed_list:`; `taskset`/`sched_setaffinity` set them, a
 * cpuset does too). Null when no thread's mask could be read (none left, or all gone). A
 * thread that exits between the listing and the read is skipped.
 */
export function readThreadsCpus(procfs: string, tids: readonly number[]): number[] | null {
  const union = new Set<number>();
  let read = 0;
  for (const tid of tids) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(procfs, String(tid), "status"), "latin1");
    } catch {
      continue;
    }
    const cpus = cpusAllowedOf(text);
    if (cpus === null) continue;
    read++;
    for (const c of cpus) union.add(c);
  }
  return read === 0 ? null : [...union].sort((a, b) => a - b);
}

/** `Cpus_allowed_list:\t0-1` in a /proc status text → [0, 1]; null when absent or malformed. */
export function cpusAllowedOf(statusText: string): number[] | null {
  const key = "Cpus_allowed_list:";
  const at = statusText.indexOf(key);
  if (at < 0) return null;
  const end = statusText.indexOf("\n", at);
  const list = statusText.slice(at + key.length, end < 0 ? undefined : end).trim();
  try {
    return parseCpuList(list, "Cpus_allowed_list");
  } catch {
    return null;
  }
}

/** Thread ids listed in a cgroup's threads file (v1 `tasks`, v2 `cgroup.threads`); [] when unreadable. */
export function readThreadIds(threadsFile: string): number[] {
  let text: string;
  try {
    text = fs.readFileSync(threadsFile, "latin1");
  } catch {
    return [];
  }
  return threadIdsOf(text);
}

/** The thread ids in a threads file's text, one per line. */
function threadIdsOf(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const tid = Number(line);
    if (line !== "" && Number.isInteger(tid) && tid > 0) out.push(tid);
  }
  return out;
}

/**
 * The CPUs a partition's work can reach now: its cpuset's CPUs (readPartitionCpus) ∩ the
 * union of its threads' affinity masks; the cpuset's alone while it has no thread. A server
 * pinned with `taskset` to one CPU of two reaches 1,000m, whatever the capacity says.
 */
export function readReachableCpus(
  roots: Pick<Roots, "cgroupfs" | "sysfs" | "procfs">,
  cgroupPath: string,
  threadsFile: string,
): PartitionCpus | null {
  return reachableFrom(roots.procfs, readPartitionCpus(roots, cgroupPath), threadsFile);
}

/** How long ReachableCpusReader reuses the online CPUs it read (CPU hotplug is rare). */
export const ONLINE_CPUS_REUSE_MS = 1000;

/**
 * How long ReachableCpusReader keeps which of a partition's cpuset files (`cpusetFiles`) it
 * reads before it looks for them again: a cgroup made later in the cpuset hierarchy, or an
 * ancestor's cpuset that a nearer one now overrides, is seen within this long. The file it
 * keeps is read on every call, so a change to its CPUs is seen at once; when it is gone,
 * empty or malformed the files are looked for again on that call.
 */
export const CPUSET_FILE_RECHECK_MS = 10_000;

/** One buffer for every small file the reader reads (grown when a file fills it). */
let readBuf = Buffer.allocUnsafe(4096);

/**
 * A small kernel file's whole text (latin1), read into the shared buffer: open, read, close,
 * where `readFileSync` also stats the file, reads once more to see the end and allocates a
 * buffer per call. Null when it cannot be opened or read.
 */
function readSmallFile(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return null;
  }
  try {
    for (;;) {
      const n = fs.readSync(fd, readBuf, 0, readBuf.length, 0);
      if (n < readBuf.length) return readBuf.toString("latin1", 0, n);
      readBuf = Buffer.allocUnsafe(readBuf.length * 2);
    }
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** A CPU list text's CPUs, or null when it is malformed or empty. */
function cpuListOrNull(text: string | null, file: string): number[] | null {
  if (text === null) return null;
  try {
    const cpus = parseCpuList(text, file);
    return cpus.length > 0 ? cpus : null;
  } catch {
    return null;
  }
}

const sameNumbers = (a: readonly number[] | null, b: readonly number[] | null): boolean => {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

/** What ReachableCpusReader keeps for one partition between its reads. */
interface PartitionReach {
  /** The cpuset file it reads (null: none is readable, so the online CPUs alone). */
  cpusetFile: string | null;
  /** When the cpuset files were last looked for (nowMs; -Infinity: not yet). */
  cpusetFoundAtMs: number;
  cpusetText: string;
  cpuset: number[] | null;
  /** The union of its threads' affinity (null: no thread, or none could be read). */
  affinity: number[] | null;
  /** Its threads file, held (null: not open now; opened again on the next read). */
  threads: HeldFile | null;
  /** The last answer and what it was computed from (the same objects: the answer is reused). */
  result: PartitionCpus | null;
  resultOf: { cpuset: number[] | null; online: number[] | null; affinity: number[] | null } | null;
}

/**
 * readReachableCpus for the partitions of one host, read again and again (the manager's
 * sweep): the cgroup2 mount found once (a mount does not move while weir runs), the online
 * CPUs read at most once every ONLINE_CPUS_REUSE_MS, and which cpuset file is a partition's
 * looked for at most once every CPUSET_FILE_RECHECK_MS. So one partition's read is its
 * cpuset file (when it has one), its threads file and its threads' status files, each read
 * into one reused buffer; while none of them changed it returns the same object as before
 * (an idle partition on a host without a cpuset for it: one read of an empty threads file,
 * nothing allocated but its lookup key). Each partition's threads file is held open (one
 * descriptor from the budget the sensors share, src/cgroup/held-fds.ts; opened for each read
 * once that is spent): its read is one `pread` instead of an open, a read and a close. On cgroup
 * v1 the kernel keeps a `tasks` list it built for an open file for about a second after a read
 * (CGROUP_PIDLIST_DESTROY_DELAY), so a held file read again within a second may show the list
 * of that read: the manager reads each partition once every `reachRefreshCycles` cycles (2 s at
 * the default 100 ms), so its reads are fresh there; at cycles under 50 ms a thread that joined
 * may be seen up to a second late. `close()` gives the descriptors back.
 */
export class ReachableCpusReader {
  private readonly roots: Pick<Roots, "cgroupfs" | "sysfs" | "procfs">;
  private readonly v2Mount: string | null;
  private readonly onlineFile: string;
  private online: number[] | null = null;
  private onlineText: string | null = null;
  private onlineAtMs = Number.NEGATIVE_INFINITY;
  private readonly nowMs: () => number;
  private readonly partitions = new Map<string, PartitionReach>();

  constructor(
    roots: Pick<Roots, "cgroupfs" | "sysfs" | "procfs">,
    nowMs: () => number = () => performance.now(),
  ) {
    this.roots = roots;
    this.v2Mount = cgroup2Mount(roots.cgroupfs);
    this.onlineFile = onlineCpusFile(roots.sysfs);
    this.nowMs = nowMs;
  }

  read(cgroupPath: string, threadsFile: string): PartitionCpus | null {
    const now = this.nowMs();
    if (now - this.onlineAtMs >= ONLINE_CPUS_REUSE_MS) {
      const text = readSmallFile(this.onlineFile);
      // the same array while the text is the same, so an unchanged answer can be reused
      if (text !== this.onlineText || text === null) {
        this.onlineText = text;
        this.online = cpuListOrNull(text, this.onlineFile);
      }
      this.onlineAtMs = now;
    }
    const key = `${cgroupPath}\n${threadsFile}`;
    let p = this.partitions.get(key);
    if (p === undefined) {
      p = {
        cpusetFile: null,
        cpusetFoundAtMs: Number.NEGATIVE_INFINITY,
        cpusetText: "",
        cpuset: null,
        affinity: null,
        result: null,
        resultOf: null,
        threads: null,
      };
      this.partitions.set(key, p);
    }
    this.readCpuset(p, cgroupPath, now);
    this.readAffinity(p, threadsFile);
    const of = p.resultOf;
    if (
      of !== null &&
      of.cpuset === p.cpuset &&
      of.online === this.online &&
      of.affinity === p.affinity
    )
      return p.result;
    const base =
      p.cpuset !== null && p.cpusetFile !== null
        ? withOnline(p.cpuset, p.cpusetFile, this.online, this.onlineFile)
        : this.online === null
          ? null
          : { cpus: this.online, source: this.onlineFile };
    p.result = withAffinity(base, p.affinity, threadsFile);
    p.resultOf = { cpuset: p.cpuset, online: this.online, affinity: p.affinity };
    return p.result;
  }

  /** The partition's cpuset: its kept file read again, or the files looked for when due or gone. */
  private readCpuset(p: PartitionReach, cgroupPath: string, now: number): void {
    if (p.cpusetFile !== null && now - p.cpusetFoundAtMs < CPUSET_FILE_RECHECK_MS) {
      const text = readSmallFile(p.cpusetFile);
      if (text === p.cpusetText) return;
      const cpus = cpuListOrNull(text, p.cpusetFile);
      if (cpus !== null) {
        p.cpusetText = text!;
        if (!sameNumbers(cpus, p.cpuset)) p.cpuset = cpus;
        return;
      }
      // gone, empty or malformed: look for the files again now
    } else if (p.cpusetFile === null && now - p.cpusetFoundAtMs < CPUSET_FILE_RECHECK_MS) return;
    p.cpusetFoundAtMs = now;
    let files: string[] = [];
    try {
      files = cpusetFiles(this.roots.cgroupfs, cgroupPath, this.v2Mount);
    } catch {
      // a path with ".." is refused by config validation already; fall back to online CPUs
    }
    for (const file of files) {
      if (!isFile(file)) continue;
      const text = readSmallFile(file);
      const cpus = cpuListOrNull(text, file);
      if (cpus === null) continue;
      if (file !== p.cpusetFile || !sameNumbers(cpus, p.cpuset)) p.cpuset = cpus;
      p.cpusetFile = file;
      p.cpusetText = text!;
      return;
    }
    p.cpusetFile = null;
    p.cpusetText = "";
    p.cpuset = null;
  }

  /** The union of the affinity of the partition's threads (read on every call: it changes unannounced). */
  private readAffinity(p: PartitionReach, threadsFile: string): void {
    const text = this.readThreads(p, threadsFile);
    if (text === "") {
      p.affinity = null;
      return;
    }
    const affinity = readThreadsCpus(this.roots.procfs, threadIdsOf(text));
    if (!sameNumbers(affinity, p.affinity)) p.affinity = affinity;
  }

  /** The partition's threads file on its held descriptor; "" when it cannot be read. */
  private readThreads(p: PartitionReach, threadsFile: string): string {
    try {
      p.threads ??= new HeldFile(threadsFile, { sizeHint: 256 });
      return p.threads.read();
    } catch {
      p.threads?.close();
      p.threads = null;
      return "";
    }
  }

  /** Closes the threads files it holds (a later read opens them again). */
  close(): void {
    for (const p of this.partitions.values()) {
      p.threads?.close();
      p.threads = null;
    }
  }
}

/** A cpuset's CPUs ∩ the online CPUs (the cpuset's alone when the online CPUs are unknown). */
function withOnline(
  cpuset: number[],
  file: string,
  online: number[] | null,
  onlineFile: string,
): PartitionCpus {
  if (online === null) return { cpus: cpuset, source: file };
  const on = new Set(online);
  return { cpus: cpuset.filter((c) => on.has(c)), source: `${file} ∩ ${onlineFile}` };
}

/** A base (cpuset ∩ online) ∩ the threads' affinity; the base alone without affinity. */
function withAffinity(
  base: PartitionCpus | null,
  affinity: number[] | null,
  threadsFile: string,
): PartitionCpus | null {
  if (affinity === null) return base;
  if (base === null) return { cpus: affinity, source: `affinity of the threads in ${threadsFile}` };
  const allowed = new Set(affinity);
  return {
    cpus: base.cpus.filter((c) => allowed.has(c)),
    source: `${base.source} ∩ affinity of the threads in ${threadsFile}`,
  };
}

function reachableFrom(
  procfs: string,
  base: PartitionCpus | null,
  threadsFile: string,
): PartitionCpus | null {
  return withAffinity(base, readThreadsCpus(procfs, readThreadIds(threadsFile)), threadsFile);
}
