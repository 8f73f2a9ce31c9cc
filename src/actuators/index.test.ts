import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { CgroupBackend } from "./cgroup.ts";
import { actuatorBackends, createActuatorBackend, DEFAULT_ACTUATOR, dryRun } from "./index.ts";
import { RecordingBackend } from "./recording.ts";
import type { ActuatorTarget, BackendContext } from "./types.ts";

const FIXTURES = path.join(import.meta.dirname, "fixtures");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-idx-`));
fs.cpSync(FIXTURES, tmp, { recursive: true });
const V1 = path.join(tmp, "cgroup-v1");
const V2 = path.join(tmp, "cgroup-v2");
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ctx = (cgroupfs: string): BackendContext => ({
  roots: { cgroupfs, sysfs: "/sys", procfs: "/proc" },
  now: () => 5,
});

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof WeirError ? err.code : `not a WeirError: ${String(err)}`;
  }
  return undefined;
};

describe("cgroup backend: the version the host's layout has its cpu controller on", () => {
  it("v2 where the root is a cgroup2 mount, v1 where cpu + cpuacct hierarchies are", () => {
    expect(new CgroupBackend({ cgroupfs: V2 }).forHost().name).toBe("cgroup-v2");
    expect(new CgroupBackend({ cgroupfs: V1 }).forHost().name).toBe("cgroup-v1");
  });

  it("says when a v2 cgroup lacks the cpu controller and when nothing is there", () => {
    const v2 = new CgroupBackend({ cgroupfs: V2 });
    expect(codeOf(() => v2.open({ partition: "n", cgroup: "nocpu" }))).toBe(
      ErrorCodes.TARGET_NOT_WRITABLE,
    );
    const v1 = new CgroupBackend({ cgroupfs: V1 });
    expect(codeOf(() => v1.open({ partition: "n", cgroup: "weir/none" }))).toBe(
      ErrorCodes.TARGET_GONE,
    );
    expect(codeOf(() => new CgroupBackend({ cgroupfs: tmp }).forHost())).toBe(
      ErrorCodes.CGROUP_GONE,
    );
  });

  it("a backend named for one version refuses a host whose cpu controller is on the other", () => {
    const v1 = createActuatorBackend("cgroup-v1", ctx(V2));
    expect(codeOf(() => v1.open({ partition: "w", cgroup: "weir/web" }))).toBe(
      ErrorCodes.CONFIG_INVALID,
    );
  });
});

describe("registry", () => {
  it("lists the built-in backends with what they handle and can express", () => {
    const cgroupCaps = {
      cap: true,
      weight: true,
      idle: true,
      burst: true,
      cpuCount: false,
      capPeriod: true,
      cpuset: false,
    };
    // the backends on the host's cgroupfs place partitions (cpuset.cpus); the recorder and QEMU do not
    const placing = { ...cgroupCaps, cpuset: true };
    expect(actuatorBackends().map((b) => [b.name, b.handles, b.capabilities])).toEqual([
      ["cgroup", ["cgroup"], placing],
      ["cgroup-v1", ["cgroup"], placing],
      ["cgroup-v2", ["cgroup"], placing],
      ["recording", ["cgroup"], cgroupCaps],
      ["qemu", ["qemu"], { ...cgroupCaps, cpuCount: true, capPeriod: false }],
    ]);
    expect(DEFAULT_ACTUATOR).toBe("cgroup");
  });

  it("builds a backend by name, declaring what its registration declares; an unknown name lists the known ones", () => {
    for (const reg of actuatorBackends()) {
      const b = createActuatorBackend(reg.name, ctx(V2));
      expect([b.name, b.handles, b.capabilities]).toEqual([
        reg.name,
        reg.handles,
        reg.capabilities,
      ]);
    }
    expect(createActuatorBackend("recording", ctx(V2))).toBeInstanceOf(RecordingBackend);
    expect(() => createActuatorBackend("libvirt", ctx(V2))).toThrowError(
      'actuator backend must be one of cgroup, cgroup-v1, cgroup-v2, recording, qemu: current value is "libvirt"',
    );
  });
});

describe("cgroup backend on fixture trees", () => {
  it("opens v1 and v2 paths with their own files", () => {
    const v2 = new CgroupBackend({ cgroupfs: V2 }).open({ partition: "w", cgroup: "weir/web" });
    expect(Object.keys(v2.snapshot().values)).toEqual(["cpu.max", "cpu.weight"]);
    v2.close();
    const v1 = new CgroupBackend({ cgroupfs: V1 }).open({ partition: "b", cgroup: "weir/batch" });
    expect(v1.snapshot().values).toEqual({
      "cpu.cfs_period_us": "50000",
      "cpu.cfs_quota_us": "25000",
      "cpu.shares": "512",
    });
    // 400 millis at its 50000 us period = 20000 us; weight 50 = 512 shares, unchanged.
    expect(v1.apply(cappedDirective("b", 400, 50)).written).toEqual(["cpu.cfs_quota_us"]);
    expect(fs.readFileSync(path.join(V1, "cpu/weir/batch/cpu.cfs_quota_us"), "latin1")).toBe(
      "20000\n",
    );
    v1.close();
  });
});

describe("dry run over any backend", () => {
  it("starts from the real values, says what it would write, and writes nothing", () => {
    const quotaFile = path.join(V1, "cpu/weir/web/cpu.cfs_quota_us");
    const before = fs.readFileSync(quotaFile, "latin1");
    const dry = dryRun(createActuatorBackend("cgroup", ctx(V1)));
    expect(dry.name).toBe("cgroup (dry run)");
    const a = dry.open({ partition: "web", cgroup: "weir/web" });
    expect(a.snapshot().values["cpu.cfs_quota_us"]).toBe("-1");
    expect(a.apply(cappedDirective("web", 300, 100)).written).toEqual(["cpu.cfs_quota_us"]);
    // what it decided is what it observes; the file is untouched
    expect(a.applied?.()).toMatchObject({ capCpuMillis: 300, weight: 100 });
    expect(a.apply(cappedDirective("web", 300, 100)).written).toEqual([]);
    expect(fs.readFileSync(quotaFile, "latin1")).toBe(before);
    expect(codeOf(() => dry.open({ partition: "x", cgroup: "weir/none" }))).toBe(
      ErrorCodes.TARGET_GONE,
    );
  });

  it("over the recorder: nothing is recorded", () => {
    const rec = new RecordingBackend();
    rec.create("weir/a");
    const a = dryRun(rec).open({ partition: "a", cgroup: "weir/a" });
    expect(a.apply(cappedDirective("a", 250, 200)).written).toEqual(["cpu.max", "cpu.weight"]);
    expect(rec.writes()).toEqual([]);
    expect(rec.files("weir/a")).toMatchObject({ "cpu.max": "max 100000", "cpu.weight": "100" });
  });
});

describe("targets of another kind", () => {
  it("a cgroup-kind backend refuses a target without a cgroup (CONFIG_INVALID naming backend and partition)", () => {
    // a target of a kind no backend here handles (as a future `qemu` backend would declare it)
    const vm = { partition: "vm1", qemu: "/run/vm1.qmp" } as unknown as ActuatorTarget;
    for (const reg of actuatorBackends()) {
      const b = createActuatorBackend(reg.name, ctx(V1));
      let err: unknown;
      try {
        b.open(vm);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WeirError);
      expect((err as WeirError).code).toBe(ErrorCodes.CONFIG_INVALID);
      expect((err as WeirError).message).toMatch(
        /^\[(cgroup|cgroup-v1|cgroup-v2|recording)\] handles cgroup targets/,
      );
      expect((err as WeirError).message).toContain("vm1");
    }
  });
});
