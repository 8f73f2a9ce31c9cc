import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadState, saveState } from "./state-file.ts";

describe("state file", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-state-"));

  it("round-trips and leaves no temp file", () => {
    const path = join(dir, "sub", "state.json");
    const found = { web: { partition: "web", values: { "cpu.max": "max 100000" } } };
    const policyState = {
      partitions: { web: { cpuMillis: 300, demandCpuMillis: 280, velocityPacketsPerCpuSec: 4000 } },
    };
    saveState(path, { savedAtMs: 1_700_000_000_000, policyState, found });
    const { state, note } = loadState(path);
    expect(state?.found).toEqual(found);
    expect(state?.policyState).toEqual(policyState);
    expect(note).toContain("resumed");
    expect(readdirSync(join(dir, "sub"))).toEqual(["state.json"]);
  });

  it("a failed write throws and leaves no partial temporary file", () => {
    // the state path is a non-empty directory: the rename fails (EISDIR) after the tmp write
    const sub = join(dir, "blocked");
    mkdirSync(join(sub, "state.json"), { recursive: true });
    writeFileSync(join(sub, "state.json", "x"), "");
    const policyState = { partitions: {} };
    expect(() =>
      saveState(join(sub, "state.json"), { savedAtMs: 0, policyState, found: {} }),
    ).toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(sub)).toEqual(["state.json"]);
  });

  it("treats missing or corrupt files as a fresh start", () => {
    expect(loadState(join(dir, "nope.json")).state).toBeNull();
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{ half");
    const r = loadState(bad);
    expect(r.state).toBeNull();
    expect(r.note).toContain("not valid JSON");
  });
});
