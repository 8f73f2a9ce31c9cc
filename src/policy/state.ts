// weir's policy state: packed arrays aligned with the spec list, and a record (what the
// contract and the state file see) built only when someone reads it. Pure; split from weir.ts.
import type { PartitionId } from "../core/model.ts";
import {
  donorCapFlags,
  donorCapMisfits,
  FLAG_DONOR_CAP,
  FLAG_DONOR_CAP_REACHED,
} from "./donor-cap.ts";
import { WEIGHT_MIN } from "./rules.ts";
import type { PartitionTable } from "./table.ts";
import type { BatchSuppressionState, PartitionPolicyState, PolicyState } from "./types.ts";

export interface PackedState {
  ids: readonly PartitionId[];
  /** NaN where there is no value (velocity unknown). */
  cpuMillis: Float64Array;
  demand: Float64Array;
  velocity: Float64Array;
  /** Weight last directed (NaN = none yet). */
  weight: Float64Array;
  /** FLAG_RISING | FLAG_MISSED_GOAL | the donor cap's (donor-cap.ts), per partition: what the last window said. */
  flags: Uint8Array;
  /** A capped donor's trimmed set point, millicores (donor-cap.ts donorCapSetpoint; NaN = none). */
  donorSetpoint: Float64Array;
  /** A goal partition's margin by cycles (demand.ts GOAL_MARGIN_GAIN, OPEN_LOOP_GOAL_CYCLE_SHARE; 0 or NaN = none; may be empty). */
  goalMargin: Float64Array;
}

/** The last window was a load step (DemandAssessment.rising). */
export const FLAG_RISING = 1;
/** The last window missed its goal short of CPU (DemandAssessment.missesGoal). */
export const FLAG_MISSED_GOAL = 2;

const PACKED = Symbol("weir.policy.packedState");

/**
 * The state the step returns keeps its numbers in arrays aligned with the spec list. Its
 * `partitions` record (what the contract and the state file see) is built on first read and
 * then kept; until then the next step reads the arrays directly (building a 10,000-key record
 * costs more than the whole rest of the step).
 */
