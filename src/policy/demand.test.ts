// Demand of one partition: the arithmetic of the control law's steps 1 and 2 (top-level
// README.md, "How weir decides": demand from traffic, confirmation).
import { describe, expect, it } from "vitest";
import {
  assessDemandRows,
  assessNetworkDemand,
  type DemandInputs,
  demandColumns,
  goalFloorCpuMillis,
  performanceIndex,
  smoothDemand,
  smoothDemandOrRaw,
  smoothVelocity,
  smoothVelocityOrNaN,
} from "./demand.ts";
import { defaultPolicyKnobs } from "./knobs.ts";
import { goalBase } from "./rules.ts";
import { FLAG_RISING } from "./state.ts";
import { setThroughput, throughputColumns } from "./table.ts";
import { throughput } from "./test-fixtures.ts";

const knobs = defaultPolicyKnobs(2000); // headroom 0.2, probe 1.5, up 0.7, down 0.2, throttled ≥ 0.05

describe("smoothVelocity", () => {
  it("starts at the first sample and follows later ones by the EWMA weight", () => {
    expect(smoothVelocity(null, 4100, 0.3)).toBe(4100);
    // 4000 + 0.3 × (2800 − 4000) = 4000 − 360 = 3640
    expect(smoothVelocity(4000, 2800, 0.3)).toBeCloseTo(3640, 9);
  });

  it("ignores null, zero, negative and non-finite samples", () => {
    expect(smoothVelocity(4000, null, 0.3)).toBe(4000);
    expect(smoothVelocity(4000, 0, 0.3)).toBe(4000);
    expect(smoothVelocity(4000, -5, 0.3)).toBe(4000);
    expect(smoothVelocity(4000, Number.POSITIVE_INFINITY, 0.3)).toBe(4000);
    expect(smoothVelocity(null, null, 0.3)).toBeNull();
  });
});

describe("smoothDemand", () => {
  it("follows a rise fast and a fall slowly", () => {
    // up: 100 + 0.7 × (200 − 100) = 170
    expect(smoothDemand(100, 200, 0.7, 0.2)).toBeCloseTo(170, 9);
    // down: 200 + 0.2 × (100 − 200) = 180
    expect(smoothDemand(200, 100, 0.7, 0.2)).toBeCloseTo(180, 9);
    // nothing before: the sample itself
    expect(smoothDemand(null, 123, 0.7, 0.2)).toBe(123);
    // the arrays' form: NaN (or any non-finite value) is no previous demand
    expect(smoothDemandOrRaw(Number.NaN, 123, 0.7, 0.2)).toBe(123);
    expect(smoothDemandOrRaw(Number.POSITIVE_INFINITY, 123, 0.7, 0.2)).toBe(123);
    expect(smoothDemandOrRaw(100, 200, 0.7, 0.2)).toBe(smoothDemand(100, 200, 0.7, 0.2));
  });
});

