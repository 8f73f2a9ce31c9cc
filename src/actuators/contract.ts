// The one contract every actuator backend must meet (like Hono's runTest({ newRouter }) and
// unstorage's testDriver({ driver })): the same vitest tests run against the recording backend,
// cgroup v2 on a fixture tree, and cgroup v1 on real cgroups of this host.
//
// A backend's test file supplies how to make a fresh target (what a new cgroup holds: no cap,
// weight 100 / shares 1024, period 100 ms unless asked otherwise), how to read its files back
// without the backend, and how to remove it.
import { afterEach, describe, expect, it } from "vitest";
import type { AllocationView, CpuFileFormat } from "../cgroup/formats.ts";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { ApplyResult, Directive } from "../core/model.ts";
import type { ActuatorBackend, ActuatorTarget, PartitionActuator } from "./types.ts";

type MaybePromise<T> = T | Promise<T>;

export interface ContractTargetInit {
  /** CFS period the fresh cgroup should have (default: the kernel's 100000 us). */
  periodUsec?: number;
}

export interface ActuatorContractOptions {
  /** Names the describe block. */
  name: string;
  makeBackend: () => ActuatorBackend;
  /** The file layout the backend writes (names the cap and weight files). */
  format: CpuFileFormat;
  /** Make a fresh cgroup (unique per call) holding what a new cgroup holds. */
  makeTarget: (label: string, init?: ContractTargetInit) => MaybePromise<ActuatorTarget>;
  /** What the target's files hold now, read without the backend. */
  readBack: (target: ActuatorTarget) => MaybePromise<AllocationView>;
  /** Remove the target (rmdir); called by tests and again at cleanup (must tolerate "already gone"). */
  removeTarget: (target: ActuatorTarget) => MaybePromise<void>;
  /**
   * Optional evidence beyond stats() that nothing was written: `arm` marks the files,
   * `touched` says whether any was written since (e.g. mtime reset to 0, or a write log).
   * Real cgroup files keep no mtime; the v1 e2e test proves "no rewrite" through the kernel.
   */
  writeProbe?: {
    arm: (target: ActuatorTarget) => MaybePromise<void>;
    touched: (target: ActuatorTarget) => MaybePromise<boolean>;
  };
  /** Optional: make the target's files refuse writes (EACCES/EROFS) before it is opened. */
  makeUnwritable?: (target: ActuatorTarget) => MaybePromise<void>;
}

/** A directive with a cap (Infinity = none) and a weight; extra fields override. */
const d = (capCpuMillis: number, weight: number, over: Partial<Directive> = {}): Directive => ({
  ...cappedDirective("", capCpuMillis, weight),
  ...over,
});

/** Only the keys a cgroup has (optional files may be missing on older kernels or fixtures). */
const present = (all: Readonly<Record<string, string>>, has: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(all).filter(([k]) => has[k] !== undefined));

const writes = (a: PartitionActuator): number => {
  if (!a.stats) throw new Error("every backend in src/actuators must implement stats()");
  return a.stats().writes;
};

