// Where the package's own files are, seen from the code that runs: the TypeScript sources
// (src/ and bench/ at the package root, run through tsx or vitest) or the compiled JavaScript
// (`npm run build`: dist/src/, dist/bench/, the same tree one level down). Files that are not
// compiled (dashboard/, BENCHMARKS.md, docs/) stay at the package root either way. Pure: URLs
// computed from this module's own URL; no file is touched.

/** True when this code runs compiled from dist/, false when it runs from the TypeScript sources. */
export const RUNS_COMPILED = new URL(import.meta.url).pathname.endsWith(".js");

/** The extension of the package's modules as they run: ".js" from dist/, ".ts" from the sources. */
export const MODULE_EXT = RUNS_COMPILED ? ".js" : ".ts";

/** The package root (the folder with package.json), a file: URL ending in "/". */
export const PACKAGE_ROOT_URL = new URL(RUNS_COMPILED ? "../../../" : "../../", import.meta.url);

/** A file or folder of the package that is not compiled, by its path from the package root. */
export const packageFileUrl = (pathFromRoot: string): URL =>
  new URL(pathFromRoot, PACKAGE_ROOT_URL);

/** The module `name` (no extension) beside `moduleUrl`, with the extension that runs. */
export const siblingModuleUrl = (name: string, moduleUrl: string): URL =>
  new URL(`./${name}${MODULE_EXT}`, moduleUrl);
