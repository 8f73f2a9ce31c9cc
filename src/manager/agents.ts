// Agent reports for the manager: open the configured transports (UDP datagrams, shared-memory
// slot table) with every agent partition's key, merge what they carry, and count rejections.
import type { PartitionId } from "../core/model.ts";
import { KeyRing, parseKeyHex, type RejectCounts } from "../transport/codec.ts";
import type { AgentReport, ReportSource } from "../transport/source.ts";
import type { Config } from "./config.ts";
import type { AgentReports } from "./manager-options.ts";

/** Partition index on the wire (and slot number): agent.index, else its place in the list. */
export const agentIndexOf = (cfg: Config, name: string): number => {
  const i = cfg.partitions.findIndex((p) => p.name === name);
  return cfg.partitions[i]?.agent?.index ?? i;
};

export function agentKeyRing(cfg: Config): KeyRing {
  return new KeyRing(
    cfg.partitions
      .filter((p) => p.agent)
      .map((p) => ({
        index: agentIndexOf(cfg, p.name),
        id: p.name,
        key: parseKeyHex(p.agent!.key),
      })),
  );
}

export interface AgentTransports extends AgentReports {
  sources: ReportSource[];
  /** Rejections summed over every transport, by reason. */
  rejected(): Record<string, number>;
  /** Reports verified and accepted, summed over every transport. */
  accepted(): number;
  start(signal: AbortSignal): Promise<void>;
  close(): void;
}

export async function openAgentTransports(
  cfg: Config,
  now: () => number,
): Promise<AgentTransports | null> {
  if (!cfg.transport || !cfg.partitions.some((p) => p.agent)) return null;
  const keys = agentKeyRing(cfg);
  const sources: ReportSource[] = [];
  const common = { keys, staleAfterMs: cfg.staleAfterMs, now };
  // Each transport's module is loaded only when configured: shared memory loads koffi (a
  // native addon), which a manager fed over UDP alone does not need.
  if (cfg.transport.udp) {
    const { DatagramReportSource } = await import("../transport/datagram.ts");
    const i = cfg.transport.udp.listen.lastIndexOf(":");
    sources.push(
      await DatagramReportSource.open({
        ...common,
        directiveRefreshMs: cfg.transport.udp.directiveRefreshMs,
        bind: {
          address: cfg.transport.udp.listen.slice(0, i),
          port: Number(cfg.transport.udp.listen.slice(i + 1)),
        },
      }),
    );
  }
  if (cfg.transport.shm) {
    const { ShmReportSource } = await import("../transport/shm-source.ts");
    sources.push(
      new ShmReportSource({
        ...common,
        path: cfg.transport.shm.path,
        slotCount: cfg.transport.shm.slots,
      }),
    );
  }
  return {
    sources,
    latest() {
      if (sources.length === 1) return sources[0]!.latest();
      // newest accepted report per partition across transports
      const out = new Map<PartitionId, AgentReport>();
      for (const s of sources)
        for (const [id, r] of s.latest()) {
          const have = out.get(id);
          if (!have || r.sample.atMs > have.sample.atMs) out.set(id, r);
        }
      return out;
    },
    sendDirective(partition, directive) {
      for (const s of sources) s.sendDirective(partition, directive);
    },
    rejected() {
      const sum: Record<string, number> = {};
      for (const s of sources)
        for (const [k, v] of Object.entries(s.rejected() as RejectCounts))
          sum[k] = (sum[k] ?? 0) + v;
      return sum;
    },
    accepted: () => sources.reduce((n, s) => n + s.accepted(), 0),
    async start(signal) {
      await Promise.all(sources.map((s) => s.start(signal)));
    },
    close() {
      for (const s of sources) s.close();
    },
  };
}
