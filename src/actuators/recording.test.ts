import { describe, expect, it } from "vitest";
import { v1Format } from "../cgroup/formats.ts";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { RecordingBackend } from "./recording.ts";

describe("recording backend", () => {
  it("records every write attempt in order, with the clock it was given", () => {
    let now = 1000;
    const r = new RecordingBackend({ now: () => now });
    r.create("a");
    const a = r.open({ partition: "web", cgroup: "a" });
    a.apply(cappedDirective("web", 250, 200));
    now = 1100;
    a.apply(cappedDirective("web", 250, 300));
    a.apply(cappedDirective("web", 250, 300));
    expect(r.writes()).toEqual([
      {
        seq: 1,
        atMs: 1000,
        partition: "web",
        cgroup: "a",
        file: "cpu.max",
        value: "25000 100000",
        ok: true,
      },
      {
        seq: 2,
        atMs: 1000,
        partition: "web",
        cgroup: "a",
        file: "cpu.weight",
        value: "200",
        ok: true,
      },
      {
        seq: 3,
        atMs: 1100,
        partition: "web",
        cgroup: "a",
        file: "cpu.weight",
        value: "300",
        ok: true,
      },
    ]);
    expect(r.files("a")).toMatchObject({ "cpu.max": "25000 100000", "cpu.weight": "300" });
  });

  it("a busy or refusing kernel is a retryable write failure, retried on the next apply", () => {
    const r = new RecordingBackend();
    r.create("a");
    const a = r.open({ partition: "web", cgroup: "a" });
    const dir = cappedDirective("web", 250, 100);
    r.setFault("a", "busy");
    const r1 = a.apply(dir);
    expect(r1.written).toEqual([]);
    expect(r1.error).toEqual({
      code: ErrorCodes.APPLY_FAILED,
      message:
        '[recording] writing "25000 100000" to recording:a/cpu.max failed: EBUSY (the kernel refused the value; retried next cycle)',
      retryable: true,
    });
    r.setFault("a", "invalid");
    expect(a.apply(dir).error?.message).toContain("EINVAL");
    r.setFault("a", null);
    // The failed value was never cached as written, so the same directive is written now.
    expect(a.apply(dir)).toEqual({ partition: "web", written: ["cpu.max"] });
    expect(a.stats?.()).toMatchObject({ writes: 1, failedWrites: 2 });
    expect(r.writes("a").map((w) => [w.ok, w.errno])).toEqual([
      [false, "EBUSY"],
      [false, "EINVAL"],
      [true, undefined],
    ]);
  });

  it("a read-only cgroup is not writable; a re-made cgroup is gone for actuators on the old one", () => {
    const r = new RecordingBackend();
    r.create("a");
    const a = r.open({ partition: "web", cgroup: "a" });
    r.setFault("a", "read-only");
    const res = a.apply(cappedDirective("web", 500, 100));
    expect(res.error).toMatchObject({ code: ErrorCodes.TARGET_NOT_WRITABLE, retryable: false });
    expect(res.error?.message).toContain("EROFS");
    r.create("a");
    const gone = a.apply(cappedDirective("web", 500, 100));
    expect(gone.error?.code).toBe(ErrorCodes.TARGET_GONE);
    // A fresh open sees the new cgroup.
    const b = r.open({ partition: "web", cgroup: "a" });
    expect(b.apply(cappedDirective("web", 500, 100)).written).toEqual(["cpu.max"]);
  });

  it("seeds a cgroup it has not seen (dry-run), or says it is gone", () => {
    const r = new RecordingBackend({
      format: v1Format,
      seed: (t) => (t.cgroup === "known" ? { "cpu.cfs_quota_us": "30000" } : undefined),
    });
    const a = r.open({ partition: "k", cgroup: "known" });
    expect(a.snapshot().values).toEqual({
      "cpu.cfs_period_us": "100000",
      "cpu.cfs_quota_us": "30000",
      "cpu.shares": "1024",
    });
    expect(a.apply(cappedDirective("k", 300, 100)).written).toEqual([]);
    expect(() => r.open({ partition: "u", cgroup: "unknown" })).toThrowError(WeirError);
  });

  it("refuses to create a cgroup with malformed values", () => {
    const r = new RecordingBackend();
    expect(() => r.create("x", { "cpu.max": "lots" })).toThrowError(/cpu.max .* found "lots"/);
  });

  it("keeps about maxRecords records", () => {
    const r = new RecordingBackend({ maxRecords: 10 });
    r.create("a");
    const a = r.open({ partition: "a", cgroup: "a" });
    for (let i = 1; i <= 25; i++) a.apply(cappedDirective("a", i * 10, 100));
    const w = r.writes();
    expect(w.length).toBeLessThanOrEqual(10);
    expect(w.at(-1)?.value).toBe("25000 100000"); // 250 millis, the last one
    expect(w.at(-1)?.seq).toBe(25);
  });
});

