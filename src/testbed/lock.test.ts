import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { withFileLock } from "./lock.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "weir-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("withFileLock", () => {
  it("serialises holders and releases the file", async () => {
    const file = join(dir, "a.lock");
    const events: string[] = [];
    const holder = (name: string) =>
      withFileLock(file, async () => {
        events.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 50));
        events.push(`${name} out`);
      });
    await Promise.all([holder("a"), holder("b")]);
    expect(events).toEqual(["a in", "a out", "b in", "b out"]);
    expect(existsSync(file)).toBe(false);
  });

  it("takes over a lock whose owner is dead", async () => {
    const file = join(dir, "b.lock");
    writeFileSync(file, String(2 ** 22 + 4321)); // no such pid
    expect(await withFileLock(file, async () => "got it", { timeoutMs: 2000 })).toBe("got it");
  });

  it("gives up on a live owner after the timeout", async () => {
    const file = join(dir, "c.lock");
    writeFileSync(file, String(process.pid)); // held by a live process (us)
    await expect(withFileLock(file, async () => 1, { timeoutMs: 200 })).rejects.toThrow(
      /held by pid/,
    );
    expect(existsSync(file)).toBe(true);
  });
});
