import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { describeLlc, readLlc, wakeupSearchesCpus } from "./cpu-caches.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A fake /sys/devices/system/cpu: cpu → list of [level, shared_cpu_list], or null for no cache dir. */
function sysTree(cpus: Record<number, [number, string][] | null>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "weir-cpu-caches-"));
  dirs.push(root);
  fs.mkdirSync(path.join(root, "cpufreq"));
  for (const [cpu, caches] of Object.entries(cpus)) {
    fs.mkdirSync(path.join(root, `cpu${cpu}`, "topology"), { recursive: true });
    if (caches === null) continue;
    caches.forEach(([level, shared], i) => {
      const d = path.join(root, `cpu${cpu}`, "cache", `index${i}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, "level"), `${level}\n`);
      fs.writeFileSync(path.join(d, "shared_cpu_list"), `${shared}\n`);
    });
  }
  return root;
}

describe("last-level cache note", () => {
  it("reads the highest-level cache of every CPU", () => {
    const root = sysTree({
      0: [
        [1, "0"],
        [2, "0"],
        [3, "0-1"],
      ],
      1: [
        [1, "1"],
        [3, "0-1"],
      ],
    });
    expect(readLlc(root)).toEqual([
      { cpu: 0, llc: { level: 3, sharedCpuList: "0-1" } },
      { cpu: 1, llc: { level: 3, sharedCpuList: "0-1" } },
    ]);
    expect(describeLlc(readLlc(root))).toContain(
      "L3 shared by CPUs 0-1; when a task wakes, the kernel looks for an idle CPU",
    );
  });

  it("says when the kernel was shown no caches at all", () => {
    const root = sysTree({ 0: null, 1: null });
    expect(readLlc(root)).toEqual([
      { cpu: 0, llc: null },
      { cpu: 1, llc: null },
    ]);
    expect(describeLlc(readLlc(root))).toMatch(/none \(no .*cpu0\/cache.*busy or not/);
  });

  it("says when each CPU has a last-level cache of its own", () => {
    const note = describeLlc([
      { cpu: 0, llc: { level: 2, sharedCpuList: "0" } },
      { cpu: 1, llc: { level: 2, sharedCpuList: "1" } },
    ]);
    expect(note).toContain("L2 shared by CPUs 0 | 1; no two CPUs share it");
  });

  it("tells whether a wake-up searches the given CPUs for an idle one (two of them share a cache)", () => {
    const none = readLlc(sysTree({ 0: null, 1: null }));
    expect(wakeupSearchesCpus(none, [0, 1])).toBe(false);
    const own = readLlc(sysTree({ 0: [[2, "0"]], 1: [[2, "1"]] }));
    expect(wakeupSearchesCpus(own, [0, 1])).toBe(false);
    const shared = readLlc(
      sysTree({
        0: [
          [1, "0"],
          [3, "0-1"],
        ],
        1: [
          [1, "1"],
          [3, "0-1"],
        ],
        2: [[3, "2-3"]],
        3: [[3, "2-3"]],
      }),
    );
    expect(wakeupSearchesCpus(shared, [0, 1, 2, 3])).toBe(true);
    expect(wakeupSearchesCpus(shared, [1, 2])).toBe(false);
    expect(wakeupSearchesCpus(shared, [2])).toBe(false);
  });
});
