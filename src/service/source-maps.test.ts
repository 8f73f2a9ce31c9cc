import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { installLazySourceMaps, LazySourceMaps } from "./source-maps.ts";

// A compiled module with its map, as tsc writes them: lib/thrower.js beside lib/thrower.js.map,
// its source src/thrower.ts one folder up (the map names it relative to the .js).
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-srcmap-`));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SOURCE = [
  "// line 1",
  "export function thrower(what: string): never {",
  '  const message: string = "failed: " + what;',
  "  throw new Error(message); // line 4, column 9",
  "}",
  "",
].join("\n");

function compile(): string {
  const out = ts.transpileModule(SOURCE, {
    fileName: "thrower.ts",
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      sourceMap: true,
    },
  });
  const lib = path.join(tmp, "lib");
  fs.mkdirSync(lib, { recursive: true });
  fs.mkdirSync(path.join(tmp, "src"), { recursive: true });
  fs.writeFileSync(path.join(tmp, "src", "thrower.ts"), SOURCE);
  const map = JSON.parse(out.sourceMapText!) as { sources: string[] };
  map.sources = ["../src/thrower.ts"];
  const file = path.join(lib, "thrower.js");
  fs.writeFileSync(file, out.outputText);
  fs.writeFileSync(`${file}.map`, JSON.stringify(map));
  return file;
}
const compiled = compile();
const thrower = (createRequire(import.meta.url)(compiled) as { thrower: (w: string) => never })
  .thrower;
const compiledLine = (text: string) =>
  fs
    .readFileSync(compiled, "utf8")
    .split("\n")
    .findIndex((l) => l.includes(text)) + 1;

describe("LazySourceMaps", () => {
  it("maps a compiled position to its source and reads the map only when asked", () => {
    const maps = new LazySourceMaps(path.join(tmp, "lib"));
    expect(maps.loadedMaps).toBe(0);
    const line = compiledLine("throw new Error");
    expect(line).toBeGreaterThan(0);
    const column = fs.readFileSync(compiled, "utf8").split("\n")[line - 1]!.indexOf("throw") + 1;
    const pos = maps.originalPosition(compiled, line, column);
    expect(pos).toEqual({ file: path.join(tmp, "src", "thrower.ts"), line: 4, column: 3 });
    expect(maps.loadedMaps).toBe(1);
    // a file: URL, as ESM frames give it, maps the same; the map is not read again
    expect(maps.originalPosition(`file://${compiled}`, line, column)).toEqual(pos);
    expect(maps.loadedMaps).toBe(1);
  });

  it("leaves files outside its root, and files without a map, unmapped", () => {
    const maps = new LazySourceMaps(path.join(tmp, "lib"));
    expect(maps.originalPosition(path.join(tmp, "elsewhere.js"), 1, 1)).toBeUndefined();
    expect(maps.originalPosition("node:internal/x", 1, 1)).toBeUndefined();
    const bare = path.join(tmp, "lib", "bare.js");
    fs.writeFileSync(bare, "module.exports = 1;\n");
    expect(maps.originalPosition(bare, 1, 1)).toBeUndefined();
    // a root that is only a prefix of the folder's name is not that folder
    expect(new LazySourceMaps(path.join(tmp, "li")).originalPosition(compiled, 1, 1)).toBe(
      undefined,
    );
  });
});

describe("installLazySourceMaps", () => {
  it("writes the error's first line and names the .ts line of a compiled frame, then restores", () => {
    const before = Error.prepareStackTrace;
    const restore = installLazySourceMaps(path.join(tmp, "lib"));
    let stack: string;
    try {
      try {
        thrower("x");
      } catch (e) {
        stack = (e as Error).stack!;
      }
    } finally {
      restore();
    }
    expect(Error.prepareStackTrace).toBe(before);
    const lines = stack!.split("\n");
    expect(lines[0]).toBe("Error: failed: x");
    expect(lines[1]).toBe(`    at thrower (${path.join(tmp, "src", "thrower.ts")}:4:9)`);
    // frames outside the root as V8 writes them (this test file's own, through vitest)
    expect(lines.slice(2).some((l) => l.includes("source-maps.test.ts"))).toBe(true);
  });
});
