// Prometheus metrics for weir, in their own registry (never prom-client's default Node
// metrics: promtool rejects `nodejs_active_handles_total` and friends, see docs/measured-facts.md).
// Everything per partition is derived from CycleRecords (folded into plain numbers each cycle,
// copied into the metrics when they are read); rejected reports and actuator errors are
// counted through functions the transport and the manager call.
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";
import type { CycleRecord, Directive, Throughput, WeirErrorInfo } from "../core/model.ts";
import { coresFromCpuMillis, secondsFromMs } from "../core/units.ts";
import type { ManagerView } from "../manager/view.ts";

// The four classes weir uses, from their own files: prom-client's index also loads its
// Pushgateway (node:http, node:https, node:zlib) and its default Node metrics, which weir never
// uses (docs/performance.md: what `weir run` keeps resident). The types are the index's.
const requireCjs = createRequire(import.meta.url);
const { Counter, Gauge, Histogram, Registry } = {
  Counter: requireCjs("prom-client/lib/counter") as typeof PromClient.Counter,
  Gauge: requireCjs("prom-client/lib/gauge") as typeof PromClient.Gauge,
  Histogram: requireCjs("prom-client/lib/histogram") as typeof PromClient.Histogram,
  Registry: requireCjs("prom-client/lib/registry") as typeof PromClient.Registry,
};
type Registry = PromClient.Registry;
type Counter<T extends string = string> = PromClient.Counter<T>;
type Gauge<T extends string = string> = PromClient.Gauge<T>;

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
  /** Count an actuator write that failed (code from the error catalogue, e.g. "WEIR_APPLY_FAILED"). */
  actuatorError(partition: string, code: string, count?: number): void;
  /**
   * Say how the last reading of the config file went (`weir run`'s SIGHUP, src/service/reload.ts):
   * taken or not, and when the config in force was last read successfully (ms since the epoch).
   * Until called: taken, when the metrics were made (a manager starts on a config that loaded).
   */
  configReload(successful: boolean, lastSuccessAtMs: number): void;
}

/** What /metrics shows of one partition: running totals, and gauges (undefined = no series). */
interface PartitionSeries {
  /** Cycle of the last record that named it. */
  seen: number;
  /** Its counters have series (it was in a record with throughput or a window). */
  counted: boolean;
  packetsIn: number;
  packetsOut: number;
  /** Its throughput carried bytes (a source that counts them: bpf): the bytes series exist. */
  bytesCounted: boolean;
  bytesIngress: number;
  bytesEgress: number;
  dropped: number;
  cpuSeconds: number;
  /** Values weir wrote to its cgroup (and cpuset) files, all cycles. */
  writes: number;
  allocationCores: number | undefined;
  weight: number | undefined;
  capCores: number | undefined;
  idleClass: number | undefined;
  cpuDelay: number | undefined;
  velocity: number | undefined;
  throttled: number | undefined;
}
type CounterKey = "dropped" | "cpuSeconds";
type GaugeKey =
  | "allocationCores"
  | "weight"
  | "capCores"
  | "idleClass"
  | "cpuDelay"
  | "velocity"
  | "throttled";

const newSeries = (): PartitionSeries => ({
  seen: 0,
  counted: false,
  packetsIn: 0,
  packetsOut: 0,
  bytesCounted: false,
  bytesIngress: 0,
  bytesEgress: 0,
  dropped: 0,
  cpuSeconds: 0,
  writes: 0,
  allocationCores: undefined,
  weight: undefined,
  capCores: undefined,
  idleClass: undefined,
  cpuDelay: undefined,
  velocity: undefined,
  throttled: undefined,
});

/** A partition that left the record keeps its counters and loses its gauges. */
function clearGauges(s: PartitionSeries): void {
  s.allocationCores = undefined;
  s.weight = undefined;
  s.capCores = undefined;
  s.idleClass = undefined;
  s.cpuDelay = undefined;
  s.velocity = undefined;
  s.throttled = undefined;
}

/** A counter increment must be finite and non-negative; anything else adds nothing. */
const increment = (x: number): number => (Number.isFinite(x) && x > 0 ? x : 0);

