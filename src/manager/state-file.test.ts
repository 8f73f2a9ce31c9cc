import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadState, removeStaleTemporaries, saveState } from "./state-file.ts";

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

  it("removes a temporary file whose writer no longer runs, keeps a live writer's", () => {
    const sub = join(dir, "killed");
    mkdirSync(sub);
    const path = join(sub, "state.json");
    saveState(path, { savedAtMs: 1, policyState: { partitions: {} }, found: {} });
    // pid 2^22 + 1 is above the kernel's pid_max ceiling, so no process has it
    const dead = `state.json.tmp-${4_194_305}`;
    const live = `state.json.tmp-${process.ppid}`;
    writeFileSync(join(sub, dead), "{ half");
    writeFileSync(join(sub, live), "{ half");
    writeFileSync(join(sub, "other.json.tmp-4194305"), "");
    const { state, note } = loadState(path);
    expect(state?.savedAtMs).toBe(1);
    expect(note).toContain("removed 1 temporary file left by a killed writer");
    expect(readdirSync(sub).sort()).toEqual(["other.json.tmp-4194305", "state.json", live].sort());
    expect(removeStaleTemporaries(path)).toEqual([]);
  });
});
