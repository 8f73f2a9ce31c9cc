// Placement in the manager (config `placement.mode`: spread, or auto where it is in force):
// after the policy step, the network partitions are placed on CPUs by the pure placer
// (src/policy/placement.ts) from what each needs this cycle (its entitlement, or the CPU it
// used when that is more), and each placed partition's cpuset.cpus is written through its
// backend (only when it changed). Batch
// partitions are never placed: they run on every CPU in the idle class. A partition whose
// cgroup has no cpuset is not placed (said once, in the log and the API) and never failed for
// it; a failed write is that partition's alone and is tried again next cycle.
import type { CpusetActuator } from "../actuators/types.ts";
import { formatCpuList } from "../cgroup/values.ts";
import type { PartitionId, WeirErrorInfo } from "../core/model.ts";
import {
  cpusNeeded,
  type NotPlaced,
  type Placement,
  type PlacementRow,
  placePartitions,
} from "../policy/placement.ts";
import { parseCpuList } from "../sensors/parse.ts";
import type { PartitionPlacement } from "./view.ts";

/**
 * After the placement changed, how long it is kept for balance alone, ms: within it a
 * placement that still fits is not packed again because a fresh packing would be better
 * balanced (a move migrates the partition's tasks; needs move with every window), and after
 * needs that did not fit, nothing is placed again.
 */
export const REBALANCE_HOLD_MS = 5000;

/** The config's `placement:` as the manager uses it. */
export interface PlacementOptions {
  /** The share of a CPU placement fills at most, 0 < fill ≤ 1. */
  fillFraction: number;
  /** The host's CPUs the partitions may be placed on, ascending. */
  cpus: readonly number[];
}

/** What the log says when the placement changes (`reason`: why, or why nothing is placed). */
export interface PlacementChange {
  placed: Record<PartitionId, number[] | null>;
  reason: string;
}

/** One partition in this cycle's placement. */
export interface PlacementInput extends PlacementRow {
  /** Opens its cpuset (once; absent: its backend has none); `found`: the value to restore. */
  openCpuset?: (found?: string) => CpusetActuator;
}

const fmtMillis = (m: number) => `${Math.round(m).toLocaleString("en-US")}m`;
const cpusText = (cpus: readonly number[]) =>
  `${cpus.length === 1 ? "CPU" : "CPUs"} ${formatCpuList(cpus)}`;

/**
 * Why a cpuset found holding `found` is left as it is, or null: placement moves a partition
 * only within the CPUs it was given, so one that someone narrowed (a runtime's `--cpuset-cpus`,
 * an admin) to fewer than the CPUs placement uses is not placed. An empty one is not narrowed:
 * on cgroup v2 an empty `cpuset.cpus` (what a new cgroup has) runs on its parent's CPUs, and it
 * is written back empty on restore.
 */
function narrowedBy(found: string, cpus: readonly number[]): string | null {
  if (found.trim() === "") return null;
  let held: number[];
  try {
    held = parseCpuList(found, "cpuset.cpus");
  } catch {
    return `not placed: its cpuset holds "${found}", not a CPU list`;
  }
  const missing = cpus.filter((c) => !held.includes(c));
  if (missing.length === 0) return null;
  return `not placed: its cpuset was found narrowed to "${found}" (without ${cpusText(missing)}); placement leaves a cpuset set by someone else as it is`;
}

/** Two placements that put every partition on the same CPUs (a fresh "nothing placed" each cycle is no change). */
function samePlacement(a: Placement, b: Placement | null): boolean {
  if (b === null || a.size !== b.size) return false;
  for (const [id, x] of a) {
    if (!b.has(id)) return false;
    const y = b.get(id)!;
    if (x === null || y === null) {
      if (x !== y) return false;
    } else if (x.length !== y.length || x.some((c, i) => c !== y[i])) return false;
  }
  return true;
}

export class PlacementStep {
  private previous: Placement | null = null;
  /** Per partition its cpuset, or the reason it has none (said once, kept for the API). */
  private readonly cpusets = new Map<PartitionId, CpusetActuator | string>();
  /** Partitions whose last write failed: written again next cycle. */
  private readonly failed = new Map<PartitionId, WeirErrorInfo>();
  /** Partitions placement leaves alone this cycle (batch, no cpuset), with why. */
  private readonly fixedWhy = new Map<PartitionId, string>();
  /** Each placed partition's need this cycle, millicores. */
  private readonly needs = new Map<PartitionId, number>();
  private reason = "";
  private placedAny = false;
  /** A cpuset was opened in this step (its found value is not on disk yet). */
  private opened = false;
  /** When the placement last changed, ms (the manager's clock). */
  private changedAtMs = Number.NEGATIVE_INFINITY;
  /** Why the placement in force places nothing, as the placer said (null: it places, or it did not say). */
  private notPlacedFor: NotPlaced | null = null;