describe("assessNetworkDemand", () => {
  it("credits offered load ÷ velocity + headroom when throttling confirms it", () => {
    const tp = throughput("web", {
      offeredPacketsPerSec: 3000,
      servedPacketsPerSec: 1200,
      cpuCores: 0.3,
      throttledFraction: 0.4,
    });
    const a = assessNetworkDemand(tp, 4100, 300, 360, undefined, knobs);
    expect(a.kind).toBe("traffic");
    expect(a.constrained).toBe(true);
    // 3000 pps / 4100 pkt/cpu-s = 0.73171 cores = 731.71m; × 1.2 headroom = 878.05m
    expect(a.trafficNeedCpuMillis).toBeCloseTo(878.0488, 3);
    // smoothing up from max(prev demand 360, current 300) = 360: 360 + 0.7 × (878.05 − 360) = 722.63
    expect(a.demandCpuMillis).toBeCloseTo(722.6341, 3);
  });

  it("refuses junk: offered load that congestion does not confirm earns only use + headroom", () => {
    const tp = throughput("junk", {
      offeredPacketsPerSec: 50_000,
      servedPacketsPerSec: 100,
      cpuCores: 0.05,
      throttledFraction: 0,
    });
    const a = assessNetworkDemand(tp, 2000, 400, 100, undefined, knobs);
    expect(a.kind).toBe("use");
    expect(a.constrained).toBe(false);
    // traffic would say 50,000 / 2,000 = 25 cores = 25,000m; × 1.2 = 30,000m
    expect(a.trafficNeedCpuMillis).toBeCloseTo(30_000, 6);
    // what is credited: used 50m × 1.2 = 60m
    expect(a.useNeedCpuMillis).toBeCloseTo(60, 9);
    // smoothed down from 100: 100 + 0.2 × (60 − 100) = 92
    expect(a.demandCpuMillis).toBeCloseTo(92, 9);
  });

  it("does not count drops as CPU congestion when the partition uses under half its allocation", () => {
    // dropping 500 pps while using 100m of 400m: its socket is full of traffic it does not read
    const idle = throughput("p", {
      offeredPacketsPerSec: 5000,
      servedPacketsPerSec: 400,
      droppedPacketsPerSec: 500,
      cpuCores: 0.1,
    });
    const a = assessNetworkDemand(idle, 4000, 400, null, undefined, knobs);
    expect(a.dropsIgnored).toBe(true);
    expect(a.kind).toBe("use"); // 100m < 0.5 × 400m = 200m
    expect(a.demandCpuMillis).toBeCloseTo(120, 9); // 100m × 1.2

    // the same drops while using 350m of 400m do confirm (350m ≥ 200m)
    const busy = { ...idle, cpuCores: 0.35 };
    const b = assessNetworkDemand(busy, 4000, 400, null, undefined, knobs);
    expect(b.dropping).toBe(true);
    expect(b.kind).toBe("traffic");
    // 5000 / 4000 = 1.25 cores = 1250m × 1.2 = 1500m
    expect(b.trafficNeedCpuMillis).toBeCloseTo(1500, 9);
    // no previous demand: smoothing up starts from what it has, 400m: 400 + 0.7 × 1100 = 1170
    expect(b.demandCpuMillis).toBeCloseTo(1170, 9);
    // with no previous demand there is nothing to have risen from: no step is marked
    expect(b.rising).toBe(false);
  });

  it("probes × probeFactor when congested and the velocity is unknown", () => {
    const tp = throughput("p", {
      offeredPacketsPerSec: 800,
      servedPacketsPerSec: 600,
      cpuCores: 0.4,
      throttledFraction: 0.5,
    });
    const a = assessNetworkDemand(tp, null, 400, 400, undefined, knobs);
    expect(a.kind).toBe("probe");
    expect(a.trafficNeedCpuMillis).toBeNull();
    // max(prev 400m, used 400m) × 1.5 = 600m, not smoothed
    expect(a.demandCpuMillis).toBe(600);
  });

  it("probes when congested and nothing counted arrivals (offered 0 while serving)", () => {
    const tp = throughput("p", {
      offeredPacketsPerSec: 0,
      servedPacketsPerSec: 1000,
      cpuCores: 0.25,
      throttledFraction: 0.3,
    });
    const a = assessNetworkDemand(tp, 4000, 250, 250, undefined, knobs);
    expect(a.kind).toBe("probe");
    expect(a.demandCpuMillis).toBe(375); // 250m × 1.5
  });

  it("probes when congested although the offered load would fit in what it has", () => {
    // 1000 pps / 4000 = 250m × 1.2 = 300m, yet it is throttled at 500m: the estimate is wrong
    const tp = throughput("p", {
      offeredPacketsPerSec: 1000,
      servedPacketsPerSec: 900,
      cpuCores: 0.5,
      throttledFraction: 0.6,
    });
    const a = assessNetworkDemand(tp, 4000, 500, 500, undefined, knobs);
    expect(a.kind).toBe("probe");
    expect(a.trafficNeedCpuMillis).toBeCloseTo(300, 9);
    expect(a.demandCpuMillis).toBe(750); // 500m × 1.5
  });

  it("does not probe a catch-up window: served more than its offer + headroom after a stall", () => {
    // conservation-real's step on the real testbed: a offered 3,406 pps, velocity 5,249
    // pkt/cpu-s, entitled to 727m with a demand of 651m after a stalled window; the next window
    // drains the backlog: 5,280 pps served (155 % of the offer) on 959m, 261 drops/s
    const tp = throughput("a", {
      offeredPacketsPerSec: 3406,
      servedPacketsPerSec: 5280,
      droppedPacketsPerSec: 261,
      cpuCores: 0.959,
    });
    const a = assessNetworkDemand(tp, 5249, 727, 651, undefined, knobs);
    expect(a.dropping).toBe(true); // 959m ≥ half of 727m: the drops count as congestion
    expect(a.kind).toBe("traffic");
    // 3406 ÷ 5249 = 648.89m × 1.2 = 778.66m, below max(727m, 959m): before, a probe ×1.5 → 1,438.5m
    expect(a.trafficNeedCpuMillis).toBeCloseTo(778.6626, 3);
    expect(a.probeFromCpuMillis).toBe(959);
    // its traffic's need, smoothed from the last demand: 651 + 0.7 × (778.66 − 651) = 740.36m
    expect(a.demandCpuMillis).toBeCloseTo(740.3638, 3);
    expect(a.rising).toBe(false);
    // served only up to its offer × 1.2 (4,087.2 pps): no backlog drained, the probe stands
    const b = assessNetworkDemand(
      { ...tp, servedPacketsPerSec: 4087 },
      5249,
      727,
      651,
      undefined,
      knobs,
    );
    expect(b.kind).toBe("probe");
    expect(b.demandCpuMillis).toBeCloseTo(1438.5, 9); // 959m × 1.5
  });

  it("never probes below the previous demand (a partition short because capacity ran out)", () => {
    const tp = throughput("p", {
      offeredPacketsPerSec: 500,
      servedPacketsPerSec: 400,
      cpuCores: 0.2,
      throttledFraction: 0.9,
    });
    // previous allocation 200m, previous demand 900m: max(200 × 1.5 = 300, 900) = 900
    expect(assessNetworkDemand(tp, null, 200, 900, undefined, knobs).demandCpuMillis).toBe(900);
  });

  it("floors demand at goal ÷ velocity", () => {
    const tp = throughput("p", {
      offeredPacketsPerSec: 2000,
      servedPacketsPerSec: 400,
      cpuCores: 0.1,
    });
    const a = assessNetworkDemand(tp, 4000, 120, 120, 2000, knobs);
    // use-based 100m × 1.2 = 120m, but the goal 2,000 pps / 4,000 pkt/cpu-s = 500m
    expect(a.goalFloorCpuMillis).toBeCloseTo(500, 9);
    expect(a.demandCpuMillis).toBeCloseTo(500, 9);
    expect(goalFloorCpuMillis(2000, null)).toBeNull(); // no velocity yet: no floor
    // only 400 pps arrive and more CPU would not help (not waiting, throttled or dropping):
    // the floor is the traffic + 20 %, 480 / 4,000 = 120m, not the goal's 500m
    const light = throughput("p", {
      offeredPacketsPerSec: 400,
      servedPacketsPerSec: 400,
      cpuCores: 0.1,
    });
    const b = assessNetworkDemand(light, 4000, 120, 120, 2000, knobs);
    expect(b.goalFloorCpuMillis).toBeCloseTo(120, 9);
    expect(b.demandCpuMillis).toBeCloseTo(120, 9);
  });
});

