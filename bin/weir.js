#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2 --v8-pool-size=1 --interrupt-budget=8192
// The first line starts node (env sets the variable first) with:
// - a young generation of at most 2 x 2 MB semi-spaces instead of V8's 2 x 16 MB here: a `weir
//   run` allocates a little every cycle and keeps it (the cycle history), so V8 grew the young
//   generation to its largest, ~22 MB of resident memory that only made scavenges rarer (`weir
//   run` at 100 partitions, 10 Hz, 2 runs each: 125.6 and 124.5 MB resident -> 103.6 and 103.4
//   MB, CPU 2.86 and 3.06 % of a core -> 2.26 and 3.60 %: within the runs' spread); 2 MB since
//   2026-12-04: by then a cycle allocated less, so 0.8 MB of the 2 x 4 MB was in use after a
//   scavenge, and halving it gave 3.6-3.8 MB back for scavenges twice as often at no CPU the
//   rounds could see (bench/overhead-ab.ts --together, 2 x 5 rounds, 11:28-11:48 UTC: 76.1 and
//   75.8 MB against 79.7 and 79.6, lower in every round; CPU 1.90 and 1.65 % against 1.95 and
//   1.75); 1 MB gave 1.5 MB more for twice the scavenges again (74.3 MB, 1.85 %);
// - one V8 helper thread instead of four (--v8-pool-size=1) and at most two glibc malloc arenas
//   (MALLOC_ARENA_MAX=2): fewer threads, each with an arena of its own that kept freed memory.
//   `weir run` at 100 partitions, 10 Hz, 5 rounds side by side (bench/overhead-ab.ts --together,
//   2026-12-03 06:35-06:42 UTC, load 7.5 -> 0.8): 84.7 MB resident [83.8-84.8] against 88.1
//   [87.0-89.5], lower in every round; CPU 2.39 % of a core [2.00-2.80] against 2.54
//   [2.20-3.49], lower in 4 of 5 rounds.
// - an eighth of V8's interrupt budget (--interrupt-budget=8192, 67,584 by default): V8 optimises
//   a function once it has run through that budget a few times, and at 10 cycles a second the
//   policy's step was first optimised 67 s after start (a --trace-opt run; 12.6 s with it), so for
//   a minute a cycle ran partly unoptimised, and code run once a second longer still. `weir run`
//   at 100 partitions, 10 Hz, 2 x 5 rounds side by side (bench/overhead-ab.ts --together,
//   2026-12-06 05:03-05:21 UTC): CPU 1.95 and 2.20 % of a core against 2.25 and 2.20, the main
//   thread 1.50 and 1.60 against 1.75 and 1.75, lower in 8 of 10 rounds and higher in none;
//   1 MB more resident (77.4 and 77.6 MB against 76.5 and 76.5).
// docs/performance.md has the figures. Run as `node bin/weir.js`, node starts without them.
// Entry point. Runs the compiled JavaScript in dist/ (`npm run build`; `npm ci` builds it) when
// dist/ is current: no TypeScript loader at run time. Stack traces name the .ts lines: the
// Error.prepareStackTrace that src/service/source-maps.ts installs maps a frame in dist/ through the
// .js.map beside it when a stack is first formatted (node's own source maps,
// process.setSourceMapsEnabled, parse every module's map as it loads: 2-3 MB more resident).
// Otherwise (development: dist/ missing or older than a source) it runs the TypeScript sources
// through tsx's loader and says so in one line on stderr.
// WEIR_FROM_SOURCE=1 runs the sources without a word (benchmarks compare the two).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { distStatus } from "../scripts/dist-status.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fromSource = process.env.WEIR_FROM_SOURCE === "1";
const dist = fromSource ? { current: false } : distStatus(root);
if (dist.current) {
  const { installLazySourceMaps } = await import("../dist/src/service/source-maps.js");
  installLazySourceMaps(path.join(root, "dist"));
  await import("../dist/src/cli/main.js");
} else {
  if (!fromSource)
    process.stderr.write(
      `weir: ${dist.reason}; running the TypeScript sources through tsx (npm run build compiles them)\n`,
    );
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
