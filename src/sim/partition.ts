// Simulated partitions: a network partition (offered load -> finite receive queue -> CPU cost
// per packet -> replies) and a batch hog (always runnable, no traffic). Each runs inside a sim
// cgroup as a Workload, and a SimPartitionSensor reads its counters exactly like the real
// sensors read a veth's and a cgroup's: cumulative, integer, monotonic.
import type { Histogram } from "hdr-histogram-js";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CounterSample } from "../core/model.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import type { Workload } from "./cgroup.ts";
import type { CostDrift } from "./drift.ts";
import type { SimHypervisor } from "./hypervisor.ts";
import type { LoadSchedule } from "./load.ts";
import type { Rng } from "./rng.ts";

/** Cumulative packet counters of a partition (what the host-side veth counters and socket drops show). */
export interface PacketCounters {
  offeredPackets: number;
  servedPackets: number;
  droppedPackets: number;
}

export interface NetworkWorkloadOptions {
  load: LoadSchedule;
  /** Packets served per CPU-second at nominal clock speed (docs/measured-facts.md: 2,600-4,700 for the SHA server). */
  velocityPacketsPerCpuSec: number;
  /** Receive queue size in packets; arrivals beyond it are dropped. */
  queuePackets: number;
  drift: CostDrift;
  rng: Rng;
  /** Where served packets' latencies go (microseconds). */
  latencyUs?: Histogram[];
}

/**
 * A request/response server: packets arrive (Poisson, at the schedule's rate), wait in a FIFO
 * receive queue of bounded size, and each costs `1e9 / velocity * drift` ns of CPU to serve.
 * Latency = reply time - arrival time, at tick resolution (arrivals are placed mid-tick).
 */
export class NetworkWorkload implements Workload, PacketCounters {
  offeredPackets = 0;
  servedPackets = 0;
  droppedPackets = 0;
  private readonly opts: NetworkWorkloadOptions;
  // FIFO of arrival batches: one entry per tick with arrivals (arrival time ns, packets left).
  private qTime = new Float64Array(16);
  private qCount = new Int32Array(16);
  private qHead = 0;
  private qLen = 0;
  private queued = 0;
  /** Progress on the head packet, in packets (< 1 while the queue is not empty). */
  private credit = 0;
  private costNs = 0;

  constructor(opts: NetworkWorkloadOptions) {
    this.opts = opts;
  }

  /** Packets waiting in the receive queue now. */
  queueLength(): number {
    return this.queued;
  }

  /** CPU cost of one packet now, ns (drift included). */
  costPerPacketNs(): number {
    return this.costNs;
  }

  private push(timeNs: number, count: number): void {
    const cap = this.qTime.length;
    if (this.qLen === cap) {
      const t = new Float64Array(cap * 2);
      const c = new Int32Array(cap * 2);
      for (let i = 0; i < this.qLen; i++) {
        t[i] = this.qTime[(this.qHead + i) % cap]!;
        c[i] = this.qCount[(this.qHead + i) % cap]!;
      }
      this.qTime = t;
      this.qCount = c;
      this.qHead = 0;
    }
    const at = (this.qHead + this.qLen) % this.qTime.length;
    this.qTime[at] = timeNs;
    this.qCount[at] = count;
    this.qLen++;
  }

  /** Arrivals during the tick [tNs, tNs + tickNs). Called by the world before the hypervisor runs the tick. */
  arrive(tNs: number, tickNs: number): void {
    const tMs = tNs / 1e6;
    this.costNs = (1e9 / this.opts.velocityPacketsPerCpuSec) * this.opts.drift.factorAt(tMs);
    const rate = Math.max(0, this.opts.load(tMs));
    const n = this.opts.rng.poisson((rate * tickNs) / 1e9);
    if (n === 0) return;
    const accepted = Math.min(n, this.opts.queuePackets - this.queued);
    this.offeredPackets += n;
    this.droppedPackets += n - accepted;
    if (accepted > 0) {
      this.push(tNs + tickNs / 2, accepted);
      this.queued += accepted;
    }
  }

  wantNs(): number {
    if (this.queued === 0) return 0;
    return (this.queued - this.credit) * this.costNs;
  }

  run(grantNs: number, tEndNs: number): void {
    if (this.queued === 0) {
      this.credit = 0;
      return;
    }
    this.credit += grantNs / this.costNs;
    const minLatencyUs = this.costNs / 1000;
    const hists = this.opts.latencyUs;
    while (this.credit >= 1 - 1e-9 && this.qLen > 0) {
      const head = this.qHead;
      const k = Math.min(Math.floor(this.credit + 1e-9), this.qCount[head]!);
      const latencyUs = Math.max(minLatencyUs, (tEndNs - this.qTime[head]!) / 1000);
      if (hists)
        for (const h of hists) h.recordValueWithCount(Math.max(1, Math.round(latencyUs)), k);
      this.servedPackets += k;
      this.queued -= k;
      this.credit -= k;
      this.qCount[head] = this.qCount[head]! - k;
      if (this.qCount[head] === 0) {
        this.qHead = (head + 1) % this.qTime.length;
        this.qLen--;
      }
    }
    if (this.queued === 0) this.credit = 0;
  }
}

/** A batch hog: always runnable on all its threads, no traffic (stress-ng, a build, a backup). */
export class BatchWorkload implements Workload, PacketCounters {
  readonly offeredPackets = 0;
  readonly servedPackets = 0;
  readonly droppedPackets = 0;
  /** CPU time it got, ns (the work it did). */
  workNs = 0;

  wantNs(): number {
    return Number.POSITIVE_INFINITY;
  }

  run(grantNs: number): void {
    this.workNs += grantNs;
  }
}

/** Reads a sim partition's counters like the host sensors read veth and cgroup files. */
export class SimPartitionSensor implements PartitionSensor {
  private readonly hv: SimHypervisor;
  private readonly cgroup: string;
  private readonly packets: PacketCounters;
  private closed = false;

  constructor(hv: SimHypervisor, cgroup: string, packets: PacketCounters) {
    this.hv = hv;
    this.cgroup = cgroup;
    this.packets = packets;
  }

  read(nowMs: number): CounterSample {
    if (this.closed)
      throw new WeirError(ErrorCodes.COUNTER_UNREADABLE, `[sim] ${this.cgroup}: sensor closed`);
    if (!this.hv.has(this.cgroup))
      throw new WeirError(ErrorCodes.CGROUP_GONE, `[sim] cgroup ${this.cgroup} does not exist`);
    const s = this.hv.stats(this.cgroup);
    return {
      atMs: nowMs,
      offeredPackets: this.packets.offeredPackets,
      servedPackets: this.packets.servedPackets,
      droppedPackets: this.packets.droppedPackets,
      cpuUsageNs: Math.round(s.usageNs),
      nrPeriods: s.nrPeriods,
      nrThrottled: s.nrThrottled,
      throttledNs: Math.round(s.throttledNs),
      cpuDelayNs: Math.round(s.cpuDelayNs),
    };
  }

  close(): void {
    this.closed = true;
  }
}
