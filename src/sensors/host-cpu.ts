// The host's CPU as a whole: /proc/stat's `cpu` line on a held descriptor, parsed by a pure
// function, and two readings turned into idle fraction, busy cores and steal over the window.
// This is what shows whether CPU that one partition does not use flows to the others (work
// conservation) or is left idle.
import path from "node:path";
import type { HostCpuUse } from "../core/model.ts";
import { counterDelta } from "../core/units.ts";
import { HeldFile } from "./held-file.ts";
import { malformed } from "./parse.ts";
import type { HostCpuSample, HostCpuSensor, HostCpuTicks } from "./types.ts";

/** The `cpu` line's fields in the kernel's order (fs/proc/stat.c); guest and guest_nice follow. */
const FIELDS = [
  "userTicks",
  "niceTicks",
  "systemTicks",
  "idleTicks",
  "iowaitTicks",
  "irqTicks",
  "softirqTicks",
  "stealTicks",
] as const satisfies ReadonlyArray<keyof HostCpuTicks>;

/**
 * Parses /proc/stat: the aggregate `cpu` line (first line, `cpu  user nice system idle iowait
 * irq softirq steal guest guest_nice`, USER_HZ ticks) and the number of `cpuN` lines after it
 * (online CPUs). The first 8 fields are required (steal exists since Linux 2.6.11); guest and
 * guest_nice are ignored because the kernel already counts them inside user and nice.
 */
export function parseProcStatCpu(
  text: string,
  filePath: string,
): { cpus: number; ticks: HostCpuTicks } {
  let eol = text.indexOf("\n");
  if (eol < 0) eol = text.length;
  const first = text.slice(0, eol);
  const words = first.split(" ").filter((w) => w !== "");
  if (words[0] !== "cpu")
    throw malformed(filePath, 'first line is not the aggregate "cpu" line', first);
  if (words.length < 1 + FIELDS.length)
    throw malformed(
      filePath,
      `"cpu" line has ${words.length - 1} fields, expected at least ${FIELDS.length} (user nice system idle iowait irq softirq steal)`,
      first,
    );
  const ticks = {} as HostCpuTicks;
  for (const [i, name] of FIELDS.entries()) {
    const w = words[i + 1]!;
    if (!/^\d+$/.test(w))
      throw malformed(filePath, `"cpu" field ${i + 1} (${name}) is not an unsigned integer`, first);
    ticks[name] = Number(w);
  }
  let cpus = 0;
  let pos = eol + 1;
  while (pos < text.length && text.startsWith("cpu", pos)) {
    const c = text.charCodeAt(pos + 3);
    if (c < 48 || c > 57) break;
    cpus++;
    const next = text.indexOf("\n", pos);
    if (next < 0) break;
    pos = next + 1;
  }
  if (cpus === 0) throw malformed(filePath, 'no "cpuN" lines after the "cpu" line', text);
  return { cpus, ticks };
}

/** /proc/stat held open and re-read at offset 0 (a seq_file: each pread at 0 regenerates it). */
export class HeldHostCpu implements HostCpuSensor {
  private readonly file: HeldFile;

  /** Opens `<procfs>/stat` now; throws COUNTER_UNREADABLE when it cannot. */
  constructor(procfs: string) {
    // 2-CPU host: ~1.1 KB; the `intr` line grows with interrupt lines and CPUs.
    this.file = new HeldFile(path.join(procfs, "stat"), { sizeHint: 8192, reopenOnStale: true });
  }

  read(nowMs: number): HostCpuSample {
    const { cpus, ticks } = parseProcStatCpu(this.file.read(), this.file.path);
    return { atMs: nowMs, cpus, ticks };
  }

  close(): void {
    this.file.close();
  }
}

/**
 * The host's CPU over the window between two readings. Every field's delta is a counter delta
 * (a field that went backwards — iowait can, on NO_HZ kernels — counts 0). Of all CPU time in
 * the window (the sum of the 8 fields' deltas): idle = idle + iowait, steal = steal, busy = the
 * rest, as cores of `next.cpus`. Using the window's own tick total instead of wall time makes
 * it independent of USER_HZ and of when exactly the reads happened. Null when no tick elapsed
 * (a window shorter than 1/USER_HZ per CPU).
 */
export function hostCpuFromSamples(prev: HostCpuSample, next: HostCpuSample): HostCpuUse | null {
  const d = {} as HostCpuTicks;
  let total = 0;
  for (const name of FIELDS) {
    d[name] = counterDelta(prev.ticks[name], next.ticks[name]);
    total += d[name];
  }
  if (total <= 0) return null;
  const busy = d.userTicks + d.niceTicks + d.systemTicks + d.irqTicks + d.softirqTicks;
  return {
    cpus: next.cpus,
    idleFraction: (d.idleTicks + d.iowaitTicks) / total,
    busyCores: (busy / total) * next.cpus,
    stealFraction: d.stealTicks / total,
  };
}
