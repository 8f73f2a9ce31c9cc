import { describe, expect, it } from "vitest";
import { applyConsole } from "./guest-cpus.ts";

// Lines from a 6.1.0-57-amd64 guest's serial console (TCG, -smp 1,maxcpus=2), hot-plug then unplug.
const PLUG = `[   18.598333] CPU1 has been hot-added
[   18.753511] smpboot: Booting Node 0 Processor 1 APIC 0x1
{"level":30,"msg":"directive: 2000m, weight 200, 2 CPUs"}
`;
const UNPLUG = `[   41.104221] smpboot: CPU 1 is now offline
`;

describe("applyConsole", () => {
  it("counts a CPU online when the guest kernel boots it, not when QEMU hot-adds it", () => {
    expect([...applyConsole(new Set([0]), "[   18.598333] CPU1 has been hot-added\n")]).toEqual([
      0,
    ]);
    expect([...applyConsole(new Set([0]), PLUG)].sort()).toEqual([0, 1]);
  });
  it("drops it when the kernel says it is offline; leaves the input set alone", () => {
    const before = new Set([0, 1]);
    expect([...applyConsole(before, UNPLUG)]).toEqual([0]);
    expect([...before]).toEqual([0, 1]);
  });
  it("applies lines in order (online, offline, online again)", () => {
    expect([...applyConsole(new Set([0]), PLUG + UNPLUG + PLUG)].sort()).toEqual([0, 1]);
  });
});
