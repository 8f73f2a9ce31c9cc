// Prometheus metrics for weir, in their own registry (never prom-client's default Node
// metrics: promtool rejects `nodejs_active_handles_total` and friends, see docs/measured-facts.md).
// Everything per partition is derived from CycleRecords; rejected reports and actuator
// errors are counted through functions the transport and the manager call.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CycleRecord } from "../core/model.ts";
import { coresFromCpuMillis, secondsFromMs } from "../core/units.ts";
import type { ManagerView } from "../manager/view.ts";

/** Upper bounds of the cycle-duration histogram, seconds (0.5 ms .. 1 s). */
export const CYCLE_DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

const HOST_IDLE_METRIC = "weir_host_cpu_idle_ratio";

export interface WeirMetrics {
  /** The registry holding only weir's metrics; serve it at /metrics. */
  readonly registry: Registry;
  /** Fold one cycle record into the metrics. */
  observe(record: CycleRecord): void;
  /** Subscribe to a view so every cycle record is observed; returns the unsubscribe function. */
  attach(view: Pick<ManagerView, "subscribe">): () => void;
  /** Count a report the transport rejected (reason e.g. "bad_mac", "replay", "stale"). */
  reportRejected(reason: string, count?: number): void;
  /** Count reports the transports verified and accepted. */
  reportAccepted(count: number): void;
  /** Count a cycle that failed as a whole (code e.g. "WEIR_CYCLE_FAILED"); its values were kept. */
  cycleFailed(code: string): void;
  /** Count an actuator write that failed (code from the error catalogue, e.g. "WEIR_CGROUP_WRITE_FAILED"). */
  actuatorError(partition: string, code: string, count?: number): void;
}

/** A counter increment must be finite and non-negative; anything else adds nothing. */
const increment = (x: number): number => (Number.isFinite(x) && x > 0 ? x : 0);

