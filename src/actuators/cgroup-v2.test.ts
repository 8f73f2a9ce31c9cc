// cgroup v2 details beyond the contract (contract.test.ts runs that on the same fixture tree),
// on a fixture tree (this host has no v2 cpu controller, docs/measured-facts.md) copied into a
// tmp dir so writes land in real files with the kernel's exact formats.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { CgroupV2Backend } from "./cgroup-v2.ts";
import type { CgroupTarget } from "./types.ts";

const FIXTURE = path.join(import.meta.dirname, "fixtures", "cgroup-v2");
const root = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-v2-`));
fs.cpSync(FIXTURE, root, { recursive: true });
const backend = new CgroupV2Backend({ cgroupfs: root });

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const dirOf = (t: CgroupTarget) => path.join(root, t.cgroup);
const read = (t: CgroupTarget, file: string) =>
  fs.readFileSync(path.join(dirOf(t), file), "latin1");

describe("cgroup-v2 files", () => {
  const target = (name: string): CgroupTarget => {
    const cgroup = `weir/${name}`;
    fs.cpSync(path.join(FIXTURE, "weir", "web"), path.join(root, cgroup), { recursive: true });
    return { partition: name, cgroup };
  };

  it("writes the exact formats: a shorter value replaces a longer one", () => {
    const t = target("formats");
    const a = backend.open(t);
    a.apply(cappedDirective(t.partition, 1500, 10_000));
    expect(read(t, "cpu.max")).toBe("150000 100000\n");
    expect(read(t, "cpu.weight")).toBe("10000\n");
    a.apply(cappedDirective(t.partition, Number.POSITIVE_INFINITY, 5));
    expect(read(t, "cpu.max")).toBe("max 100000\n");
    expect(read(t, "cpu.weight")).toBe("5\n");
    a.close();
  });

  it("opens a capped cgroup and keeps its period", () => {
    const a = backend.open({ partition: "batch", cgroup: "weir/batch" });
    expect(a.snapshot().values).toEqual({ "cpu.max": "50000 100000", "cpu.weight": "50" });
    // Its current cap is 500 millis (50000 / 100000 * 1000): applying it writes nothing.
    expect(a.apply(cappedDirective("batch", 500, 50)).written).toEqual([]);
    a.close();
  });

  it("refuses malformed content at open, naming the file and value", () => {
    expect(() => backend.open({ partition: "b", cgroup: "weir/broken" })).toThrowError(
      /\[cgroup-v2\] .*weir\/broken: cpu.max must be .* found "max"/,
    );
    try {
      backend.open({ partition: "b", cgroup: "weir/broken" });
    } catch (err) {
      expect((err as WeirError).code).toBe(ErrorCodes.COUNTER_MALFORMED);
    }
  });

  it("a cgroup without the cpu controller is not writable, and says why", () => {
    let err: unknown;
    try {
      backend.open({ partition: "n", cgroup: "nocpu" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WeirError);
    expect((err as WeirError).code).toBe(ErrorCodes.TARGET_NOT_WRITABLE);
    expect((err as WeirError).message).toMatch(/has no cpu.max: is the cpu controller enabled/);
  });

  it("rejects a path that climbs out of the cgroup root", () => {
    expect(() => backend.open({ partition: "x", cgroup: "weir/../../etc" })).toThrowError(
      /must stay under the cgroup root/,
    );
  });
});