describe("performanceIndex", () => {
  it("is goal ÷ achieved, with achieved floored at 1 pps", () => {
    expect(performanceIndex(2000, 1500)).toBeCloseTo(1.3333, 4); // 2000 / 1500: misses the goal
    expect(performanceIndex(2000, 2500)).toBeCloseTo(0.8, 9); // 2000 / 2500: beats it
    expect(performanceIndex(2000, 0)).toBe(2000); // 2000 / max(1, 0)
    expect(performanceIndex(undefined, 100)).toBeNull();
  });

  it("counts CPU delay as congestion only while the partition uses at least 90 % of its entitlement", () => {
    const waiting = throughput("p", {
      offeredPacketsPerSec: 400,
      servedPacketsPerSec: 400,
      cpuCores: 0.046,
      cpuDelayFraction: 0.6,
    });
    // 46m used of a 767m entitlement: 46 < 0.9 × 767 = 690.3, so the waits are wake-up
    // latency, not a lack of CPU: use + headroom, 46 × 1.2 = 55.2m, smoothed down from 60m:
    // 60 + 0.2 × (55.2 − 60) = 59.04
    const light = assessNetworkDemand(waiting, 9000, 767, 60, undefined, knobs);
    expect(light).toMatchObject({ delayed: false, constrained: false, kind: "use" });
    expect(light.demandCpuMillis).toBeCloseTo(59.04, 9);
    // the same waiting while using 46m of a 50m entitlement (46 ≥ 45) is congestion
    expect(assessNetworkDemand(waiting, 9000, 50, 60, undefined, knobs)).toMatchObject({
      delayed: true,
      constrained: true,
    });
  });

  it("a step confirmed by congestion is followed at once into the next, uncongested window", () => {
    // The first two windows after reaction-real's step in one repetition (10:41 UTC, 2026-12-02):
    // 8,762 pps offered, 452m used, 164 pps dropped (confirms), velocity 15,897; last
    // allocation and demand 113m. Traffic: 8762 ÷ 15897 × 1000 × 1.2 = 661.41m, smoothed from
    // max(113, 452) = 452: 452 + 0.7 × 209.41 = 598.59m, more than 113 × 1.2: a step.
    const first = assessNetworkDemand(
      throughput("a", {
        offeredPacketsPerSec: 8762,
        servedPacketsPerSec: 8598,
        droppedPacketsPerSec: 164,
        cpuCores: 0.452,
        cpuDelayFraction: 0.27,
      }),
      15897,
      113,
      113,
      undefined,
      knobs,
    );
    expect(first.kind).toBe("traffic");
    expect(first.demandCpuMillis).toBeCloseTo(598.59, 2);
    expect(first.rising).toBe(true);
    // Next window: 583m used, no drops, CPU delay 20 %: use + headroom 699.6m, the rest of the
    // step, followed at once (before, a congested window never marked a step, so this rise was
    // taken as noise: 598.59 + 0.2 × 101.01 = 618.79m, and the rest came at 20 % a cycle).
    const next = assessNetworkDemand(
      throughput("a", {
        offeredPacketsPerSec: 11476,
        servedPacketsPerSec: 11476,
        cpuCores: 0.583,
        cpuDelayFraction: 0.2,
      }),
      16637,
      599,
      first.demandCpuMillis,
      undefined,
      knobs,
      0,
      undefined,
      599,
      first.rising,
    );
    expect(next.kind).toBe("use");
    expect(next.demandCpuMillis).toBeCloseTo(699.6, 9);
    // levelled off: 699.6 ≤ 598.59 × 1.2
    expect(next.rising).toBe(false);
    // a congested window whose demand rose by no more than the headroom is no step
    const small = assessNetworkDemand(
      throughput("a", {
        offeredPacketsPerSec: 8762,
        servedPacketsPerSec: 8598,
        droppedPacketsPerSec: 164,
        cpuCores: 0.452,
        cpuDelayFraction: 0.27,
      }),
      15897,
      560,
      560,
      undefined,
      knobs,
    );
    // from max(560, 560) = 560: 560 + 0.7 × 101.41 = 630.99, under 560 × 1.2 = 672
    expect(small.demandCpuMillis).toBeCloseTo(630.99, 2);
    expect(small.rising).toBe(false);
  });

  it("an uncongested partition follows noise slowly and a load step fast", () => {
    const tp = (cores: number) =>
      throughput("p", { offeredPacketsPerSec: 800, servedPacketsPerSec: 800, cpuCores: cores });
    // noise: use 150m → 180m, under 2 × the demand 100m: 100 + 0.2 × 80 = 116
    expect(
      assessNetworkDemand(tp(0.15), 5000, 120, 100, undefined, knobs).demandCpuMillis,
    ).toBeCloseTo(116, 9);
    // a step: use 300m → 360m, above 2 × 100m: followed at once, 360, and marked rising
    const step = assessNetworkDemand(tp(0.3), 5000, 120, 100, undefined, knobs);
    expect(step.demandCpuMillis).toBeCloseTo(360, 9);
    expect(step.rising).toBe(true);
    // the next window (the step began mid-window): use 500m → 600m, under 2 × 360m but a further
    // rise after a step → followed at once, 600, and still rising (600 > 360 × 1.2)
    const rest = assessNetworkDemand(
      tp(0.5),
      5000,
      360,
      360,
      undefined,
      knobs,
      0,
      undefined,
      360,
      true,
    );
    expect(rest.demandCpuMillis).toBeCloseTo(600, 9);
    expect(rest.rising).toBe(true);
    // and the next: use 550m → 660m, a further rise but by no more than the headroom
    // (660 ≤ 600 × 1.2) → followed at once, 660, and the step has levelled off
    const end = assessNetworkDemand(
      tp(0.55),
      5000,
      600,
      600,
      undefined,
      knobs,
      0,
      undefined,
      600,
      true,
    );
    expect(end.demandCpuMillis).toBeCloseTo(660, 9);
    expect(end.rising).toBe(false);
    // the same window without a step before it: noise, 360 + 0.2 × 240 = 408
    expect(
      assessNetworkDemand(tp(0.5), 5000, 360, 360, undefined, knobs).demandCpuMillis,
    ).toBeCloseTo(408, 9);
    // after a step, a fall is followed slowly as always: use 250m → 300m: 360 − 0.2 × 60 = 348
    expect(
      assessNetworkDemand(tp(0.25), 5000, 360, 360, undefined, knobs, 0, undefined, 360, true)
        .demandCpuMillis,
    ).toBeCloseTo(348, 9);
  });
});

