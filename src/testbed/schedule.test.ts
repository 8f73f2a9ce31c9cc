import { describe, expect, it } from "vitest";
import {
  describeSchedule,
  packetsBetween,
  parseDurationMs,
  parseScheduleSpec,
  parseTrace,
  rateAt,
  rotatingLoad,
  type Schedule,
} from "./schedule.ts";

describe("rateAt", () => {
  it("constant", () => {
    expect(rateAt({ kind: "constant", pps: 500 }, 0)).toBe(500);
    expect(rateAt({ kind: "constant", pps: 500 }, 99_999)).toBe(500);
  });

  it("step switches at atMs (inclusive)", () => {
    const s: Schedule = { kind: "step", fromPps: 200, toPps: 1000, atMs: 5000 };
    expect([rateAt(s, 0), rateAt(s, 4999), rateAt(s, 5000), rateAt(s, 9000)]).toEqual([
      200, 200, 1000, 1000,
    ]);
  });

  it("ramp is flat, then linear, then flat", () => {
    const s: Schedule = { kind: "ramp", fromPps: 100, toPps: 2100, startMs: 1000, endMs: 3000 };
    // halfway through: 100 + (2100 - 100) * 1000 / 2000 = 1100
    expect([
      rateAt(s, 0),
      rateAt(s, 1000),
      rateAt(s, 2000),
      rateAt(s, 3000),
      rateAt(s, 5000),
    ]).toEqual([100, 100, 1100, 2100, 2100]);
  });

  it("square is high for the duty fraction of each period", () => {
    const s: Schedule = { kind: "square", lowPps: 200, highPps: 1500, periodMs: 4000, duty: 0.25 };
    // high in [0, 1000), low in [1000, 4000), again high at 4000
    expect([
      rateAt(s, 0),
      rateAt(s, 999),
      rateAt(s, 1000),
      rateAt(s, 3999),
      rateAt(s, 4000),
    ]).toEqual([1500, 1500, 200, 200, 1500]);
  });

  it("trace: 0 before the first row, holds the last, step or linear between", () => {
    const points = [
      { tMs: 1000, pps: 100 },
      { tMs: 2000, pps: 300 },
    ];
    const step: Schedule = { kind: "trace", points, interpolate: "step" };
    const lin: Schedule = { kind: "trace", points, interpolate: "linear" };
    expect([rateAt(step, 500), rateAt(step, 1500), rateAt(step, 2500)]).toEqual([0, 100, 300]);
    // linear halfway: 100 + (300 - 100) * 0.5 = 200
    expect([rateAt(lin, 500), rateAt(lin, 1500), rateAt(lin, 2500)]).toEqual([0, 200, 300]);
  });

  it("packetsBetween integrates the rate", () => {
    // 500 pps for 2 s = 1000 packets
    expect(packetsBetween({ kind: "constant", pps: 500 }, 0, 2000)).toBeCloseTo(1000, 6);
    // step 200 -> 1000 at 1 s, over 0..2 s: 200 + 1000 = 1200
    expect(
      packetsBetween({ kind: "step", fromPps: 200, toPps: 1000, atMs: 1000 }, 0, 2000),
    ).toBeCloseTo(1200, 6);
    // ramp 0 -> 1000 over 0..2 s: triangle area 1000 * 2 / 2 = 1000
    expect(
      packetsBetween({ kind: "ramp", fromPps: 0, toPps: 1000, startMs: 0, endMs: 2000 }, 0, 2000),
    ).toBeCloseTo(1000, 6);
  });
});

