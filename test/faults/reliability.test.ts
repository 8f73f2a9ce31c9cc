// The page generator (unit project: pure, no root): rows sorted by id, cells escaped, the
// command that reproduces each row, and a failed row marked.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type FaultRow, recordRow, renderReliability, reproduceCommand } from "./reliability.ts";

const row = (id: string, holds: boolean): FaultRow => ({
  id,
  fault: `fault ${id} | piped`,
  mustHold: "x",
  observed: "seen\nover lines",
  holds,
  file: "test/faults/x.faults.test.ts",
  test: "t",
});

describe("RELIABILITY.md", () => {
  it("renders rows in id order with escaped cells and their command", () => {
    const page = renderReliability([row("02-b", false), row("01-a", true)]);
    const lines = page.split("\n").filter((l) => l.startsWith("| fault 0"));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("fault 01-a \\| piped");
    expect(lines[0]).toContain("| yes |");
    expect(lines[1]).toContain("| **no** |");
    expect(lines[0]).toContain("seen over lines");
    expect(page).toContain(
      '`flock /tmp/weir-bench.lock npx vitest run --config vitest.config.ts --project faults test/faults/x.faults.test.ts -t "t"`',
    );
    expect(reproduceCommand({ file: "f", test: "n" })).toMatch(/--project faults f -t "n"$/);
  });

  it("replaces a row by id and keeps the others", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "weir-rel-"));
    const files = { observed: path.join(dir, "o.json"), page: path.join(dir, "R.md") };
    recordRow(row("01-a", false), files);
    recordRow(row("02-b", true), files);
    recordRow(row("01-a", true), files);
    const rows = (JSON.parse(readFileSync(files.observed, "utf8")) as { rows: FaultRow[] }).rows;
    expect(rows.map((r) => [r.id, r.holds])).toEqual([
      ["01-a", true],
      ["02-b", true],
    ]);
    expect(rows[0]!.date).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d$/);
    expect(readFileSync(files.page, "utf8")).not.toContain("**no**");
  });
});
