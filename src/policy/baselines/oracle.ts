// An oracle: knows each network partition's offered load for the coming cycle and the true CPU
// cost of a packet now, so it allocates exactly what the traffic needs (plus the same headroom
// knob weir uses: at 100 % utilisation any queue with random arrivals grows without bound, so
// "exactly need" with zero headroom would be a strawman). If the needs do not fit, they are
// scaled by weighted max-min; whatever is left goes to batch partitions by weight.
// A reference for the best a traffic-driven allocator could do, not a deployable policy.
// It allocates with hard caps (cap = entitlement, capReason "capped", weight in proportion):
// the best a cap-based allocator can do, the yardstick weir's benchmarks have always used.
import type { PartitionId } from "../../core/model.ts";
import { clamp } from "../../core/units.ts";
import type { Policy, PolicyInput, PolicyOutput, PolicyState } from "../types.ts";
import { cappedDirective, decision, fmtMillis } from "./common.ts";

/** What the oracle is told in advance (the simulator provides it). */
export interface OracleView {
  /** Highest offered packets/s of `partition` during [fromMs, toMs]. */
  peakOfferedPacketsPerSec(partition: PartitionId, fromMs: number, toMs: number): number;
  /** True CPU cost of one packet of `partition` at `atMs`, nanoseconds. */
  costNsPerPacket(partition: PartitionId, atMs: number): number;
  /** Cycle interval, ms: how far ahead one allocation must hold. */
  intervalMs: number;
}

export interface OracleOptions {
  /** Headroom over exact need; default: the knobs' headroomFraction. */
  headroomFraction?: number;
}

/** Weighted max-min of `capacity` among claims `[id, need, weight]`. */
function share(capacity: number, claims: Array<[string, number, number]>): Map<string, number> {
  const out = new Map<string, number>();
  let left = capacity;
  let open = claims.filter(([, need]) => need > 0);
  for (const [id] of claims) out.set(id, 0);
  while (open.length > 0 && left > 1e-9) {
    const w = open.reduce((s, [, , wt]) => s + wt, 0);
    const level = left / w;
    const next: typeof open = [];
    for (const c of open) {
      const [id, need, wt] = c;
      if (need <= level * wt) {
        out.set(id, need);
        left -= need;
      } else next.push(c);
    }
    if (next.length === open.length) {
      for (const [id, , wt] of open) out.set(id, level * wt);
      break;
    }
    open = next;
  }
  return out;
}

export function oraclePolicy(view: OracleView, options: OracleOptions = {}): Policy {
  return {
    name: "oracle",
    initialState: (): PolicyState => ({ partitions: {} }),
    step(input: PolicyInput, state: PolicyState): PolicyOutput {
      const headroom = options.headroomFraction ?? input.knobs.headroomFraction;
      const capacity = input.knobs.capacityCpuMillis;
      const needs = new Map<string, number>();
      let minSum = 0;
      for (const spec of input.specs) {
        minSum += spec.minCpuMillis;
        if (spec.kind !== "network") continue;
        const pps = view.peakOfferedPacketsPerSec(
          spec.id,
          input.nowMs,
          input.nowMs + view.intervalMs,
        );
        const cores = (pps * view.costNsPerPacket(spec.id, input.nowMs)) / 1e9;
        needs.set(
          spec.id,
          clamp(cores * 1000 * (1 + headroom), spec.minCpuMillis, spec.maxCpuMillis),
        );
      }
      const net = share(
        capacity - minSum,
        input.specs
          .filter((s) => s.kind === "network")
          .map(
            (s) => [s.id, needs.get(s.id)! - s.minCpuMillis, s.weight] as [string, number, number],
          ),
      );
      let used = minSum;
      for (const v of net.values()) used += v;
      const batch = share(
        capacity - used,
        input.specs
          .filter((s) => s.kind === "batch")
          .map(
            (s) => [s.id, s.maxCpuMillis - s.minCpuMillis, s.weight] as [string, number, number],
          ),
      );
      const partitions: PolicyState["partitions"] = {};
      const directives = [];
      const decisions = [];
      for (const spec of input.specs) {
        const extra = (spec.kind === "network" ? net : batch).get(spec.id) ?? 0;
        const cap = Math.round(spec.minCpuMillis + extra);
        const need = needs.get(spec.id) ?? cap;
        const prev = state.partitions[spec.id]?.cpuMillis ?? cap;
        partitions[spec.id] = {
          cpuMillis: cap,
          demandCpuMillis: need,
          velocityPacketsPerCpuSec: null,
        };
        directives.push(cappedDirective(spec.id, cap));
        decisions.push(
          decision(
            spec.id,
            prev,
            cap,
            need,
            spec.kind === "network"
              ? `knows next ${view.intervalMs} ms: need ${fmtMillis(need)} (with ${Math.round(headroom * 100)} % headroom)`
              : `batch: what is left, ${fmtMillis(cap)}`,
          ),
        );
      }
      return { directives, decisions, state: { partitions } };
    },
  };
}
