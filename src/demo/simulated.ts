// `weir demo` without root: the same scenario on simulated partitions (src/sim), driven by the
// same Manager and policy in real time, so the view and dashboard look like the real thing.

import { createApi } from "../api/app.ts";
import { serveApi } from "../api/server.ts";
import type { CycleRecord } from "../core/model.ts";
import { parseConfig } from "../manager/config.ts";
import { buildManager } from "../manager/wiring.ts";
import { hostCpuFromSamples } from "../sensors/host-cpu.ts";
import { type SimPartitionHandle, SimWorld } from "../sim/world.ts";
import type { DemoOptions } from "./real.ts";
import { startView } from "./real.ts";
import {
  type AllocationPoint,
  allocationPoint,
  type DemoSummary,
  demoPlan,
  demoRate,
  summarisePhases,
} from "./scenario.ts";

export async function runSimulatedDemo(o: DemoOptions): Promise<DemoSummary> {
  const names = Array.from({ length: o.partitions }, (_, i) => `p${i + 1}`);
  const plan = demoPlan(names, o.durationMs, o.highPps, o.lowPps);
  const world = new SimWorld({ cpus: 2, tickMs: 1, seed: 7 });
  const handles: SimPartitionHandle[] = names.map((name) =>
    world.addNetwork(name, {
      load: (tMs) => demoRate(plan, name, tMs),
      velocityPacketsPerCpuSec: 3500,
      ownLatency: true,
    }),
  );
  if (o.hog) world.addBatch("hog");
  const cfg = parseConfig({
    capacity: { cpus: 2, reserve: "300m" },
    partitions: [
      ...names.map((name) => ({
        name,
        cgroup: name,
        interfaces: ["sim"],
        min: "100m",
        importance: 2,
      })),
      ...(o.hog ? [{ name: "hog", kind: "batch", cgroup: "hog", importance: 5 }] : []),
    ],
  });
  const { manager, capacityCpuMillis: capacity } = buildManager(cfg, {
    now: world.now,
    timer: () => performance.now(),
    onlineCpus: world.hypervisor.cpus,
    // the simulated machine stands in for the host's cgroups, counters and /proc/stat
    actuators: { cgroup: world.hypervisor },
    openSensor: (p) => world.sensor(p.name),
    hostCpu: { open: () => world.hostCpuSensor(), use: hostCpuFromSamples },
    redactedConfig: () => ({ simulated: true, ...cfg }),
  });
  const specs = manager.specs();
  const api = await serveApi(createApi({ view: manager }), {
    host: "127.0.0.1",
    port: o.apiPort,
  }).catch(() => null);
  const points: AllocationPoint[] = [];
  const cycleMs: number[] = [];
  let last: CycleRecord | undefined;
  const lastSecond: CycleRecord[] = [];
  const batchIds = new Set(specs.flatMap((s) => (s.kind === "batch" ? [s.id] : [])));
  manager.subscribe((r) => {
    last = r;
    lastSecond.push(r);
    while (lastSecond.length > 0 && r.startedAtMs - lastSecond[0]!.startedAtMs >= 1000)
      lastSecond.shift();
    points.push(allocationPoint(r, 0, batchIds));
    cycleMs.push(r.timingsMs.total);
  });
  // Per phase: packets and p99 from each partition's own histogram, reset at phase ends.
  const phaseStats = new Map<
    string,
    Map<string, { offered: number; served: number; p99Ms: number | null }>
  >();
  const counts = () =>
    new Map(
      handles.map((h) => [
        h.id,
        { offered: h.counters.offeredPackets, served: h.counters.servedPackets },
      ]),
    );
  let phaseStart = counts();
  let phaseIdx = 0;
  const closePhase = () => {
    const ph = plan.phases[phaseIdx]!;
    const now = counts();
    const m = new Map<string, { offered: number; served: number; p99Ms: number | null }>();
    for (const h of handles) {
      const a = phaseStart.get(h.id)!;
      const b = now.get(h.id)!;
      const hist = h.latencyUs;
      m.set(h.id, {
        offered: Math.round(b.offered - a.offered),
        served: Math.round(b.served - a.served),
        p99Ms: hist && hist.totalCount > 0 ? hist.getValueAtPercentile(99) / 1000 : null,
      });
      hist?.reset();
    }
    phaseStats.set(ph.name, m);
    phaseStart = now;
    phaseIdx++;
  };
  const stopView = startView(
    o,
    "simulated",
    plan,
    () => world.nowMs(),
    () => last,
    api?.url ?? null,
    () => lastSecond,
    batchIds,
  );
  // Real time: advance the world by one interval, run one cycle, wait for the next tick.
  await new Promise<void>((resolve) => {
    const t0 = performance.now();
    let cycles = 0;
    const tick = () => {
      if (o.signal.aborted || world.nowMs() >= o.durationMs) {
        resolve();
        return;
      }
      world.advance(cfg.intervalMs);
      manager.runCycle();
      cycles++;
      while (phaseIdx < plan.phases.length && world.nowMs() >= plan.phases[phaseIdx]!.toMs)
        closePhase();
      setTimeout(tick, Math.max(0, t0 + cycles * cfg.intervalMs - performance.now()));
    };
    tick();
  });
  while (phaseIdx < plan.phases.length) closePhase();
  stopView();
  await api?.close();
  return {
    mode: "simulated",
    durationMs: Math.min(o.durationMs, world.nowMs()),
    intervalMs: cfg.intervalMs,
    capacityCpuMillis: capacity,
    ...summarisePhases(plan, points, cycleMs, (ph) =>
      names.map((n) => {
        const s = phaseStats.get(ph.name)?.get(n);
        return {
          partition: n,
          offered: s?.offered ?? 0,
          served: s?.served ?? 0,
          servedRatio: s && s.offered > 0 ? s.served / s.offered : null,
          p99Ms: s?.p99Ms ?? null,
        };
      }),
    ),
    notes: [
      "SIMULATED: not root (or no network namespaces / cgroup cpu controller), so the scenario ran on weir's simulator: virtual partitions with CFS bandwidth semantics, driven by the real manager and policy. Run as root for real partitions.",
    ],
  };
}
