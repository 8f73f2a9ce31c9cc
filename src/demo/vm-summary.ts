// `weir demo --vm`'s summary: what it holds and how it prints (pure).
import { VM_HOT_VCPUS } from "./vm-rates.ts";

export interface VmPhaseGuest {
  partition: string;
  /** The rate this guest was offered in the phase, packets/s. */
  offeredPps: number;
  offered: number;
  served: number;
  servedRatio: number | null;
  p99Ms: number | null;
  /** vCPUs the guest kernel had online: mean of 1 s samples, and the most. */
  meanVcpus: number | null;
  maxVcpus: number | null;
  meanCapCpuMillis: number | null;
}

/** A directive that raised a guest's vCPU count → its guest kernel's CPU online. */
export interface DirectiveToOnline {
  partition: string;
  cpuCount: number;
  /** ms from the directive's cycle to the console line; null when it never came online. */
  ms: number | null;
  /** When the directive was given, ms since the first phase's start. */
  atMs: number;
}

export interface VmDemoSummary {
  mode: "vm";
  durationMs: number;
  /**
   * The rates and how they were chosen: from the probes (the rates offered, and what they gave:
   * packets per vCPU beyond the fixed CPU, the fixed CPU in cores), or given (nulls, no probes).
   */
  rates: {
    highPps: number;
    lowPps: number;
    perVcpuPps: number | null;
    fixedCpuCores: number | null;
    probePps: number[];
  };
  phases: Array<{
    name: string;
    fromMs: number;
    toMs: number;
    /**
     * From the phase start until the hot guest's entitlement got 90 % of the way to where it
     * settled (src/demo/scenario.ts followMs); null without a hot guest or a move of 50m.
     */
    followMs: number | null;
    /** The batch hog's mean CPU over the phase, millicores (null without a hog). */
    hogCpuMillis: number | null;
    guests: VmPhaseGuest[];
    directiveToOnline: DirectiveToOnline[];
  }>;
  /** Every directive that raised a guest's vCPU count, all phases (and the probe before them). */
  directiveToOnlineMs: DirectiveToOnline[];
  teardown: { clean: boolean; left: string[] };
  notes: string[];
}

const pct = (f: number | null) => (f === null ? "n/a" : `${(f * 100).toFixed(1)} %`);
const num = (x: number | null, d = 1) => (x === null ? "n/a" : x.toFixed(d));

function onlineLine(ds: readonly DirectiveToOnline[]): string {
  const ms = ds.flatMap((d) => (d.ms === null ? [] : [d.ms])).sort((a, b) => a - b);
  const never = ds.length - ms.length;
  const tail = never > 0 ? ` (${never} not online by the phase's end)` : "";
  if (ms.length === 0) return ds.length ? `none online${tail}` : "no vCPU was added";
  const each = ds.map((d) => `${d.partition}→${d.cpuCount}: ${d.ms ?? "—"}`).join(", ");
  return `${ms.length} times, median ${ms[Math.floor(ms.length / 2)]} ms, range ${ms[0]}–${ms.at(-1)} ms${tail} [${each}]`;
}

export function formatVmSummary(s: VmDemoSummary): string {
  const r = s.rates;
  const lines = [
    `weir demo --vm: ${s.phases.length} phases in ${(s.durationMs / 1000).toFixed(0)} s`,
    r.perVcpuPps === null
      ? `rates: ${r.highPps} (hot) / ${r.lowPps} packets/s, as given`
      : `rates: ${r.highPps} (hot) / ${r.lowPps} packets/s, sized from probes at ${r.probePps.join(" and ")} packets/s: a guest uses ${((r.fixedCpuCores ?? 0) * 1000).toFixed(0)}m fixed + 1 vCPU per ${r.perVcpuPps.toFixed(0)} packets/s (hot needs ${VM_HOT_VCPUS} vCPUs)`,
  ];
  for (const ph of s.phases) {
    lines.push(
      `\n${ph.name} (${((ph.toMs - ph.fromMs) / 1000).toFixed(0)} s): weir followed in ${ph.followMs === null ? "n/a" : `${ph.followMs} ms`}, hog CPU ${ph.hogCpuMillis === null ? "n/a" : `${ph.hogCpuMillis}m`}`,
    );
    lines.push(
      "  guest  rate/s  offered  served  served/offered  p99 ms  vCPUs mean/max  cap (mean)",
    );
    for (const g of ph.guests)
      lines.push(
        `  ${g.partition.padEnd(5)}  ${String(g.offeredPps).padStart(6)}  ${String(g.offered).padStart(7)}  ${String(g.served).padStart(6)}  ${pct(g.servedRatio).padStart(14)}  ${num(g.p99Ms).padStart(6)}  ${`${num(g.meanVcpus, 2)}/${g.maxVcpus ?? "n/a"}`.padStart(14)}  ${g.meanCapCpuMillis === null ? "none" : `${g.meanCapCpuMillis}m`}`,
      );
    lines.push(`  directive → guest CPU online: ${onlineLine(ph.directiveToOnline)}`);
  }
  lines.push(`\ndirective → guest CPU online, all phases: ${onlineLine(s.directiveToOnlineMs)}`);
  lines.push(s.teardown.clean ? "teardown: clean" : `teardown: LEFT ${s.teardown.left.join("; ")}`);
  for (const n of s.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}
