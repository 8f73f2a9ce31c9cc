// The benchmarks' stall probe (bench/stall-probe.ts) on the real machine: rt-tests' cyclictest
// (root: SCHED_FIFO), one thread per CPU for a few seconds, stopped early by SIGINT as a
// benchmark stops it at the end of its measured window. What it reads is the machine's and is
// not asserted beyond its shape; that it runs, reads and stops is — from inside a cpu cgroup of
// its own, as a benchmark runs (harness.ts isolateSelf), where a kernel with real-time group
// scheduling gives a child cgroup no real-time runtime.
import os from "node:os";
import { describe, expect, it } from "vitest";
import { isolateSelf } from "../../bench/harness.ts";
import { PROBE_INTERVAL_US, startStallProbe } from "../../bench/stall-probe.ts";

const canRun = process.getuid?.() === 0;

describe.skipIf(!canRun)("stall probe on this machine", () => {
  it("wakes one FIFO thread per CPU every 5 ms and reports how late each woke", async () => {
    const back = isolateSelf(`weirt-${process.pid}-stall`, 1024);
    const t0 = Date.now();
    let r: Awaited<ReturnType<ReturnType<typeof startStallProbe>["result"]>>;
    try {
      const probe = startStallProbe(10_000);
      setTimeout(() => probe.stop(), 2_000);
      r = await probe.result();
    } finally {
      back();
    }
    const tookMs = Date.now() - t0;
    // cyclictest is installed where the tests run (.ci/run installs rt-tests)
    expect(r).not.toBeNull();
    if (!r) return;
    const cpus = os.availableParallelism();
    expect(r.maxLateUs).toHaveLength(cpus);
    expect(r.wakeups).toHaveLength(cpus);
    // stopped at ~2 s of a 10 s run: it ended early, after about 2 s of wake-ups (400 per CPU at
    // 5 ms; at least half of that on a busy machine, and no more than the 10 s would give)
    expect(tookMs).toBeLessThan(9_000);
    for (const n of r.wakeups) {
      expect(n).toBeGreaterThan((1_000_000 / PROBE_INTERVAL_US) * 1);
      expect(n).toBeLessThan((1_000_000 / PROBE_INTERVAL_US) * 9);
    }
    for (const us of r.maxLateUs) expect(us).toBeGreaterThanOrEqual(0);
    for (const s of r.spikes) expect(s.lateUs).toBeGreaterThan(2_000);
    expect(r.guestWideUs.length).toBeLessThanOrEqual(r.spikes.length);
  });
});