describe("quota floor", () => {
  it("is read from the period the cgroup holds", () => {
    const r = new RecordingBackend();
    r.create("fresh");
    r.create("short", { "cpu.max": "max 50000" });
    expect(r.open({ partition: "a", cgroup: "fresh" }).quotaFloorCpuMillis()).toBe(10);
    expect(r.open({ partition: "b", cgroup: "short" }).quotaFloorCpuMillis()).toBe(20);
    const v1 = new RecordingBackend({ format: v1Format });
    v1.create("g", { "cpu.cfs_period_us": "200000" });
    expect(v1.open({ partition: "g", cgroup: "g" }).quotaFloorCpuMillis()).toBe(5);
  });
});

describe("recording backend with an apply delay (an asynchronous backend)", () => {
  const INF = Number.POSITIVE_INFINITY;
  const FRESH = {
    capCpuMillis: INF,
    weight: 100,
    idle: false,
    burstCpuMillis: 0,
    capPeriodUs: 100_000,
  };

  it("apply() submits and returns; applied() shows the values only once they took effect", () => {
    let now = 1000;
    const r = new RecordingBackend({ now: () => now, applyDelayMs: 250 });
    r.create("a");
    const a = r.open({ partition: "web", cgroup: "a" });
    expect(a.desired()).toBeNull();
    const res = a.apply(cappedDirective("web", 250, 200));
    expect(res).toEqual({ partition: "web", written: ["cpu.max", "cpu.weight"] });
    // submitted, not in force: the target still holds what it held
    expect(r.pendingWrites()).toBe(2);
    expect(r.writes()).toEqual([]);
    expect(a.desired()).toEqual({
      capCpuMillis: 250,
      weight: 200,
      idle: false,
      burstCpuMillis: 0,
      capPeriodUs: 100_000,
    });
    expect(a.applied()).toEqual(FRESH);
    // the same directive again submits nothing (write on change: against what was submitted)
    now = 1100;
    expect(a.apply(cappedDirective("web", 250, 200)).written).toEqual([]);
    expect(r.pendingWrites()).toBe(2);
    now = 1249;
    expect(a.applied()).toEqual(FRESH);
    now = 1250;
    expect(a.applied()).toEqual(a.desired());
    expect(r.pendingWrites()).toBe(0);
    expect(r.writes().map((w) => [w.atMs, w.file, w.value, w.ok])).toEqual([
      [1250, "cpu.max", "25000 100000", true],
      [1250, "cpu.weight", "200", true],
    ]);
    expect(a.stats()).toEqual({ writes: 2, failedWrites: 0, unchangedSkips: 6 });
  });

  it("a write refused after submission is reported by the next apply() and submitted again", () => {
    let now = 0;
    const r = new RecordingBackend({ now: () => now, applyDelayMs: 100 });
    r.create("a");
    const a = r.open({ partition: "web", cgroup: "a" });
    expect(a.apply(cappedDirective("web", 250, 100)).written).toEqual(["cpu.max"]);
    r.setFault("a", "busy");
    now = 100;
    r.setFault("a", null);
    // the fault was cleared after the write failed at 100 ms: the next apply reports it
    // (retryable) and submits the value again, as it is not in force
    now = 150;
    const res = a.apply(cappedDirective("web", 250, 100));
    expect(res.written).toEqual(["cpu.max"]);
    expect(res.error).toMatchObject({ code: ErrorCodes.APPLY_FAILED, retryable: true });
    expect(res.error?.message).toContain('writing "25000 100000" to recording:a/cpu.max');
    now = 250;
    expect(a.applied().capCpuMillis).toBe(250);
    expect(r.writes().map((w) => [w.atMs, w.ok, w.errno])).toEqual([
      [100, false, "EBUSY"],
      [250, true, undefined],
    ]);
    expect(a.stats()).toMatchObject({ writes: 2, failedWrites: 1 });
  });

  it("a target removed before its writes took effect is gone at the next apply()", () => {
    let now = 0;
    const r = new RecordingBackend({ now: () => now, applyDelayMs: 100 });
    r.create("a");
    const a = r.open({ partition: "web", cgroup: "a" });
    a.apply(cappedDirective("web", 250, 100));
    r.remove("a");
    now = 100;
    const res = a.apply(cappedDirective("web", 300, 100));
    expect(res.written).toEqual([]);
    expect(res.error).toMatchObject({ code: ErrorCodes.TARGET_GONE, retryable: false });
    expect(a.apply(cappedDirective("web", 300, 100)).error?.code).toBe(ErrorCodes.TARGET_GONE);
  });
});
