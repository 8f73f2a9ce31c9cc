#!/usr/bin/env node
// Entry point. Runs the compiled JavaScript in dist/ (`npm run build`; `npm ci` builds it) when
// dist/ is current: no TypeScript loader at run time, source maps on so stack traces name the
// .ts lines. Otherwise (development: dist/ missing or older than a source) it runs the
// TypeScript sources through tsx's loader and says so in one line on stderr.
// WEIR_FROM_SOURCE=1 runs the sources without a word (benchmarks compare the two).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { distStatus } from "../scripts/dist-status.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fromSource = process.env.WEIR_FROM_SOURCE === "1";
const dist = fromSource ? { current: false } : distStatus(root);
if (dist.current) {
  process.setSourceMapsEnabled(true);
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
