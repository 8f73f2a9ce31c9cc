import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { CyclePartitionColumns, CycleRecord, Throughput } from "../core/model.ts";
import { MemoryView } from "./memory-view.ts";
import { createMetrics } from "./metrics.ts";
import { sampleRecord, sampleSpecs } from "./sample-records.ts";

/** One sample's value; `name` may be a histogram's `_bucket`/`_sum`/`_count` series. */
async function value(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const metric = registry.getSingleMetric(name) ?? registry.getSingleMetric(base);
  if (!metric) throw new Error(`no metric ${name}`);
  const got = await metric.get();
  const match = got.values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? got.name) === name &&
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return match?.value;
}

describe("createMetrics", () => {
  it("turns rates into counters by rate x window, and sets the gauges", async () => {
    const m = createMetrics();
    m.observe(sampleRecord(1, 100));
    m.observe(sampleRecord(2, 200, 2));
    const r = m.registry;
    // web offered 3000 then 6000 pkt/s over 100 ms windows: 300 + 600 = 900 packets
    expect(
      await value(r, "weir_partition_packets_total", { partition: "web", direction: "in" }),
    ).toBeCloseTo(900);
    // served 2250 pkt/s twice: 2 x 225 = 450
    expect(
      await value(r, "weir_partition_packets_total", { partition: "web", direction: "out" }),
    ).toBeCloseTo(450);
    // dropped (3000-2250) then (6000-2250): 75 + 375 = 450
    expect(
      await value(r, "weir_partition_dropped_packets_total", { partition: "web" }),
    ).toBeCloseTo(450);
    // 0.5 cores for 2 x 0.1 s = 0.1 CPU-seconds
    expect(await value(r, "weir_partition_cpu_seconds_total", { partition: "web" })).toBeCloseTo(
      0.1,
    );
    expect(
      await value(r, "weir_partition_cpu_allocation_cores", { partition: "batch" }),
    ).toBeCloseTo(0.84);
    expect(
      await value(r, "weir_partition_velocity_packets_per_cpu_second", { partition: "dns" }),
    ).toBe(4000);
    expect(await value(r, "weir_partition_throttled_ratio", { partition: "web" })).toBe(0.6);
    // the files each record says were written, summed over the two cycles
    expect(await value(r, "weir_partition_cgroup_writes_total", { partition: "web" })).toBe(2);
    expect(await value(r, "weir_partition_cgroup_writes_total", { partition: "dns" })).toBe(6);
    expect(await value(r, "weir_partition_cgroup_writes_total", { partition: "batch" })).toBe(2);
    expect(await value(r, "weir_capacity_cpu_cores")).toBe(2);
    expect(await value(r, "weir_cycles_total")).toBe(2);
    // 0.12 ms total per cycle -> both in the 0.0005 s bucket
    expect(await value(r, "weir_cycle_duration_seconds_bucket", { le: "0.0005" })).toBe(2);
  });

  it("weir_partition_cpu_seconds_total: CPU rated over its own span counts that span; a window without a read counts nothing", async () => {
    const m = createMetrics();
    const withCpu = (cycle: number, cpuCores: number, cpuWindowMs?: number) => {
      const r = sampleRecord(cycle, cycle * 100);
      const web = r.partitions.find((p) => p.id === "web")!;
      web.throughput = {
        ...web.throughput!,
        cpuCores,
        ...(cpuWindowMs === undefined ? {} : { cpuWindowMs }),
      };
      return r;
    };
    // 0.5 cores over 100 ms; then two windows without a read (0.5 carried, counted 0); then
    // 0.2 cores over the 300 ms since the last read: 0.05 + 0.06 = 0.11 CPU-seconds
    m.observe(withCpu(1, 0.5));
    m.observe(withCpu(2, 0.5, 0));
    m.observe(withCpu(3, 0.5, 0));
    m.observe(withCpu(4, 0.2, 300));
    expect(
      await value(m.registry, "weir_partition_cpu_seconds_total", { partition: "web" }),
    ).toBeCloseTo(0.11, 9);
  });

  it("weir_partition_network_bytes_total: bytes by hook, only for partitions whose throughput has them", async () => {
    const m = createMetrics();
    const withBytes = (cycle: number, ingress: number, egress: number) => {
      const r = sampleRecord(cycle, cycle * 100);
      const dns = r.partitions.find((p) => p.id === "dns")!;
      dns.throughput = {
        ...dns.throughput!,
        ingressBytesPerSec: ingress,
        egressBytesPerSec: egress,
      };
      return r;
    };
    // 100 ms windows: 92,000 B/s -> 9,200 B, then 46,000 -> 4,600: 13,800 ingress; egress 1,000 + 500
    m.observe(withBytes(1, 92_000, 10_000));
    m.observe(withBytes(2, 46_000, 5_000));
    const r = m.registry;
    expect(
      await value(r, "weir_partition_network_bytes_total", {
        partition: "dns",
        direction: "ingress",
      }),
    ).toBeCloseTo(13_800, 6);
    expect(
      await value(r, "weir_partition_network_bytes_total", {
        partition: "dns",
        direction: "egress",
      }),
    ).toBeCloseTo(1_500, 6);
    // web's throughput has no bytes (an interface-counted partition): no series, not a 0
    expect(
      await value(r, "weir_partition_network_bytes_total", {
        partition: "web",
        direction: "ingress",
      }),
    ).toBeUndefined();
    const text = await r.metrics();
    expect(text).toContain("# TYPE weir_partition_network_bytes_total counter");
  });

  it("weir_host_cpu_idle_ratio: the host's idle fraction, absent while the host is not read", async () => {
    const m = createMetrics();
    m.observe(sampleRecord(1, 100)); // no host field: no series (0 would claim a fully busy host)
    expect(m.registry.getSingleMetric("weir_host_cpu_idle_ratio")).toBeUndefined();
    const host = { cpus: 2, idleFraction: 0.35, busyCores: 1.3, stealFraction: 0 };
    m.observe({ ...sampleRecord(2, 200), host });
    expect(await value(m.registry, "weir_host_cpu_idle_ratio")).toBe(0.35);
    expect(await m.registry.metrics()).toContain(
      "# TYPE weir_host_cpu_idle_ratio gauge\nweir_host_cpu_idle_ratio 0.35\n",
    );
    m.observe({ ...sampleRecord(3, 300), host: null }); // unreadable this cycle: the series goes
    expect(m.registry.getSingleMetric("weir_host_cpu_idle_ratio")).toBeUndefined();
    m.observe({ ...sampleRecord(4, 400), host: { ...host, idleFraction: 0.05 } });
    expect(await value(m.registry, "weir_host_cpu_idle_ratio")).toBe(0.05);
  });

  it("counts accepted and rejected reports and actuator errors through its functions", async () => {
    const m = createMetrics();
    m.reportAccepted(7);
    m.reportAccepted(3);
    m.reportAccepted(Number.NaN); // adds nothing
    m.reportRejected("bad_mac");
    m.reportRejected("bad_mac");
    m.reportRejected("replay", 5);
    m.actuatorError("web", "WEIR_CGROUP_WRITE_FAILED");
    m.cycleFailed("WEIR_CYCLE_FAILED");
    m.cycleFailed("WEIR_CYCLE_FAILED");
    expect(
      await value(m.registry, "weir_cycle_failures_total", { code: "WEIR_CYCLE_FAILED" }),
    ).toBe(2);
    expect(await value(m.registry, "weir_reports_accepted_total")).toBe(10);
    expect(await value(m.registry, "weir_reports_rejected_total", { reason: "bad_mac" })).toBe(2);
    expect(await value(m.registry, "weir_reports_rejected_total", { reason: "replay" })).toBe(5);
    expect(
      await value(m.registry, "weir_actuator_errors_total", {
        partition: "web",
        code: "WEIR_CGROUP_WRITE_FAILED",
      }),
    ).toBe(1);
  });

  it("counts per-partition errors from records and never decreases a counter on bad input", async () => {
    const m = createMetrics();
    const rec = sampleRecord(1, 100);
    const dns = rec.partitions[1]!;
    dns.status = "gone";
    dns.error = { code: "WEIR_CGROUP_GONE", message: "cgroup weir/dns vanished", retryable: false };
    dns.throughput!.offeredPacketsPerSec = -50; // a broken source: must add nothing
    dns.throughput!.servedPacketsPerSec = Number.NaN;
    m.observe(rec);
    expect(
      await value(m.registry, "weir_partition_errors_total", {
        partition: "dns",
        code: "WEIR_CGROUP_GONE",
      }),
    ).toBe(1);
    expect(
      await value(m.registry, "weir_partition_packets_total", {
        partition: "dns",
        direction: "in",
      }),
    ).toBe(0);
    expect(
      await value(m.registry, "weir_partition_packets_total", {
        partition: "dns",
        direction: "out",
      }),
    ).toBe(0);
  });

  it("drops gauges of a partition that leaves the records", async () => {
    const m = createMetrics();
    m.observe(sampleRecord(1, 100));
    const rec = sampleRecord(2, 200);
    rec.partitions = rec.partitions.filter((p) => p.id !== "batch");
    m.observe(rec);
    expect(
      await value(m.registry, "weir_partition_cpu_allocation_cores", { partition: "batch" }),
    ).toBeUndefined();
    expect(
      await value(m.registry, "weir_partition_cpu_allocation_cores", { partition: "web" }),
    ).toBe(0.8);
  });

  it("keeps a gauge's last value through a cycle without a finite reading, and a departed partition's counters", async () => {
    const m = createMetrics();
    m.observe(sampleRecord(1, 100));
    const rec = sampleRecord(2, 200);
    rec.partitions[0]!.throughput!.throttledFraction = Number.NaN; // web: no reading this time
    m.observe(rec);
    expect(await value(m.registry, "weir_partition_throttled_ratio", { partition: "web" })).toBe(
      0.6,
    );
    const gone = sampleRecord(3, 300);
    gone.partitions = gone.partitions.filter((p) => p.id !== "web");
    m.observe(gone);
    expect(
      await value(m.registry, "weir_partition_throttled_ratio", { partition: "web" }),
    ).toBeUndefined();
    // 3000 pkt/s offered over two 100 ms windows before it left: the counter stays
    expect(
      await value(m.registry, "weir_partition_packets_total", {
        partition: "web",
        direction: "in",
      }),
    ).toBeCloseTo(600);
    // read twice: the copy into the metrics is idempotent
    expect(
      await value(m.registry, "weir_partition_packets_total", {
        partition: "web",
        direction: "in",
      }),
    ).toBeCloseTo(600);
  });

  it("uses its own registry and follows a view through attach()", async () => {
    const registry = new Registry();
    const m = createMetrics({ registry });
    const view = new MemoryView({ specs: sampleSpecs });
    const detach = m.attach(view);
    view.publish(sampleRecord(1, 100));
    detach();
    view.publish(sampleRecord(2, 200));
    expect(await value(registry, "weir_cycles_total")).toBe(1);
    const text = await registry.metrics();
    expect(text).not.toMatch(/^nodejs_|^process_/m);
  });

  it("reads an entry's lent throughput (peekThroughput) as it reads its own", async () => {
    // the manager's entries lend their values in one object every entry reuses, and building
    // `throughput` is what the metrics must not do: the same series either way
    const lent: Record<string, unknown> = {};
    const lending = (r: CycleRecord): CycleRecord => ({
      ...r,
      partitions: r.partitions.map((p) => {
        const { throughput, ...rest } = p;
        return {
          ...rest,
          get throughput(): never {
            throw new Error("built a throughput");
          },
          peekThroughput: () => {
            if (throughput === null) return null;
            for (const k of Object.keys(lent)) lent[k] = undefined;
            return Object.assign(lent, throughput) as unknown as Throughput;
          },
        };
      }),
    });
    const plain = createMetrics();
    const peeked = createMetrics();
    for (let c = 1; c <= 3; c++) {
      const r = sampleRecord(c, c * 100, c);
      plain.observe(r);
      peeked.observe(lending(r));
    }
    const text = await plain.registry.metrics();
    expect(text).toMatch(/weir_partition_packets_total\{[^}]*partition="web"/);
    expect(await peeked.registry.metrics()).toBe(text);
  });
});

