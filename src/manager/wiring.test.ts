// The composition root: the backend each partition's `actuator` names (or the one the caller
// stands in for it), dry run over any backend, the parts' defaults.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RecordingBackend } from "../actuators/recording.ts";
import { v2Format } from "../cgroup/formats.ts";
import { ErrorCodes } from "../core/errors.ts";
import type { CounterSample } from "../core/model.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { parseConfig } from "./config.ts";
import type { AgentReading } from "./manager-options.ts";
import { buildManager, decidePlacement, matchFound, matchFoundCpusets } from "./wiring.ts";

/** A sensor whose counters grow as a 1,000 packets/s server using 200m would make them. */
function steadySensor(): PartitionSensor {
  let atMs = 0;
  return {
    read(): CounterSample {
      atMs += 100;
      const s = atMs / 1000;
      return {
        atMs,
        cpuUsageNs: s * 0.2e9,
        offeredPackets: s * 1000,
        servedPackets: s * 1000,
        droppedPackets: 0,
        nrPeriods: 0,
        nrThrottled: 0,
        throttledNs: 0,
      };
    },
    close() {},
  };
}

const config = (actuator?: string) =>
  parseConfig({
    capacity: { cpus: 2 },
    partitions: [
      { name: "a", cgroup: "weir/a", interfaces: ["veth-a"], ...(actuator ? { actuator } : {}) },
      { name: "b", cgroup: "weir/b", interfaces: ["veth-b"], actuator: "recording" },
    ],
  });

describe("partitions[].actuator", () => {
  it("defaults to cgroup and names a registered backend", () => {
    const cfg = config();
    expect(cfg.partitions.map((p) => p.actuator)).toEqual(["cgroup", "recording"]);
  });

  it("an unknown backend is refused naming field, rule and value", () => {
    expect(() => config("libvirt")).toThrowError(
      /partitions\[0\]\.actuator: must be a registered actuator backend: cgroup, cgroup-v1, cgroup-v2, recording, qemu \(rule: actuator-backend\): got "libvirt"/,
    );
  });
});

describe("buildManager", () => {
  const parts = (recorder: RecordingBackend) => ({
    onlineCpus: 2,
    now: () => 0,
    hostCpu: null,
    openSensor: () => steadySensor(),
    actuators: { cgroup: recorder, recording: recorder },
  });

  it("opens each partition on the backend its config names, built once per name", () => {
    const recorder = new RecordingBackend();
    recorder.create("weir/a");
    recorder.create("weir/b");
    const wired = buildManager(config(), parts(recorder));
    expect(wired.backendName).toBe("recording, recording");
    expect(wired.capacityCpuMillis).toBe(2000);
    wired.manager.runCycle();
    const r = wired.manager.runCycle();
    // both partitions got a directive and the recorder took the writes
    expect(r.partitions.map((p) => [p.id, p.status])).toEqual([
      ["a", "ok"],
      ["b", "ok"],
    ]);
    expect(recorder.writes().length).toBeGreaterThan(0);
    expect(new Set(recorder.writes().map((w) => w.cgroup))).toEqual(new Set(["weir/a", "weir/b"]));
  });

  it("dry run: the same decisions, reported as written, and nothing reaches the backend", () => {
    const live = new RecordingBackend();
    const dry = new RecordingBackend();
    for (const r of [live, dry]) {
      r.create("weir/a");
      r.create("weir/b");
    }
    const a = buildManager(config(), parts(live)).manager;
    const wiredDry = buildManager(config(), { ...parts(dry), dryRun: true });
    expect(wiredDry.backendName).toBe("recording (dry run), recording (dry run)");
    const b = wiredDry.manager;
    for (let i = 0; i < 5; i++) {
      const ra = a.runCycle();
      const rb = b.runCycle();
      expect(rb.partitions.map((p) => [p.directive, p.written])).toEqual(
        ra.partitions.map((p) => [p.directive, p.written]),
      );
    }
    expect(live.writes().length).toBeGreaterThan(0);
    expect(dry.writes()).toEqual([]);
    // still what a fresh cgroup holds
    expect(dry.files("weir/a")).toEqual(v2Format.freshValues);
  });

  it("takes weir's knobs from the config (the defaults are the policy's) and a caller's over them", () => {
    const recorder = new RecordingBackend();
    recorder.create("weir/a");
    recorder.create("weir/b");
    const seen: number[] = [];
    const { manager } = buildManager(config(), {
      ...parts(recorder),
      knobs: { headroomFraction: 0.5 },
      policy: {
        name: "probe",
        initialState: () => ({}) as never,
        step: (input, state) => {
          expect(input.knobs).toEqual({ ...defaultPolicyKnobs(2000), headroomFraction: 0.5 });
          seen.push(input.knobs.capacityCpuMillis);
          return { directives: [], decisions: [], state };
        },
      },
    });
    manager.runCycle();
    expect(seen).toEqual([2000]);
  });
});

