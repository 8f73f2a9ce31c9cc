// The contract suite over every registered backend, each built the way config builds it
// (`createActuatorBackend(name, ctx)`), on fixture trees copied to a tmp dir (writes land in
// real files in the kernel's exact formats) or in memory. The same suite runs on the real
// cgroups of this host in test/e2e/actuator-contract.e2e.test.ts, and on the simulator's
// hypervisor in src/sim/hypervisor.test.ts.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CpuFileFormat, v1Format, v2Format } from "../cgroup/formats.ts";
import { FakeQemu } from "../vm/fake-qemu.ts";
import { actuatorContract } from "./contract.ts";
import {
  type ActuatorContractOptions,
  type ContractTargetInit,
  cgroupHarness,
} from "./contract-harness.ts";
import { actuatorBackendNames, createActuatorBackend } from "./index.ts";
import { type QemuTarget, VCPUS_KEY } from "./qemu.ts";
import type { RecordingBackend } from "./recording.ts";
import type { ActuatorTarget, BackendContext, CgroupTarget } from "./types.ts";

const FIXTURES = path.join(import.meta.dirname, "fixtures");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-contract-`));
fs.cpSync(FIXTURES, tmp, { recursive: true });
const mounts = new Set<string>();
const isRoot = process.getuid?.() === 0;
afterAll(() => {
  for (const m of mounts) execFileSync("umount", [m]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ctx = (cgroupfs: string): BackendContext => ({
  roots: { cgroupfs, sysfs: "/sys", procfs: "/proc" },
  now: () => 0,
});

/** A backend writing a fixture tree: v1 under <root>/cpu/<cgroup>, v2 under <root>/<cgroup>. */
function fixtureHarness(
  name: string,
  format: CpuFileFormat,
): ActuatorContractOptions<CgroupTarget> {
  const v1 = format === v1Format;
  const root = path.join(tmp, v1 ? "cgroup-v1" : "cgroup-v2");
  const base = v1 ? path.join(root, "cpu") : root;
  const template = path.join(base, "weir", "web");
  const backend = createActuatorBackend(name, ctx(root));
  const dirOf = (t: CgroupTarget) => path.join(base, t.cgroup);
  const held = (t: CgroupTarget) =>
    format.heldFiles.map((f) => path.join(dirOf(t), f)).filter((p) => fs.existsSync(p));
  const h = cgroupHarness(format);
  return {
    name: `${name} on a ${format.layout} fixture tree`,
    makeBackend: () => backend,
    names: h.names,
    freshSnapshot: h.freshSnapshot,
    periods: h.periods,
    makeTarget: (label: string, init?: ContractTargetInit) => {
      const cgroup = `weir/${name}-${label}`;
      fs.cpSync(template, path.join(base, cgroup), { recursive: true });
      if (init?.periodUsec)
        fs.writeFileSync(
          path.join(base, cgroup, v1 ? "cpu.cfs_period_us" : "cpu.max"),
          v1 ? `${init.periodUsec}\n` : `max ${init.periodUsec}\n`,
        );
      return { partition: label, cgroup };
    },
    readBack: (t) => {
      const values: Record<string, string> = {};
      for (const f of format.snapshotFiles) {
        const p = path.join(dirOf(t), f);
        if (!fs.existsSync(p)) continue;
        const text = fs.readFileSync(p, "latin1");
        // one line, newline-terminated, as the kernel prints it
        expect(text).toMatch(/^[^\n]+\n$/);
        values[f] = text.trim();
      }
      return h.view(values);
    },
    removeTarget: (t) => {
      const dir = dirOf(t);
      if (mounts.delete(dir)) execFileSync("umount", [dir]);
      fs.rmSync(dir, { recursive: true, force: true });
      if (v1) fs.rmSync(path.join(root, "cpuset", t.cgroup), { recursive: true, force: true });
    },
    // v1: a cpuset cgroup at the partition's path; v2: cpuset.cpus in its own dir
    cpuset: {
      make: (t) => {
        const dir = v1 ? path.join(root, "cpuset", t.cgroup) : dirOf(t);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, "cpuset.cpus"), "0-1\n");
      },
      read: (t) =>
        fs
          .readFileSync(
            path.join(v1 ? path.join(root, "cpuset", t.cgroup) : dirOf(t), "cpuset.cpus"),
            "latin1",
          )
          .trim(),
    },
    // mtimes set to the epoch; any write moves them to now
    writeProbe: {
      arm: (t) => {
        for (const p of held(t)) fs.utimesSync(p, 0, 0);
      },
      touched: (t) => held(t).some((p) => fs.statSync(p).mtimeMs !== 0),
    },
    // root ignores file modes: a read-only bind mount (EROFS) is what a container's ro cgroupfs gives
    makeUnwritable: (t) => {
      const dir = dirOf(t);
      if (!isRoot) {
        for (const p of held(t)) fs.chmodSync(p, 0o444);
        return;
      }
      execFileSync("mount", ["--bind", dir, dir]);
      mounts.add(dir);
      execFileSync("mount", ["-o", "remount,ro,bind", dir]);
    },
  };
}

/** The in-memory recorder, with the file layout `format` (its write log is the write probe). */
function recordingHarness(format: CpuFileFormat): ActuatorContractOptions<CgroupTarget> {
  const recorder = createActuatorBackend("recording", ctx(tmp)) as RecordingBackend;
  const periodFile = format === v1Format ? "cpu.cfs_period_us" : "cpu.max";
  const armed = new Map<string, number>();
  const h = cgroupHarness(format);
  return {
    name: `recording (${format.layout} files)`,
    makeBackend: () => recorder,
    names: h.names,
    freshSnapshot: h.freshSnapshot,
    periods: h.periods,
    makeTarget: (label, init) => {
      const cgroup = `weir/${format.layout}-${label}`;
      const values: Record<string, string> = {};
      if (init?.periodUsec)
        values[periodFile] =
          format === v1Format ? String(init.periodUsec) : `max ${init.periodUsec}`;
      recorder.create(cgroup, values, format);
      return { partition: label, cgroup };
    },
    readBack: (t) => {
      const files = recorder.files(t.cgroup);
      if (!files) throw new Error(`${t.cgroup} is gone`);
      return h.view(files);
    },
    removeTarget: (t) => {
      recorder.remove(t.cgroup);
    },
    writeProbe: {
      arm: (t) => {
        armed.set(t.cgroup, recorder.writes(t.cgroup).length);
      },
      touched: (t) => recorder.writes(t.cgroup).length !== armed.get(t.cgroup),
    },
    makeUnwritable: (t) => recorder.setFault(t.cgroup, "not-writable"),
  };
}

/**
 * The QEMU backend: its cgroup a v1 fixture tree, its QEMU and guest a FakeQemu (src/vm/
 * fake-qemu.ts: QMP as QEMU 7.2 answers it, the guest kernel's console lines) with 3 vCPU slots.
 */
function qemuHarness(): ActuatorContractOptions<QemuTarget> {
  // QEMU places no cpuset (it declares none): the cgroup harness's cpuset is left out
  const { cpuset: _noCpuset, ...cg } = fixtureHarness("qemu", v1Format);
  const fakes = new Map<string, FakeQemu>();
  const cgroupOf = (t: QemuTarget): CgroupTarget => ({
    partition: t.partition,
    cgroup: t.qemu.cgroup,
  });
  return {
    ...cg,
    name: "qemu on a cgroup-v1 fixture tree and a fake QEMU",
    freshSnapshot: { ...cg.freshSnapshot, [VCPUS_KEY]: "1" },
    makeTarget: async (label, init) => {
      const c = cg.makeTarget(label, init) as CgroupTarget;
      const base = path.join(tmp, `qemu-${label}`);
      const fake = await FakeQemu.start({
        qmpSocket: `${base}.qmp`,
        consoleLog: `${base}.serial.log`,
        maxCpus: 3,
      });
      fakes.set(label, fake);
      return {
        partition: label,
        qemu: { cgroup: c.cgroup, qmpSocket: `${base}.qmp`, consoleLog: `${base}.serial.log` },
      };
    },
    readBack: async (t) => {
      const fake = fakes.get(t.partition);
      await fake?.quiet();
      return { ...(await cg.readBack(cgroupOf(t))), cpuCount: fake?.plugged() ?? 0 };
    },
    removeTarget: async (t) => {
      await cg.removeTarget(cgroupOf(t));
      await fakes.get(t.partition)?.kill();
      fakes.delete(t.partition);
    },
    writeProbe: {
      arm: (t) => cg.writeProbe!.arm(cgroupOf(t)),
      touched: (t) => cg.writeProbe!.touched(cgroupOf(t)),
    },
    makeUnwritable: (t) => cg.makeUnwritable!(cgroupOf(t)),
  };
}

/** Runs the suite over each of a backend's harnesses (of whatever target kind). */
const suites =
  <T extends ActuatorTarget>(...make: Array<() => ActuatorContractOptions<T>>) =>
  () => {
    for (const m of make) actuatorContract(m());
  };

/** Every registered backend's harnesses (a backend registered without one fails below). */
const HARNESSES: Record<string, () => void> = {
  cgroup: suites(
    () => fixtureHarness("cgroup", v1Format),
    () => fixtureHarness("cgroup", v2Format),
  ),
  "cgroup-v1": suites(() => fixtureHarness("cgroup-v1", v1Format)),
  "cgroup-v2": suites(() => fixtureHarness("cgroup-v2", v2Format)),
  recording: suites(
    () => recordingHarness(v2Format),
    () => recordingHarness(v1Format),
  ),
  qemu: suites(qemuHarness),
};

describe("the contract's reach", () => {
  it("every registered backend has a harness here", () => {
    expect(Object.keys(HARNESSES).sort()).toEqual([...actuatorBackendNames()].sort());
  });
});

for (const name of actuatorBackendNames()) HARNESSES[name]?.();
