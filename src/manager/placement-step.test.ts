import { describe, expect, it } from "vitest";
import type { CpusetActuator, CpusetResult } from "../actuators/types.ts";
import {
  type PlacementChange,
  type PlacementInput,
  PlacementStep,
  REBALANCE_HOLD_MS,
} from "./placement-step.ts";

/** An in-memory cpuset that records its writes; `fail` makes the next writes fail. */
function fakeCpuset(partition: string, found = "0-1") {
  const writes: string[] = [];
  let held = found;
  let fail = false;
  const list = (cpus: readonly number[]) => cpus.join(",");
  const write = (v: string): CpusetResult => {
    if (v === held) return { written: [] };
    if (fail)
      return {
        written: [],
        error: { code: "APPLY_FAILED", message: `writing "${v}" failed`, retryable: true },
      };
    held = v;
    writes.push(v);
    return { written: ["cpuset.cpus"] };
  };
  const c: CpusetActuator = {
    partition,
    file: `/cg/cpuset/${partition}/cpuset.cpus`,
    found,
    place: (cpus) => write(cpus === null ? found : list(cpus)),
    restore: () => write(found),
    current: () => held,
    close: () => {},
  };
  return {
    c,
    writes,
    held: () => held,
    setFail: (f: boolean) => {
      fail = f;
    },
  };
}

const row = (
  id: string,
  needCpuMillis: number,
  c?: CpusetActuator,
  batch = false,
): PlacementInput => ({ id, batch, needCpuMillis, ...(c ? { openCpuset: () => c } : {}) });

/** The manager's clock: each step 100 ms (a cycle) after the one before. */
let clockMs = 0;
const at = () => (clockMs += 100);