describe("redactedConfig (GET /api/config): the config in force", () => {
  it("shows the min, max, weight and importance a runtime change moved, in the config's units and names", () => {
    // before: the config file's bounds, whatever PATCH /api/partitions/:id had changed
    const recorder = new RecordingBackend();
    const cfg = parseConfig({
      capacity: { cpus: 2 },
      api: { token: "test-token-0123456789abcdef" },
      partitions: [
        { name: "a", cgroup: "weir/a", interfaces: ["veth-a"], min: "200m", weight: 300 },
        { name: "b", cgroup: "weir/b", interfaces: ["veth-b"], max: 1.5 },
      ],
    });
    const { manager } = buildManager(cfg, { onlineCpus: 2, actuators: { cgroup: recorder } });
    type Shown = {
      api: { token: string };
      partitions: Array<{ min: number; max?: number; weight: number; importance: number }>;
    };
    const shown = () => manager.redactedConfig() as Shown;
    const before = shown();
    expect(before.api.token).toBe("<redacted>");
    expect(
      before.partitions.map(({ min, max, weight, importance }) => ({
        min,
        max,
        weight,
        importance,
      })),
    ).toEqual([
      { min: 200, max: undefined, weight: 300, importance: 3 },
      { min: 0, max: 1500, weight: 100, importance: 3 },
    ]);
    manager.updateBounds("a", { maxCpuMillis: 1200, weight: 50 });
    manager.updateBounds("b", { minCpuMillis: 100, importance: 1 });
    const after = shown();
    expect(after.api.token).toBe("<redacted>");
    expect(
      after.partitions.map(({ min, max, weight, importance }) => ({
        min,
        max,
        weight,
        importance,
      })),
    ).toEqual([
      { min: 200, max: 1200, weight: 50, importance: 3 },
      { min: 100, max: 1500, weight: 100, importance: 1 },
    ]);
    // the config itself is untouched (a restart starts from it)
    expect(cfg.partitions[0]!.weight).toBe(300);
    expect(cfg.partitions[0]!.max).toBeUndefined();
    // a bound set back to the config's shows as the config says it (an absent max stays absent)
    manager.updateBounds("a", { maxCpuMillis: 2000, weight: 300 });
    expect(shown().partitions[0]).not.toHaveProperty("max");
    expect(shown().partitions[0]!.weight).toBe(300);
  });
});

