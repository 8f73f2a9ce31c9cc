// The repository's folders against the rules in README.md's Layout section: every src/ folder
// has a README, a row in that section and an import rule in biome.json (Biome enforces the rules
// themselves), and the imports between folders form no cycle.
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
