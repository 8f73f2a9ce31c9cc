// vm-balance's run of one kind of partition (bench/vm-balance.ts): its manager with the cycle
// records kept, the wait for every partition's first reading, the probes that size its rates
// (src/demo/vm-rates.ts sizeRates) and the repetitions of the phases, each one's figures by
// src/demo/vm-phase.ts.
import os from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { CycleRecord } from "../src/core/model.ts";
import { demoPlan, demoRate } from "../src/demo/scenario.ts";
import { type LoadDestination, loadTarget } from "../src/demo/vm-load.ts";
import { phaseOutcome } from "../src/demo/vm-phase.ts";
import {
  type GuestLoad,
  guestLoad,
  type SizedRates,
  sizeRates,
  VM_PROBE_MS,
  VM_PROBE_SKIP_MS,
} from "../src/demo/vm-rates.ts";
import type { GuestVcpuWatch } from "../src/demo/vm-vcpus.ts";
import type { Config } from "../src/manager/config.ts";
import { startManager } from "../src/service/run.ts";
import type { BenchContext } from "./harness.ts";
import { sleep } from "./real-common.ts";
import type { Kind, PhaseRun } from "./vm-balance-summary.ts";

export const NAMES = ["p1", "p2"];
/** Every partition must be managed from its own readings within this long. */
const READY_MS = 240_000;

export interface KindResult {
  sized: SizedRates;
  reps: PhaseRun[][];
  notes: string[];
}

/** A running manager with its records; stop() stops it and restores what it wrote. */
export async function managerOf(cfg: Config, kind: Kind) {
  const logFile = join(os.tmpdir(), `weir-vm-balance-${kind}.log`);
  const logger = pino(
    { level: "info", base: undefined },
    pino.destination({ dest: logFile, sync: false, mkdir: true }),
  );
  const ac = new AbortController();
  const running = await startManager({ cfg, logger, signal: ac.signal });
  const records: CycleRecord[] = [];
  running.manager.subscribe((r) => records.push(r));
  return {
    records,
    stop: async () => {
      ac.abort();
      await running.done.catch(() => {});
    },
  };
}

/**
 * One kind's run on its running manager: wait until every partition is managed from its own
 * readings, size the rates by the probes, then the repetitions of the phases.
 */
export async function runKind(
  ctx: BenchContext,
  o: {
    kind: Kind;
    dests: LoadDestination[];
    records: readonly CycleRecord[];
    firstProbePps: number;
    watch: GuestVcpuWatch | null;
    t0: number;
    reps: number;
    phaseMs: number;
    progressFrom: number;
    signal: AbortSignal;
  },
): Promise<KindResult> {
  const notes: string[] = [];
  const say = (f: number, what: string) =>
    ctx.progress(o.progressFrom + f / 2, `${o.kind}: ${what}`);
  const readyBy = Date.now() + READY_MS;
  for (;;) {
    const r = o.records.at(-1);
    if (r && NAMES.every((n) => r.partitions.find((p) => p.id === n)?.throughput)) break;
    if (Date.now() > readyBy)
      throw new Error(`vm-balance: ${o.kind}: not every partition was read within ${READY_MS} ms`);
    await sleep(500);
  }
  const probe = async (pps: number): Promise<Array<GuestLoad | null>> => {
    say(0, `probe at ${pps} packets/s`);
    const fromAt = Date.now();
    await Promise.all(o.dests.map((d) => loadTarget(d, pps, VM_PROBE_MS, o.signal)));
    return NAMES.map((n) => guestLoad(o.records, n, fromAt + VM_PROBE_SKIP_MS, Date.now()));
  };
  const sized = await sizeRates(probe, o.firstProbePps);
  if (!sized) throw new Error(`vm-balance: ${o.kind}: the probes gave no CPU cost per packet`);
  // p1 hot, then p2 hot (demoPlan's last phase, everyone moderate, is left out)
  const plan = demoPlan(NAMES, o.phaseMs * (NAMES.length + 1), sized.highPps, sized.lowPps);
  const phases = plan.phases.filter((ph) => ph.hot !== null);
  const reps: PhaseRun[][] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    const runs: PhaseRun[] = [];
    for (const [i, ph] of phases.entries()) {
      say((rep * phases.length + i) / (o.reps * phases.length), `rep ${rep + 1} ${ph.name}`);
      const fromMs = Date.now() - o.t0;
      const pps = o.dests.map((d) => demoRate(plan, d.name, ph.fromMs));
      const loads = await Promise.all(
        o.dests.map((d, k) => loadTarget(d, pps[k]!, o.phaseMs, o.signal)),
      );
      if (loads.some((l) => l === null))
        notes.push(`${o.kind} rep ${rep + 1} "${ph.name}": a load generator failed`);
      runs.push({
        hot: ph.hot!,
        phase: phaseOutcome({
          records: o.records,
          t0: o.t0,
          name: ph.name,
          fromMs,
          toMs: Date.now() - o.t0,
          hot: ph.hot,
          partitions: o.dests.map((d, k) => ({
            name: d.name,
            offeredPps: pps[k]!,
            load: loads[k]?.targets[0] ?? null,
          })),
          vcpuSamples: o.watch?.samples ?? null,
          batch: new Set(["hog"]),
        }),
      });
    }
    reps.push(runs);
  }
  return { sized, reps, notes };
}
