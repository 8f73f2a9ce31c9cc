import { describe, expect, it } from "vitest";
import { v1Format } from "../cgroup/formats.ts";
import { ErrorCodes } from "../core/errors.ts";
import type { Directive } from "../core/model.ts";
import { checkDirective, type FilePort, FileSetActuator, type LateWriteFailure } from "./engine.ts";

const directive = (capCpuMillis: number, weight: number, burstCpuMillis = 0): Directive => ({
  partition: "p",
  cpuMillis: 100,
  weight,
  idle: false,
  capCpuMillis,
  burstCpuMillis,
  capReason: "capped",
  cpuCount: 1,
});

describe("checkDirective", () => {
  it("rejects NaN and -Infinity caps, non-finite weights and bad bursts", () => {
    expect(checkDirective(directive(Number.NaN, 100))).toMatch(/capCpuMillis .* NaN/);
    expect(checkDirective(directive(Number.NEGATIVE_INFINITY, 100))).toMatch(/capCpuMillis/);
    expect(checkDirective(directive(100, Number.NaN))).toMatch(/weight .* NaN/);
    expect(checkDirective(directive(100, 100, -1))).toMatch(/burstCpuMillis .* -1/);
    expect(checkDirective(directive(Number.POSITIVE_INFINITY, 100))).toBeNull();
  });
});

/** A v1 cgroup's files in memory; `refuse` makes the next writes fail late (an asynchronous port). */
function memoryCgroup(async = false) {
  const files: Record<string, string> = { ...v1Format.freshValues };
  const writes: string[] = [];
  let late: LateWriteFailure[] = [];
  const port: FilePort = {
    write(file, value) {
      writes.push(`${file}=${value}`);
      files[file] = value;
    },
    close() {},
    ...(async
      ? {
          held: () => ({ ...files }),
          takeFailures: () => {
            const f = late;
            late = [];
            return f;
          },
        }
      : {}),
  };
  const actuator = new FileSetActuator({
    backend: "cgroup-v1",
    partition: "p",
    location: "/sys/fs/cgroup/cpu/p",
    format: v1Format,
    found: { ...files },
    port,
  });
  const refuseLast = (file: string) => {
    const value = files[file]!;
    files[file] = v1Format.freshValues[file]!;
    late.push({ file, value, error: Object.assign(new Error("EINVAL"), { code: "EINVAL" }) });
  };
  return { actuator, writes, files, refuseLast };
}

describe("FileSetActuator's no-change path", () => {
  it("writes nothing for a repeated directive, counts the same skips, and answers with the same objects", () => {
    const { actuator, writes } = memoryCgroup();
    const d = directive(250, 300);
    expect(actuator.apply(d).written).toEqual(["cpu.cfs_quota_us", "cpu.shares"]);
    const skipsFirst = actuator.stats().unchangedSkips;
    // the first repeat plans the values again: nothing differs from what the files hold
    expect(actuator.apply({ ...d }).written).toEqual([]);
    const skips = actuator.stats().unchangedSkips;
    const skipsPerRepeat = skips - skipsFirst;
    expect(skipsPerRepeat).toBeGreaterThanOrEqual(2);
    const desired = actuator.desired();
    const applied = actuator.applied();
    // a further repeat (a new object, equal fields) is answered without planning, with the
    // skips counted as the plan would have
    expect(actuator.apply({ ...d }).written).toEqual([]);
    expect(actuator.stats().unchangedSkips).toBe(skips + skipsPerRepeat);
    expect(actuator.desired()).toBe(desired);
    expect(actuator.applied()).toBe(applied);
    expect(actuator.desired()).toEqual(actuator.applied());
    expect(Object.isFrozen(applied)).toBe(true);
    expect(writes).toEqual(["cpu.cfs_quota_us=25000", "cpu.shares=3072"]);
    // any field that differs is planned and written
    expect(actuator.apply({ ...d, weight: 400 }).written).toEqual(["cpu.shares"]);
    expect(actuator.applied()).not.toBe(applied);
    expect(actuator.applied().weight).toBe(400);
    expect(actuator.apply({ ...d, weight: 400, capPeriodUs: 200_000 }).written).toEqual([
      "cpu.cfs_period_us",
      "cpu.cfs_quota_us",
    ]);
  });

  it("plans again after a restore and after a write the target refused later", () => {
    const { actuator, writes, refuseLast } = memoryCgroup(true);
    const d = directive(250, 300);
    actuator.apply(d);
    actuator.apply(d);
    expect(actuator.apply(d).written).toEqual([]);
    // restore puts the found values back: the same directive then writes again
    expect(actuator.restore(actuator.snapshot()).written).toEqual([
      "cpu.cfs_quota_us",
      "cpu.shares",
    ]);
    expect(actuator.apply(d).written).toEqual(["cpu.cfs_quota_us", "cpu.shares"]);
    expect(actuator.apply(d).written).toEqual([]);
    // the target refuses the weight after the fact: the next apply submits it again
    refuseLast("cpu.shares");
    const res = actuator.apply(d);
    expect(res.written).toEqual(["cpu.shares"]);
    expect(res.error?.code).toBe(ErrorCodes.APPLY_FAILED);
    expect(writes.filter((w) => w.startsWith("cpu.shares="))).toHaveLength(4);
  });
});
