// The policies every scenario runs: weir's own and each baseline, by name, in table order.
import { koordinatorStylePolicy } from "../policy/baselines/koordinator-style.ts";
import { nonePolicy } from "../policy/baselines/none.ts";
import { staticEqualCapsPolicy } from "../policy/baselines/static-caps.ts";
import { staticWeightsPolicy } from "../policy/baselines/static-weights.ts";
import { vpaStyleFastOptions, vpaStylePolicy } from "../policy/baselines/vpa-style.ts";
import type { PolicyKnobs } from "../policy/types.ts";
import { createWeirPolicy, weirPolicy } from "../policy/weir.ts";
import type { PolicyFactory } from "./run.ts";

export interface NamedPolicy {
  name: string;
  label: string;
  make: PolicyFactory;
  /** Knobs that differ from weir's defaults for this run (diagnostic variants), given the capacity. */
  knobs?: (capacityCpuMillis: number) => Partial<PolicyKnobs>;
}

export const policyFactories: readonly NamedPolicy[] = [
  { name: "weir", label: "weir", make: () => weirPolicy },
  { name: "none", label: "none (plain CFS)", make: () => nonePolicy() },
  { name: "static", label: "static equal caps", make: () => staticEqualCapsPolicy() },
  {
    name: "static-weights",
    label: "static weights (idle-class batch)",
    make: () => staticWeightsPolicy(),
  },
  { name: "vpa-style", label: "VPA-style (1-min loop)", make: () => vpaStylePolicy() },
  {
    name: "vpa-style-fast",
    label: "VPA-style, 60× faster (1-s loop)",
    make: () => vpaStylePolicy(vpaStyleFastOptions, "vpa-style-fast"),
  },
  { name: "koordinator-style", label: "Koordinator-style", make: () => koordinatorStylePolicy() },
];

/**
 * weir without the light-partition weight floor (express.ts weightFloorsByImportance), which
 * weir has by default: every weight follows its entitlement alone, so a light network partition
 * weighs little beside heavier ones. The comparison row beside weir: what the floor changes.
 */
export const weirWithoutWeightFloor: NamedPolicy = {
  name: "weir-no-floor",
  label: "weir without the light-partition weight floor",
  make: () => createWeirPolicy({ weightFloor: false }),
};

/** The dead-band of the diagnostic variant below, millicores. */
export const DIAGNOSTIC_DEADBAND_CPU_MILLIS = 10;

/**
 * weir with a dead-band of 10 millicores instead of 1 % of capacity: a diagnostic for the
 * scale runs, where 1 % of 100 or 1,000 CPUs is larger than any single partition's change.
 */
export const weirSmallDeadband: NamedPolicy = {
  name: "weir-deadband-10m",
  label: "weir, dead-band 10m (diagnostic)",
  make: () => weirPolicy,
  knobs: (capacity) => ({ deadbandFraction: DIAGNOSTIC_DEADBAND_CPU_MILLIS / capacity }),
};