describe("agent-fed partitions: the host cgroup's throttling and CPU delay with the agent's report", () => {
  // A guest (source: agent) whose QEMU cgroup is the v1 fixture weir/web, copied so the test
  // can move its counters: cpuacct.usage, cpu.stat, and run_delay of its tasks 4242, 4243.
  const FIX = path.join(import.meta.dirname, "..", "sensors", "fixtures");
  const tmp: string[] = [];
  afterEach(() => {
    for (const d of tmp.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const tree = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "weir-agentcpu-"));
    tmp.push(d);
    fs.cpSync(FIX, d, { recursive: true });
    const cpu = path.join(d, "v1", "cgroup", "cpu", "weir", "web");
    const write = (usageNs: number, periods: number, throttled: number, delay4242Ns: number) => {
      fs.writeFileSync(path.join(d, "v1/cgroup/cpuacct/weir/web/cpuacct.usage"), `${usageNs}\n`);
      fs.writeFileSync(
        path.join(cpu, "cpu.stat"),
        `nr_periods ${periods}\nnr_throttled ${throttled}\nthrottled_time 0\n`,
      );
      fs.writeFileSync(path.join(d, "proc/4242/schedstat"), `183828221 ${delay4242Ns} 394\n`);
    };
    const roots = {
      sysfs: path.join(d, "sys"),
      procfs: path.join(d, "proc"),
      cgroupfs: path.join(d, "v1", "cgroup"),
    };
    return { roots, write, dir: d };
  };
  type Dir = string;
  const cfgAt = (roots: { sysfs: string; procfs: string; cgroupfs: string }) =>
    parseConfig({
      capacity: { cpus: 2 },
      roots,
      transport: { shm: { path: "/run/weir/unused-by-this-test", slots: 1 } },
      partitions: [
        {
          name: "g1",
          cgroup: "weir/web",
          actuator: "recording",
          source: "agent",
          agent: { key: "00".repeat(32), index: 0 },
        },
      ],
    });
  // what the guest's agent reports: its own packets, and its own CPU (0.4 of a core, never throttled)
  const report = (atMs: number, packets: number): AgentReading => ({
    sample: {
      atMs,
      offeredPackets: packets,
      servedPackets: Math.round(packets * 0.9),
      droppedPackets: 0,
      cpuUsageNs: atMs * 0.4e6,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
    },
    receivedAtMs: atMs,
  });
  const run = (parts: { openAgentCpuSensor?: null }, then?: (d: Dir) => number) => {
    const { roots, write, dir } = tree();
    const clock = { t: 10_000 };
    let reading = report(clock.t, 0);
    const recorder = new RecordingBackend();
    recorder.create("weir/web");
    const errors: string[] = [];
    const { manager } = buildManager(cfgAt(roots), {
      onPartitionError: (id, e, status) => errors.push(`${id} ${status} ${e.code}`),
      onlineCpus: 2,
      now: () => clock.t,
      hostCpu: null,
      reachableCpus: false,
      actuators: { recording: recorder },
      reports: { latest: () => new Map([["g1", reading]]) },
      ...parts,
    });
    write(1e9, 100, 0, 11_649_082);
    manager.runCycle();
    // one second later: the cgroup used 0.9 of a core, was throttled in 6 of 10 CFS periods,
    // and its thread 4242 waited 300 ms for a CPU (4243's run_delay did not move)
    clock.t += 1000;
    write(1e9 + 900e6, 110, 6, 11_649_082 + 300e6);
    reading = report(clock.t, 500);
    const p = manager.runCycle().partitions[0]!;
    if (!then) return { p, errors };
    // later cycles, one report each, after `then` did something to the tree
    const cycles = then(dir);
    let last = p;
    for (let i = 1; i <= cycles; i++) {
      clock.t += 1000;
      reading = report(clock.t, 500 + 1000 * i);
      last = manager.runCycle().partitions[0]!;
    }
    return { p: last, errors };
  };

  it("throttling and CPU delay come from the cgroup; packets and CPU used from the report", () => {
    const { p, errors } = run({});
    expect(errors).toEqual([]);
    expect(p.status).toBe("ok");
    expect(p.throughput).toEqual({
      partition: "g1",
      windowMs: 1000,
      offeredPacketsPerSec: 500,
      servedPacketsPerSec: 450,
      droppedPacketsPerSec: 0,
      // the guest's own 0.4 of a core, and 450 served per second ÷ 0.4
      cpuCores: 0.4,
      rawVelocityPacketsPerCpuSec: 1125,
      // the QEMU cgroup: throttled in 6 of 10 periods, 300 ms waiting ÷ (300 + 900 ms running)
      throttledFraction: 0.6,
      cpuDelayFraction: 0.25,
      source: "agent",
      congestionFrom: "host",
    });
  });

  it("without the host sensor the report's own CPU figures stand", () => {
    const { p } = run({ openAgentCpuSensor: null });
    expect(p.throughput).toMatchObject({
      cpuCores: 0.4,
      throttledFraction: 0,
      cpuDelayFraction: null,
    });
    expect(p.throughput?.congestionFrom).toBeUndefined();
  });

  it("a counter it cannot read loses only the CPU sensor: the report's figures, the partition ok, said once", () => {
    const { p, errors } = run({}, (d) => {
      fs.writeFileSync(path.join(d, "v1/cgroup/cpuacct/weir/web/cpuacct.usage"), "garbage\n");
      return 3; // within the default retryGoneMs (5 s): not reopened yet
    });
    expect(p.status).toBe("ok");
    expect(p.throughput).toMatchObject({ offeredPacketsPerSec: 1000, cpuCores: 0.4 });
    expect(p.throughput?.congestionFrom).toBeUndefined();
    expect(errors).toEqual([`g1 ok ${ErrorCodes.COUNTER_MALFORMED}`]);
  });
});

