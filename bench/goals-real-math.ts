// Pure arithmetic of the goals-real benchmark (tested in goals-real-math.test.ts): the goal and
// the surplus from a partition's solo rate, and each run's score against them.

/** A rate in both units the benchmark counts: replies/s (the client) and packets/s (the sensor). */
export interface Rate {
  /** Replies per second the closed-loop client received. */
  requestsPerSec: number;
  /** Packets per second on the host-side veth's rx (what weir's sensor counts as served). */
  packetsPerSec: number;
}

export interface GoalPlan {
  /** The goal weir is given, in the sensor's packets/s. */
  goalPacketsPerSec: number;
  /** The same goal in replies/s: goal packets ÷ the solo run's packets per reply. */
  goalRequestsPerSec: number;
  /** What the partition's solo rate leaves above its goal, in both units. */
  surplusPacketsPerSec: number;
  surplusRequestsPerSec: number;
}

const positive = (field: string, x: number): void => {
  if (!(x > 0) || !Number.isFinite(x))
    throw new Error(`goals-real: ${field} must be a positive finite number, got ${x}`);
};

/** Goal = `fraction` of the solo rate (packets/s, rounded); surplus = solo − goal. */
export function planGoal(solo: Rate, fraction: number): GoalPlan {
  positive("solo.requestsPerSec", solo.requestsPerSec);
  positive("solo.packetsPerSec", solo.packetsPerSec);
  if (!(fraction > 0 && fraction < 1))
    throw new Error(`goals-real: goal fraction must be in (0, 1), got ${fraction}`);
  const goalPacketsPerSec = Math.round(solo.packetsPerSec * fraction);
  const packetsPerReply = solo.packetsPerSec / solo.requestsPerSec;
  const goalRequestsPerSec = goalPacketsPerSec / packetsPerReply;
  return {
    goalPacketsPerSec,
    goalRequestsPerSec,
    surplusPacketsPerSec: solo.packetsPerSec - goalPacketsPerSec,
    surplusRequestsPerSec: solo.requestsPerSec - goalRequestsPerSec,
  };
}

/**
 * The plan of one run bracketed by two solo runs: the goal is the one weir was given, from the
 * solo run just before (planGoal(before)); the solo rate the surplus is counted from is the mean
 * of that solo run and the one just after, in both units. Why: the host's speed drifts between
 * runs (a repetition's solo rates here ranged 13.1k–17.6k packets/s), and a goal held in
 * packets/s turns each 1 % the host loses into 1 % ÷ (1 − fraction) of the surplus (5 % at an
 * 80 % goal); a solo run minutes away from the run it scores measures that drift, not the policy.
 *   before 1,000 replies/s = 2,000 pps, after 900 = 1,800 pps, fraction 0.8: goal 1,600 pps;
 *   solo 950 replies/s = 1,900 pps (2 packets per reply); goal 800 replies/s; surplus 300 pps,
 *   150 replies/s.
 */
export function bracketPlan(before: Rate, after: Rate, fraction: number): GoalPlan {
  const { goalPacketsPerSec } = planGoal(before, fraction);
  positive("after.requestsPerSec", after.requestsPerSec);
  positive("after.packetsPerSec", after.packetsPerSec);
  const soloPackets = (before.packetsPerSec + after.packetsPerSec) / 2;
  const soloRequests = (before.requestsPerSec + after.requestsPerSec) / 2;
  const goalRequestsPerSec = goalPacketsPerSec / (soloPackets / soloRequests);
  return {
    goalPacketsPerSec,
    goalRequestsPerSec,
    surplusPacketsPerSec: soloPackets - goalPacketsPerSec,
    surplusRequestsPerSec: soloRequests - goalRequestsPerSec,
  };
}

export interface GoalScore {
  /** A's served packets/s ÷ its goal (the unit weir manages). */
  aOverGoal: number;
  /** B's replies/s ÷ the surplus in replies/s (both servers do the same work per reply). */
  bOverSurplusRequests: number;
  /** B's packets/s ÷ the surplus in A's packets/s (B's packets per reply may differ from A's). */
  bOverSurplusPackets: number;
}

export function scoreRun(plan: GoalPlan, a: Rate, b: Rate): GoalScore {
  return {
    aOverGoal: a.packetsPerSec / plan.goalPacketsPerSec,
    bOverSurplusRequests: b.requestsPerSec / plan.surplusRequestsPerSec,
    bOverSurplusPackets: b.packetsPerSec / plan.surplusPacketsPerSec,
  };
}

/**
 * What the two servers served together, in A's solo replies (B does the same work per reply):
 * (A + B replies/s) ÷ A's solo replies/s. Below 1 when sharing the CPU costs throughput
 * (switches, cold caches), whatever the split.
 */
export const pairEfficiency = (plan: GoalPlan, a: Rate, b: Rate): number =>
  (a.requestsPerSec + b.requestsPerSec) / (plan.goalRequestsPerSec + plan.surplusRequestsPerSec);

/**
 * B ÷ surplus (replies) if this run's total had been split with A at exactly its goal: (pair
 * efficiency − goal fraction) ÷ (1 − goal fraction). The most any split of that total leaves B
 * while A meets its goal.
 */
export const surplusAtGoal = (plan: GoalPlan, a: Rate, b: Rate): number =>
  (a.requestsPerSec + b.requestsPerSec - plan.goalRequestsPerSec) / plan.surplusRequestsPerSec;

/** The targets for weir: A within [1.0, 1.15] × goal, B at least 70 % of the surplus. */
export const meetsGoalTargets = (s: GoalScore): { a: boolean; b: boolean } => ({
  a: s.aOverGoal >= 1 && s.aOverGoal <= 1.15,
  b: s.bOverSurplusRequests >= 0.7,
});

/** Counter delta per second; NaN when the counter went backwards (interface re-created). */
export function counterRate(before: number, after: number, ms: number): number {
  if (!(ms > 0) || after < before) return Number.NaN;
  return ((after - before) * 1000) / ms;
}

/** A sysfs counter file's text ("12345\n") as a number; a clear error on anything else. */
export function parseCounter(text: string, file: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t))
    throw new Error(`goals-real: ${file}: expected a counter, got ${JSON.stringify(t)}`);
  return Number(t);
}
