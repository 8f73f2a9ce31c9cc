import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FakeQemu } from "./fake-qemu.ts";
import { LogTail } from "./guest.ts";
import { applyConsole, GuestCpus } from "./guest-cpus.ts";
import { QmpClient } from "./qmp.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-gcpus-`));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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

describe("GuestCpus", () => {
  it("plugs again only plugAfterUnplugMs after an unplug finished (QEMU 7.2 TCG aborted sooner)", async () => {
    const base = path.join(tmp, "g");
    const fake = await FakeQemu.start({
      qmpSocket: `${base}.qmp`,
      consoleLog: `${base}.log`,
      maxCpus: 4,
    });
    const qmp = await QmpClient.connect(`${base}.qmp`);
    try {
      const cpus = new GuestCpus({
        qmp,
        tail: new LogTail(`${base}.log`),
        minCpus: 1,
        maxCpus: 2,
        plugAfterUnplugMs: 400,
      });
      cpus.request(2);
      await cpus.idle();
      expect(cpus.status().plugged).toBe(2); // the first plug is not held
      cpus.request(1);
      await cpus.idle();
      expect(cpus.status().plugged).toBe(1);
      const unpluggedAt = Date.now();
      cpus.request(2);
      await new Promise((r) => setTimeout(r, 50));
      expect(cpus.status().plugged).toBe(1); // held
      await cpus.idle();
      expect(cpus.status().plugged).toBe(2);
      // a lower bound only: a busy machine makes it later, never sooner
      expect(Date.now() - unpluggedAt).toBeGreaterThanOrEqual(400 - 5);
      expect(fake.commands.filter((c) => c === "device_add")).toHaveLength(2);
      // the guest onlines it (the fake's console line, before the fake goes away)
      for (let i = 0; i < 200 && cpus.status().applied !== 2; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(cpus.status().applied).toBe(2);
    } finally {
      qmp.close();
      await fake.kill();
    }
  });
});
