// Root, real cgroup v1, real network namespaces and packets: `weir run` on two partitions,
// each a packet server (CPU-bound under load) in its own cgroup. Traffic to one partition
// grows; weir must move its entitlement (expressed as cpu.shares, weights first: no cap for
// these uncapped partitions) toward it, write a cgroup value only when it changes, and restore
// the values it found on SIGTERM. Bounded: ~14 s of load, at most ~20,000 packets.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CycleRecord } from "../../src/core/model.ts";
import { runLoad } from "../../src/testbed/load.ts";
import type { TestbedState } from "../../src/testbed/state.ts";
import { testbedDown, testbedUp } from "../../src/testbed/testbed.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const PREFIX = `weirt${process.pid % 100000}m`;
const isRoot = process.getuid?.() === 0;
const hasV1 = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
let tb: TestbedState | null = null;
const dir = mkdtempSync(path.join(tmpdir(), "weir-e2e-run-"));

afterAll(async () => {
  if (tb) await testbedDown(tb.stateFile).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const quotaOf = (cgroup: string) =>
  Number(readFileSync(`/sys/fs/cgroup/cpu/${cgroup}/cpu.cfs_quota_us`, "utf8"));
const sharesOf = (cgroup: string) =>
  Number(readFileSync(`/sys/fs/cgroup/cpu/${cgroup}/cpu.shares`, "utf8"));
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

describe.skipIf(!isRoot || !hasV1)("weir run on real cgroups (root, v1)", () => {
  it("moves weight toward the partition whose traffic grows, never caps or rewrites, restores on SIGTERM", async () => {
    tb = await testbedUp({
      prefix: PREFIX,
      partitions: [{ name: "a" }, { name: "b" }],
      costRounds: 40,
      maxLifetimeMs: 120_000,
    });
    const [a, b] = tb.partitions as [
      TestbedState["partitions"][number],
      TestbedState["partitions"][number],
    ];
    const found = {
      a: { quota: quotaOf(a.cgroup), shares: sharesOf(a.cgroup) },
      b: { quota: quotaOf(b.cgroup), shares: sharesOf(b.cgroup) },
    };
    const cfgPath = path.join(dir, "weir.yaml");
    writeFileSync(
      cfgPath,
      [
        "intervalMs: 100",
        "capacity: { cpus: 2, reserve: 200m }",
        "onShutdown: restore",
        "policy: { leftover: idle }", // allocations show demand alone, not shared-out spare CPU
        "partitions:",
        ...[a, b].map((p) =>
          [
            `  - name: ${p.name}`,
            `    cgroup: ${p.cgroup}`,
            `    interfaces: [${p.hostIf}]`,
            `    pid: ${p.serverPid}`,
            // a small guarantee, so b's entitlement before the step is its traffic's, even on a
            // fast CPU where 150 pps costs a few millicores
            "    min: 20m",
          ].join("\n"),
        ),
      ].join("\n"),
    );
    const child = spawn(
      process.execPath,
      [path.join(REPO, "bin/weir.js"), "run", "-c", cfgPath, "--json"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const records: CycleRecord[] = [];
    let buf = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('{"cycle"')) records.push(JSON.parse(line) as CycleRecord);
        i = buf.indexOf("\n");
      }
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    try {
      // wait for the manager's first cycles
      for (let i = 0; i < 200 && records.length < 5; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(records.length, stderr).toBeGreaterThanOrEqual(5);
      const t0 = Date.now();
      // a: 150 pps throughout; b: 150 pps, then 1,200 pps from 5 s (both bounded: 14 s)
      const load = await runLoad({
        targets: [
          { name: "a", addr: a.nsAddr, port: a.port, schedule: { kind: "constant", pps: 150 } },
          {
            name: "b",
            addr: b.nsAddr,
            port: b.port,
            schedule: { kind: "step", fromPps: 150, toPps: 1200, atMs: 5000 },
          },
        ],
        durationMs: 14_000,
        maxPackets: 20_000,
      });
      expect(load.totals.sent).toBeGreaterThan(5000);
      const onLoad = records.filter((r) => r.startedAtMs >= t0);
      const alloc = (r: CycleRecord, id: string) =>
        r.partitions.find((p) => p.id === id)?.directive?.cpuMillis ?? Number.NaN;
      // before the step: from 2 s after the load started, when b's allocation follows its
      // 150 pps; in the first 1.5 s it rises to ~2-3x that and falls back as the new traffic is
      // confirmed (seen on a fast CPU: 216m at 0.3 s, 72m from 1.8 s), and a mean over that
      // rise once made b's 1,200 pps look like no growth (132m -> 127m)
      const before = onLoad.filter((r) => r.startedAtMs >= t0 + 2000 && r.startedAtMs < t0 + 4500);
      const after = onLoad.filter((r) => r.startedAtMs > t0 + 10_000);
      // what each partition used (the sensors' CPU, millicores), beside what it was allocated
      const used = (r: CycleRecord, id: string) =>
        (r.partitions.find((p) => p.id === id)?.throughput?.cpuCores ?? Number.NaN) * 1000;
      const bBefore = mean(before.map((r) => alloc(r, "b")));
      const aBefore = mean(before.map((r) => alloc(r, "a")));
      const bAfter = mean(after.map((r) => alloc(r, "b")));
      const aAfter = mean(after.map((r) => alloc(r, "a")));
      const bUsedAfter = mean(after.map((r) => used(r, "b")));
      const aUsedAfter = mean(after.map((r) => used(r, "a")));
      const seen = `b ${bBefore.toFixed(0)}m -> ${bAfter.toFixed(0)}m (using ${bUsedAfter.toFixed(0)}m after), a ${aBefore.toFixed(0)}m -> ${aAfter.toFixed(0)}m (using ${aUsedAfter.toFixed(0)}m after)`;
      console.info(`weir run e2e: ${seen}`);
      // b's traffic grew 8x, a's did not. What that costs in CPU depends on the machine (a
      // server's CPU per packet falls as its rate rises, and a busy host raises it), so the
      // bounds come from what the sensors measured here: b's allocation covers most of what b
      // used, ends above a's by at least half the gap in their use, and b's share of the two
      // allocations grew.
      expect(bAfter, seen).toBeGreaterThan(0.8 * bUsedAfter);
      expect(bAfter - aAfter, seen).toBeGreaterThan(0.5 * (bUsedAfter - aUsedAfter));
      expect(bAfter, seen).toBeGreaterThan(aAfter);
      expect(bAfter / aAfter, seen).toBeGreaterThan(bBefore / aBefore);
      // b's offered rate seen by weir's sensors follows the load (1,200 pps; generous bounds)
      const bOffered = mean(
        after.map(
          (r) => r.partitions.find((p) => p.id === "b")?.throughput?.offeredPacketsPerSec ?? 0,
        ),
      );
      expect(bOffered).toBeGreaterThan(600);
      // weights first: these partitions have no max and are not `capped`, so no cap is ever
      // written (the quota stays as found) and the entitlement is the weight
      for (const r of records)
        for (const p of r.partitions) {
          expect(p.directive?.capReason ?? null).toBeNull();
          expect(p.written).not.toContain("cpu.cfs_quota_us");
        }
      // never rewrite an unchanged value: cpu.shares is written iff the directive's weight changed
      // (weight -> shares = round(weight x 10.24) is one-to-one)
      const last: Record<string, number> = {};
      let writes = 0;
      for (const r of records) {
        for (const p of r.partitions) {
          if (!p.directive) continue;
          const prev = last[p.id];
          const sharesWritten = p.written.includes("cpu.shares");
          if (sharesWritten) writes++;
          if (prev !== undefined)
            expect(sharesWritten, `cycle ${r.cycle} ${p.id}`).toBe(prev !== p.directive.weight);
          last[p.id] = p.directive.weight;
        }
      }
      expect(writes).toBeGreaterThan(0);
      const perPartitionPerSec = writes / 2 / (records.length / 10);
      // steady state: the last 4 s of constant load (both partitions' traffic settled)
      const steady = onLoad.filter(
        (r) => r.startedAtMs > t0 + 10_000 && r.startedAtMs < t0 + 14_000,
      );
      const steadyWrites = (id: string) =>
        steady.reduce(
          (n, r) => n + (r.partitions.find((p) => p.id === id)?.written.length ?? 0),
          0,
        );
      console.info(
        `weir run e2e: steady state (last 4 s of load): a ${steadyWrites("a")}, b ${steadyWrites("b")} writes in ${steady.length} cycles`,
      );
      console.info(
        `weir run e2e: ${writes} cpu.shares writes in ${records.length} cycles x 2 partitions (${perPartitionPerSec.toFixed(2)} per partition per second)`,
      );
      // the kernel holds a value weir decided: the manager keeps cycling while we read, so
      // compare with the directives of the last cycles once their records have arrived
      // (shares = round(weight x 1024 / 100))
      const sh = sharesOf(b.cgroup);
      const weightOf = (r: CycleRecord, id: string) =>
        r.partitions.find((p) => p.id === id)?.directive?.weight ?? Number.NaN;
      const recent = () =>
        records.slice(-20).map((r) => Math.round((weightOf(r, "b") * 1024) / 100));
      // until the record of the cycle that wrote it has come through the pipe (10 s at most)
      for (let i = 0; i < 100 && !recent().includes(sh); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(recent()).toContain(sh);
      expect(quotaOf(b.cgroup)).toBe(found.b.quota);
    } finally {
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
    // SIGTERM restored the values found at start
    for (const [p, f] of [
      [a, found.a],
      [b, found.b],
    ] as const) {
      expect(quotaOf(p.cgroup)).toBe(f.quota);
      expect(sharesOf(p.cgroup)).toBe(f.shares);
    }
  });
});
