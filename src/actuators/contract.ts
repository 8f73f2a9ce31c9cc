// The one contract every actuator backend must meet (like Hono's runTest({ newRouter }) and
// unstorage's testDriver({ driver })), parametrised by what the backend declares it can express
// (`capabilities`: cap, weight, idle, burst, cpuCount, capPeriod): a case that needs a capability the
// backend lacks is skipped, and its name says why. It runs against every registered backend
// (contract.test.ts, the real cgroups in test/e2e/actuator-contract.e2e.test.ts) and the
// simulator's hypervisor (src/sim/hypervisor.test.ts).
//
// A backend's harness supplies how to make a fresh target (what a new one holds: no cap,
// weight 100), how to read what it holds without the backend, on the directive's scales
// (`AppliedAllocation`), what `ApplyResult.written` calls each value, and how to remove it.
// Over 400 lines on purpose: it is one suite, read as one by a backend's author, whose cases
// share one describe block's fresh target, observed() read-back and cleanup.
import { afterEach, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { ApplyResult, Directive } from "../core/model.ts";
import type { ActuatorContractOptions, ContractTargetInit } from "./contract-harness.ts";
import type { ActuatorCapabilities, ActuatorTarget, PartitionActuator } from "./types.ts";

/** A directive with a cap (Infinity = none) and a weight; extra fields override. */
const d = (capCpuMillis: number, weight: number, over: Partial<Directive> = {}): Directive => ({
  ...cappedDirective("", capCpuMillis, weight),
  ...over,
});

/** Only the keys a target has (optional values may be missing on older kernels or fixtures). */
const present = (all: Readonly<Record<string, string>>, has: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(all).filter(([k]) => has[k] !== undefined));

const writes = (a: PartitionActuator): number => {
  if (!a.stats) throw new Error("every backend in src/actuators must implement stats()");
  return a.stats().writes;
};

const FRESH = { capCpuMillis: Number.POSITIVE_INFINITY, weight: 100 };

/** A case name that says why it is skipped when the backend lacks what it needs. */
function gated(
  caps: ActuatorCapabilities,
  need: readonly (keyof ActuatorCapabilities)[],
  name: string,
): [boolean, string] {
  const missing = need.filter((c) => !caps[c]);
  if (missing.length === 0) return [true, name];
  return [false, `${name} (skipped: the backend declares no ${missing.join(", ")} capability)`];
}

export function actuatorContract<T extends ActuatorTarget>(o: ActuatorContractOptions<T>): void {
  const { names } = o;
  const caps = o.makeBackend().capabilities;
  /** `it`, run only when the backend has every capability in `need`. */
  const itWith = (
    need: readonly (keyof ActuatorCapabilities)[],
    name: string,
    fn: () => Promise<void>,
  ) => {
    const [run, title] = gated(caps, need, name);
    it.skipIf(!run)(title, fn);
  };

  describe(`actuator contract: ${o.name}`, () => {
    const made: T[] = [];
    const opened: PartitionActuator[] = [];
    let seq = 0;

    afterEach(async () => {
      for (const a of opened.splice(0)) a.close();
      for (const t of made.splice(0)) await o.removeTarget(t);
    });

    async function target(init?: ContractTargetInit): Promise<T> {
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
      /** What the actuator observes is what the target holds. */
      const observed = async () => {
        const held = await o.readBack(t);
        const seen = a.applied?.();
        // an idle group's weight is the kernel's (v1 shows 3 shares), which a fixture file cannot show
        if (held.idle && seen) expect({ ...seen, weight: held.weight }).toEqual(held);
        else expect(seen).toEqual(held);
        return held;
      };
      return { backend, t, a, apply, observed };
    }

    it("declares the target kind it handles and snapshots what the target holds at open", async () => {
      const { backend, t, a, observed } = await fresh();
      const kind = Object.keys(t).find((k) => k !== "partition");
      expect(backend.handles).toContain(kind);
      const snap = a.snapshot();
      expect(snap.partition).toBe(t.partition);
      if (o.freshSnapshot) expect(snap.values).toEqual(present(o.freshSnapshot, snap.values));
      expect(await observed()).toMatchObject(FRESH);
    });

    it("first apply of the values the target already holds writes nothing", async () => {
      const { a, apply } = await fresh();
      const r = apply(Number.POSITIVE_INFINITY, 100);
      expect(r).toEqual({ partition: a.partition, written: [] });
      expect(a.stats?.()).toMatchObject({ writes: 0, failedWrites: 0 });
      expect(a.stats?.().unchangedSkips).toBeGreaterThan(0);
    });

    itWith(["cap", "weight"], "apply writes the cap and the weight", async () => {
      const { a, apply, observed } = await fresh();
      const r = apply(250, 200);
      expect(r.error).toBeUndefined();
      expect(r.written).toEqual([names.cap, names.weight]);
      expect(await observed()).toMatchObject({ capCpuMillis: 250, weight: 200 });
      expect(writes(a)).toBe(2);
    });

    itWith(["cap", "weight"], "applying the same directive again writes nothing", async () => {
      const { t, a, apply, observed } = await fresh();
      expect(apply(250, 200).written).toHaveLength(2);
      await o.writeProbe?.arm(t);
      for (let i = 0; i < 10; i++)
        expect(apply(250, 200)).toEqual({ partition: t.partition, written: [] });
      expect(writes(a)).toBe(2);
      if (o.writeProbe) expect(await o.writeProbe.touched(t)).toBe(false);
      expect(await observed()).toMatchObject({ capCpuMillis: 250, weight: 200 });
    });

    itWith(
      ["cap", "weight"],
      "a changed weight writes only the weight; a changed cap only the cap",
      async () => {
        const { t, a, apply, observed } = await fresh();
        apply(250, 200);
        await o.writeProbe?.arm(t);
        expect(apply(250, 300).written).toEqual([names.weight]);
        if (o.writeProbe) expect(await o.writeProbe.touched(t)).toBe(true);
        expect(apply(400, 300).written).toEqual([names.cap]);
        expect(writes(a)).toBe(4);
        expect(await observed()).toMatchObject({ capCpuMillis: 400, weight: 300 });
      },
    );

    if (o.periods)
      itWith(["cap"], "a cap is kept in millicores at the target's own period", async () => {
        const { apply, observed } = await fresh({ periodUsec: 50_000 });
        expect(apply(250, 100).written).toEqual([names.cap]);
        // 250 millis at a 50000 us period: a 12500 us quota, still 250m.
        expect(await observed()).toMatchObject({ capCpuMillis: 250, weight: 100 });
      });

    itWith(
      ["cap", "capPeriod"],
      "a cap over the directive's period (capPeriodUs), back to the period found at open without it",
      async () => {
        const { t, a, apply, observed } = await fresh();
        const found = (await observed()).capPeriodUs;
        // 800m over 500 ms (a 400,000 us quota): still 800m, now per 500 ms
        let r = apply(800, 100, { capPeriodUs: 500_000 });
        expect(r.error).toBeUndefined();
        expect(r.written).toContain(names.cap);
        expect(await observed()).toMatchObject({ capCpuMillis: 800, capPeriodUs: 500_000 });
        if (a.desired) expect(a.desired()).toEqual(a.applied?.());
        // the same period and cap again: nothing written (a quota or period write refills the
        // period's runtime)
        const before = writes(a);
        await o.writeProbe?.arm(t);
        expect(apply(800, 100, { capPeriodUs: 500_000 }).written).toEqual([]);
        expect(writes(a)).toBe(before);
        if (o.writeProbe) expect(await o.writeProbe.touched(t)).toBe(false);
        // a shorter period and a smaller cap, in an order the target accepts
        r = apply(600, 100, { capPeriodUs: 200_000 });
        expect(r.error).toBeUndefined();
        expect(await observed()).toMatchObject({ capCpuMillis: 600, capPeriodUs: 200_000 });
        // no period in the directive: the one found at open
        r = apply(Number.POSITIVE_INFINITY, 100);
        expect(r.error).toBeUndefined();
        expect(await observed()).toMatchObject({ ...FRESH, capPeriodUs: found });
      },
    );

    itWith(["capPeriod"], "refuses a period outside 1 ms .. 1 s, writing nothing", async () => {
      const { a, apply } = await fresh();
      for (const capPeriodUs of [999, 1_000_001, 1.5e5 + 0.5, Number.NaN]) {
        const r = apply(250, 100, { capPeriodUs });
        expect(r.written).toEqual([]);
        expect(r.error).toMatchObject({ code: ErrorCodes.DIRECTIVE_INVALID, retryable: false });
        expect(r.error?.message).toContain("capPeriodUs");
      }
      expect(writes(a)).toBe(0);
    });

    itWith(["cap"], "restore writes back the snapshot, only the values that differ", async () => {
      const { a, apply, observed } = await fresh();
      const snap = a.snapshot();
      apply(300, 100);
      const before = writes(a);
      const r = a.restore(snap);
      expect(r.error).toBeUndefined();
      expect(r.written).toEqual([names.cap]);
      expect(writes(a)).toBe(before + 1);
      expect(await observed()).toMatchObject(FRESH);
      // what was restored is what is desired now
      if (a.desired) expect(a.desired()).toEqual(a.applied?.());
      expect(a.restore(snap).written).toEqual([]);
      apply(300, 700);
      expect(a.restore(snap).written).toEqual(
        caps.weight ? [names.cap, names.weight] : [names.cap],
      );
      expect(await observed()).toMatchObject(FRESH);
    });

    it("refuses a snapshot of another partition and a malformed directive, writing nothing", async () => {
      const { a, apply } = await fresh();
      const other = { ...a.snapshot(), partition: `${a.partition}-other` };
      const r1 = a.restore(other);
      expect(r1.written).toEqual([]);
      expect(r1.error).toMatchObject({ code: ErrorCodes.DIRECTIVE_INVALID, retryable: false });
      const r2 = apply(Number.NaN, 100);
      expect(r2.written).toEqual([]);
      expect(r2.error?.message).toMatch(/capCpuMillis must be a number/);
      expect(writes(a)).toBe(0);
    });

    itWith(
      ["cap", "weight"],
      "desired() is the last directive as the target expresses it; applied() equals it once in force",
      async () => {
        const { a, apply, observed } = await fresh();
        if (!a.desired) return;
        expect(a.desired()).toBeNull();
        const steps: Array<[number, number, Partial<Directive>]> = [
          [250, 333, {}],
          [1, 333, {}], // below the quota floor: expressed as the floor
          [Number.POSITIVE_INFINITY, 333, { burstCpuMillis: 100 }], // no cap: no burst
          [Number.POSITIVE_INFINITY, 1, { idle: caps.idle }],
          [400, 200, { burstCpuMillis: caps.burst ? 100 : 0 }],
        ];
        for (const [cap, weight, over] of steps) {
          expect(apply(cap, weight, over).error).toBeUndefined();
          const held = await observed();
          const want = a.desired();
          // an idle group's weight is the kernel's (v1 shows 3 shares), which a fixture file cannot show
          expect(held.idle ? { ...want, weight: held.weight } : want).toEqual(held);
          if (!over.idle) expect(want?.capCpuMillis).toBe(cap === 1 ? held.capCpuMillis : cap);
        }
      },
    );

    itWith(["cap"], "writes unlimited and large caps", async () => {
      const { apply, observed } = await fresh();
      // 64 CPUs (the CPU count held at 1: this case is about the cap)
      expect(apply(64_000, 100, { cpuCount: 1 }).written).toEqual([names.cap]);
      expect((await observed()).capCpuMillis).toBe(64_000);
      expect(apply(Number.POSITIVE_INFINITY, 100, { cpuCount: 1 }).written).toEqual([names.cap]);
      expect((await observed()).capCpuMillis).toBe(Number.POSITIVE_INFINITY);
    });

    itWith(["cap"], "raises a cap below the target's least cap to that floor", async () => {
      const { a, apply, observed } = await fresh();
      const floor = a.quotaFloorCpuMillis?.() ?? 0;
      // cgroups: 1 millis at 100000 us would be 100 us; the kernel refuses < 1000 us (10m).
      const r = apply(1, 100);
      expect(r.error).toBeUndefined();
      expect((await observed()).capCpuMillis).toBe(Math.max(1, floor));
      if (floor > 1) {
        // 0 and anything up to the floor clamp to the same value: nothing more to write.
        expect(apply(0, 100).written).toEqual([]);
        expect(apply(floor / 2, 100).written).toEqual([]);
        expect(writes(a)).toBe(1);
      }
    });

    itWith(["weight"], "clamps the weight into 1..10000", async () => {
      const { apply, observed } = await fresh();
      apply(Number.POSITIVE_INFINITY, 50_000);
      expect((await observed()).weight).toBe(10_000);
      apply(Number.POSITIVE_INFINITY, 0);
      expect((await observed()).weight).toBe(1);
    });

    itWith(
      ["idle", "weight"],
      "batch: the idle class where the target has it (weight left alone), else the least weight",
      async () => {
        const { a, apply, observed } = await fresh();
        apply(Number.POSITIVE_INFINITY, 300);
        const r = apply(Number.POSITIVE_INFINITY, 1, { idle: true });
        expect(r.error).toBeUndefined();
        const view = await observed();
        if (a.abilities?.().idleClass) {
          // the kernel refuses a weight for an idle group: only the idle flag is written
          expect(r.written).toEqual([names.idle]);
          expect(view.idle).toBe(true);
        } else {
          // v1 shares 2 / v2 weight 1, the smallest each allows (shares 2 reads back as weight 1)
          expect(r.written).toEqual([names.weight]);
          expect(view.weight).toBe(1);
        }
        // the same batch directive again writes nothing
        expect(apply(Number.POSITIVE_INFINITY, 1, { idle: true }).written).toEqual([]);
        // leaving the idle class writes the weight again (the kernel resets it on the way out)
        const back = apply(Number.POSITIVE_INFINITY, 300);
        expect(back.error).toBeUndefined();
        expect(back.written).toContain(names.weight);
        expect(await observed()).toMatchObject({ weight: 300 });
        if (a.abilities?.().idleClass) expect((await observed()).idle).toBe(false);
      },
    );

    itWith(
      ["cap", "burst"],
      "a cap comes with its burst, in the order the target accepts (burst <= cap)",
      async () => {
        const { a, apply, observed } = await fresh();
        if (!a.abilities?.().burst) {
          // this target has no burst (an older kernel): the cap alone
          expect(apply(250, 100, { burstCpuMillis: 250 }).written).toEqual([names.cap]);
          return;
        }
        // 250m cap + 250m burst; cap first (burst grows)
        let r = apply(250, 100, { burstCpuMillis: 250 });
        expect(r.error).toBeUndefined();
        expect(r.written).toEqual([names.cap, names.burst]);
        expect(await observed()).toMatchObject({ capCpuMillis: 250, burstCpuMillis: 250 });
        // shrinking both: burst first, or the kernel refuses the quota (EINVAL)
        r = apply(100, 100, { burstCpuMillis: 100 });
        expect(r.error).toBeUndefined();
        expect(r.written).toEqual([names.burst, names.cap]);
        expect(await observed()).toMatchObject({ capCpuMillis: 100, burstCpuMillis: 100 });
        // a burst above the cap is bounded by it
        expect(apply(100, 100, { burstCpuMillis: 900 }).written).toEqual([]);
        // no cap: no burst
        r = apply(Number.POSITIVE_INFINITY, 100, { burstCpuMillis: 100 });
        expect(r.error).toBeUndefined();
        expect(await observed()).toMatchObject({ ...FRESH, burstCpuMillis: 0 });
      },
    );

    itWith(
      ["cap"],
      "restore after the idle class and a burst brings back what was found",
      async () => {
        const { a, apply, observed } = await fresh();
        const snap = a.snapshot();
        apply(300, 1, { idle: caps.idle, burstCpuMillis: caps.burst ? 300 : 0 });
        const r = a.restore(snap);
        expect(r.error).toBeUndefined();
        const view = await observed();
        expect(view).toMatchObject(FRESH);
        if (a.abilities?.().idleClass) expect(view.idle).toBe(false);
        if (a.abilities?.().burst) expect(view.burstCpuMillis).toBe(0);
      },
    );

    itWith(["cpuCount"], "applies a CPU count", async () => {
      const { apply, observed } = await fresh();
      const r = apply(Number.POSITIVE_INFINITY, 100, { cpuCount: 2 });
      expect(r.error).toBeUndefined();
      expect((await observed()).cpuCount).toBe(2);
    });

    it("a dry run decides what open() would write and writes nothing", async () => {
      const backend = o.makeBackend();
      const t = await target();
      const dry = backend.openDryRun(t);
      opened.push(dry);
      await o.writeProbe?.arm(t);
      const dir = { ...d(caps.cap ? 250 : Number.POSITIVE_INFINITY, 200), partition: t.partition };
      const r = dry.apply(dir);
      expect(r.error).toBeUndefined();
      expect(r.written.length).toBeGreaterThan(0);
      // it remembers what it decided: the same directive again decides nothing
      expect(dry.apply(dir).written).toEqual([]);
      if (o.writeProbe) expect(await o.writeProbe.touched(t)).toBe(false);
      expect(await o.readBack(t)).toMatchObject(FRESH);
      // the real one, opened after, writes what the dry run said it would
      const real = backend.open(t);
      opened.push(real);
      expect(real.apply(dir).written).toEqual(r.written);
    });

    itWith(
      ["cap", "weight"],
      "a vanished target yields TARGET_GONE in ApplyResult.error, without throwing",
      async () => {
        const { t, a, apply } = await fresh();
        apply(250, 200);
        await o.removeTarget(t);
        let r: ApplyResult | undefined;
        expect(() => {
          r = apply(400, 200);
        }).not.toThrow();
        expect(r?.written).toEqual([]);
        expect(r?.error).toMatchObject({ code: ErrorCodes.TARGET_GONE, retryable: false });
        // The message names where and what.
        expect(r?.error?.message).toContain(names.cap);
        // Gone stays gone (the manager reopens), for apply and restore alike.
        expect(apply(250, 200).error?.code).toBe(ErrorCodes.TARGET_GONE);
        expect(a.restore(a.snapshot()).error?.code).toBe(ErrorCodes.TARGET_GONE);
        expect(a.stats?.().failedWrites).toBe(1);
      },
    );

    it("opening a target that does not exist throws TARGET_GONE (a dry run too)", async () => {
      const backend = o.makeBackend();
      const t = await target();
      await o.removeTarget(t);
      for (const open of [() => backend.open(t), () => backend.openDryRun(t)]) {
        let thrown: unknown;
        try {
          opened.push(open());
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(WeirError);
        expect((thrown as WeirError).code).toBe(ErrorCodes.TARGET_GONE);
      }
    });

    itWith(
      ["cpuset"],
      "places a partition on CPUs: cpuset.cpus written only when changed, restored to what was found",
      async () => {
        const backend = o.makeBackend();
        expect(backend.openCpuset, "a backend declaring cpuset has openCpuset").toBeDefined();
        expect(o.cpuset, "a backend declaring cpuset needs the harness's cpuset").toBeDefined();
        const t = await target();
        await o.cpuset!.make(t);
        const found = await o.cpuset!.read(t);
        const c = backend.openCpuset!(t);
        expect(c.found).toBe(found);
        const first = Number(found.split(/[-,]/)[0]);
        expect(c.place([first])).toEqual({ written: ["cpuset.cpus"] });
        expect(await o.cpuset!.read(t)).toBe(String(first));
        expect(c.place([first])).toEqual({ written: [] });
        expect(c.place(null)).toEqual({ written: ["cpuset.cpus"] });
        expect(await o.cpuset!.read(t)).toBe(found);
        c.place([first]);
        expect(c.restore()).toEqual({ written: ["cpuset.cpus"] });
        expect(await o.cpuset!.read(t)).toBe(found);
        expect(c.restore()).toEqual({ written: [] });
        c.close();
      },
    );

    itWith(
      ["cpuset"],
      "a target without a cpuset: openCpuset throws TARGET_NOT_WRITABLE naming it",
      async () => {
        const backend = o.makeBackend();
        const t = await target();
        let thrown: unknown;
        try {
          backend.openCpuset!(t).close();
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(WeirError);
        expect((thrown as WeirError).code).toBe(ErrorCodes.TARGET_NOT_WRITABLE);
        expect((thrown as WeirError).message).toContain("cpuset.cpus");
        // the allocation files open as ever
        opened.push(backend.open(t));
      },
    );

    if (o.makeUnwritable) {
      const makeUnwritable = o.makeUnwritable;
      itWith(
        ["cap"],
        "a target that refuses writes yields TARGET_NOT_WRITABLE naming where and what",
        async () => {
          const backend = o.makeBackend();
          const t = await target();
          await makeUnwritable(t);
          const a = backend.open(t);
          opened.push(a);
          if (o.freshSnapshot)
            expect(a.snapshot().values).toEqual(present(o.freshSnapshot, a.snapshot().values));
          let r: ApplyResult | undefined;
          expect(() => {
            r = a.apply({ ...d(250, 100), partition: t.partition });
          }).not.toThrow();
          expect(r?.written).toEqual([]);
          expect(r?.error).toMatchObject({
            code: ErrorCodes.TARGET_NOT_WRITABLE,
            retryable: false,
          });
          expect(r?.error?.message).toContain(names.cap);
          expect((await o.readBack(t)).capCpuMillis).toBe(Number.POSITIVE_INFINITY);
          // Nothing to write, nothing to refuse.
          expect(a.apply({ ...d(Number.POSITIVE_INFINITY, 100), partition: t.partition })).toEqual({
            partition: t.partition,
            written: [],
          });
        },
      );
    }
  });
}
