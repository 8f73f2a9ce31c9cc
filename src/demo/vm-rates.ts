// `weir demo --vm`'s rates, sized from what each guest measures it serves per vCPU (pure).
// A TCG guest's speed depends on the host's CPU model and on what else runs, so the demo
// first offers every guest two probe rates and reads, from the guests' own reports (the
// agent's served-packet counter and the guest's /proc/stat CPU), the CPU each rate used. A
// guest's CPU is a fixed part (its agent: Node under TCG) plus a cost per packet; two probes
// give both (a straight line through the two points). The hot rate is the one that needs
// VM_HOT_VCPUS vCPUs — more than one guest vCPU can serve, so weir's entitlement passes one CPU
// and the guest gets a second vCPU — and the low rate VM_LOW_VCPUS of a vCPU beyond the fixed
// part. The cost per packet falls as the rate rises (in one run here: 5.5 ms of guest CPU per
// extra packet/s from 15 to 77 packets/s, 2.1 ms from 77 to 206), so a line through two low
// rates undersizes the hot rate; a third probe at that first hot rate gives the line near it
// (`refineRates`).
import type { CycleRecord, PartitionId } from "../core/model.ts";

/** The first probe's rate, packets/s: low enough for one vCPU of any TCG guest to serve. */
export const VM_PROBE_PPS = 15;
/** The hot rate needs this many vCPUs (fixed part included). */
export const VM_HOT_VCPUS = 1.25;
/** The low rate needs this much of a vCPU beyond the fixed part. */
export const VM_LOW_VCPUS = 0.1;
/** How long each probe offers its rate to every partition. */
export const VM_PROBE_MS = 14_000;
/** A probe's first seconds (the agent's first windows, the manager's smoothing) are not read. */
export const VM_PROBE_SKIP_MS = 4_000;
/** Windows with less guest CPU than this (cores) say nothing about its speed. */
const MIN_CPU_CORES = 0.02;

/** What a guest served and the CPU it used over some window (its own reports). */
export interface GuestLoad {
  servedPps: number;
  cpuCores: number;
}

/**
 * Served packets/s and CPU (cores) of a guest, averaged over the records that started within
 * [fromMs, toMs), from its agent's reports. Null when it reported no such window.
 */
export function guestLoad(
  records: readonly CycleRecord[],
  partition: PartitionId,
  fromMs: number,
  toMs: number,
): GuestLoad | null {
  let served = 0;
  let cpuSec = 0;
  let sec = 0;
  for (const r of records) {
    if (r.startedAtMs < fromMs || r.startedAtMs >= toMs) continue;
    const t = r.partitions.find((p) => p.id === partition)?.throughput;
    if (!t || t.cpuCores < MIN_CPU_CORES || t.windowMs <= 0) continue;
    served += (t.servedPacketsPerSec * t.windowMs) / 1000;
    cpuSec += (t.cpuCores * t.windowMs) / 1000;
    sec += t.windowMs / 1000;
  }
  return sec > 0 && served > 0 ? { servedPps: served / sec, cpuCores: cpuSec / sec } : null;
}

/**
 * The second probe's rate: what the slowest guest served per CPU-second at the first. One
 * vCPU serves it (CPU = fixed + cost × rate stays within one CPU whenever the first probe
 * did), and it is far enough from the first for the cost per packet to show.
 */
export function secondProbePps(
  first: ReadonlyArray<GuestLoad | null>,
  firstPps = VM_PROBE_PPS,
): number | null {
  const v = first.flatMap((g) => (g && g.cpuCores > 0 ? [g.servedPps / g.cpuCores] : []));
  return v.length ? Math.max(firstPps + 1, Math.floor(Math.min(...v))) : null;
}

export interface VmRates {
  highPps: number;
  lowPps: number;
  /** Packets one vCPU serves beyond the fixed part (1 ÷ cost per packet). */
  perVcpuPps: number;
  /** The fixed part of a guest's CPU (its agent, its kernel), cores. */
  fixedCpuCores: number;
}