export function createMetrics(opts: { registry?: Registry } = {}): WeirMetrics {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  const byPartition = ["partition"] as const;

  const packets = new Counter({
    name: "weir_partition_packets_total",
    help: "Packets by direction: in = offered to the partition (arrived, dropped ones included), out = served (sent back).",
    labelNames: ["partition", "direction"] as const,
    registers,
  });
  const dropped = new Counter({
    name: "weir_partition_dropped_packets_total",
    help: "Packets dropped on the way into the partition (interface drops and socket receive-buffer errors).",
    labelNames: byPartition,
    registers,
  });
  const cpuSeconds = new Counter({
    name: "weir_partition_cpu_seconds_total",
    help: "CPU time the partition used, seconds.",
    labelNames: byPartition,
    registers,
  });
  const allocation = new Gauge({
    name: "weir_partition_cpu_allocation_cores",
    help: "CPU entitlement weir gave the partition in the latest cycle (what it gets under full contention), cores.",
    labelNames: byPartition,
    registers,
  });
  const weightGauge = new Gauge({
    name: "weir_partition_cpu_weight",
    help: "CPU weight weir directed for the partition (cgroup v2 scale 1..10000; v1 cpu.shares = weight x 10.24).",
    labelNames: byPartition,
    registers,
  });
  const capGauge = new Gauge({
    name: "weir_partition_cpu_cap_cores",
    help: "Hard CPU cap weir directed, cores (only partitions with a cap: a configured max, capped mode, or batch suppression).",
    labelNames: byPartition,
    registers,
  });
  const idleGauge = new Gauge({
    name: "weir_partition_idle_class",
    help: "1 when weir runs the partition in the kernel's idle scheduling class (batch), else 0.",
    labelNames: byPartition,
    registers,
  });
  const delayGauge = new Gauge({
    name: "weir_partition_cpu_delay_ratio",
    help: "CPU delay over the latest window: time runnable but waiting for a CPU / (that + CPU used), 0..1.",
    labelNames: byPartition,
    registers,
  });
  const velocity = new Gauge({
    name: "weir_partition_velocity_packets_per_cpu_second",
    help: "Smoothed velocity: packets served per CPU-second.",
    labelNames: byPartition,
    registers,
  });
  const throttled = new Gauge({
    name: "weir_partition_throttled_ratio",
    help: "Fraction of CFS periods in the latest window in which the partition was throttled (0..1).",
    labelNames: byPartition,
    registers,
  });
  const partitionErrors = new Counter({
    name: "weir_partition_errors_total",
    help: "Cycles in which a partition failed (sensor or actuator), by error code.",
    labelNames: ["partition", "code"] as const,
    registers,
  });
  const capacity = new Gauge({
    name: "weir_capacity_cpu_cores",
    help: "CPU capacity weir shares out (managed CPUs minus the reserve), cores.",
    registers,
  });
  const cycles = new Counter({
    name: "weir_cycles_total",
    help: "Manager cycles completed.",
    registers,
  });
  const cycleDuration = new Histogram({
    name: "weir_cycle_duration_seconds",
    help: "Wall time of one manager cycle (sample, reports, policy, apply), seconds.",
    buckets: CYCLE_DURATION_BUCKETS_SECONDS,
    registers,
  });
  const rejected = new Counter({
    name: "weir_reports_rejected_total",
    help: "Partition reports the transport rejected, by reason.",
    labelNames: ["reason"] as const,
    registers,
  });
  const accepted = new Counter({
    name: "weir_reports_accepted_total",
    help: "Partition reports the transports verified and accepted.",
    registers,
  });
  const cycleFailures = new Counter({
    name: "weir_cycle_failures_total",
    help: "Manager cycles that failed as a whole (policy, reports or a hook threw) and wrote nothing more, by error code.",
    labelNames: ["code"] as const,
    registers,
  });
  const actuatorErrors = new Counter({
    name: "weir_actuator_errors_total",
    help: "Actuator writes that failed, by partition and error code.",
    labelNames: ["partition", "code"] as const,
    registers,
  });

  // Registered only while the host is read: an unlabeled gauge cannot drop its one series, and
  // a 0 would claim a fully busy host. Unregistered again when a cycle could not read it.
  let hostIdle: Gauge | null = null;

  /** Partitions that have gauge series now, so a partition that leaves the record loses its gauges. */
  let gauged = new Set<string>();

  function observe(record: CycleRecord): void {
    const windowSec = secondsFromMs(record.intervalMs);
    const present = new Set<string>();
    for (const p of record.partitions) {
      const partition = p.id;
      present.add(partition);
      const t = p.throughput;
      if (t) {
        // Counters advance by rate x window; the window is the throughput's own when it has one.
        const sec = secondsFromMs(t.windowMs > 0 ? t.windowMs : record.intervalMs);
        packets.inc({ partition, direction: "in" }, increment(t.offeredPacketsPerSec * sec));
        packets.inc({ partition, direction: "out" }, increment(t.servedPacketsPerSec * sec));
        dropped.inc({ partition }, increment(t.droppedPacketsPerSec * sec));
        cpuSeconds.inc({ partition }, increment(t.cpuCores * sec));
        if (Number.isFinite(t.throttledFraction)) {
          throttled.set({ partition }, t.throttledFraction);
        }
        if (t.cpuDelayFraction != null && Number.isFinite(t.cpuDelayFraction))
          delayGauge.set({ partition }, t.cpuDelayFraction);
      } else if (windowSec > 0) {
        // No data this cycle: make sure the series exist (at 0 increase) so rate() sees them.
        packets.inc({ partition, direction: "in" }, 0);
        packets.inc({ partition, direction: "out" }, 0);
        dropped.inc({ partition }, 0);
        cpuSeconds.inc({ partition }, 0);
      }
      const cpuMillis = p.directive?.cpuMillis ?? p.decision?.cpuMillis;
      if (cpuMillis !== undefined) allocation.set({ partition }, coresFromCpuMillis(cpuMillis));
      const d = p.directive;
      if (d) {
        weightGauge.set({ partition }, d.weight);
        idleGauge.set({ partition }, d.idle ? 1 : 0);
        // JSON-decoded records carry null for no cap
        const cap = d.capCpuMillis as number | null;
        if (cap !== null && Number.isFinite(cap))
          capGauge.set({ partition }, coresFromCpuMillis(cap));
        else capGauge.remove({ partition });
      }
      const v = p.decision?.velocityPacketsPerCpuSec ?? t?.rawVelocityPacketsPerCpuSec ?? null;
      if (v !== null && Number.isFinite(v)) velocity.set({ partition }, v);
      if (p.error) partitionErrors.inc({ partition, code: p.error.code });
    }
    for (const partition of gauged) {
      if (present.has(partition)) continue;
      allocation.remove({ partition });
      weightGauge.remove({ partition });
      capGauge.remove({ partition });
      idleGauge.remove({ partition });
      delayGauge.remove({ partition });
      velocity.remove({ partition });
      throttled.remove({ partition });
    }
    gauged = present;
    capacity.set(coresFromCpuMillis(record.capacityCpuMillis));
    if (record.host) {
      hostIdle ??= new Gauge({
        name: HOST_IDLE_METRIC,
        help: "Fraction of the host's CPU time that was idle (idle + iowait, /proc/stat) over the latest cycle, 0..1.",
        registers,
      });
      hostIdle.set(record.host.idleFraction);
    } else if (hostIdle) {
      registry.removeSingleMetric(HOST_IDLE_METRIC);
      hostIdle = null;
    }
    cycles.inc();
    cycleDuration.observe(secondsFromMs(record.timingsMs.total));
  }

  return {
    registry,
    observe,
    attach: (view) => view.subscribe(observe),
    reportRejected: (reason, count = 1) => rejected.inc({ reason }, increment(count)),
    reportAccepted: (count) => accepted.inc(increment(count)),
    cycleFailed: (code) => cycleFailures.inc({ code }),
    actuatorError: (partition, code, count = 1) =>
      actuatorErrors.inc({ partition, code }, increment(count)),
  };
}
