// The policies every scenario runs: weir's own and each baseline, by name, in table order.
import {
  koordinatorStylePolicy,
  nonePolicy,
  oraclePolicy,
  staticEqualCapsPolicy,
  vpaStylePolicy,
} from "../policy/baselines/index.ts";
import { weirPolicy } from "../policy/weir.ts";
import type { PolicyFactory } from "./run.ts";

export const policyFactories: ReadonlyArray<{ name: string; label: string; make: PolicyFactory }> =
  [
    { name: "weir", label: "weir", make: () => weirPolicy },
    { name: "none", label: "none (plain CFS)", make: () => nonePolicy() },
    { name: "static", label: "static equal caps", make: () => staticEqualCapsPolicy() },
    { name: "vpa-style", label: "VPA-style", make: () => vpaStylePolicy() },
    { name: "koordinator-style", label: "Koordinator-style", make: () => koordinatorStylePolicy() },
    { name: "oracle", label: "oracle", make: (ctx) => oraclePolicy(ctx.oracle) },
  ];
