// The policies every scenario runs: weir's own and each baseline, by name, in table order.
import {
  koordinatorStylePolicy,
  nonePolicy,
  oraclePolicy,
  staticEqualCapsPolicy,
  vpaStylePolicy,
} from "../policy/baselines/index.ts";
import type { PolicyKnobs } from "../policy/types.ts";
import { weirPolicy } from "../policy/weir.ts";
import type { PolicyFactory } from "./run.ts";

export interface NamedPolicy {
  name: string;
  label: string;
  make: PolicyFactory;
  /** Knobs that differ from weir's defaults for this run (diagnostic variants). */
  knobs?: Partial<PolicyKnobs>;
}

export const policyFactories: readonly NamedPolicy[] = [
  { name: "weir", label: "weir", make: () => weirPolicy },
  { name: "none", label: "none (plain CFS)", make: () => nonePolicy() },
  { name: "static", label: "static equal caps", make: () => staticEqualCapsPolicy() },
  { name: "vpa-style", label: "VPA-style", make: () => vpaStylePolicy() },
  { name: "koordinator-style", label: "Koordinator-style", make: () => koordinatorStylePolicy() },
  { name: "oracle", label: "oracle", make: (ctx) => oraclePolicy(ctx.oracle) },
];

/**
 * weir with a dead-band of 0.01 % of capacity instead of 1 %: a diagnostic for the scale runs,
 * where 1 % of 100 or 1,000 CPUs is larger than any single partition's change.
 */
export const weirSmallDeadband: NamedPolicy = {
  name: "weir-deadband-0.01%",
  label: "weir, dead-band 0.01 % (diagnostic)",
  make: () => weirPolicy,
  knobs: { deadbandFraction: 0.0001 },
};