/** Rates from two probes of the same guests; null when they do not give a cost per packet. */
function ratesOf(a: GuestLoad | null, b: GuestLoad | null): VmRates | null {
  if (!a || !b || b.servedPps - a.servedPps <= 0) return null;
  const costCpuPerPacket = (b.cpuCores - a.cpuCores) / (b.servedPps - a.servedPps);
  if (!(costCpuPerPacket > 0)) return null;
  const fixed = Math.max(0, a.cpuCores - costCpuPerPacket * a.servedPps);
  if (fixed >= VM_HOT_VCPUS) return null;
  return {
    highPps: Math.max(1, Math.round((VM_HOT_VCPUS - fixed) / costCpuPerPacket)),
    lowPps: Math.max(1, Math.round(VM_LOW_VCPUS / costCpuPerPacket)),
    perVcpuPps: 1 / costCpuPerPacket,
    fixedCpuCores: fixed,
  };
}

/**
 * The demo's rates from the guests' two probes. The guests are alike (same kernel, server,
 * load and host), so their probes are pooled: the mean of the first probes and of the second
 * give one line, fixed CPU + cost × rate. Null when that shows no positive cost per packet
 * (then the caller asks for the rates).
 */
export function vmDemoRates(
  probes: ReadonlyArray<{ first: GuestLoad | null; second: GuestLoad | null }>,
): VmRates | null {
  const meanOf = (xs: Array<GuestLoad | null>): GuestLoad | null => {
    const known = xs.filter((x): x is GuestLoad => x !== null);
    if (known.length === 0) return null;
    return {
      servedPps: known.reduce((s, x) => s + x.servedPps, 0) / known.length,
      cpuCores: known.reduce((s, x) => s + x.cpuCores, 0) / known.length,
    };
  };
  // only guests with both probes, so both means are over the same guests
  const both = probes.filter((p) => p.first !== null && p.second !== null);
  return ratesOf(meanOf(both.map((p) => p.first)), meanOf(both.map((p) => p.second)));
}

/** A refined hot rate stays within this factor of the first estimate (a bound on probe noise). */
export const VM_REFINE_MAX_FACTOR = 4;

/**
 * The rates again from the line through the second probe and a third one offered at the first
 * estimate's hot rate (the cost per packet near the hot rate). The hot rate stays within
 * VM_REFINE_MAX_FACTOR of the first estimate; the first estimate stands when the two probes
 * give no cost per packet.
 */
export function refineRates(
  first: VmRates,
  probes: ReadonlyArray<{ first: GuestLoad | null; second: GuestLoad | null }>,
): VmRates {
  const r = vmDemoRates(probes);
  if (!r) return first;
  const lo = Math.max(1, Math.round(first.highPps / VM_REFINE_MAX_FACTOR));
  const hi = Math.round(first.highPps * VM_REFINE_MAX_FACTOR);
  return { ...r, highPps: Math.min(hi, Math.max(lo, r.highPps)) };
}

/** The rates from the three probes, and the rates the probes offered (in order). */
export interface SizedRates extends VmRates {
  probePps: number[];
}

/**
 * The probe sequence: `probe(pps)` offers `pps` to every partition and returns what each
 * served and used (null: no report); first at `firstPps`, then at `secondProbePps`, a line
 * through the two (`vmDemoRates`), then a third probe at that line's hot rate and the line
 * through the second and third (`refineRates`). `weir demo --vm` runs it on guests at
 * VM_PROBE_PPS; `weir bench vm-balance` on guests and on cgroup partitions alike, each at its
 * own first rate. Null when the first two probes give no cost per packet.
 */
export async function sizeRates(
  probe: (pps: number) => Promise<ReadonlyArray<GuestLoad | null>>,
  firstPps = VM_PROBE_PPS,
): Promise<SizedRates | null> {
  const first = await probe(firstPps);
  const secondPps = secondProbePps(first, firstPps);
  if (secondPps === null) return null;
  const second = await probe(secondPps);
  const firstSized = vmDemoRates(
    first.map((f, i) => ({ first: f ?? null, second: second[i] ?? null })),
  );
  if (!firstSized) return null;
  const third = await probe(firstSized.highPps);
  const sized = refineRates(
    firstSized,
    second.map((f, i) => ({ first: f ?? null, second: third[i] ?? null })),
  );
  return { ...sized, probePps: [firstPps, secondPps, firstSized.highPps] };
}
