// The repository's folders against the rules in README.md's Layout section: every src/ folder
// has a README that says what it may import (naming each folder of its row in the import
// table), a row in that section and an import rule in biome.json (Biome enforces the rules
// themselves); every path the Layout tree names exists; and the imports between folders form
// no cycle.
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "..");
const SCANNED = ["src", "bench", "test"];
/** Folders that may import anything, so they carry no rule in biome.json. */
const UNRESTRICTED = new Set(["src/cli"]);

const srcFolders = (): string[] =>
  fs
    .readdirSync(path.join(ROOT, "src"), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `src/${e.name}`)
    .sort();

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (e.name !== "fixtures" && e.name !== "node_modules") out.push(...sourceFiles(rel));
    } else if (e.name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

/** The folder a repository path belongs to: `src/<name>` inside src/, else its top folder. */
function folderOf(relPath: string): string {
  const parts = relPath.split("/");
  return parts[0] === "src" && parts.length > 2 ? `src/${parts[1]}` : parts[0]!;
}

interface FolderEdge {
  from: string;
  to: string;
  /** One import that makes the edge: `file: specifier`. */
  example: string;
}

/** Edges between folders from every relative import (static, dynamic, type, re-export). */
function folderEdges(files: readonly string[], read: (f: string) => string): FolderEdge[] {
  const edges = new Map<string, FolderEdge>();
  for (const file of files) {
    for (const { fileName } of ts.preProcessFile(read(file), true, true).importedFiles) {
      if (!fileName.startsWith(".")) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName));
      const from = folderOf(file);
      const to = folderOf(target);
      const key = `${from} -> ${to}`;
      if (from !== to && !edges.has(key))
        edges.set(key, { from, to, example: `${file}: "${fileName}"` });
    }
  }
  return [...edges.values()];
}

/** A cycle as its edges in order, or null when the folder graph has none. */
function findCycle(edges: readonly FolderEdge[]): FolderEdge[] | null {
  const out = new Map<string, FolderEdge[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e]);
  const state = new Map<string, "open" | "done">();
  const trail: FolderEdge[] = [];
  const visit = (node: string): FolderEdge[] | null => {
    state.set(node, "open");
    for (const e of out.get(node) ?? []) {
      if (state.get(e.to) === "open") {
        const start = trail.findIndex((p) => p.from === e.to);
        return [...trail.slice(start === -1 ? trail.length : start), e];
      }
      if (state.get(e.to) === "done") continue;
      trail.push(e);
      const found = visit(e.to);
      if (found) return found;
      trail.pop();
    }
    state.set(node, "done");
    return null;
  };
  for (const node of out.keys()) {
    if (state.has(node)) continue;
    const found = visit(node);
    if (found) return found;
  }
  return null;
}

/** The top README's section from `## Layout` to the next `## ` heading. */
function layoutSection(readme: string): string {
  const start = readme.indexOf("## Layout");
  if (start === -1) return "";
  const next = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, next === -1 ? undefined : next);
}

/** The paths the Layout section's tree names: the first word of each line of its first ``` block. */
function layoutPaths(readme: string): string[] {
  const block = /```\n([\s\S]*?)```/.exec(layoutSection(readme))?.[1] ?? "";
  return block
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((p) => p !== "");
}

/**
 * The import table of the Layout section: folder (`src/x`) → what it may import (`core`,
 * `manager/view.ts`, …); "nothing" rows give an empty list, "anything" rows are left out.
 */
function importTable(readme: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of layoutSection(readme).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4 || !/^`src\/[a-z]+`$/.test(cells[1]!)) continue;
    const rule = cells[2]!;
    if (/^anything/.test(rule)) continue;
    const folder = cells[1]!.slice(1, -1);
    rows.set(
      folder,
      /^nothing/.test(rule)
        ? []
        : [...rule.split(";")[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
    );
  }
  return rows;
}

/** Whether a folder README names `entry` (`core`, `manager/view.ts`) as a path: `src/core`, `core/` or `` `core` ``. */
function namesFolder(text: string, entry: string): boolean {
  const e = entry.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`src/${e}\\b|(^|[\\s(,\`])${e}/|\`${e}\``).test(text);
}

