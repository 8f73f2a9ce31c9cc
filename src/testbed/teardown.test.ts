import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeCgroup } from "./teardown.ts";

describe("removeCgroup", () => {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("removes child groups made inside it first (a killed benchmark's <prefix>/gen), deepest first", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "weir-teardown-"));
    made.push(root);
    const dir = path.join(root, "wc123");
    mkdirSync(path.join(dir, "gen", "inner"), { recursive: true });
    mkdirSync(path.join(dir, "a"));
    await removeCgroup(dir);
    expect(() => mkdirSync(dir)).not.toThrow(); // it was gone
  });

  it("leaves a child that still holds a process", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "weir-teardown-"));
    made.push(root);
    const dir = path.join(root, "wc124");
    mkdirSync(path.join(dir, "gen"), { recursive: true });
    // a plain directory stands for the cgroup: its cgroup.procs lists a member
    writeFileSync(path.join(dir, "gen", "cgroup.procs"), `${process.pid}\n`);
    let error: unknown = null;
    try {
      // not a cgroup: rmdir of the parent fails with ENOTEMPTY, which is not retried
      await removeCgroup(dir);
    } catch (e) {
      error = e;
    }
    expect(String(error)).toMatch(/cannot remove cgroup .*wc124/);
    expect(() => mkdirSync(path.join(dir, "gen"))).toThrow(/EEXIST/);
  });
});
