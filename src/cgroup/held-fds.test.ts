import { describe, expect, it } from "vitest";
import { FD_RESERVE, HeldFdBudget, heldFdLimitFor, softOpenFilesLimit } from "./held-fds.ts";

const limits = (soft: string, hard: string) =>
  [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max processes             7823                 7823                 processes ",
    `Max open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     `,
    "Max locked memory         8388608              8388608              bytes     ",
  ].join("\n");

describe("held descriptor budget", () => {
  it("reads the soft open-files limit from /proc/<pid>/limits", () => {
    expect(softOpenFilesLimit(limits("20000", "20000"))).toBe(20000);
    expect(softOpenFilesLimit(limits("1024", "524288"))).toBe(1024);
    expect(softOpenFilesLimit(limits("unlimited", "unlimited"))).toBeNull();
    expect(softOpenFilesLimit("no such line")).toBeNull();
  });

  it("keeps FD_RESERVE free, and at least half the limit for holding", () => {
    expect(FD_RESERVE).toBe(1024);
    expect(heldFdLimitFor(20000)).toBe(18976);
    expect(heldFdLimitFor(1024)).toBe(512);
    expect(heldFdLimitFor(null)).toBe(Number.POSITIVE_INFINITY);
  });

  it("gives out at most its limit and takes back what was given", () => {
    const b = new HeldFdBudget(2);
    expect([b.take(), b.take(), b.take()]).toEqual([true, true, false]);
    b.give();
    expect([b.take(), b.held]).toEqual([true, 2]);
    b.give();
    b.give();
    b.give();
    expect(b.held).toBe(0);
  });
});
