// The demo's live terminal view: one line per partition from the latest cycle record. Pure.
import type { CycleRecord } from "../core/model.ts";
import { formatWorkConservation, type WorkConservation } from "./scenario.ts";

const fmt = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || !Number.isFinite(x)
    ? "-"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

export interface LiveHeader {
  mode: "real" | "simulated";
  /** Real partitions on the host network, counted by eBPF. */
  hostNetwork?: boolean;
  elapsedMs: number;
  durationMs: number;
  phase: string;
  dashboardUrl: string | null;
  /** Host idle CPU and batch share, averaged over the last second of cycles. */
  workConservation?: WorkConservation;
}

export function renderLive(h: LiveHeader, r: CycleRecord | undefined, width = 120): string {
  const lines: string[] = [];
  lines.push(
    `weir demo — ${h.mode === "real" ? (h.hostNetwork ? "real partitions on the host network (cgroup + eBPF counters) on this host" : "real partitions (netns + veth + cgroup) on this host") : "SIMULATED partitions (not root: no namespaces or cgroups)"}`,
  );
  lines.push(
    `t = ${(h.elapsedMs / 1000).toFixed(1)} / ${(h.durationMs / 1000).toFixed(0)} s   phase: ${h.phase}${h.dashboardUrl ? `   dashboard: ${h.dashboardUrl}/` : ""}   Ctrl-C stops and cleans up`,
  );
  lines.push("");
  lines.push(
    `${"partition".padEnd(10)} ${"offered/s".padStart(9)} ${"served/s".padStart(9)} ${"drops/s".padStart(8)} ${"CPU used".padStart(9)} ${"alloc".padStart(7)} ${"velocity".padStart(9)}  why`,
  );
  if (!r) {
    lines.push("(waiting for the first cycle)");
    return `${lines.join("\n")}\n`;
  }
  for (const p of r.partitions) {
    const t = p.throughput;
    const head =
      `${p.id.padEnd(10)} ${fmt(t?.offeredPacketsPerSec).padStart(9)} ${fmt(t?.servedPacketsPerSec).padStart(9)} ${fmt(t?.droppedPacketsPerSec).padStart(8)} ` +
      `${(t ? `${fmt(t.cpuCores * 1000)}m` : "-").padStart(9)} ${(p.directive ? `${p.directive.cpuMillis}m` : p.status).padStart(7)} ${fmt(p.decision?.velocityPacketsPerCpuSec).padStart(9)}  `;
    const why = p.decision?.why ?? p.error?.message ?? "";
    const room = Math.max(20, width - head.length);
    lines.push(head + (why.length > room ? `${why.slice(0, room - 1)}…` : why));
  }
  lines.push("");
  if (h.workConservation) {
    const host = r.host;
    lines.push(
      `last 1 s: ${formatWorkConservation(h.workConservation)} (${r.capacityCpuMillis}m)` +
        (host
          ? `; now ${fmt(host.busyCores, 2)} of ${host.cpus} CPUs busy, steal ${fmt(host.stealFraction * 100, 1)} %`
          : ""),
    );
  }
  lines.push(
    `cycle ${r.cycle}: sample ${r.timingsMs.sample.toFixed(2)} ms, policy ${r.timingsMs.policy.toFixed(2)} ms, apply ${r.timingsMs.apply.toFixed(2)} ms`,
  );
  return `${lines.join("\n")}\n`;
}
