// Stack traces that name the TypeScript lines of the compiled code, paid for only when a stack
// is formatted. `process.setSourceMapsEnabled(true)` makes node parse the source map of every
// module as it loads (about 2.3 MB resident for what `weir run` loads, docs/performance.md);
// here a frame in the compiled tree is mapped when an error's `stack` is first read: the
// `.js.map` beside the frame's file is read and parsed with node's own `module.SourceMap` on
// first need, then kept. Frames elsewhere (node's internals, node_modules) are left as V8
// writes them. bin/weir.js installs it before it imports dist/.
import fs from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** A frame's place in its original source: the source file's path, 1-based line and column. */
export interface OriginalPosition {
  file: string;
  line: number;
  column: number;
}

/**
 * Maps positions in compiled files under `root` to their sources, reading each file's
 * `.js.map` once, on the first position asked in it. A file without a readable map maps nothing.
 */
export class LazySourceMaps {
  readonly #root: string;
  readonly #maps = new Map<string, { map: SourceMap; dir: string } | null>();

  /** `root` as given or through its symlinks: node names a module's file by its real path. */
  constructor(root: string) {
    let real = path.resolve(root);
    try {
      real = fs.realpathSync(real);
    } catch {
      // not there (yet): as given
    }
    this.#root = real + path.sep;
  }

  /** `fileName` as a stack frame gives it (a path or a file: URL); 1-based line and column. */
  originalPosition(fileName: string, line: number, column: number): OriginalPosition | undefined {
    const file = fileName.startsWith("file:") ? fileURLToPath(fileName) : fileName;
    if (!file.startsWith(this.#root) || !file.endsWith(".js")) return undefined;
    const entry = this.#mapOf(file);
    if (!entry) return undefined;
    const origin = entry.map.findOrigin(line, column);
    if (!("fileName" in origin)) return undefined;
    return {
      file: path.resolve(entry.dir, origin.fileName),
      line: origin.lineNumber,
      column: origin.columnNumber,
    };
  }

  /** How many files' maps were read (0 until a stack is formatted). */
  get loadedMaps(): number {
    return this.#maps.size;
  }

  #mapOf(file: string): { map: SourceMap; dir: string } | null {
    let entry = this.#maps.get(file);
    if (entry !== undefined) return entry;
    try {
      const payload = JSON.parse(fs.readFileSync(`${file}.map`, "utf8")) as SourceMapPayload;
      entry = {
        map: new SourceMap(payload),
        dir: path.resolve(path.dirname(file), payload.sourceRoot ?? ""),
      };
    } catch {
      entry = null;
    }
    this.#maps.set(file, entry);
    return entry;
  }
}

/** The first line V8 writes for an error: `Name: message`, as Error.prototype.toString. */
function errorHeader(error: unknown): string {
  try {
    return Error.prototype.toString.call(error);
  } catch {
    return "<error>";
  }
}

/** One frame as V8 writes it, its compiled location replaced by the source's where mapped. */
export function formatCallSite(site: NodeJS.CallSite, maps: LazySourceMaps): string {
  const text = site.toString();
  const fileName = site.getFileName();
  const line = site.getLineNumber();
  const column = site.getColumnNumber();
  if (!fileName || line === null || column === null) return text;
  const pos = maps.originalPosition(fileName, line, column);
  if (!pos) return text;
  const compiled = `${fileName}:${line}:${column}`;
  const at = text.lastIndexOf(compiled);
  if (at < 0) return text;
  return `${text.slice(0, at)}${pos.file}:${pos.line}:${pos.column}${text.slice(at + compiled.length)}`;
}

/**
 * Sets `Error.prepareStackTrace` so frames in compiled files under `root` name their source
 * lines. Returns what puts the previous hook back.
 */
export function installLazySourceMaps(root: string): () => void {
  const maps = new LazySourceMaps(root);
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error, sites) => {
    let out = errorHeader(error);
    for (const site of sites) {
      let frame: string;
      try {
        frame = formatCallSite(site, maps);
      } catch {
        frame = String(site);
      }
      out += `\n    at ${frame}`;
    }
    return out;
  };
  return () => {
    Error.prepareStackTrace = previous;
  };
}
