// The state file: lets a restarted manager resume smoothly (policy memory) and still restore
// the values it found before it first touched each partition. Written atomically (tmp + rename),
// so a crash mid-write leaves the previous file intact; a write that fails (a full disk) removes
// its partial temporary file.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { AllocationSnapshot } from "../actuators/types.ts";
import type { PartitionId } from "../core/model.ts";
import type { PolicyState } from "../policy/types.ts";

export interface PersistedState {
  version: 1;
  savedAtMs: number;
  policyState: PolicyState;
  found: Record<PartitionId, AllocationSnapshot>;
}

export function saveState(path: string, state: Omit<PersistedState, "version">): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, `${JSON.stringify({ version: 1, ...state })}\n`);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Load a state file; a missing or unreadable one means a fresh start (returns null and why). */
export function loadState(path: string): { state: PersistedState | null; note: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { state: null, note: `no state file at ${path}: fresh start` };
  }
  try {
    const s = JSON.parse(text) as PersistedState;
    if (s.version !== 1 || typeof s.policyState !== "object" || typeof s.found !== "object")
      return { state: null, note: `state file ${path} has an unknown shape: ignored, fresh start` };
    return {
      state: s,
      note: `resumed from ${path} saved at ${new Date(s.savedAtMs).toISOString()}`,
    };
  } catch {
    return { state: null, note: `state file ${path} is not valid JSON: ignored, fresh start` };
  }
}
