// Root, real testbed (namespaces, veths, v1 cgroups, packets): weir balancing real partitions
// (a traffic step, a batch hog, teardown under a running manager). Over 400 lines: the hog runs
// feed two tests (latency and work conservation), kept with the helpers they share.
import { existsSync, readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import type { CycleRecord } from "../../src/core/model.ts";
import { parseConfig } from "../../src/manager/config.ts";
import { HeldHostCpu, hostCpuFromSamples } from "../../src/sensors/host-cpu.ts";
import { type RunningManager, startManager } from "../../src/service/run.ts";
import { type LoadResult, runLoad, type TargetResult } from "../../src/testbed/load.ts";
import { defaultStateFile } from "../../src/testbed/names.ts";
import { readState, type TestbedPartition, type TestbedState } from "../../src/testbed/state.ts";
import { testbedDown, testbedUp } from "../../src/testbed/testbed.ts";
import { expectNothingLeft, snapshot } from "./leftovers.ts";

const BASE = `weirt${process.pid % 100_000}b`;
const CPU = "/sys/fs/cgroup/cpu";
const CPUACCT = "/sys/fs/cgroup/cpuacct";
const isRoot = process.getuid?.() === 0;
const hasV1 = existsSync(`${CPU}/cpu.cfs_quota_us`) && existsSync(`${CPUACCT}/cpuacct.usage`);
/** SHA-256 rounds per request: ~0.2-0.4 ms of CPU per request on this host (5-10 µs a round). */
const COST_ROUNDS = 40;
/** The testbed's cgroup against the rest of the (busy) host: 8 ordinary processes' worth. */
const GROUP_SHARES = 8192;
const stateFiles = new Set<string>();
const managers = new Set<{ ac: AbortController; run: RunningManager }>();
const silent = pino({ level: "silent" });

afterAll(async () => {
  for (const m of managers) {
    m.ac.abort();
    await m.run.done.catch(() => {});
  }
  for (const f of stateFiles) if (existsSync(f)) await testbedDown(f).catch(() => {});
});

// ---- helpers -------------------------------------------------------------------------

const nowMs = () => performance.timeOrigin + performance.now();
const mean = (xs: number[]) =>
  xs.length === 0 ? Number.NaN : xs.reduce((s, x) => s + x, 0) / xs.length;
const cpuacctUsageNs = (rel: string) =>
  Number(readFileSync(`${CPUACCT}/${rel}/cpuacct.usage`, "utf8"));
const readCg = (rel: string, file: string) => readFileSync(`${CPU}/${rel}/${file}`, "utf8").trim();

async function up(
  suffix: string,
  partitions: string[],
  hogs: { name: string; cpus: number }[] = [],
): Promise<TestbedState> {
  const prefix = `${BASE}${suffix}`;
  stateFiles.add(defaultStateFile(prefix));
  return testbedUp({
    prefix,
    partitions: partitions.map((name) => ({ name })),
    hogs,
    costRounds: COST_ROUNDS,
    groupCpuShares: GROUP_SHARES,
    maxLifetimeMs: 120_000,
  });
}

interface ManagedRun {
  records: CycleRecord[];
  stop: () => Promise<void>;
}

/** Start weir's manager on the testbed (in this process), collecting every cycle record. */
async function manage(
  tb: TestbedState,
  policy: Record<string, unknown> = {},
  mins: { network?: string; batch?: string } = {},
): Promise<ManagedRun> {
  const cfg = parseConfig({
    intervalMs: 100,
    capacity: { cpus: 2, reserve: "200m" },
    onShutdown: "restore",
    policy,
    partitions: [
      ...tb.partitions.map((p) => ({
        name: p.name,
        cgroup: p.cgroup,
        interfaces: [{ name: p.hostIf, offered: "tx", served: "rx" }],
        pid: p.serverPid,
        min: mins.network ?? "100m",
      })),
      ...tb.hogs.map((h) => ({
        name: h.name,
        kind: "batch",
        cgroup: h.cgroup,
        min: mins.batch ?? "100m",
      })),
    ],
  });
  const ac = new AbortController();
  const run = await startManager({ cfg, logger: silent, signal: ac.signal });
  const handle = { ac, run };
  managers.add(handle);
  const records: CycleRecord[] = [];
  run.manager.subscribe((r) => records.push(r));
  // the first cycles only learn: wait until every partition has throughput
  for (let i = 0; i < 100; i++) {
    const last = records.at(-1);
    if (records.length >= 5 && last?.partitions.every((p) => p.status === "ok")) break;
    await sleep(100);
  }
  return {
    records,
    stop: async () => {
      ac.abort();
      await run.done;
      managers.delete(handle);
    },
  };
}

const allocOf = (r: CycleRecord, id: string): number =>
  r.partitions.find((p) => p.id === id)?.directive?.cpuMillis ?? Number.NaN;
const tpOf = (r: CycleRecord, id: string) => r.partitions.find((p) => p.id === id)?.throughput;

/** served ÷ offered over the whole seconds [from, to) of a target's timeline. */
function servedRatio(t: TargetResult, fromSecond: number, toSecond: number): number {
  const secs = t.timeline.filter(
    (s) => s.second >= fromSecond && s.second < toSecond && s.spanMs >= 900,
  );
  const sent = secs.reduce((a, s) => a + s.sent, 0);
  const answered = secs.reduce((a, s) => a + s.answered, 0);
  return sent === 0 ? Number.NaN : answered / sent;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface HogRun {
  managed: boolean;
  /** answered ÷ sent over the measured phase, both partitions together. */
  servedRatio: number;
  minTargetRatio: number;
  /** Worse of the two partitions' p99 over the measured phase. */
  p99Ms: number;
  perSecondP99: number[];
  hogCpuSec: number;
  /** CPU-seconds the host left idle meanwhile (/proc/stat idle + iowait, all CPUs). */
  idleCpuSec: number;
  wallS: number;
  generatorP99DelayMs: number;
  records: CycleRecord[];
  startedAtMs: number;
  sent: number;
}

const fmtTimeline = (t: TargetResult) => t.timeline.map((s) => `${s.answered}/${s.sent}`).join(" ");

// ---- teardown check: what the kernel lists, not what weir's record says ----------------

async function downAndCheck(tb: TestbedState): Promise<void> {
  const rec = snapshot(readState(tb.stateFile)!);
  const down = await testbedDown(tb.stateFile);
  expect(down.failed).toEqual([]);
  expect(down.clean).toBe(true);
  expect(
    rec.netns.length + rec.links.length + rec.cgroups.length + rec.pids.length,
  ).toBeGreaterThan(0);
  expectNothingLeft(rec);
}

// ---- the tests -----------------------------------------------------------------------

describe.skipIf(!isRoot || !hasV1)("weir balancing real partitions (root, cgroup v1)", () => {
  // The step's size comes from this machine, not the one the test was written on: before the
  // step, weir's own velocity estimate of b says how many packets b's allocation can serve, and
  // the step asks for several times that, up to 700m at that velocity (a faster CPU gets a
  // bigger step).
  it("a step in b's offered load moves CPU to b within a few cycles and b's served ÷ offered recovers", async () => {
    const tb = await up("s", ["a", "b"]);
    const [a, b] = tb.partitions as [TestbedPartition, TestbedPartition];
    // leftover idle: allocations show demand alone, not shared-out spare CPU
    const m = await manage(tb, { leftover: "idle" });
    const FROM_PPS = 150;
    const BEFORE_MS = 5000;
    const AFTER_MS = 9000;
    let before: LoadResult;
    let load: LoadResult;
    let toPps = 0;
    let bBeforeMeasured = 0;
    let vBefore = 0;
    try {
      before = await runLoad({
        targets: [
          { name: "a", addr: a.nsAddr, port: a.port },
          { name: "b", addr: b.nsAddr, port: b.port },
        ],
        schedule: { kind: "constant", pps: FROM_PPS },
        durationMs: BEFORE_MS,
        maxPackets: 2 * FROM_PPS * (BEFORE_MS / 1000) + 100,
      });
      const calib = m.records.filter((r) => r.startedAtMs >= before.startedAtEpochMs + 2000);
      bBeforeMeasured = mean(calib.map((r) => allocOf(r, "b")));
      vBefore = mean(
        calib.flatMap((r) => {
          const v = r.partitions.find((p) => p.id === "b")?.decision?.velocityPacketsPerCpuSec;
          return v != null && v > 0 ? [v] : [];
        }),
      );
      // CPU the step should need at the pre-step velocity: 8x b's allocation, at least 500m
      // more, but at most 700m — b's server is one thread, so it can never use more than one
      // CPU. Velocity at 150 pps understates what the step costs: fixed per-wake-up costs
      // dominate there, and under the step's load it doubled on one host and rose 3.3x on
      // another (3,359 -> 10,939 packets per CPU-second, where a 4x step left the premise
      // below unmet). At 700m the premise holds while the velocity rises up to ~5x.
      const stepCpuMillis = Math.min(700, Math.max(8 * bBeforeMeasured, bBeforeMeasured + 500));
      toPps = Math.min(6000, Math.max(1200, Math.round((stepCpuMillis / 1000) * vBefore)));
      load = await runLoad({
        targets: [
          {
            name: "a",
            addr: a.nsAddr,
            port: a.port,
            schedule: { kind: "constant", pps: FROM_PPS },
          },
          { name: "b", addr: b.nsAddr, port: b.port, schedule: { kind: "constant", pps: toPps } },
        ],
        durationMs: AFTER_MS,
        maxPackets: (FROM_PPS + toPps) * (AFTER_MS / 1000) + 500,
      });
    } finally {
      await m.stop();
    }
    const stepAt = load.startedAtEpochMs;
    const endAt = load.startedAtEpochMs + load.sendingMs;
    const rs = m.records;
    const pre = rs.filter((r) => r.startedAtMs >= stepAt - 3000 && r.startedAtMs < stepAt);
    const after = rs.filter((r) => r.startedAtMs >= stepAt && r.startedAtMs <= endAt);
    const settled = after.filter((r) => r.startedAtMs >= endAt - 4000);
    const bBefore = mean(pre.map((r) => allocOf(r, "b")));
    const bSettled = mean(settled.map((r) => allocOf(r, "b")));
    const aSettled = mean(settled.map((r) => allocOf(r, "a")));
    const reached = after.find((r) => allocOf(r, "b") >= 0.9 * bSettled);
    const reactionMs = reached ? reached.startedAtMs - stepAt : Number.POSITIVE_INFINITY;
    const peak2s = Math.max(
      ...after.filter((r) => r.startedAtMs <= stepAt + 2000).map((r) => allocOf(r, "b")),
    );
    const tb_ = load.targets.find((t) => t.name === "b")!;
    const ta = load.targets.find((t) => t.name === "a")!;
    const lastS = Math.floor(load.sendingMs / 1000);
    const bRatioEnd = servedRatio(tb_, lastS - 3, lastS);
    const bRatioDip = servedRatio(tb_, 0, 1);
    const aRatio = servedRatio(ta, 0, lastS);
    // weir's own (smoothed) velocity estimate of b, over the cycles that had one
    const vB = mean(
      settled.flatMap((r) => {
        const v = r.partitions.find((p) => p.id === "b")?.decision?.velocityPacketsPerCpuSec;
        return v != null && v > 0 ? [v] : [];
      }),
    );
    // what b could serve at the allocation it had before the step, at the velocity after it
    const fixedCapPps = (bBefore / 1000) * vB;
    console.info(
      [
        `balance step: b ${FROM_PPS} -> ${toPps} pps (b had ${bBeforeMeasured.toFixed(0)}m at ${vBefore.toFixed(0)} pkt/CPU-s before the step)`,
        `  b ${bBefore.toFixed(0)}m before -> ${bSettled.toFixed(0)}m settled (peak ${peak2s}m within 2 s), a ${aSettled.toFixed(0)}m`,
        `  reaction (step -> 90 % of settled allocation): ${reactionMs.toFixed(0)} ms over ${rs.length} cycles`,
        `  b served/offered: step second ${bRatioDip.toFixed(2)}, last 3 s ${bRatioEnd.toFixed(2)}; a after the step ${aRatio.toFixed(2)}`,
        `  b velocity ${vB.toFixed(0)} pkt/CPU-s after the step: the pre-step allocation would serve ~${fixedCapPps.toFixed(0)} of ${toPps} pps`,
        `  b timeline answered/sent: ${fmtTimeline(tb_)}`,
        `  generator ${load.generator.cpuCores} cores, ${before!.totals.sent} + ${load.totals.sent} sent, stopped by ${load.stoppedBy}`,
      ].join("\n"),
    );
    expect(before!.totals.sent).toBeGreaterThan(FROM_PPS * 2 * 3);
    expect(load.totals.sent).toBeGreaterThan(0.6 * (FROM_PPS + toPps) * (AFTER_MS / 1000));
    // the step needs more CPU than b had: at its pre-step allocation, at the velocity measured
    // after the step, it would miss > 20 % of its packets
    expect(fixedCapPps).toBeLessThan(0.8 * toPps);
    // b's allocation covers what its new traffic costs at that velocity (weir adds headroom),
    // so it rose by more than the 1.25x the premise above implies
    const stepNeedCpuMillis = (toPps / vB) * 1000;
    expect(bSettled, "b's allocation covers the step's traffic").toBeGreaterThanOrEqual(
      0.9 * stepNeedCpuMillis,
    );
    expect(bSettled, "b's allocation rose substantially").toBeGreaterThan(1.25 * bBefore);
    expect(bSettled).toBeGreaterThan(aSettled);
    expect(
      peak2s,
      "within 2 s of the step b already had most of its new allocation",
    ).toBeGreaterThanOrEqual(0.9 * bSettled);
    expect(reactionMs).toBeLessThanOrEqual(2000);
    // b keeps up with its new load at the end, far beyond what the pre-step allocation could serve
    expect(bRatioEnd).toBeGreaterThanOrEqual(0.8);
    expect(aRatio).toBeGreaterThanOrEqual(0.9);
    await downAndCheck(tb);
  });

  // The same constant load four times on one testbed with a 2-thread hog: manager off (plain
  // CFS, the values the testbed leaves: no quota, shares 1024 each), on, off, on. Alternating
  // spreads the drift of this busy host's other load over both modes. Each run is measured
  // after its first 2 s (the manager's learning), per second, so one stall of the VM (the
  // generator's own event loop stalls up to 100-600 ms here) cannot decide a p99.
  const HOG_PPS = 400;
  const HOG_RUN_MS = 8000;
  const HOG_SKIP_MS = 2000;
  const hogRuns: HogRun[] = [];
  let hogRecords: CycleRecord[] = [];
  let hogRunsDone = false;

  it("with a batch hog present, network partitions keep their throughput and p99 latency with weir, and the hog still runs", async () => {
    const tb = await up("h", ["a", "b"], [{ name: "hog", cpus: 2 }]);
    const parts = tb.partitions as TestbedPartition[];
    const hog = tb.hogs[0]!;
    const runOnce = async (managed: boolean): Promise<HogRun> => {
      const m = managed ? await manage(tb) : null;
      try {
        if (m) await sleep(500);
        const startRecords = m?.records.length ?? 0;
        const hog0 = cpuacctUsageNs(hog.cgroup);
        const host = new HeldHostCpu("/proc");
        const host0 = host.read(Date.now());
        const t0 = nowMs();
        const eld = monitorEventLoopDelay({ resolution: 5 });
        eld.enable();
        const load = await runLoad({
          targets: parts.map((p) => ({ name: p.name, addr: p.nsAddr, port: p.port })),
          schedule: { kind: "constant", pps: HOG_PPS },
          durationMs: HOG_RUN_MS,
          maxPackets: 2 * HOG_PPS * (HOG_RUN_MS / 1000) + 500,
          phases: [{ name: "measured", fromMs: HOG_SKIP_MS, toMs: HOG_RUN_MS }],
        });
        eld.disable();
        const wallS = (nowMs() - t0) / 1000;
        const hostUse = hostCpuFromSamples(host0, host.read(Date.now()));
        host.close();
        const measured = load.targets.map((t) => t.phases[0]!);
        const sent = measured.reduce((a, ph) => a + ph.sent, 0);
        const answered = measured.reduce((a, ph) => a + ph.answered, 0);
        const perSecondP99 = load.targets.flatMap((t) =>
          t.timeline
            .filter((x) => x.second >= HOG_SKIP_MS / 1000 && x.spanMs >= 900 && x.p99Ms !== null)
            .map((x) => x.p99Ms!),
        );
        const run: HogRun = {
          managed,
          servedRatio: answered / sent,
          minTargetRatio: Math.min(...measured.map((ph) => ph.servedRatio ?? 0)),
          p99Ms: Math.max(...measured.map((ph) => ph.latency.p99Ms ?? Number.POSITIVE_INFINITY)),
          perSecondP99,
          hogCpuSec: (cpuacctUsageNs(hog.cgroup) - hog0) / 1e9,
          idleCpuSec: hostUse ? hostUse.idleFraction * hostUse.cpus * wallS : Number.NaN,
          wallS,
          generatorP99DelayMs: eld.percentile(99) / 1e6,
          records: m ? m.records.slice(startRecords) : [],
          startedAtMs: load.startedAtEpochMs,
          sent: load.totals.sent,
        };
        return run;
      } finally {
        await m?.stop();
      }
    };
    for (const managed of [false, true, false, true]) hogRuns.push(await runOnce(managed));
    hogRecords = hogRuns.flatMap((r) =>
      r.records.filter((c) => c.startedAtMs >= r.startedAtMs + HOG_SKIP_MS),
    );
    hogRunsDone = true;

    const off = hogRuns.filter((r) => !r.managed);
    const on = hogRuns.filter((r) => r.managed);
    const med = (rs: HogRun[]) => median(rs.flatMap((r) => r.perSecondP99));
    const summary = (label: string, rs: HogRun[]) =>
      `${label}: served/offered ${rs.map((r) => r.servedRatio.toFixed(3)).join(", ")}; ` +
      `p99 ${rs.map((r) => r.p99Ms.toFixed(1)).join(", ")} ms (median of per-second p99 ${med(rs).toFixed(1)} ms); ` +
      `hog ${rs.map((r) => `${r.hogCpuSec.toFixed(2)} CPU-s/${r.wallS.toFixed(1)} s`).join(", ")}; ` +
      `generator event-loop delay p99 ${rs.map((r) => r.generatorP99DelayMs.toFixed(0)).join(", ")} ms`;
    console.info(
      [
        `balance hog (2 partitions x ${HOG_PPS} pps, ${COST_ROUNDS} SHA-256 rounds/request, hog 2 threads):`,
        `  ${summary("manager off", off)}`,
        `  ${summary("weir       ", on)}`,
        `  weir's view: ${["a", "b", "hog"]
          .map(
            (id) =>
              `${id} cap ${mean(hogRecords.map((c) => allocOf(c, id))).toFixed(0)}m uses ${mean(hogRecords.map((c) => 1000 * (tpOf(c, id)?.cpuCores ?? 0))).toFixed(0)}m throttled ${(100 * mean(hogRecords.map((c) => tpOf(c, id)?.throttledFraction ?? 0))).toFixed(0)} %`,
          )
          .join("; ")}`,
      ].join("\n"),
    );
    for (const r of hogRuns) expect(r.sent).toBeGreaterThan(2 * HOG_PPS * 6);
    // Throughput kept: with weir managing, both partitions are served.
    for (const r of on) {
      expect(r.servedRatio).toBeGreaterThanOrEqual(0.95);
      expect(r.minTargetRatio).toBeGreaterThanOrEqual(0.9);
    }
    // Latency stays in the same range as plain CFS (per-second p99, median over 2 runs x 2
    // partitions x 6 s). The manager runs in this test's process, on the load generator's event
    // loop, so its cycles add to the measured latency in the managed runs only; weir measured
    // 0.4-1.6x plain CFS here (busy host: better; quiet host: 12 vs 7.5 ms). The latency
    // comparison with its caveats is in BENCHMARKS.md (`weir bench scenarios-real`).
    // A request's measured latency includes the generator's own lateness: on a busy host its
    // event loop was late by 71–84 ms (p99) in the managed runs and 36–205 ms in the unmanaged
    // ones, while plain CFS's per-second p99 was 28 ms (soak, 2026-12-05). The lateness allowed
    // on top of the bound is the unmanaged runs': the machine's, measured here without the
    // manager, so a manager that held up the loop it shares is not excused by it.
    const lateMs = Math.max(...off.map((r) => r.generatorP99DelayMs));
    expect(
      med(on),
      `generator event-loop delay p99 up to ${lateMs.toFixed(0)} ms`,
    ).toBeLessThanOrEqual(2 * med(off) + 10 + lateMs);
    // The hog still runs under weir: it used CPU in every managed run.
    for (const r of on) expect(r.hogCpuSec).toBeGreaterThanOrEqual(0.2 * r.wallS);
    // weir managed all three the whole time
    expect(hogRecords.length).toBeGreaterThan(50);
    for (const c of hogRecords) for (const p of c.partitions) expect(p.status).toBe("ok");
    await downAndCheck(tb);
  });

  // Work conservation: weir runs the batch hog in the kernel's idle class and caps nobody here,
  // so the CPU the network partitions leave idle goes to the hog at once. What is measured is
  // the share of the CPU nothing else used that the hog took: hog ÷ (hog + host idle), from
  // cpuacct and /proc/stat over each run. Plain CFS (manager off) gives the hog that CPU too;
  // weir must give it about as much, not a fixed slice. (The hog's CPU itself is not compared
  // between the modes: on a shared host, an idle-class hog yields to every other process there,
  // as meant, while a plain one takes its fair share from them.)
  it("with a batch hog present, the hog takes the CPU network traffic leaves (work-conserving)", () => {
    expect(hogRunsDone, "the hog runs above did not complete").toBe(true);
    const on = hogRuns.filter((r) => r.managed);
    const off = hogRuns.filter((r) => !r.managed);
    const hogCores = (rs: HogRun[]) => mean(rs.map((r) => r.hogCpuSec / r.wallS));
    const took = (rs: HogRun[]) => mean(rs.map((r) => r.hogCpuSec / (r.hogCpuSec + r.idleCpuSec)));
    const hogDirectives = hogRecords.flatMap((c) =>
      c.partitions.filter((p) => p.id === "hog").map((p) => p.directive!),
    );
    const capped = hogDirectives.filter((d) => d.capReason !== null).length;
    const idle = (rs: HogRun[]) => rs.map((r) => r.idleCpuSec.toFixed(2)).join(", ");
    console.info(
      `balance hog work conservation: the hog took ${(100 * took(on)).toFixed(1)} % of the CPU nothing else used with weir (${hogCores(on).toFixed(2)} cores; host idle ${idle(on)} CPU-s), ` +
        `${(100 * took(off)).toFixed(1)} % with the manager off (${hogCores(off).toFixed(2)} cores; idle ${idle(off)} CPU-s); ` +
        `hog capped in ${capped} of ${hogDirectives.length} cycles (batch suppression)`,
    );
    // the hog ran in the idle class with no cap for (nearly) the whole time
    for (const d of hogDirectives) expect(d.idle).toBe(true);
    expect(capped).toBeLessThanOrEqual(0.2 * hogDirectives.length);
    // and took most of the CPU left idle by everything else, as plain CFS lets it
    expect(took(on), "hog ÷ (hog + host idle), with weir").toBeGreaterThanOrEqual(0.8 * took(off));
  });

  // The manager holds file descriptors on the partitions' cgroup files and reads their
  // counters every cycle. Tearing the testbed down under a running manager (the demo's Ctrl-C
  // path if it went wrong, or an operator's `weir testbed down`) must still leave nothing, and
  // the manager must carry on and stop without recreating anything.
  it("teardown under a running manager leaves no namespaces, links, cgroups or processes", async () => {
    const tb = await up("t", ["a"], [{ name: "hog", cpus: 1 }]);
    const a = tb.partitions[0]!;
    const m = await manage(tb);
    let stopped = false;
    try {
      const load = await runLoad({
        targets: [{ name: "a", addr: a.nsAddr, port: a.port }],
        schedule: { kind: "constant", pps: 300 },
        durationMs: 3000,
        maxPackets: 1200,
      });
      expect(load.targets[0]!.answered).toBeGreaterThan(0);
      // weir wrote both cgroups: a's weight (its entitlement's share), the hog's idle class
      await sleep(300);
      expect(Number(readCg(a.cgroup, "cpu.shares"))).not.toBe(1024);
      expect(readCg(tb.hogs[0]!.cgroup, "cpu.idle")).toBe("1");
      const rec = snapshot(readState(tb.stateFile)!);
      const down = await testbedDown(tb.stateFile);
      expect(down.failed).toEqual([]);
      expect(down.clean).toBe(true);
      expectNothingLeft(rec);
      const cyclesAtDown = m.records.length;
      await sleep(1500);
      // the manager kept cycling and saw its partitions go
      expect(m.records.length).toBeGreaterThan(cyclesAtDown + 5);
      for (const p of m.records.at(-1)!.partitions) expect(p.status).not.toBe("ok");
      await m.stop();
      stopped = true;
      // stopping (with restore) found nothing to write to and recreated nothing
      expectNothingLeft(rec);
    } finally {
      if (!stopped) await m.stop();
    }
  });
});
