// The simulated machine: a virtual clock, the CFS hypervisor, the shared cost drift and the
// partitions, advanced tick by tick. Nothing here reads the wall clock.
import { build, type Histogram } from "hdr-histogram-js";
import {
  type HostCpuSample,
  type HostCpuSensor,
  type PartitionSensor,
  PROC_STAT_TICKS_PER_SEC,
} from "../sensors/types.ts";
import { CostDrift, type DriftOptions } from "./drift.ts";
import { SimHypervisor } from "./hypervisor.ts";
import type { LoadSchedule } from "./load.ts";
import {
  BatchWorkload,
  NetworkWorkload,
  type PacketCounters,
  SimPartitionSensor,
} from "./partition.ts";
import { createRng } from "./rng.ts";

export interface SimWorldOptions {
  /** CPUs of the simulated machine (default 2, like this host). */
  cpus?: number;
  /** cpu.cfs_period_us of every cgroup (default 100000). */
  periodUsec?: number;
  /** Simulation tick, ms (default 1). Coarser ticks run faster and blur latency to the tick. */
  tickMs?: number;
  /**
   * Seed of arrivals (drift has its own seed in `drift`). Each network partition draws from its
   * own stream (the seed and its id), so a partition's arrivals are the same whichever partitions
   * run beside it: the clairvoyant bound (bound.ts) replays each one alone.
   */
  seed?: number;
  drift?: Partial<DriftOptions>;
  /** Longest wake-up wait behind a same-class CPU hog (default: the kernel's base slice; 0 = off). */
  wakeupWaitMaxNs?: number;
}

export interface NetworkPartitionOptions {
  load: LoadSchedule;
  velocityPacketsPerCpuSec?: number;
  queuePackets?: number;
  /** Threads that can serve at once (default: all CPUs). */
  parallelism?: number;
  /** Keep a latency histogram for this partition alone too (small runs). */
  ownLatency?: boolean;
}

export interface SimPartitionHandle {
  id: string;
  kind: "network" | "batch";
  counters: PacketCounters;
  /** Set for network partitions. */
  network?: NetworkWorkload;
  batch?: BatchWorkload;
  /** Latency of this partition alone (µs), when asked for. */
  latencyUs?: Histogram;
}

export const newLatencyHistogram = (): Histogram =>
  build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });

/** The seed of partition `id`'s arrivals: FNV-1a of the id, mixed with the world's seed. */
export function arrivalSeed(seed: number, id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
}

export class SimWorld {
  readonly hypervisor: SimHypervisor;
  readonly drift: CostDrift;
  readonly tickMs: number;
  /** Latency of every served packet of every network partition, microseconds. */
  readonly latencyUs: Histogram;
  private readonly seed: number;
  private readonly partitions = new Map<string, SimPartitionHandle>();
  private readonly networks: NetworkWorkload[] = [];

  constructor(opts: SimWorldOptions = {}) {
    const seed = opts.seed ?? 1;
    this.hypervisor = new SimHypervisor({
      cpus: opts.cpus ?? 2,
      ...(opts.periodUsec === undefined ? {} : { periodUsec: opts.periodUsec }),
      ...(opts.wakeupWaitMaxNs === undefined ? {} : { wakeupWaitMaxNs: opts.wakeupWaitMaxNs }),
      // Its own stream, so wake-up waits do not shift the arrivals of the same seed.
      rng: createRng(seed ^ 0x5a17),
    });
    this.tickMs = opts.tickMs ?? 1;
    if (!(this.tickMs > 0)) throw new RangeError(`tickMs must be > 0: got ${this.tickMs}`);
    this.seed = seed;
    this.drift = new CostDrift(opts.drift);
    this.latencyUs = newLatencyHistogram();
  }

  /** Virtual time, ms. */
  nowMs(): number {
    return this.hypervisor.now() / 1e6;
  }

  /** A clock function for the manager: `{ now: world.now }`. */
  readonly now = (): number => this.nowMs();

  addNetwork(id: string, opts: NetworkPartitionOptions): SimPartitionHandle {
    const own = opts.ownLatency ? newLatencyHistogram() : undefined;
    const w = new NetworkWorkload({
      load: opts.load,
      velocityPacketsPerCpuSec: opts.velocityPacketsPerCpuSec ?? 3500,
      queuePackets: opts.queuePackets ?? 1000,
      drift: this.drift,
      rng: createRng(arrivalSeed(this.seed, id)),
      latencyUs: own ? [this.latencyUs, own] : [this.latencyUs],
    });
    this.hypervisor.createCgroup(id, w, opts.parallelism ?? this.hypervisor.cpus);
    const h: SimPartitionHandle = { id, kind: "network", counters: w, network: w };
    if (own) h.latencyUs = own;
    this.partitions.set(id, h);
    this.networks.push(w);
    return h;
  }

  addBatch(id: string, opts: { parallelism?: number } = {}): SimPartitionHandle {
    const w = new BatchWorkload();
    this.hypervisor.createCgroup(id, w, opts.parallelism ?? this.hypervisor.cpus);
    const h: SimPartitionHandle = { id, kind: "batch", counters: w, batch: w };
    this.partitions.set(id, h);
    return h;
  }

  partition(id: string): SimPartitionHandle {
    const h = this.partitions.get(id);
    if (!h) throw new Error(`no sim partition ${id}`);
    return h;
  }

  handles(): SimPartitionHandle[] {
    return [...this.partitions.values()];
  }

  /** A sensor over partition `id` (its cgroup is named after it). */
  sensor(id: string): PartitionSensor {
    return new SimPartitionSensor(this.hypervisor, id, this.partition(id).counters);
  }

  /**
   * The simulated machine as /proc/stat would show it: CPU time of every cgroup is user time,
   * the rest of `cpus` × elapsed is idle, both in whole USER_HZ ticks like the kernel's.
   */
  hostCpuSensor(): HostCpuSensor {
    const hv = this.hypervisor;
    const nsPerTick = 1e9 / PROC_STAT_TICKS_PER_SEC;
    return {
      read: (nowMs: number): HostCpuSample => {
        const busyNs = hv.busyCpuNs();
        const idleNs = Math.max(0, hv.cpus * hv.now() - busyNs);
        return {
          atMs: nowMs,
          cpus: hv.cpus,
          ticks: {
            userTicks: Math.floor(busyNs / nsPerTick),
            niceTicks: 0,
            systemTicks: 0,
            idleTicks: Math.floor(idleNs / nsPerTick),
            iowaitTicks: 0,
            irqTicks: 0,
            softirqTicks: 0,
            stealTicks: 0,
          },
        };
      },
      close: () => {},
    };
  }

  /** Run whole ticks until virtual time has moved by `ms`. */
  advance(ms: number): void {
    const ticks = Math.round(ms / this.tickMs);
    const tickNs = this.tickMs * 1e6;
    for (let i = 0; i < ticks; i++) {
      const tNs = this.hypervisor.now();
      for (const w of this.networks) w.arrive(tNs, tickNs);
      this.hypervisor.tick(tickNs);
    }
  }
}
