// The baselines by name, for the benchmarks and `weir bench`.
export { koordinatorStylePolicy } from "./koordinator-style.ts";
export { nonePolicy } from "./none.ts";
export { type OracleView, oraclePolicy } from "./oracle.ts";
export { staticEqualCapsPolicy } from "./static-caps.ts";
export { staticWeightsPolicy } from "./static-weights.ts";
export { vpaStylePolicy } from "./vpa-style.ts";
