import { describe, expect, it } from "vitest";
import { reachedAfterMs, summariseTiers, type TiersRun } from "./goals-tiers-real.ts";

describe("reachedAfterMs", () => {
  const s = (pairs: Array<[number, number]>) => pairs.map(([t, pps]) => ({ t, pps }));
  it("is the end of the first 3-sample window whose mean reaches the level, after the start", () => {
    const samples = s([
      [900, 900], // before the fall: not counted
      [1100, 100],
      [1200, 400],
      [1300, 800],
      [1400, 900],
      [1500, 1000],
    ]);
    // windows after 1000: (100,400,800) mean 433; (400,800,900) 700; (800,900,1000) 900 ≥ 900
    expect(reachedAfterMs(samples, 1000, 900)).toBe(500);
    expect(reachedAfterMs(samples, 1000, 701)).toBe(500);
    expect(reachedAfterMs(samples, 1000, 700)).toBe(400);
    expect(reachedAfterMs(samples, 1000, 5000)).toBeNull();
  });
});

describe("summariseTiers", () => {
  const run = (policy: TiersRun["policy"], over: Partial<TiersRun> = {}): TiersRun => ({
    policy,
    rep: 0,
    goalPacketsPerSec: 5000,
    soloRps: 10_000,
    packetsPerReply: 1,
    p1: { a: 5250, b: 3900, c: 100 },
    p2: { a: 2500, b: 5200, c: 1400 },
    reactionMs: 600,
    cLevelPps: 1400,
    thinkMs: 3,
    ...over,
  });
  it("scores goals in replies and the surplus reaction against its targets", () => {
    const out = summariseTiers([run("weir"), run("none", { reactionMs: null })], { notes: [] });
    const f = Object.fromEntries(out.figures.map((x) => [x.name.split(" (")[0], x]));
    // a 5,250 ÷ 5,000 = 1.05; b's share 3,900 ÷ 4,000 = 97.5 %; b 5,200 ÷ 5,000 = 1.04
    expect(f["weir, overloaded: importance 1 served ÷ its goal"]).toMatchObject({
      value: 1.05,
      meets: true,
    });
    expect(
      f["weir, overloaded: importance 2's share of what importance 1 leaves, b ÷"],
    ).toMatchObject({ value: 97.5, meets: true });
    expect(f["weir, a's load falls: importance 2 served ÷ its goal"]).toMatchObject({
      value: 1.04,
      meets: true,
    });
    const reaction = out.figures.find((x) => x.unit === "ms")!;
    expect(reaction).toMatchObject({ value: 600, meets: true });
    // plain CFS never got there: its row says 0/1
    expect(out.tables![0]!.rows.find((r) => r[0] === "none (plain CFS)")!.at(-1)).toBe("0/1");
  });
});
