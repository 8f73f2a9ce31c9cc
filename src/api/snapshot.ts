// GET /api/partitions and /api/partitions/:id (also what `weir status` and `weir goal`
// read): each partition's spec joined with what the latest cycle record says about it.
import type {
  CycleRecord,
  Decision,
  Directive,
  PartitionSpec,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import type {
  ManagerView,
  PartitionAllocation,
  PartitionMechanisms,
  PartitionPlacement,
  PlacementDecision,
} from "../manager/view.ts";

/** Body of GET /api/partitions (also what `weir status` reads). */
export interface PartitionsSnapshot {
  cycle: number | null;
  atMs: number | null;
  intervalMs: number | null;
  capacityCpuMillis: number | null;
  paused: boolean;
  ready: boolean;
  /** Placement as configured (`placement.mode`), whether it is in force here, and why (null: not known). */
  placement: PlacementDecision | null;
  partitions: Array<{
    id: string;
    spec: PartitionSpec | null;
    status: CycleRecord["partitions"][number]["status"] | "unknown";
    throughput: Throughput | null;
    decision: Decision | null;
    directive: Directive | null;
    /** The idle class and CFS burst this cgroup offers (null while it is not open). */
    mechanisms: PartitionMechanisms | null;
    /** Desired (submitted) vs applied (in force) as of the latest cycle; null while not open. */
    allocation: PartitionAllocation | null;
    written: string[];
    error: WeirErrorInfo | null;
    /** Where it is placed on CPUs and why (present only while placement is in force). */
    placement?: PartitionPlacement;
  }>;
}

type PartitionEntry = PartitionsSnapshot["partitions"][number];

function partitionEntry(
  id: string,
  spec: PartitionSpec | null,
  p: CycleRecord["partitions"][number] | undefined,
  mechanisms: PartitionMechanisms | null | undefined,
  allocation: PartitionAllocation | null | undefined,
  placement?: PartitionPlacement,
): PartitionEntry {
  const entry: PartitionEntry = {
    id,
    spec,
    status: p?.status ?? "unknown",
    throughput: p?.throughput ?? null,
    decision: p?.decision ?? null,
    directive: p?.directive ?? null,
    mechanisms: mechanisms ?? null,
    allocation: allocation ?? null,
    written: p?.written ?? [],
    error: p?.error ?? null,
  };
  if (placement) entry.placement = placement;
  return entry;
}

const latestRecord = (view: ManagerView): CycleRecord | undefined => {
  const records = view.recentRecords();
  return records[records.length - 1];
};

/** Per partition: its spec joined with what the latest cycle record says about it (O(N)). */
export function partitionsSnapshot(view: ManagerView): PartitionsSnapshot {
  const latest = latestRecord(view);
  const specs = view.specs();
  const byId = new Map(latest?.partitions.map((p) => [p.id, p]) ?? []);
  const mechanisms = view.mechanisms?.() ?? {};
  const allocations = view.allocations?.() ?? {};
  const placements = view.placements?.() ?? {};
  const partitions: PartitionEntry[] = [];
  const listed = new Set<string>();
  for (const spec of specs) {
    if (listed.has(spec.id)) continue;
    listed.add(spec.id);
    partitions.push(
      partitionEntry(
        spec.id,
        spec,
        byId.get(spec.id),
        mechanisms[spec.id],
        allocations[spec.id],
        placements[spec.id],
      ),
    );
  }
  // partitions the record still has but the specs no longer do (removed at runtime)
  for (const [id, p] of byId)
    if (!listed.has(id))
      partitions.push(partitionEntry(id, null, p, mechanisms[id], allocations[id], placements[id]));
  return {
    cycle: latest?.cycle ?? null,
    atMs: latest?.startedAtMs ?? null,
    intervalMs: latest?.intervalMs ?? null,
    capacityCpuMillis: latest?.capacityCpuMillis ?? null,
    paused: view.paused(),
    ready: view.ready(),
    placement: view.placementDecision?.() ?? null,
    partitions,
  };
}

/** One entry of the snapshot, without building the others (null when unknown). */
export function partitionSnapshot(view: ManagerView, id: string): PartitionEntry | null {
  const spec = view.specs().find((s) => s.id === id) ?? null;
  const p = latestRecord(view)?.partitions.find((x) => x.id === id);
  if (!spec && !p) return null;
  return partitionEntry(
    id,
    spec,
    p,
    view.mechanisms?.()[id],
    view.allocations?.()[id],
    view.placements?.()[id],
  );
}
