// `weir demo` on real partitions: the testbed (netns + veth + cgroup + packet server per
// partition, a batch hog; or, with hostNetwork, cgroup + server on 127.0.0.1 counted by
// eBPF), the real manager writing real cgroups, real UDP load.
import { mkdirSync } from "node:fs";
import pino from "pino";
import type { CycleRecord } from "../core/model.ts";
import { parseConfig } from "../manager/config.ts";
import { startManager } from "../service/run.ts";
import { runLoad } from "../testbed/load.ts";
import { testbedDown, testbedUp } from "../testbed/testbed.ts";
import {
  type AllocationPoint,
  allocationPoint,
  type DemoPlan,
  type DemoSummary,
  demoPlan,
  demoTrace,
  meanWorkConservation,
  summarisePhases,
} from "./scenario.ts";
import { renderLive } from "./view.ts";

export interface DemoOptions {
  durationMs: number;
  partitions: number;
  hog: boolean;
  highPps: number;
  lowPps: number;
  /**
   * Partitions on the host network (no netns, no veth): servers on 127.0.0.1 ports, each in
   * its cgroup, counted by eBPF programs on that cgroup (`packets: bpf`). Real mode only.
   */
  hostNetwork?: boolean;
  /** HTTP API port on 127.0.0.1 (0: any free port). */
  apiPort: number;
  /** Live view on stdout (a terminal), progress lines otherwise, nothing with json. */
  output: "live" | "lines" | "none";
  signal: AbortSignal;
  write: (text: string) => void;
}

const PREFIX = "weirdemo";
/** SHA-256 rounds per request in the demo's packet servers. */
export const DEMO_COST_ROUNDS = 40;
const LOG_DIR = "/run/weir";

