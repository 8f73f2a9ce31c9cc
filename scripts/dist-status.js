// Whether dist/ (the compiled JavaScript, `npm run build`) is current: built, and no source it
// was built from changed since the build started. bin/weir.js asks before every start, so this
// only stats files (about 250 of them); scripts/build.js writes the stamp it compares against.
import fs from "node:fs";
import path from "node:path";

/** What the build compiles: src/ and bench/ (not tests, not fixtures) and the two tsconfigs. */
export const COMPILED_DIRS = ["src", "bench"];
export const BUILD_CONFIGS = ["tsconfig.json", "tsconfig.build.json"];
/** Written by scripts/build.js after a successful build: `{ "startedAtMs": ... }`. */
export const STAMP_FILE = path.join("dist", "build.json");

/**
 * The newest modification time (ms) among what the build compiles, with the file it belongs to.
 * Folders count too: adding, removing or renaming a file changes its folder's time.
 */
export function newestSource(root) {
  let newest = { mtimeMs: 0, file: "" };
  const consider = (file) => {
    const { mtimeMs } = fs.statSync(file);
    if (mtimeMs > newest.mtimeMs) newest = { mtimeMs, file };
  };
  const walk = (dir) => {
    consider(dir);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "fixtures" && e.name !== "node_modules" && !e.name.startsWith(".")) walk(p);
      } else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) consider(p);
    }
  };
  for (const d of COMPILED_DIRS) if (fs.existsSync(path.join(root, d))) walk(path.join(root, d));
  for (const f of BUILD_CONFIGS)
    if (fs.existsSync(path.join(root, f))) consider(path.join(root, f));
  return newest;
}

/**
 * `{ current: true }` when dist/ was built from what is in src/ and bench/ now; otherwise
 * `{ current: false, reason }` with the reason in words.
 */
export function distStatus(root) {
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(root, STAMP_FILE), "utf8"));
  } catch {
    return { current: false, reason: "dist/ is not built" };
  }
  if (typeof stamp?.startedAtMs !== "number")
    return { current: false, reason: `${STAMP_FILE} has no startedAtMs` };
  const newest = newestSource(root);
  if (newest.mtimeMs > stamp.startedAtMs)
    return {
      current: false,
      reason: `dist/ is older than ${path.relative(root, newest.file) || "."}`,
    };
  return { current: true };
}
