import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HeldFdBudget } from "../cgroup/held-fds.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { HeldFile, readOnce } from "./held-file.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-held-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("HeldFile", () => {
  it("re-reads the current content at offset 0 on every read, on one descriptor", () => {
    const p = path.join(dir, "rx_packets");
    fs.writeFileSync(p, "10\n");
    const f = new HeldFile(p, { sizeHint: 8 });
    expect(f.read()).toBe("10\n");
    fs.writeFileSync(p, "12345\n"); // same inode, rewritten in place
    expect(f.read()).toBe("12345\n");
    expect(f.read()).toBe("12345\n");
    expect(f.reopens).toBe(0);
    f.close();
    expect(f.isOpen).toBe(false);
  });

  it("past its descriptor budget opens the file for each read, and gives back what it held on close", () => {
    const budget = new HeldFdBudget(1);
    const a = path.join(dir, "a");
    const b = path.join(dir, "b");
    fs.writeFileSync(a, "1\n");
    fs.writeFileSync(b, "2\n");
    const held = new HeldFile(a, { fdBudget: budget });
    const onDemand = new HeldFile(b, { fdBudget: budget });
    expect([held.onDemand, held.isOpen, onDemand.onDemand, onDemand.isOpen]).toEqual([
      false,
      true,
      true,
      false,
    ]);
    fs.writeFileSync(b, "22\n");
    expect([held.read(), onDemand.read(), budget.held]).toEqual(["1\n", "22\n", 1]);
    fs.rmSync(b);
    expect(() => onDemand.read()).toThrow(WeirError);
    // a file that cannot be read throws at construction whether held or not
    expect(() => new HeldFile(b, { fdBudget: budget })).toThrow(WeirError);
    held.close();
    held.close();
    onDemand.close();
    expect(budget.held).toBe(0);
    expect(new HeldFile(a, { fdBudget: budget }).onDemand).toBe(false);
  });

  it("grows its buffer for a file larger than the size hint", () => {
    const p = path.join(dir, "dev");
    const text = "x".repeat(10_000);
    fs.writeFileSync(p, text);
    const f = new HeldFile(p, { sizeHint: 16 });
    expect(f.read()).toBe(text);
    f.close();
  });

  it("a missing file fails at open with the classifier's error", () => {
    const p = path.join(dir, "nope");
    expect(() => new HeldFile(p)).toThrow(WeirError);
    try {
      new HeldFile(p, {
        classify: (file, err) => new WeirError(ErrorCodes.INTERFACE_GONE, `${file} ${err.code}`),
      });
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.INTERFACE_GONE);
      expect((e as WeirError).message).toBe(`${p} ENOENT`);
    }
  });

  it("readOnce reads a whole file and classifies a failure", () => {
    const p = path.join(dir, "a");
    fs.writeFileSync(p, "7\n");
    expect(readOnce(p)).toBe("7\n");
    try {
      readOnce(path.join(dir, "b"));
      expect.unreachable();
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.COUNTER_UNREADABLE);
      expect((e as WeirError).retryable).toBe(true);
    }
  });
});