describe("parsing", () => {
  it("durations", () => {
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("1.5s")).toBe(1500);
    expect(parseDurationMs("2m")).toBe(120_000);
    expect(parseDurationMs("1h")).toBe(3_600_000);
    expect(parseDurationMs("40")).toBe(40);
    expect(() => parseDurationMs("ten seconds", "duration")).toThrow(
      /'duration' must be a duration.*"ten seconds"/,
    );
  });

  it("schedule specs of every kind", () => {
    expect(parseScheduleSpec("500")).toEqual({ kind: "constant", pps: 500 });
    expect(parseScheduleSpec("constant:80")).toEqual({ kind: "constant", pps: 80 });
    expect(parseScheduleSpec("step:200,1000@5s")).toEqual({
      kind: "step",
      fromPps: 200,
      toPps: 1000,
      atMs: 5000,
    });
    expect(parseScheduleSpec("ramp:100..2000@10s")).toEqual({
      kind: "ramp",
      fromPps: 100,
      toPps: 2000,
      startMs: 0,
      endMs: 10_000,
    });
    expect(parseScheduleSpec("ramp:100..2000@2s..10s")).toEqual({
      kind: "ramp",
      fromPps: 100,
      toPps: 2000,
      startMs: 2000,
      endMs: 10_000,
    });
    expect(parseScheduleSpec("square:200,1500/4s")).toEqual({
      kind: "square",
      lowPps: 200,
      highPps: 1500,
      periodMs: 4000,
      duty: 0.5,
    });
    expect(parseScheduleSpec("square:200,1500/4s/0.25")).toMatchObject({ duty: 0.25 });
    expect(parseScheduleSpec('{"kind":"square","lowPps":1,"highPps":2,"periodMs":100}')).toEqual({
      kind: "square",
      lowPps: 1,
      highPps: 2,
      periodMs: 100,
      duty: 0.5,
    });
    const files: Record<string, string> = { "t.csv": "tMs,pps\n0,10\n1000,20\n" };
    expect(parseScheduleSpec("trace:t.csv", (p) => files[p]!)).toEqual({
      kind: "trace",
      points: [
        { tMs: 0, pps: 10 },
        { tMs: 1000, pps: 20 },
      ],
      interpolate: "step",
    });
    expect(parseScheduleSpec("trace-linear:t.csv", (p) => files[p]!)).toMatchObject({
      interpolate: "linear",
    });
  });

  it("bad schedule specs name the rule and the value", () => {
    expect(() => parseScheduleSpec("step:200@5s")).toThrow(/step must look like.*"step:200@5s"/);
    expect(() => parseScheduleSpec("ramp:5..1@2s..1s")).toThrow(/ramp end must be after its start/);
    expect(() => parseScheduleSpec("square:1,2/0s")).toThrow(/period must be > 0/);
    expect(() => parseScheduleSpec("square:1,2/1s/1.5")).toThrow(/duty/);
    expect(() => parseScheduleSpec("sine:5")).toThrow(/kind must be/);
    expect(() => parseScheduleSpec("-5")).toThrow(/'pps' must be a number >= 0/);
    expect(() => parseScheduleSpec('{"kind":"constant","pps":-1}')).toThrow(/pps/);
    expect(() => parseScheduleSpec("trace:x")).toThrow(/file reader/);
  });

  it("trace files: comments, header, separators; bad rows and order are errors", () => {
    expect(parseTrace("# diurnal\ntMs pps\n0\t5\n500;10\n\n1000, 20\n")).toEqual([
      { tMs: 0, pps: 5 },
      { tMs: 500, pps: 10 },
      { tMs: 1000, pps: 20 },
    ]);
    expect(() => parseTrace("0,5\n0,6\n")).toThrow(/line 2: times must increase/);
    expect(() => parseTrace("0,5\n10,x\n")).toThrow(/trace line 2/);
    expect(() => parseTrace("# nothing\n")).toThrow(/no rows/);
  });

  it("describes schedules for reports", () => {
    expect(describeSchedule({ kind: "step", fromPps: 1, toPps: 2, atMs: 3 })).toBe(
      "step 1->2 pps at 3 ms",
    );
  });
});

describe("rotatingLoad", () => {
  it("gives each phase's hot partition the high rate and the others the low rate", () => {
    const { schedules, phases } = rotatingLoad(["a", "b", "c"], {
      phaseMs: 1000,
      phaseCount: 4,
      highPps: 900,
      lowPps: 100,
    });
    expect(phases.map((p) => [p.hot, p.fromMs, p.toMs])).toEqual([
      ["a", 0, 1000],
      ["b", 1000, 2000],
      ["c", 2000, 3000],
      ["a", 3000, 4000],
    ]);
    const at = (n: string, t: number) => rateAt(schedules[n]!, t);
    expect([at("a", 500), at("b", 500), at("c", 500)]).toEqual([900, 100, 100]);
    expect([at("a", 1500), at("b", 1500), at("c", 1500)]).toEqual([100, 900, 100]);
    expect([at("a", 3500), at("c", 3500)]).toEqual([900, 100]);
    expect(() => rotatingLoad([], { phaseMs: 1, phaseCount: 1, highPps: 1, lowPps: 0 })).toThrow(
      /rotatingLoad needs/,
    );
  });
});
