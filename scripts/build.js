// `npm run build`: compile src/ and bench/ to dist/ with tsc (tsconfig.build.json: imports'
// .ts rewritten to .js, source maps beside each file), then stamp dist/build.json with the time
// the build started, so bin/weir.js can tell a current dist/ from a stale one
// (scripts/dist-status.js). dist/ is emptied first: a removed source leaves no module behind.
// `--if-typescript` (the `prepare` script, run by `npm ci`): without TypeScript installed
// (`npm ci --omit=dev`) say so and exit 0; bin/weir.js then runs the sources through tsx.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { STAMP_FILE } from "./dist-status.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let tsc;
try {
  tsc = createRequire(path.join(root, "package.json")).resolve("typescript/bin/tsc");
} catch {
  if (process.argv.includes("--if-typescript")) {
    process.stderr.write(
      "weir build: typescript is not installed (dev dependencies omitted): dist/ not built; bin/weir.js will run the sources through tsx\n",
    );
    process.exit(0);
  }
  process.stderr.write("weir build: typescript is not installed (npm ci installs it)\n");
  process.exit(1);
}

const startedAtMs = Date.now();
fs.rmSync(path.join(root, "dist"), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], {
  cwd: root,
  stdio: "inherit",
});
if (r.status !== 0) {
  process.stderr.write(
    `weir build: tsc failed (exit ${r.status ?? r.signal}); dist/ not stamped\n`,
  );
  process.exit(1);
}
fs.writeFileSync(path.join(root, STAMP_FILE), `${JSON.stringify({ startedAtMs })}\n`);