export function actuatorContract(o: ActuatorContractOptions): void {
  const { capFile, weightFile } = o.format;

  describe(`actuator contract: ${o.name}`, () => {
    const made: ActuatorTarget[] = [];
    const opened: PartitionActuator[] = [];
    let seq = 0;

    afterEach(async () => {
      for (const a of opened.splice(0)) a.close();
      for (const t of made.splice(0)) await o.removeTarget(t);
    });

    async function target(init?: ContractTargetInit): Promise<ActuatorTarget> {
      const t = await o.makeTarget(`c${++seq}`, init);
      made.push(t);
      return t;
    }

    async function fresh(init?: ContractTargetInit) {
      const backend = o.makeBackend();
      const t = await target(init);
      const a = backend.open(t);
      opened.push(a);
      /** Apply with the target's partition id filled in. */
      const apply = (
        cpuMillis: number,
        weight: number,
        over: Partial<Directive> = {},
      ): ApplyResult => a.apply({ ...d(cpuMillis, weight, over), partition: t.partition });
      return { backend, t, a, apply };
    }

    it("declares what it handles and snapshots what the files hold at open", async () => {
      const { backend, t, a } = await fresh();
      expect(backend.handles).toContain("cgroup");
      const snap = a.snapshot();
      expect(snap.partition).toBe(t.partition);
      // A new cgroup: no cap, default weight, 100 ms period, exactly as the kernel prints it
      // (the idle and burst files only where the kernel has them).
      expect(snap.values).toEqual(present(o.format.freshValues, snap.values));
      for (const f of o.format.snapshotFiles)
        if (!o.format.optionalFiles.includes(f)) expect(snap.values[f]).toBeDefined();
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: null,
        periodUsec: 100_000,
        weight: 100,
      });
    });

    it("first apply of the values the files already hold writes nothing", async () => {
      const { a, apply } = await fresh();
      // Infinity = no cap; weight 100 = the fresh default (v1: 100 * 1024 / 100 = 1024 shares).
      const r = apply(Number.POSITIVE_INFINITY, 100);
      expect(r).toEqual({ partition: a.partition, written: [] });
      // cap and weight, plus idle and burst where the cgroup has them, all left alone
      const files = Object.keys(a.snapshot().values).filter((f) => f !== "cpu.cfs_period_us");
      expect(a.stats?.()).toEqual({ writes: 0, failedWrites: 0, unchangedSkips: files.length });
    });

    it("apply writes the cap and the weight", async () => {
      const { t, a, apply } = await fresh();
      const r = apply(250, 200);
      expect(r.error).toBeUndefined();
      expect(r.written).toEqual([capFile, weightFile]);
      // 250 millis at a 100000 us period: 250 * 100000 / 1000 = 25000 us.
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: 25_000,
        periodUsec: 100_000,
        weight: 200,
      });
      expect(writes(a)).toBe(2);
    });

    it("applying the same directive again writes nothing", async () => {
      const { t, a, apply } = await fresh();
      expect(apply(250, 200).written).toHaveLength(2);
      await o.writeProbe?.arm(t);
      for (let i = 0; i < 10; i++)
        expect(apply(250, 200)).toEqual({ partition: t.partition, written: [] });
      expect(writes(a)).toBe(2);
      if (o.writeProbe) expect(await o.writeProbe.touched(t)).toBe(false);
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: 25_000,
        periodUsec: 100_000,
        weight: 200,
      });
    });

    it("a changed weight writes only the weight; a changed cap only the cap", async () => {
      const { t, a, apply } = await fresh();
      apply(250, 200);
      await o.writeProbe?.arm(t);
      expect(apply(250, 300).written).toEqual([weightFile]);
      if (o.writeProbe) expect(await o.writeProbe.touched(t)).toBe(true);
      expect(apply(400, 300).written).toEqual([capFile]);
      expect(writes(a)).toBe(4);
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: 40_000,
        periodUsec: 100_000,
        weight: 300,
      });
    });

    it("keeps the cgroup's own period", async () => {
      const { t, apply } = await fresh({ periodUsec: 50_000 });
      expect(apply(250, 100).written).toEqual([capFile]);
      // 250 millis at a 50000 us period: 250 * 50000 / 1000 = 12500 us.
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: 12_500,
        periodUsec: 50_000,
        weight: 100,
      });
    });

    it("restore writes back the snapshot, only the values that differ", async () => {
      const { t, a, apply } = await fresh();
      const snap = a.snapshot();
      apply(300, 100);
      const before = writes(a);
      const r = a.restore(snap);
      expect(r.error).toBeUndefined();
      expect(r.written).toEqual([capFile]);
      expect(writes(a)).toBe(before + 1);
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: null,
        periodUsec: 100_000,
        weight: 100,
      });
      expect(a.restore(snap).written).toEqual([]);
      apply(300, 700);
      expect(a.restore(snap).written).toEqual([capFile, weightFile]);
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: null,
        periodUsec: 100_000,
        weight: 100,
      });
    });

    it("refuses a snapshot of another partition and a malformed directive, writing nothing", async () => {
      const { a, apply } = await fresh();
      const other = { ...a.snapshot(), partition: `${a.partition}-other` };
      const r1 = a.restore(other);
      expect(r1.written).toEqual([]);
      expect(r1.error).toMatchObject({ code: ErrorCodes.CGROUP_WRITE_FAILED, retryable: false });
      const r2 = apply(Number.NaN, 100);
      expect(r2.written).toEqual([]);
      expect(r2.error?.message).toMatch(/capCpuMillis must be a number/);
      expect(writes(a)).toBe(0);
    });

    it("writes unlimited and large caps", async () => {
      const { t, apply } = await fresh();
      // 64 CPUs: 64000 * 100000 / 1000 = 6400000 us per 100000 us period.
      expect(apply(64_000, 100).written).toEqual([capFile]);
      expect((await o.readBack(t)).quotaUsec).toBe(6_400_000);
      expect(apply(Number.POSITIVE_INFINITY, 100).written).toEqual([capFile]);
      expect((await o.readBack(t)).quotaUsec).toBeNull();
    });

    it("raises a cap below the kernel's minimum quota to 1000 us", async () => {
      const { t, a, apply } = await fresh();
      // 1 millis at 100000 us would be 100 us; the kernel refuses < 1000 us (EINVAL).
      const r = apply(1, 100);
      expect(r.error).toBeUndefined();
      expect((await o.readBack(t)).quotaUsec).toBe(1000);
      // 0 and 5 millis clamp to the same 1000 us: nothing more to write.
      expect(apply(0, 100).written).toEqual([]);
      expect(apply(5, 100).written).toEqual([]);
      expect(writes(a)).toBe(1);
    });

    it("clamps the weight into 1..10000", async () => {
      const { t, apply } = await fresh();
      apply(Number.POSITIVE_INFINITY, 50_000);
      expect((await o.readBack(t)).weight).toBe(10_000);
      apply(Number.POSITIVE_INFINITY, 0);
      expect((await o.readBack(t)).weight).toBe(1);
    });

    it("batch: the idle class where the cgroup has it (weight left alone), else the minimum weight", async () => {
      const { t, a, apply } = await fresh();
      apply(Number.POSITIVE_INFINITY, 300);
      const r = apply(Number.POSITIVE_INFINITY, 1, { idle: true });
      expect(r.error).toBeUndefined();
      const view = await o.readBack(t);
      if (a.abilities?.().idleClass) {
        // the kernel refuses a weight for an idle group: only cpu.idle is written
        expect(r.written).toEqual([o.format.idleFile]);
        expect(view.idle).toBe(true);
      } else {
        // v1 shares 2 / v2 weight 1, the smallest each allows (shares 2 reads back as weight 1)
        expect(r.written).toEqual([weightFile]);
        expect(view.weight).toBe(1);
      }
      // the same batch directive again writes nothing
      expect(apply(Number.POSITIVE_INFINITY, 1, { idle: true }).written).toEqual([]);
      // leaving the idle class writes the weight again (the kernel resets it on the way out)
      const back = apply(Number.POSITIVE_INFINITY, 300);
      expect(back.error).toBeUndefined();
      expect(back.written).toContain(weightFile);
      expect(await o.readBack(t)).toMatchObject({ weight: 300 });
      if (a.abilities?.().idleClass) expect((await o.readBack(t)).idle).toBe(false);
    });

    it("a cap comes with its burst, written in the order the kernel accepts (burst <= quota)", async () => {
      const { t, a, apply } = await fresh();
      if (!a.abilities?.().burst) {
        // no burst file: the cap alone
        expect(apply(250, 100, { burstCpuMillis: 250 }).written).toEqual([capFile]);
        return;
      }
      const { burstFile } = o.format;
      // 250m cap + 250m burst at 100 ms: 25000 us each; quota first (burst grows)
      let r = apply(250, 100, { burstCpuMillis: 250 });
      expect(r.error).toBeUndefined();
      expect(r.written).toEqual([capFile, burstFile]);
      expect(await o.readBack(t)).toMatchObject({ quotaUsec: 25_000, burstUsec: 25_000 });
      // shrinking both: burst first, or the kernel refuses the quota (EINVAL)
      r = apply(100, 100, { burstCpuMillis: 100 });
      expect(r.error).toBeUndefined();
      expect(r.written).toEqual([burstFile, capFile]);
      expect(await o.readBack(t)).toMatchObject({ quotaUsec: 10_000, burstUsec: 10_000 });
      // a burst above the cap is bounded by it
      expect(apply(100, 100, { burstCpuMillis: 900 }).written).toEqual([]);
      // no cap: no burst
      r = apply(Number.POSITIVE_INFINITY, 100, { burstCpuMillis: 100 });
      expect(r.error).toBeUndefined();
      expect(await o.readBack(t)).toMatchObject({ quotaUsec: null, burstUsec: 0 });
    });

    it("restore after the idle class and a burst brings back what was found", async () => {
      const { t, a, apply } = await fresh();
      const snap = a.snapshot();
      apply(300, 1, { idle: true, burstCpuMillis: 300 });
      const r = a.restore(snap);
      expect(r.error).toBeUndefined();
      expect(await o.readBack(t)).toMatchObject({
        quotaUsec: null,
        periodUsec: 100_000,
        weight: 100,
      });
      const view = await o.readBack(t);
      if (a.abilities?.().idleClass) expect(view.idle).toBe(false);
      if (a.abilities?.().burst) expect(view.burstUsec).toBe(0);
    });

    it("a vanished target yields CGROUP_GONE in ApplyResult.error, without throwing", async () => {
      const { t, a, apply } = await fresh();
      apply(250, 200);
      await o.removeTarget(t);
      let r: ApplyResult | undefined;
      expect(() => {
        r = apply(400, 200);
      }).not.toThrow();
      expect(r?.written).toEqual([]);
      expect(r?.error).toMatchObject({ code: ErrorCodes.CGROUP_GONE, retryable: false });
      // The message names the file and the value.
      expect(r?.error?.message).toContain(capFile);
      expect(r?.error?.message).toContain("40000");
      // Gone stays gone (the manager reopens), for apply and restore alike.
      expect(apply(250, 200).error?.code).toBe(ErrorCodes.CGROUP_GONE);
      expect(a.restore(a.snapshot()).error?.code).toBe(ErrorCodes.CGROUP_GONE);
      expect(a.stats?.().failedWrites).toBe(1);
    });

    it("opening a target that does not exist throws CGROUP_GONE", async () => {
      const backend = o.makeBackend();
      const t = await target();
      await o.removeTarget(t);
      let thrown: unknown;
      try {
        opened.push(backend.open(t));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(WeirError);
      expect((thrown as WeirError).code).toBe(ErrorCodes.CGROUP_GONE);
    });

    if (o.makeUnwritable) {
      const makeUnwritable = o.makeUnwritable;
      it("a target whose files refuse writes yields CGROUP_NOT_WRITABLE naming file and value", async () => {
        const backend = o.makeBackend();
        const t = await target();
        await makeUnwritable(t);
        const a = backend.open(t);
        opened.push(a);
        expect(a.snapshot().values).toEqual(present(o.format.freshValues, a.snapshot().values));
        let r: ApplyResult | undefined;
        expect(() => {
          r = a.apply({ ...d(250, 100), partition: t.partition });
        }).not.toThrow();
        expect(r?.written).toEqual([]);
        expect(r?.error).toMatchObject({ code: ErrorCodes.CGROUP_NOT_WRITABLE, retryable: false });
        expect(r?.error?.message).toContain(capFile);
        expect(r?.error?.message).toContain("25000");
        expect((await o.readBack(t)).quotaUsec).toBeNull();
        // Nothing to write, nothing to refuse.
        expect(a.apply({ ...d(Number.POSITIVE_INFINITY, 100), partition: t.partition })).toEqual({
          partition: t.partition,
          written: [],
        });
      });
    }
  });
}