describe("a v1 partition's throttling is read only under a CFS quota", () => {
  const FIX = path.join(import.meta.dirname, "../sensors/fixtures");
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  /** The real sensor and cgroup actuator on a copy of the sensors' v1 tree (weir/web, vweb0). */
  function wire(max?: string) {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "weir-quota-"));
    dirs.push(base);
    fs.cpSync(FIX, base, { recursive: true });
    const cpu = path.join(base, "v1/cgroup/cpu/weir/web");
    const cfg = parseConfig({
      capacity: { cpus: 2 },
      roots: {
        cgroupfs: path.join(base, "v1/cgroup"),
        sysfs: path.join(base, "sys"),
        procfs: path.join(base, "proc"),
      },
      partitions: [
        {
          name: "web",
          cgroup: "weir/web",
          interfaces: [{ name: "vweb0", offered: "tx", served: "rx" }],
          ...(max ? { max } : {}),
        },
      ],
    });
    let t = 0;
    const { manager } = buildManager(cfg, {
      onlineCpus: 2,
      now: () => (t += 100),
      hostCpu: null,
      reachableCpus: false,
    });
    const rx = path.join(base, "sys/class/net/vweb0/statistics/rx_packets");
    let served = 711;
    let periods = 5120;
    let throttled = 312;
    /** A cycle in which it served packets and, when `throttledNow`, was throttled in 10 of 10 periods. */
    const cycle = (throttledNow: boolean) => {
      served += 100;
      fs.writeFileSync(rx, `${served}\n`);
      if (throttledNow) {
        periods += 10;
        throttled += 10;
      }
      fs.writeFileSync(
        path.join(cpu, "cpu.stat"),
        `nr_periods ${periods}\nnr_throttled ${throttled}\nthrottled_time ${throttled * 1e6}\n`,
      );
      return manager.runCycle().partitions[0]!.throughput?.throttledFraction;
    };
    const quota = () => fs.readFileSync(path.join(cpu, "cpu.cfs_quota_us"), "utf8").trim();
    return { cycle, quota, cpu, rx, manager };
  }

  it("none in force: the counters are not read (a quota found at open is read until it goes)", () => {
    const w = wire();
    // found with a quota (the fixture's 25000); weir's first apply takes it away (no cap)
    w.cycle(false);
    expect(w.quota()).toBe("-1");
    expect(w.cycle(true)).toBe(1); // the read after the quota went: what it counted before
    // no quota: counters that moved anyway (only a quota moves them) are not read...
    expect(w.cycle(true)).toBe(0);
    // ...nor is the file: one that cannot be parsed fails nothing
    fs.writeFileSync(w.rx, "1011\n");
    fs.writeFileSync(path.join(w.cpu, "cpu.stat"), "garbage\n");
    const p = w.manager.runCycle().partitions[0]!;
    expect([p.status, p.error, p.throughput?.throttledFraction]).toEqual(["ok", undefined, 0]);
  });

  it("a quota set by config `max`: written, and the counters read every cycle", () => {
    const w = wire("500m");
    w.cycle(false);
    expect(Number(w.quota())).toBeGreaterThan(0);
    expect(w.cycle(true)).toBe(1);
    expect(w.cycle(false)).toBe(0);
    expect(w.cycle(true)).toBe(1);
  });
});

describe("decidePlacement", () => {
  const both = { partitions: [{ kind: "network" }, { kind: "batch" }] };
  const mode = (m: "off" | "spread" | "auto") => ({ ...both, placement: { mode: m } });
  it("auto places where servers share CPUs with batch and a wake-up does not search them", () => {
    const d = decidePlacement(both, true, [0, 1], false);
    expect(d).toMatchObject({ mode: "auto", inForce: true });
    expect(d.why).toMatch(
      /placement \(auto\) is in force: network and batch partitions share this host, whose CPUs share no last-level cache/,
    );
    expect(decidePlacement(mode("auto"), true, [0, 1], false).inForce).toBe(true);
  });
  it("auto does not place, and says why, where nothing needs it or nothing can be placed", () => {
    const why = (
      c: { partitions: Array<{ kind: string }> },
      can: boolean,
      cpus: number[],
      searches: boolean,
    ) => {
      const d = decidePlacement(c, can, cpus, searches);
      expect(d.inForce).toBe(false);
      return d.why;
    };
    expect(why(both, true, [0, 1], true)).toBe(
      "placement (auto) is not in force: this host's CPUs share a last-level cache (or their topology cannot be read), so the kernel finds a woken server an idle CPU itself",
    );
    expect(why(both, false, [0, 1], false)).toMatch(
      /not in force: no network partition's backend can be placed/,
    );
    expect(why(both, true, [0], false)).toMatch(/not in force: this host has one CPU$/);
    expect(why({ partitions: [{ kind: "network" }] }, true, [0, 1], false)).toMatch(
      /not in force: no batch partition shares the host/,
    );
    expect(why({ partitions: [{ kind: "batch" }] }, true, [0, 1], false)).toMatch(
      /not in force: no network partition is configured/,
    );
  });
  it("spread always places; off never does, and hints only where placement would help", () => {
    expect(decidePlacement(mode("spread"), false, [0], true)).toMatchObject({ inForce: true });
    const off = decidePlacement(mode("off"), true, [0, 1], false);
    expect(off.inForce).toBe(false);
    expect(off.why).toMatch(
      /placement is off \(placement.mode: off\), and network and batch .*mode: spread/,
    );
    expect(decidePlacement(mode("off"), true, [0, 1], true)).toEqual({
      mode: "off",
      inForce: false,
      why: null,
    });
  });
});