  constructor(
    private readonly o: PlacementOptions,
    private readonly hooks: {
      onChange?: (c: PlacementChange) => void;
      /** Cpusets were opened this cycle, before any is written (the caller saves what they held). */
      onOpened?: () => void;
      /** What each partition's cpuset held before weir first wrote it (a restart's state file). */
      foundCpusets?: Readonly<Record<PartitionId, string>>;
      /** A partition's cgroup has no cpuset (once per partition), or a write failed. */
      onProblem?: (
        partition: PartitionId,
        error: WeirErrorInfo,
        kind: "unavailable" | "write",
      ) => void;
    } = {},
  ) {}

  /** The partition's cpuset, opened on first use; a string: why it has none. */
  private cpusetOf(row: PlacementInput): CpusetActuator | string {
    let c = this.cpusets.get(row.id);
    if (c !== undefined) return c;
    if (!row.openCpuset) c = "placement is not available: its backend writes no cpuset";
    else
      try {
        c = row.openCpuset(this.hooks.foundCpusets?.[row.id]);
        this.opened = true;
        const narrowed = narrowedBy(c.found, this.o.cpus);
        if (narrowed) {
          c.close();
          c = narrowed;
        }
      } catch (err) {
        c = `placement is not available: ${(err as Error).message}`;
      }
    this.cpusets.set(row.id, c);
    if (typeof c === "string")
      this.hooks.onProblem?.(
        row.id,
        { code: "TARGET_NOT_WRITABLE", message: `${row.id}: ${c}`, retryable: false },
        "unavailable",
      );
    return c;
  }

  /**
   * Place this cycle's partitions and write what changed. Network partitions without a cpuset
   * are left out (they run where they are); batch ones are never placed. `written` gets each
   * file written this cycle, by partition (the cycle record's `written`).
   */
  step(
    rows: readonly PlacementInput[],
    nowMs: number,
    written?: (partition: PartitionId, files: readonly string[]) => void,
  ): void {
    const placeable: PlacementRow[] = [];
    for (const r of rows) {
      if (r.batch) {
        this.fixedWhy.set(r.id, "batch: never placed (runs on every CPU, in the idle class)");
        continue;
      }
      const c = this.cpusetOf(r);
      if (typeof c === "string") {
        this.fixedWhy.set(r.id, c);
        continue;
      }
      const need = Math.max(0, r.needCpuMillis);
      this.needs.set(r.id, need);
      placeable.push({ id: r.id, batch: false, needCpuMillis: need });
    }
    if (this.opened) {
      this.opened = false;
      this.hooks.onOpened?.();
    }
    let notPlaced: NotPlaced | null = null;
    const held = nowMs - this.changedAtMs < REBALANCE_HOLD_MS;
    const next = placePartitions(
      placeable,
      this.o.cpus,
      this.previous,
      {
        fillFraction: this.o.fillFraction,
        ...(held ? { rebalanceMarginCpuMillis: Number.POSITIVE_INFINITY } : {}),
      },
      (why) => {
        notPlaced = why;
      },
    );
    // Needs at the edge of the fit would place and unplace the partitions cycle after cycle,
    // each write migrating their tasks: once the needs did not fit (unplaced at once: under
    // contention the weights share the host), nothing is placed again within the hold.
    const waitOut =
      held &&
      (this.notPlacedFor === "do-not-fit" || this.notPlacedFor === "do-not-pack") &&
      [...next.values()].some((c) => c !== null);
    if (!waitOut && next !== this.previous && !samePlacement(next, this.previous)) {
      this.previous = next;
      this.changedAtMs = nowMs;
      this.notPlacedFor = notPlaced;
      this.explain(placeable, next, notPlaced);
      this.write(next, false, written);
      const placed: Record<PartitionId, number[] | null> = {};
      for (const [id, cpus] of next) placed[id] = cpus === null ? null : [...cpus];
      this.hooks.onChange?.({ placed, reason: this.reason });
    } else if (this.failed.size > 0) this.write(next, true, written);
  }