describe("PlacementStep", () => {
  it("places network partitions by need, writes each cpuset once, and nothing while the placement holds", () => {
    const a = fakeCpuset("a");
    const b = fakeCpuset("b");
    const changes: PlacementChange[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onChange: (c) => changes.push(c) },
    );
    p.step([row("a", 300, a.c), row("b", 200, b.c), row("hog", 1500, undefined, true)], at());
    expect(a.held()).toBe("0");
    expect(b.held()).toBe("1");
    expect(changes).toHaveLength(1);
    expect(changes[0]!.placed).toEqual({ a: [0], b: [1] });
    const v = p.view();
    expect(v.a).toMatchObject({ cpus: [0], file: "/cg/cpuset/a/cpuset.cpus" });
    expect(v.a!.why).toContain("on CPU 0");
    expect(v.hog!.cpus).toBeNull();
    expect(v.hog!.why).toContain("batch");
    // needs move within the fill: the placement is kept, nothing is written or logged again
    for (let i = 0; i < 10; i++)
      p.step(
        [row("a", 300 + i * 20, a.c), row("b", 250, b.c), row("hog", 1500, undefined, true)],
        at(),
      );
    expect(a.writes).toEqual(["0"]);
    expect(b.writes).toEqual(["1"]);
    expect(changes).toHaveLength(1);
  });

  it("opens each cpuset with the value a restart found, says so before the first write, and gives the found values back", () => {
    const a = fakeCpuset("a");
    const b = fakeCpuset("b");
    const asked: Array<string | undefined> = [];
    const events: string[] = [];
    const open = (c: CpusetActuator) => (found?: string) => {
      asked.push(found);
      events.push("open");
      return c;
    };
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      {
        foundCpusets: { a: "0-1" },
        onOpened: () => events.push(`saved before ${a.writes.length + b.writes.length} writes`),
      },
    );
    const rows = (): PlacementInput[] => [
      { id: "a", batch: false, needCpuMillis: 300, openCpuset: open(a.c) },
      { id: "b", batch: false, needCpuMillis: 200, openCpuset: open(b.c) },
    ];
    p.step(rows(), at());
    expect(asked).toEqual(["0-1", undefined]);
    expect(events).toEqual(["open", "open", "saved before 0 writes"]);
    p.step(rows(), at());
    expect(events).toHaveLength(3); // opened once: no second save
    expect(p.found()).toEqual({ a: a.c.found, b: b.c.found });
    // before any cycle, a restart's values are what it gives back
    const q = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { foundCpusets: { a: "0-1" } },
    );
    expect(q.found()).toEqual({ a: "0-1" });
  });

  it("needs that do not fit at the fill: nothing placed, the cpusets back to what they were found with, said why", () => {
    const a = fakeCpuset("a");
    const b = fakeCpuset("b");
    const changes: PlacementChange[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onChange: (c) => changes.push(c) },
    );
    p.step([row("a", 300, a.c), row("b", 200, b.c)], at());
    p.step([row("a", 1000, a.c), row("b", 700, b.c)], at());
    expect(a.held()).toBe("0-1");
    expect(b.held()).toBe("0-1");
    expect(changes.at(-1)!.reason).toContain(
      "the network partitions' needs do not fit at fill 0.8",
    );
    expect(p.view().a).toMatchObject({ cpus: null });
    expect(p.view().a!.why).toContain("do not fit at fill 0.8");
    // still not fitting: no change logged again, nothing written
    p.step([row("a", 1100, a.c), row("b", 700, b.c)], at());
    expect(changes).toHaveLength(2);
    expect(a.writes).toEqual(["0", "0-1"]);
  });

  it("needs at the edge of the fit: once they did not fit, nothing is placed again until REBALANCE_HOLD_MS has passed", () => {
    const a = fakeCpuset("a");
    const b = fakeCpuset("b");
    const p = new PlacementStep({ fillFraction: 0.8, cpus: [0, 1] });
    // 1,600m fits 2 CPUs at fill 0.8; 1,610m does not: a cycle's needs jitter across the edge
    const t0 = at();
    p.step([row("a", 800, a.c), row("b", 800, b.c)], t0);
    expect([a.held(), b.held()]).toEqual(["0", "1"]);
    p.step([row("a", 810, a.c), row("b", 800, b.c)], t0 + 100); // does not fit: unplaced at once
    expect([a.held(), b.held()]).toEqual(["0-1", "0-1"]);
    let t = t0 + 100;
    const unplacedAt = t;
    for (let i = 0; t + 100 - unplacedAt < REBALANCE_HOLD_MS; i++) {
      t += 100;
      p.step([row("a", i % 2 ? 810 : 790, a.c), row("b", 800, b.c)], t);
    }
    // fitting every other cycle for 5 s: not placed again, nothing written
    expect(a.writes).toEqual(["0", "0-1"]);
    expect(p.view().a!.why).toContain("do not fit at fill 0.8");
    t += 100;
    p.step([row("a", 790, a.c), row("b", 800, b.c)], t); // fits after the hold: placed
    expect(a.writes).toHaveLength(3);
    expect([a.held(), b.held()].sort()).toEqual(["0", "1"]);
  });

  it("packs again for balance only after the placement has held REBALANCE_HOLD_MS, and then once", () => {
    const cs = { a: fakeCpuset("a"), b: fakeCpuset("b"), c: fakeCpuset("c") };
    const changes: PlacementChange[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onChange: (c) => changes.push(c) },
    );
    const rows = (a: number, b: number, c: number) => [
      row("a", a, cs.a.c),
      row("b", b, cs.b.c),
      row("c", c, cs.c.c),
    ];
    const t0 = at();
    // before the traffic: every need equal, a and c share CPU 0
    p.step(rows(0, 0, 0), t0);
    expect(changes.at(-1)!.placed).toEqual({ a: [0], b: [1], c: [0] });
    // the traffic came: a 200m + c 400m on CPU 0 against a fresh 500m; held for 5 s
    for (let t = t0 + 100; t - t0 < REBALANCE_HOLD_MS; t += 100) p.step(rows(200, 300, 400), t);
    expect(changes).toHaveLength(1);
    let t = t0 + REBALANCE_HOLD_MS;
    p.step(rows(200, 300, 400), t);
    expect(changes).toHaveLength(2);
    expect(changes.at(-1)!.placed).toEqual({ a: [1], b: [1], c: [0] });
    expect(cs.a.writes).toEqual(["0", "1"]);
    // and it stays there
    for (let i = 0; i < 100; i++) {
      t += 100;
      p.step(rows(200, 300, 400), t);
    }
    expect(changes).toHaveLength(2);
    expect([cs.a.writes, cs.b.writes, cs.c.writes]).toEqual([["0", "1"], ["1"], ["0"]]);
  });

  it("a partition whose cgroup has no cpuset is left out, said once, never failed", () => {
    const a = fakeCpuset("a");
    const problems: string[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onProblem: (id, e, kind) => problems.push(`${id} ${kind} ${e.message}`) },
    );
    const noCpuset: PlacementInput = {
      id: "n",
      batch: false,
      needCpuMillis: 100,
      openCpuset: () => {
        throw new Error("/cg/cpuset/n/cpuset.cpus does not exist");
      },
    };
    p.step([row("a", 300, a.c), noCpuset, row("m", 100)], at());
    p.step([row("a", 300, a.c), noCpuset, row("m", 100)], at());
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain("n unavailable");
    expect(problems[0]).toContain("does not exist");
    expect(problems[1]).toContain("m unavailable");
    expect(p.view().n).toMatchObject({ cpus: null, file: null });
    expect(p.view().n!.why).toContain("placement is not available");
    expect(a.held()).toBe("0");
  });

  it("a cpuset someone narrowed is left as found: not placed, said once, never written", () => {
    const a = fakeCpuset("a");
    const pinned = fakeCpuset("pinned", "1"); // e.g. docker run --cpuset-cpus 1
    const odd = fakeCpuset("odd", "any");
    const problems: string[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onProblem: (id, e, kind) => problems.push(`${id} ${kind} ${e.message}`) },
    );
    for (let i = 0; i < 3; i++)
      p.step([row("a", 300, a.c), row("pinned", 500, pinned.c), row("odd", 50, odd.c)], at());
    expect(pinned.writes).toEqual([]);
    expect(odd.writes).toEqual([]);
    expect(a.held()).toBe("0");
    expect(problems).toEqual([
      'pinned unavailable pinned: not placed: its cpuset was found narrowed to "1" (without CPU 0); placement leaves a cpuset set by someone else as it is',
      'odd unavailable odd: not placed: its cpuset holds "any", not a CPU list',
    ]);
    expect(p.view().pinned).toMatchObject({ cpus: null, file: null });
    expect(p.view().pinned!.why).toContain("found narrowed");
    // only a is given back at shutdown, and only a's found value goes to the state file
    expect(p.restore().map((r) => r.partition)).toEqual(["a"]);
    expect(Object.keys(p.found())).toEqual(["a"]);
  });

  it("an empty cpuset (cgroup v2: its parent's CPUs) is placed, and given back empty", () => {
    const a = fakeCpuset("a", "");
    const b = fakeCpuset("b", "");
    const problems: string[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onProblem: (id) => problems.push(id) },
    );
    p.step([row("a", 300, a.c), row("b", 200, b.c)], at());
    expect([a.held(), b.held()].sort()).toEqual(["0", "1"]);
    expect(problems).toEqual([]);
    expect(p.found()).toEqual({ a: "", b: "" });
    p.restore();
    expect([a.held(), b.held()]).toEqual(["", ""]);
  });

  it("a failed write is that partition's alone, reported once, and tried again each cycle until it succeeds", () => {
    const a = fakeCpuset("a");
    const b = fakeCpuset("b");
    const problems: string[] = [];
    const p = new PlacementStep(
      { fillFraction: 0.8, cpus: [0, 1] },
      { onProblem: (id, _e, kind) => problems.push(`${id} ${kind}`) },
    );
    a.setFail(true);
    p.step([row("a", 300, a.c), row("b", 200, b.c)], at());
    p.step([row("a", 300, a.c), row("b", 200, b.c)], at());
    expect(b.held()).toBe("1");
    expect(a.held()).toBe("0-1");
    expect(problems).toEqual(["a write"]);
    expect(p.view().a!.error?.code).toBe("APPLY_FAILED");
    a.setFail(false);
    p.step([row("a", 300, a.c), row("b", 200, b.c)], at());
    expect(a.held()).toBe("0");
    expect(p.view().a!.error).toBeUndefined();
  });

  it("restore writes back what each cpuset held at open", () => {
    const a = fakeCpuset("a", "0-3");
    const p = new PlacementStep({ fillFraction: 0.8, cpus: [0, 1, 2, 3] });
    p.step([row("a", 300, a.c), row("b", 300, fakeCpuset("b", "0-3").c)], at());
    expect(a.held()).not.toBe("0-3");
    const r = p.restore();
    expect(a.held()).toBe("0-3");
    expect(r.map((x) => x.partition).sort()).toEqual(["a", "b"]);
    expect(p.restore()).toEqual([]);
  });

  it("the loop with the reach sensor: a placed partition whose need passes 1,000m × fill gets more CPUs (or none) the next cycle", () => {
    const a = fakeCpuset("a", "0-3");
    const b = fakeCpuset("b", "0-3");
    const p = new PlacementStep({ fillFraction: 0.8, cpus: [0, 1, 2, 3] });
    p.step([row("a", 500, a.c), row("b", 300, b.c)], at());
    expect(a.held().split(",")).toHaveLength(1);
    // a, on one CPU, uses all of it (its need is at least what it used): 2 CPUs now
    p.step([row("a", 1000, a.c), row("b", 300, b.c)], at());
    expect(a.held().split(",")).toHaveLength(2);
    // past what the host holds at the fill: nothing placed, a back on every CPU
    p.step([row("a", 2900, a.c), row("b", 600, b.c)], at());
    expect(a.held()).toBe("0-3");
  });
});