describe("matchFound (the state file's found values on a restart)", () => {
  const values = (shares: string) => ({ "cpu.shares": shares, "cpu.cfs_quota_us": "-1" });
  it("goes by cgroup, by name only where the file did not record one, and keeps what it cannot write back", () => {
    const asked: string[] = [];
    const r = matchFound(
      {
        found: {
          a: { partition: "a", cgroup: "w/x", actuator: "cgroup", values: values("1") },
          b: { partition: "b", values: values("2") }, // an older weir's: no cgroup
          c: { partition: "c", cgroup: "w/c", actuator: "cgroup", values: values("3") },
          old: { partition: "old", values: values("4") },
        },
        foundUnmanaged: [
          { partition: "d", cgroup: "w/d", actuator: "cgroup", values: values("5") },
          { partition: "e", cgroup: "w/e", actuator: "qemu", values: values("6") },
        ],
      },
      [
        { name: "renamed", cgroup: "/w//x" }, // a's cgroup, written another way
        { name: "b", cgroup: "w/b" },
        { name: "c", cgroup: "w/elsewhere" }, // moved: its new cgroup's values are read at open
      ],
      (e) => {
        asked.push(e.partition);
        if (e.partition === "c") return { written: ["cpu.shares"] };
        if (e.partition === "d") return { gone: true };
        return { error: "refused" };
      },
    );
    expect(r.found).toEqual({
      renamed: { partition: "renamed", values: values("1") },
      b: { partition: "b", values: values("2") },
    });
    expect(asked.sort()).toEqual(["c", "d", "e"]);
    expect(r.unmanaged.map((e) => e.partition).sort()).toEqual(["e", "old"]);
    expect(r.notes.filter((n) => n.restored).map((n) => n.message.split(":")[0])).toEqual([
      "c",
      "d",
    ]);
  });
});

describe("matchFoundCpusets (the state file's found cpusets on a restart)", () => {
  const at = (cgroup: string, cpus: string) => ({ cpus, cgroup, actuator: "cgroup" });
  const state = {
    foundCpusets: {
      a: at("w/x", "0-3"),
      b: "0-1", // an older weir's: no cgroup
      c: at("w/c", "2"),
      old: "3",
    },
    foundCpusetsUnmanaged: [{ partition: "d", ...at("w/d", "1") }],
  };
  const cfg = parseConfig(
    {
      capacity: { cpus: 4 },
      partitions: [
        { name: "renamed", cgroup: "/w//x", interfaces: ["v0"] }, // a's cgroup, written another way
        { name: "b", cgroup: "w/b", interfaces: ["v1"] },
        { name: "c", cgroup: "w/elsewhere", interfaces: ["v2"] }, // moved: its old cgroup's is not its
      ],
    },
    "test.yaml",
  );

  it("placement in force: keeps the matched ones for it, by cgroup, and writes back those of cgroups left", () => {
    const asked: string[] = [];
    const r = matchFoundCpusets(state, cfg.partitions, null, (e) => {
      asked.push(`${e.partition} ${e.cgroup} ${e.cpus}`);
      return e.partition === "c" ? { written: ["cpuset.cpus"] } : { error: "refused" };
    });
    expect(r.found).toEqual({ renamed: "0-3", b: "0-1" });
    expect(asked.sort()).toEqual(["c w/c 2", "d w/d 1"]);
    expect(r.unmanaged).toEqual([
      { partition: "old", cpus: "3" },
      { partition: "d", ...at("w/d", "1") },
    ]);
    expect(r.notes.map((n) => [n.restored, n.message.split(":")[0]])).toEqual([
      [false, "old"],
      [true, "c"],
      [false, "d"],
    ]);
  });

  it("placement not in force: writes back the matched ones too, keeping those it could not", () => {
    const restored: string[] = [];
    const r = matchFoundCpusets(
      state,
      cfg.partitions,
      (p, cpus) => {
        restored.push(`${p.name} ${p.cgroup} ${cpus}`);
        return p.name === "b" ? { error: "refused" } : { written: [] };
      },
      () => ({ gone: true }),
    );
    expect(restored).toEqual(["renamed /w//x 0-3", "b w/b 0-1"]);
    expect(r.found).toEqual({ b: "0-1" });
    expect(r.unmanaged).toEqual([{ partition: "old", cpus: "3" }]);
  });
});