export function packedState(packed: PackedState, batch?: BatchSuppressionState): PolicyState {
  const state = {} as PolicyState;
  if (batch) state.batch = batch;
  Object.defineProperty(state, PACKED, { value: packed });
  Object.defineProperty(state, "partitions", {
    enumerable: true,
    configurable: true,
    get(): Record<PartitionId, PartitionPolicyState> {
      const record = toRecord(packed);
      Object.defineProperty(state, "partitions", {
        value: record,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return record;
    },
  });
  return state;
}

function toRecord(p: PackedState): Record<PartitionId, PartitionPolicyState> {
  const record: Record<PartitionId, PartitionPolicyState> = Object.create(null);
  for (let i = 0; i < p.ids.length; i++) {
    const v = p.velocity[i]!;
    const demand = p.demand[i]!;
    const w = p.weight[i]!;
    const ps: PartitionPolicyState = {
      cpuMillis: p.cpuMillis[i]!,
      // No demand measured yet: the allocation stands in for readers (JSON has no NaN), and
      // `demandMeasured: false` tells the next step so, which then does not smooth from it.
      demandCpuMillis: Number.isNaN(demand) ? p.cpuMillis[i]! : demand,
      velocityPacketsPerCpuSec: Number.isNaN(v) ? null : v,
    };
    if (Number.isNaN(demand)) ps.demandMeasured = false;
    if (!Number.isNaN(w)) ps.weight = w;
    const f = p.flags[i]!;
    if ((f & FLAG_RISING) !== 0) ps.rising = true;
    if ((f & FLAG_MISSED_GOAL) !== 0) ps.missedGoal = true;
    if ((f & FLAG_DONOR_CAP) !== 0) {
      ps.donorCap = {
        misfitWindows: donorCapMisfits(f),
        reached: (f & FLAG_DONOR_CAP_REACHED) !== 0,
      };
      const sp = p.donorSetpoint[i]!;
      if (!Number.isNaN(sp)) ps.donorCap.setpointCpuMillis = sp;
    }
    const m = p.goalMargin[i]!;
    if (m > 0) ps.goalMarginFraction = m;
    record[p.ids[i]!] = ps;
  }
  return record;
}

/** Last cycle's values, aligned with this cycle's table (NaN = none). */
export interface Previous {
  cpuMillis: Float64Array;
  demand: Float64Array;
  velocity: Float64Array;
  weight: Float64Array;
  flags: Uint8Array;
  donorSetpoint: Float64Array;
  goalMargin: Float64Array;
}

/**
 * Last cycle's values aligned with `table`. When the state is the packed one a step returned
 * for the same partitions in the same order (the common case: the manager's list did not
 * change), its arrays are returned as they are — read-only, never copied; else new arrays are
 * filled from it (by id) or from its record (a state file).
 */
export function previousOf(state: PolicyState, table: PartitionTable): Previous {
  const packed = untouchedPacked(state);
  if (packed && aligned(packed.ids, table.ids)) return packed;
  const n = table.size;
  const f = new Float64Array(n * 6);
  const p: Previous = {
    cpuMillis: f.subarray(0, n),
    demand: f.subarray(n, 2 * n),
    velocity: f.subarray(2 * n, 3 * n),
    weight: f.subarray(3 * n, 4 * n),
    flags: new Uint8Array(n),
    donorSetpoint: f.subarray(4 * n, 5 * n),
    goalMargin: f.subarray(5 * n, 6 * n),
  };
  f.fill(Number.NaN);
  readPrevious(state, packed, table.ids, p);
  return p;
}

function aligned(a: readonly PartitionId[], b: readonly PartitionId[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Fill `out` (all NaN, flags 0) from a packed state for other partitions, or from a record. */
function readPrevious(
  state: PolicyState,
  packed: PackedState | null,
  ids: readonly PartitionId[],
  out: Previous,
): void {
  const n = ids.length;
  const { cpuMillis, demand, velocity, weight, flags, donorSetpoint, goalMargin } = out;
  if (packed) {
    const index = new Map<PartitionId, number>();
    for (let j = 0; j < packed.ids.length; j++) index.set(packed.ids[j]!, j);
    for (let i = 0; i < n; i++) {
      const j = index.get(ids[i]!);
      if (j === undefined) continue;
      cpuMillis[i] = packed.cpuMillis[j]!;
      demand[i] = packed.demand[j]!;
      velocity[i] = packed.velocity[j]!;
      weight[i] = packed.weight[j]!;
      flags[i] = packed.flags[j]!;
      donorSetpoint[i] = packed.donorSetpoint[j]!;
      goalMargin[i] = packed.goalMargin[j]!;
    }
    return;
  }
  const record = state.partitions ?? {};
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!Object.hasOwn(record, id)) continue;
    const ps = record[id];
    if (!ps || !Number.isFinite(ps.cpuMillis)) continue;
    cpuMillis[i] = ps.cpuMillis;
    demand[i] =
      ps.demandMeasured !== false && Number.isFinite(ps.demandCpuMillis)
        ? ps.demandCpuMillis
        : Number.NaN;
    const v = ps.velocityPacketsPerCpuSec;
    velocity[i] = v !== null && v > 0 && Number.isFinite(v) ? v : Number.NaN;
    const w = ps.weight;
    weight[i] = w !== undefined && Number.isFinite(w) && w >= WEIGHT_MIN ? w : Number.NaN;
    if (ps.rising === true) flags[i]! |= FLAG_RISING;
    if (ps.missedGoal === true) flags[i]! |= FLAG_MISSED_GOAL;
    if (ps.donorCap) {
      flags[i]! |= donorCapFlags(ps.donorCap.misfitWindows, ps.donorCap.reached === true);
      const sp = ps.donorCap.setpointCpuMillis;
      if (sp !== undefined && Number.isFinite(sp) && sp >= 0) donorSetpoint[i] = sp;
    }
    const m = ps.goalMarginFraction;
    if (m !== undefined && Number.isFinite(m) && m > 0) goalMargin[i] = m;
  }
}

/** The packed arrays behind a state this policy returned, unless its record was read (and so may have been changed). */
function untouchedPacked(state: PolicyState): PackedState | null {
  const packed = (state as { [PACKED]?: PackedState })[PACKED];
  if (!packed) return null;
  const d = Object.getOwnPropertyDescriptor(state, "partitions");
  return d?.get ? packed : null;
}