/**
 * `record` with columns made from its own entries (CycleRecord.columns, as the manager's
 * records carry them: not enumerable), `lent` lending each throughput in one reused object.
 */
function withColumns(record: CycleRecord): CycleRecord {
  const ps = record.partitions;
  const lent = {} as Throughput;
  const columns: CyclePartitionColumns = {
    size: ps.length,
    ids: ps.map((p) => p.id),
    status: ps.map((p) => p.status),
    directives: ps.map((p) => p.directive),
    written: ps.map((p) => (p.written.length > 0 ? p.written : undefined)),
    errors: ps.some((p) => p.error) ? ps.map((p) => p.error) : null,
    peekThroughput: (k) => {
      const t = ps[k]!.throughput;
      if (t === null) return null;
      for (const key of Object.keys(lent)) delete (lent as unknown as Record<string, unknown>)[key];
      return Object.assign(lent, t);
    },
    decision: (k) => ps[k]!.decision,
    decisionVelocity: (k) => ps[k]!.decision?.velocityPacketsPerCpuSec,
  };
  const out = { ...record, partitions: [] };
  Object.defineProperty(out, "columns", { value: columns, enumerable: false });
  return out;
}

describe("createMetrics on a record's columns", () => {
  it("counts and sets what the entries give, with no entry read", async () => {
    const fromColumns = createMetrics();
    const fromEntries = createMetrics();
    // made a moment apart: the config's read time the same in both
    for (const m of [fromColumns, fromEntries]) m.configReload(true, 1_700_000_000_000);
    const records: CycleRecord[] = [];
    for (let c = 1; c <= 6; c++) {
      const r = sampleRecord(c, c * 100, 1 + c / 10);
      // a partition with an error and no write, one with no decision nor directive (gone)
      r.partitions[1]!.error = { code: "WEIR_APPLY_FAILED", message: "m", retryable: true };
      r.partitions[1]!.written = [];
      if (c > 3) {
        r.partitions[0]!.status = "gone";
        r.partitions[0]!.decision = null;
        r.partitions[0]!.directive = null;
        r.partitions[0]!.throughput = null;
      }
      records.push(r);
    }
    for (const r of records) {
      // partitions emptied: only the columns say anything
      fromColumns.observe(withColumns(r));
      fromEntries.observe(r);
    }
    const text = await fromColumns.registry.metrics();
    expect(text).toBe(await fromEntries.registry.metrics());
    expect(text).toMatch(
      /weir_partition_errors_total\{partition="dns",code="WEIR_APPLY_FAILED"\} 6/,
    );
    expect(text).toMatch(/weir_partition_velocity_packets_per_cpu_second\{partition="web"\} 4500/);
    // dns wrote nothing in any cycle: its series stays at 0; web's entry lists one file in
    // each of the six records
    expect(text).toMatch(/weir_partition_cgroup_writes_total\{partition="dns"\} 0\n/);
    expect(text).toMatch(/weir_partition_cgroup_writes_total\{partition="web"\} 6\n/);
  });
});