export function createMetrics(opts: { registry?: Registry } = {}): WeirMetrics {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  const byPartition = ["partition"] as const;

  // Per-partition series are folded into plain numbers every cycle (no label hashing, no
  // allocation: at 100 partitions and 10 cycles/s prom-client's labelled inc/set cost more CPU
  // than the policy step) and copied into the metrics only when /metrics is read (`collect`).
  const series = new Map<string, PartitionSeries>();
  /** A metric's series, rebuilt from `series` on every read. */
  const perPartition = <M extends Counter<string> | Gauge<string>>(
    metric: new (cfg: {
      name: string;
      help: string;
      labelNames: readonly string[];
      registers: Registry[];
      collect: () => void;
    }) => M,
    name: string,
    help: string,
    fill: (m: M, partition: string, s: PartitionSeries) => void,
    labelNames: readonly string[] = byPartition,
  ): M => {
    const m: M = new metric({
      name,
      help,
      labelNames,
      registers,
      collect: () => {
        m.reset();
        for (const [partition, s] of series) fill(m, partition, s);
      },
    });
    return m;
  };
  const gauge =
    (key: GaugeKey) =>
    (m: Gauge<string>, partition: string, s: PartitionSeries): void => {
      const v = s[key];
      if (v !== undefined) m.set({ partition }, v);
    };
  const counter =
    (key: CounterKey) =>
    (m: Counter<string>, partition: string, s: PartitionSeries): void => {
      if (s.counted) m.inc({ partition }, s[key]);
    };

  perPartition(
    Counter,
    "weir_partition_packets_total",
    "Packets by direction: in = offered to the partition (arrived, dropped ones included), out = served (sent back).",
    (m, partition, s) => {
      if (!s.counted) return;
      m.inc({ partition, direction: "in" }, s.packetsIn);
      m.inc({ partition, direction: "out" }, s.packetsOut);
    },
    ["partition", "direction"],
  );
  perPartition(
    Counter,
    "weir_partition_network_bytes_total",
    "Bytes of the packets the partition's sockets received (direction=ingress) and sent (egress): IP packet length at its cgroup's inet hooks, counted by eBPF (partitions with packets: bpf only).",
    (m, partition, s) => {
      if (!s.bytesCounted) return;
      m.inc({ partition, direction: "ingress" }, s.bytesIngress);
      m.inc({ partition, direction: "egress" }, s.bytesEgress);
    },
    ["partition", "direction"],
  );
  perPartition(
    Counter,
    "weir_partition_dropped_packets_total",
    "Packets dropped on the way into the partition (interface drops and socket receive-buffer errors).",
    counter("dropped"),
  );
  perPartition(
    Counter,
    "weir_partition_cpu_seconds_total",
    "CPU time the partition used, seconds.",
    counter("cpuSeconds"),
  );
  perPartition(
    Counter,
    "weir_partition_cgroup_writes_total",
    "Values weir wrote for the partition (cgroup files: weight, idle class, cap, burst, cpuset); an unchanged value is never rewritten, so its rate is the churn the policy causes.",
    // every partition ever recorded has its series (0 while nothing was written)
    (m, partition, s) => m.inc({ partition }, s.writes),
  );
  perPartition(
    Gauge,
    "weir_partition_cpu_allocation_cores",
    "CPU entitlement weir gave the partition in the latest cycle (what it gets under full contention), cores.",
    gauge("allocationCores"),
  );
  perPartition(
    Gauge,
    "weir_partition_cpu_weight",
    "CPU weight weir directed for the partition (cgroup v2 scale 1..10000; v1 cpu.shares = weight x 10.24).",
    gauge("weight"),
  );
  perPartition(
    Gauge,
    "weir_partition_cpu_cap_cores",
    "Hard CPU cap weir directed, cores (only partitions with a cap: a configured max, capped mode, or batch suppression).",
    gauge("capCores"),
  );
  perPartition(
    Gauge,
    "weir_partition_idle_class",
    "1 when weir runs the partition in the kernel's idle scheduling class (batch), else 0.",
    gauge("idleClass"),
  );
  perPartition(
    Gauge,
    "weir_partition_cpu_delay_ratio",
    "CPU delay over the latest window: time runnable but waiting for a CPU / (that + CPU used), 0..1.",
    gauge("cpuDelay"),
  );
  perPartition(
    Gauge,
    "weir_partition_velocity_packets_per_cpu_second",
    "Smoothed velocity: packets served per CPU-second.",
    gauge("velocity"),
  );
  perPartition(
    Gauge,
    "weir_partition_throttled_ratio",
    "Fraction of CFS periods in the latest window in which the partition was throttled (0..1).",
    gauge("throttled"),
  );
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
  // as Prometheus says it of its own config (prometheus_config_last_reload_*)
  const reloadSuccessful = new Gauge({
    name: "weir_config_last_reload_successful",
    help: "Whether the last reading of the config file (at start, or on SIGHUP) was taken: 0 after a file with a mistake or a config that could not start.",
    registers,
  });
  const reloadSuccessAt = new Gauge({
    name: "weir_config_last_reload_success_timestamp_seconds",
    help: "When the config file was last read and taken (at start, or on SIGHUP), seconds since the epoch.",
    registers,
  });
  const configReload = (successful: boolean, lastSuccessAtMs: number) => {
    reloadSuccessful.set(successful ? 1 : 0);
    reloadSuccessAt.set(secondsFromMs(lastSuccessAtMs));
  };
  configReload(true, Date.now());
  const actuatorErrors = new Counter({
    name: "weir_actuator_errors_total",
    help: "Actuator writes that failed, by partition and error code.",
    labelNames: ["partition", "code"] as const,
    registers,
  });

  // Registered only while the host is read: an unlabeled gauge cannot drop its one series, and
  // a 0 would claim a fully busy host. Unregistered again when a cycle could not read it.
  let hostIdle: Gauge | null = null;

  /** Which cycle last named each partition, so one that leaves the record loses its gauges. */
  let observed = 0;

  /** The series of a record's partitions, by index, while its manager's ids stay the same array. */
  let idsSeen: readonly string[] | null = null;
  let seriesAt: PartitionSeries[] = [];
  const seriesOf = (partition: string): PartitionSeries => {
    let s = series.get(partition);
    if (s === undefined) {
      s = newSeries();
      series.set(partition, s);
    }
    return s;
  };

  /** Fold one partition's cycle into its series. */
  function fold(
    s: PartitionSeries,
    partition: string,
    cycle: number,
    windowSec: number,
    intervalMs: number,
    t: Throughput | null,
    d: Directive | null,
    cpuMillis: number | undefined,
    decisionVelocity: number | null | undefined,
    error: WeirErrorInfo | undefined,
    written: number,
  ): void {
    s.seen = cycle;
    s.writes += written;
    if (t) {
      // Counters advance by rate x window; the window is the throughput's own when it has one.
      const sec = secondsFromMs(t.windowMs > 0 ? t.windowMs : intervalMs);
      s.counted = true;
      s.packetsIn += increment(t.offeredPacketsPerSec * sec);
      s.packetsOut += increment(t.servedPacketsPerSec * sec);
      s.dropped += increment(t.droppedPacketsPerSec * sec);
      // JSON-decoded records may carry null
      if (t.ingressBytesPerSec != null || t.egressBytesPerSec != null) {
        s.bytesCounted = true;
        s.bytesIngress += increment((t.ingressBytesPerSec ?? 0) * sec);
        s.bytesEgress += increment((t.egressBytesPerSec ?? 0) * sec);
      }
      // over its own span when the CPU was read at other times (0: not read this window)
      const cpuSec = t.cpuWindowMs == null ? sec : secondsFromMs(t.cpuWindowMs);
      s.cpuSeconds += increment(t.cpuCores * cpuSec);
      if (Number.isFinite(t.throttledFraction)) s.throttled = t.throttledFraction;
      if (t.cpuDelayFraction != null && Number.isFinite(t.cpuDelayFraction))
        s.cpuDelay = t.cpuDelayFraction;
    } else if (windowSec > 0) {
      // No data this cycle: the series exist (at 0 increase) so rate() sees them.
      s.counted = true;
    }
    if (cpuMillis !== undefined) s.allocationCores = coresFromCpuMillis(cpuMillis);
    if (d) {
      s.weight = d.weight;
      s.idleClass = d.idle ? 1 : 0;
      // JSON-decoded records carry null for no cap
      const cap = d.capCpuMillis as number | null;
      s.capCores = cap !== null && Number.isFinite(cap) ? coresFromCpuMillis(cap) : undefined;
    }
    const v = decisionVelocity ?? t?.rawVelocityPacketsPerCpuSec ?? null;
    if (v !== null && Number.isFinite(v)) s.velocity = v;
    if (error) partitionErrors.inc({ partition, code: error.code });
  }

  function observe(record: CycleRecord): void {
    const windowSec = secondsFromMs(record.intervalMs);
    const cycle = ++observed;
    // the manager's records: read from their columns, no entry made (CycleRecord.columns)
    const c = record.columns;
    if (c !== undefined) {
      if (c.ids !== idsSeen) {
        seriesAt = c.ids.map(seriesOf);
        idsSeen = c.ids;
      }
      for (let k = 0; k < c.size; k++) {
        const d = c.status[k] === "gone" ? null : c.directives[k]!;
        fold(
          seriesAt[k]!,
          c.ids[k]!,
          cycle,
          windowSec,
          record.intervalMs,
          c.peekThroughput(k),
          d,
          d?.cpuMillis ?? c.decision(k)?.cpuMillis,
          c.decisionVelocity(k),
          c.errors?.[k],
          c.written[k]?.length ?? 0,
        );
      }
    } else
      for (const p of record.partitions) {
        // the manager's entries lend their values in one reused object (read here, not kept)
        // instead of building a Throughput per partition per cycle
        const t = p.peekThroughput ? p.peekThroughput() : p.throughput;
        fold(
          seriesOf(p.id),
          p.id,
          cycle,
          windowSec,
          record.intervalMs,
          t,
          p.directive,
          p.directive?.cpuMillis ?? p.decision?.cpuMillis,
          p.decision?.velocityPacketsPerCpuSec,
          p.error,
          p.written?.length ?? 0,
        );
      }
    for (const s of series.values()) if (s.seen !== cycle) clearGauges(s);
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
    configReload,
  };
}