/** Drive the live view / progress lines from cycle records; returns a stop function. */
export function startView(
  o: DemoOptions,
  mode: "real" | "simulated",
  plan: DemoPlan,
  elapsedMs: () => number,
  latest: () => CycleRecord | undefined,
  dashboardUrl: string | null,
  /** The last second's records and which partitions are batch: host idle and batch share. */
  recent: () => readonly CycleRecord[] = () => [],
  batchIds: ReadonlySet<string> = new Set(),
): () => void {
  if (o.output === "none") return () => {};
  const live = o.output === "live";
  const timer = setInterval(
    () => {
      const t = elapsedMs();
      const phase = plan.phases.find((p) => t >= p.fromMs && t < p.toMs)?.name ?? "ending";
      const text = renderLive(
        {
          mode,
          ...(o.hostNetwork && mode === "real" ? { hostNetwork: true } : {}),
          elapsedMs: t,
          durationMs: plan.durationMs,
          phase,
          dashboardUrl,
          workConservation: meanWorkConservation(recent(), batchIds),
        },
        latest(),
        process.stdout.columns ?? 120,
      );
      o.write(live ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    },
    live ? 500 : 5000,
  );
  return () => clearInterval(timer);
}

export async function runRealDemo(o: DemoOptions): Promise<DemoSummary> {
  const names = Array.from({ length: o.partitions }, (_, i) => `p${i + 1}`);
  const plan = demoPlan(names, o.durationMs, o.highPps, o.lowPps);
  const notes: string[] = [];
  mkdirSync(LOG_DIR, { recursive: true });
  const say = (line: string) => {
    if (o.output !== "none") o.write(`${line}\n`);
  };
  const host = o.hostNetwork === true;
  say(
    `setting up ${o.partitions} network partitions${o.hog ? " and a batch hog" : ""} (${host ? "host network: cgroup + packet server on 127.0.0.1, counted by eBPF" : "netns + veth in 198.18.0.0/15 + cgroup + packet server"}) ...`,
  );
  const tb = await testbedUp({
    prefix: host ? `${PREFIX}h` : PREFIX,
    hostNetwork: host,
    partitions: names.map((name) => ({ name })),
    hogs: o.hog ? [{ name: "hog", cpus: 2 }] : [],
    // ~0.2-0.3 ms of CPU per request here (createHash ~5 us a round): 2,500 pps needs ~0.7 CPU
    costRounds: DEMO_COST_ROUNDS,
    maxLifetimeMs: o.durationMs + 5 * 60_000,
    log: (l) => say(`  ${l}`),
  });
  const managerAc = new AbortController();
  let running: Awaited<ReturnType<typeof startManager>> | null = null;
  let stopView = () => {};
  try {
    const cfg = parseConfig({
      intervalMs: 100,
      capacity: { cpus: "auto", reserve: "300m" },
      onShutdown: "restore",
      api: { listen: `127.0.0.1:${o.apiPort}` },
      partitions: [
        ...tb.partitions.map((p) => ({
          name: p.name,
          cgroup: p.cgroup,
          ...(p.hostNetwork
            ? { packets: "bpf" }
            : {
                interfaces: [{ name: p.hostIf, offered: "tx", served: "rx" }],
                ...(p.serverPid ? { pid: p.serverPid } : {}),
              }),
          min: "100m",
          importance: 2,
        })),
        ...tb.hogs.map((h) => ({ name: h.name, kind: "batch", cgroup: h.cgroup, importance: 5 })),
      ],
    });
    const logFile = `${LOG_DIR}/demo-manager.log`;
    const logger = pino(
      { level: "info", base: undefined },
      pino.destination({ dest: logFile, sync: false, mkdir: true }),
    );
    running = await startManager({ cfg, logger, signal: managerAc.signal });
    const manager = running.manager;
    const dashboardUrl = running.api?.url ?? null;
    say(`manager running (log: ${logFile})${dashboardUrl ? `; dashboard: ${dashboardUrl}/` : ""}`);
    // whether the default placement (auto) placed the servers here, and why, as the log says
    const placement = manager.placementDecision();
    if (placement?.why) notes.push(placement.why);
    const points: AllocationPoint[] = [];
    let last: CycleRecord | undefined;
    const lastSecond: CycleRecord[] = [];
    const cycleMs: number[] = [];
    const startMs = performance.timeOrigin + performance.now();
    const batchIds = new Set(manager.specs().flatMap((s) => (s.kind === "batch" ? [s.id] : [])));
    manager.subscribe((r) => {
      last = r;
      lastSecond.push(r);
      while (lastSecond.length > 0 && r.startedAtMs - lastSecond[0]!.startedAtMs >= 1000)
        lastSecond.shift();
      points.push(allocationPoint(r, startMs, batchIds));
      cycleMs.push(r.timingsMs.total);
    });
    stopView = startView(
      o,
      "real",
      plan,
      () => performance.timeOrigin + performance.now() - startMs,
      () => last,
      dashboardUrl,
      () => lastSecond,
      batchIds,
    );
    const maxPackets =
      Math.ceil((o.highPps + o.lowPps * names.length) * (o.durationMs / 1000) * 1.2) + 1000;
    const load = await runLoad({
      targets: tb.partitions.map((p) => ({
        name: p.name,
        addr: p.nsAddr,
        port: p.port,
        schedule: { kind: "trace", points: demoTrace(plan, p.name), interpolate: "step" },
      })),
      durationMs: o.durationMs,
      maxPackets,
      signal: o.signal,
      phases: plan.phases.map((ph) => ({ name: ph.name, fromMs: ph.fromMs, toMs: ph.toMs })),
    });
    stopView();
    if (load.stoppedBy === "signal")
      notes.push("stopped early by a signal: the last phases are partial");
    return {
      mode: "real",
      ...(host ? { hostNetwork: true } : {}),
      durationMs: load.sendingMs,
      intervalMs: cfg.intervalMs,
      capacityCpuMillis: manager.recentRecords().at(-1)?.capacityCpuMillis ?? 0,
      ...summarisePhases(plan, points, cycleMs, (ph) =>
        load.targets.map((t) => {
          const s = t.phases.find((x) => x.name === ph.name);
          return {
            partition: t.name,
            offered: s?.sent ?? 0,
            served: s?.answered ?? 0,
            servedRatio: s?.servedRatio ?? null,
            p99Ms: s?.latency.p99Ms ?? null,
          };
        }),
      ),
      loadGenerator: {
        cpuCores: load.generator.cpuCores,
        cpuMicrosPer1000Packets: load.generator.cpuMicrosPer1000Packets,
      },
      notes,
    };
  } finally {
    stopView();
    managerAc.abort();
    await running?.done.catch(() => {});
    const down = await testbedDown(tb.stateFile);
    say(
      `testbed removed (${JSON.stringify(down).length > 0 ? "namespaces, links, cgroups and processes it created" : ""})`,
    );
  }
}