describe("folders", () => {
  it("every src/ folder has a README.md", () => {
    const missing = srcFolders().filter((f) => !fs.existsSync(path.join(ROOT, f, "README.md")));
    expect(missing, `folders without README.md: ${missing.join(", ")}`).toEqual([]);
  });

  it("every src/ folder is in README.md's Layout section, in the tree and in the import table", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const layout = readme.slice(readme.indexOf("## Layout"));
    const missing = srcFolders().filter(
      (f) => !layout.includes(`\n${f}/ `) || !layout.includes(`\`${f}\``),
    );
    expect(missing, `not in README.md's Layout tree and table: ${missing.join(", ")}`).toEqual([]);
  });

  it("every src/ folder but src/cli has its import rule in biome.json", () => {
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, "biome.json"), "utf8")) as {
      overrides?: Array<{ includes?: string[]; linter?: { rules?: { style?: object } } }>;
    };
    const ruled = new Set(
      (config.overrides ?? [])
        .filter((o) => o.linter?.rules?.style && "noRestrictedImports" in o.linter.rules.style)
        .flatMap((o) => o.includes ?? [])
        .map((glob) => glob.replace(/\/\*\*$/, "")),
    );
    const missing = srcFolders().filter((f) => !UNRESTRICTED.has(f) && !ruled.has(f));
    expect(missing, `no noRestrictedImports override in biome.json: ${missing.join(", ")}`).toEqual(
      [],
    );
  });

  it("every path in README.md's Layout tree exists", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const paths = layoutPaths(readme);
    expect(paths.length, "no tree in README.md's Layout section").toBeGreaterThan(0);
    const missing = paths.filter((p) => !fs.existsSync(path.join(ROOT, p)));
    expect(
      missing,
      `README.md's Layout names paths that do not exist: ${missing.join(", ")}`,
    ).toEqual([]);
  });

  it("every src/ folder's README says what it may import, naming each folder of its row", () => {
    const table = importTable(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"));
    const wrong: string[] = [];
    for (const folder of srcFolders()) {
      const file = path.join(ROOT, folder, "README.md");
      if (!fs.existsSync(file)) continue; // the README test above names it
      const text = fs.readFileSync(file, "utf8");
      if (!/may import|must not import|imports? (only|nothing)/i.test(text))
        wrong.push(`${folder}/README.md does not say what it may import`);
      const unnamed = (table.get(folder) ?? []).filter((e) => !namesFolder(text, e));
      if (unnamed.length > 0)
        wrong.push(
          `${folder}/README.md does not name ${unnamed.join(", ")} (its row in README.md)`,
        );
    }
    expect(wrong, wrong.join("\n")).toEqual([]);
  });

  it("reads the Layout tree and the import table as README.md writes them", () => {
    const readme = [
      "## Layout",
      "",
      "```",
      "src/core/        units (pure)",
      "src/gone/        a folder that was removed",
      "bin/weir.js      the bin",
      "```",
      "",
      "| folder | may import |",
      "| --- | --- |",
      "| `src/core` | nothing: no other folder |",
      "| `src/api` | `core`, `manager/view.ts` |",
      "| `src/policy` | `core`; no `node:*` (pure) |",
      "| `src/cli`, `bench`, `test` | anything |",
      "",
      "## Next",
      "```",
      "not/layout",
      "```",
    ].join("\n");
    expect(layoutPaths(readme)).toEqual(["src/core/", "src/gone/", "bin/weir.js"]);
    expect(Object.fromEntries(importTable(readme))).toEqual({
      "src/core": [],
      "src/api": ["core", "manager/view.ts"],
      "src/policy": ["core"],
    });
    expect(namesFolder("may import `src/core` and src/manager/view.ts", "manager/view.ts")).toBe(
      true,
    );
    expect(namesFolder("may import core/ and policy/", "policy")).toBe(true);
    expect(namesFolder("the score of the core idea", "core")).toBe(false);
  });

  it("no import cycle between folders in src/, bench/ and test/", () => {
    const files = SCANNED.flatMap(sourceFiles);
    const edges = folderEdges(files, (f) => fs.readFileSync(path.join(ROOT, f), "utf8"));
    const cycle = findCycle(edges);
    const described = cycle?.map((e) => `  ${e.from} -> ${e.to} (${e.example})`).join("\n");
    expect(cycle, `folders import each other:\n${described}`).toBeNull();
  });

  it("finds a cycle when there is one, and names an import for each edge", () => {
    // the manager/api cycle this repository had: manager/run.ts served the API, the API read
    // manager/view.ts
    const sources: Record<string, string> = {
      "src/manager/run.ts": 'import { createApi } from "../api/app.ts";',
      "src/api/app.ts": 'import type { ManagerView } from "../manager/view.ts";',
      "src/manager/view.ts": 'import type { CycleRecord } from "../core/model.ts";',
    };
    const edges = folderEdges(Object.keys(sources), (f) => sources[f]!);
    expect(findCycle(edges)).toEqual([
      { from: "src/manager", to: "src/api", example: 'src/manager/run.ts: "../api/app.ts"' },
      { from: "src/api", to: "src/manager", example: 'src/api/app.ts: "../manager/view.ts"' },
    ]);
    expect(findCycle(edges.filter((e) => e.from !== "src/manager"))).toBeNull();
  });
});
