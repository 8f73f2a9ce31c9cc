// The clairvoyant bound: what the best possible allocation could serve, and how fast.
//
// It knows each network partition's future offered load and cost exactly, because it replays
// them: every network partition runs alone on the whole simulated machine (same arrivals — each
// partition draws from its own seeded stream — same cost drift, same threads, same receive
// queue, no manager, no cap, nobody to share a CPU with), so each tick it gets all the CPU it
// can use. No allocation of the shared machine can give a partition more CPU in any tick, and a
// FIFO queue given at least as much service per tick serves every packet no later and drops no
// more; so on the same scenario and seed no policy serves more packets than the bound, and no
// policy that serves every packet the bound serves has a lower p99 latency (a policy that drops
// packets the bound serves is behind it on served packets already). The bound is not an
// allocation — the partitions' solo needs may together exceed the machine — so its batch figure
// is what would be left for batch partitions: capacity − the CPU the network partitions used
// alone. Checked against every policy in bound.test.ts.
import { type CpuMillis, MILLIS_PER_CPU } from "../core/units.ts";
import { type Scenario, worldOf } from "./run.ts";
import { newLatencyHistogram } from "./world.ts";

export interface BoundMeasures {
  offeredPackets: number;
  servedPackets: number;
  droppedPackets: number;
  servedFraction: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** Mean cores the network partitions used alone, summed. */
  networkCpuCores: number;
  /** Capacity left for batch partitions beside that (may be negative: needs above the machine). */
  batchCpuCoresLeft: number;
}

const VELOCITY_DEFAULT = 3500;

export function clairvoyantBound(scenario: Scenario): BoundMeasures {
  const latencyUs = newLatencyHistogram();
  let offered = 0;
  let served = 0;
  let dropped = 0;
  let cpuNs = 0;
  // The manager-driven runs last whole cycles: the same virtual time here.
  const durationMs = Math.round(scenario.durationMs / scenario.intervalMs) * scenario.intervalMs;
  for (const p of scenario.partitions) {
    if (p.kind !== "network") continue;
    const world = worldOf(scenario);
    const h = world.addNetwork(p.id, {
      load: p.load ?? (() => 0),
      velocityPacketsPerCpuSec: p.velocityPacketsPerCpuSec ?? VELOCITY_DEFAULT,
      ...(p.queuePackets === undefined ? {} : { queuePackets: p.queuePackets }),
      ...(p.parallelism === undefined ? {} : { parallelism: p.parallelism }),
    });
    world.advance(durationMs);
    offered += h.counters.offeredPackets;
    served += h.counters.servedPackets;
    dropped += h.counters.droppedPackets;
    cpuNs += world.hypervisor.stats(p.id).usageNs;
    latencyUs.add(world.latencyUs);
  }
  const networkCpuCores = cpuNs / (durationMs * 1e6);
  const capacity: CpuMillis = scenario.cpus * MILLIS_PER_CPU - scenario.reserveCpuMillis;
  return {
    offeredPackets: offered,
    servedPackets: served,
    droppedPackets: dropped,
    servedFraction: offered > 0 ? served / offered : 1,
    p50LatencyMs: latencyUs.getValueAtPercentile(50) / 1000,
    p99LatencyMs: latencyUs.getValueAtPercentile(99) / 1000,
    networkCpuCores,
    batchCpuCoresLeft: capacity / MILLIS_PER_CPU - networkCpuCores,
  };
}
