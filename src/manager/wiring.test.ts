// The composition root: the backend each partition's `actuator` names (or the one the caller
// stands in for it), dry run over any backend, the parts' defaults.
import { describe, expect, it } from "vitest";
import { RecordingBackend } from "../actuators/recording.ts";
import { v2Format } from "../cgroup/formats.ts";
import type { CounterSample } from "../core/model.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { parseConfig } from "./config.ts";
import { buildManager } from "./wiring.ts";

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
