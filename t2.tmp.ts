import { runScenario } from "./src/sim/run.ts";
import { scaleScenario } from "./src/sim/scenarios.ts";
import { policyFactories } from "./src/sim/policies.ts";
import { clairvoyantBound } from "./src/sim/bound.ts";
const s = scaleScenario(10000, false);
let t = performance.now();
const b = clairvoyantBound(s);
console.log("bound", Math.round(performance.now()-t), b.servedFraction, b.p99LatencyMs);
for (const p of policyFactories.slice(0,2)) { t = performance.now(); const r = runScenario(s, p.make); console.log(p.name, Math.round(performance.now()-t), r.measures.servedFraction, r.measures.p99LatencyMs); }