describe("assessDemandRows making its own inputs (fromPrevious)", () => {
  // The step lets the rule smooth each row's velocity and compute a goal row's base itself; it
  // must give what the rule gives on the same values made beforehand, bit for bit.
  it("gives the same columns as the inputs made in a pass before it", () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const n = 400;
    const capacity = 8000;
    const divisors = new Float64Array([1, 1, 2, 3, 4, 5]);
    const importance = new Uint8Array(n);
    const prevVelocity = new Float64Array(n);
    const prevWeight = new Float64Array(n);
    const prevCpu = new Float64Array(n);
    const prevDemand = new Float64Array(n);
    const goals = new Float64Array(n);
    const prevFlags = new Uint8Array(n);
    const prevMargin = new Float64Array(n);
    const cols = throughputColumns(n);
    for (let i = 0; i < n; i++) {
      importance[i] = 1 + Math.floor(rnd() * 5);
      prevVelocity[i] = rnd() < 0.2 ? Number.NaN : 2000 + rnd() * 3000;
      prevWeight[i] = rnd() < 0.2 ? Number.NaN : 1 + Math.floor(rnd() * 9999);
      prevCpu[i] = rnd() < 0.1 ? Number.NaN : rnd() * 2000;
      prevDemand[i] = rnd() < 0.1 ? Number.NaN : rnd() * 2000;
      goals[i] = rnd() < 0.5 ? 500 + rnd() * 5000 : Number.NaN;
      prevFlags[i] = rnd() < 0.3 ? FLAG_RISING : 0;
      prevMargin[i] = rnd() < 0.5 ? Number.NaN : rnd() * 0.2;
      if (rnd() < 0.1) continue; // no window this cycle
      const offered = rnd() < 0.1 ? 0 : rnd() * 4000;
      const served = offered * (rnd() < 0.3 ? rnd() : 1);
      setThroughput(
        cols,
        i,
        throughput(`p${i}`, {
          offeredPacketsPerSec: offered,
          servedPacketsPerSec: served,
          droppedPacketsPerSec: rnd() < 0.1 ? offered - served : 0,
          cpuCores: rnd() * 1.5,
          throttledFraction: rnd() < 0.3 ? rnd() : 0,
          cpuDelayFraction: rnd() < 0.3 ? rnd() : 0,
          rawVelocityPacketsPerCpuSec: rnd() < 0.1 ? null : 2000 + rnd() * 3000,
        }),
      );
    }
    const order = Int32Array.from({ length: n }, (_, k) => (k * 7) % n); // 7 and 400 coprime
    for (const goalCycleFraction of [0, 0.9]) {
      const k = { ...defaultPolicyKnobs(capacity), goalCycleFraction };
      const inputs = (velocity: Float64Array, bases: Float64Array): DemandInputs => ({
        velocity,
        prevCpuMillis: prevCpu,
        prevDemandCpuMillis: prevDemand,
        goalPacketsPerSec: goals,
        goalBaseCpuMillis: bases,
        prevFlags,
        prevGoalMargin: prevMargin,
        minProbeStepCpuMillis: 21,
      });
      const madeVelocity = new Float64Array(n);
      const madeBases = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        madeVelocity[i] = smoothVelocityOrNaN(
          prevVelocity[i]!,
          cols.has[i] === 1 ? cols.rawVelocityPacketsPerCpuSec[i]! : Number.NaN,
          k.velocitySmoothing,
        );
        madeBases[i] =
          goalBase(prevWeight[i]!, prevCpu[i]!, capacity, divisors[importance[i]!]!) ?? Number.NaN;
      }
      const before = demandColumns(n, true);
      assessDemandRows(cols, n, inputs(madeVelocity, madeBases), k, before, order);
      const velocity = new Float64Array(n).fill(-1); // overwritten in every row
      const within = demandColumns(n, true);
      assessDemandRows(
        cols,
        n,
        {
          ...inputs(velocity, new Float64Array(0)),
          fromPrevious: {
            prevVelocity,
            prevWeight,
            importance,
            weightDivisors: divisors,
            capacityCpuMillis: capacity,
            velocitySmoothing: k.velocitySmoothing,
          },
        },
        k,
        within,
        order,
      );
      expect(Array.from(velocity)).toEqual(Array.from(madeVelocity));
      expect(within).toEqual(before);
      // Given the batch column, the rows a reader asks about (network, with a window) get the
      // same columns, every row its velocity; the others keep what their columns held (here -1),
      // unless goal margins are learnt by cycles (then every row is assessed)
      const batch = Uint8Array.from({ length: n }, () => +(rnd() < 0.1));
      const skipped = demandColumns(n, true);
      for (const col of Object.values(skipped.detail!)) (col as Float64Array).fill(-1);
      for (const col of [skipped.useNeedCpuMillis, skipped.demandCpuMillis]) col.fill(-1);
      skipped.kind.fill(255);
      const velocitySkipped = new Float64Array(n).fill(-1);
      assessDemandRows(
        cols,
        n,
        {
          ...inputs(velocitySkipped, new Float64Array(0)),
          batch,
          fromPrevious: {
            prevVelocity,
            prevWeight,
            importance,
            weightDivisors: divisors,
            capacityCpuMillis: capacity,
            velocitySmoothing: k.velocitySmoothing,
          },
        },
        k,
        skipped,
        order,
      );
      expect(Array.from(velocitySkipped)).toEqual(Array.from(madeVelocity));
      let asked = 0;
      let left = 0;
      for (let i = 0; i < n; i++) {
        const read = batch[i] === 0 && cols.has[i] === 1;
        if (read || goalCycleFraction > 0) {
          asked++;
          expect([skipped.kind[i], skipped.bits[i], skipped.demandCpuMillis[i]]).toEqual([
            before.kind[i],
            before.bits[i],
            before.demandCpuMillis[i],
          ]);
          expect(skipped.useNeedCpuMillis[i]).toBe(before.useNeedCpuMillis[i]);
          expect(skipped.goalMargin[i]).toBe(before.goalMargin[i]);
        } else {
          left++;
          expect([skipped.kind[i], skipped.demandCpuMillis[i]]).toEqual([255, -1]);
        }
      }
      expect(asked).toBeGreaterThan(200);
      if (goalCycleFraction === 0) expect(left).toBeGreaterThan(40);
      // the rows are varied enough to mean something: goal rows with a base, every kind
      expect(new Set(before.kind).size).toBe(4);
      expect(Array.from(madeBases).filter((b, i) => b > 0 && goals[i]! > 0).length).toBeGreaterThan(
        50,
      );
    }
  });
});