  private write(
    p: Placement,
    onlyFailed: boolean,
    written?: (partition: PartitionId, files: readonly string[]) => void,
  ): void {
    for (const [id, cpus] of p) {
      if (onlyFailed && !this.failed.has(id)) continue;
      const c = this.cpusets.get(id);
      if (c === undefined || typeof c === "string") continue;
      const r = c.place(cpus);
      if (r.written.length > 0) written?.(id, r.written);
      if (r.error) {
        const first = !this.failed.has(id);
        this.failed.set(id, r.error);
        if (first) this.hooks.onProblem?.(id, r.error, "write");
      } else this.failed.delete(id);
    }
  }

  /**
   * The reason for the whole placement (the log's, and the API's for a partition not placed),
   * from the placer's own word on why it placed nothing (`notPlaced`), not its rules again.
   */
  private explain(rows: readonly PlacementRow[], p: Placement, notPlaced: NotPlaced | null): void {
    const n = this.o.cpus.length;
    const total = rows.reduce((s, r) => s + r.needCpuMillis, 0);
    const fill = `fill ${this.o.fillFraction}`;
    this.placedAny = [...p.values()].some((c) => c !== null);
    if (this.placedAny)
      this.reason = `placed by need at ${fill} (${fmtMillis(total)} on ${n} CPUs)`;
    else if (notPlaced === "one-cpu") this.reason = "not placed: fewer than 2 CPUs to place on";
    else if (notPlaced === "do-not-fit")
      this.reason = `the network partitions' needs do not fit at ${fill} (${fmtMillis(total)} on ${n} CPUs)`;
    else if (notPlaced === "do-not-pack")
      this.reason = `the network partitions' needs do not pack at ${fill}: a CPU would carry more than ${fmtMillis(1000 * this.o.fillFraction)}`;
    else if (rows.length === 0) this.reason = "not placed: no network partition has a cpuset";
    else this.reason = `not placed: every network partition needs every CPU at ${fill}`;
  }

  /** Why a partition is where it is, from its need this cycle. */
  private whyOf(id: PartitionId): string {
    const fixed = this.fixedWhy.get(id);
    if (fixed !== undefined) return fixed;
    const need = this.needs.get(id) ?? 0;
    const cpus = this.previous?.get(id) ?? null;
    const fill = `fill ${this.o.fillFraction}`;
    const k = cpusNeeded(need, 1000 * this.o.fillFraction);
    if (cpus !== null)
      return `on ${cpusText(cpus)}: needs ${fmtMillis(need)}, ${k} CPU${k === 1 ? "" : "s"} at ${fill}`;
    return this.placedAny
      ? `not placed: needs ${fmtMillis(need)}, every CPU at ${fill}`
      : this.reason;
  }

  /** Per partition seen, where it is placed and why (the API's view). */
  view(): Record<PartitionId, PartitionPlacement> {
    const out: Record<PartitionId, PartitionPlacement> = {};
    for (const id of new Set([...this.fixedWhy.keys(), ...this.needs.keys()])) {
      const why = this.whyOf(id);
      const c = this.cpusets.get(id);
      const cpus = this.previous?.get(id) ?? null;
      const v: PartitionPlacement = {
        cpus: typeof c === "object" && cpus !== null ? [...cpus] : null,
        why,
        file: typeof c === "object" ? c.file : null,
      };
      const e = this.failed.get(id);
      if (e) v.error = e;
      out[id] = v;
    }
    return out;
  }

  /**
   * What each cpuset held before weir first wrote it (the state file keeps it): the opened
   * ones', and a restart's found values for those not opened yet (a save before the first
   * cycle must not lose them).
   */
  found(): Record<PartitionId, string> {
    const out: Record<PartitionId, string> = { ...this.hooks.foundCpusets };
    for (const [id, c] of this.cpusets) if (typeof c === "object") out[id] = c.found;
    return out;
  }

  /** Orderly shutdown: every cpuset back to what it held at open (only those that differ). */
  restore(): Array<{ partition: PartitionId; written: string[]; error?: WeirErrorInfo }> {
    const out = [];
    for (const [id, c] of this.cpusets) {
      if (typeof c === "string") continue;
      const r = c.restore();
      if (r.written.length > 0 || r.error) out.push({ partition: id, ...r });
    }
    return out;
  }

  close(): void {
    for (const c of this.cpusets.values()) if (typeof c === "object") c.close();
  }
}
