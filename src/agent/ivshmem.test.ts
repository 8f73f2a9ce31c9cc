import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findIvshmemRegion } from "./ivshmem.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A sysfs tree with the PCI devices a QEMU guest showed (vendor/device as the kernel writes them). */
function sysfs(devices: Array<[string, string, string, string?]>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-ivshmem-`));
  dirs.push(root);
  for (const [addr, vendor, device, enable] of devices) {
    const d = path.join(root, "bus/pci/devices", addr);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, "vendor"), `${vendor}\n`);
    writeFileSync(path.join(d, "device"), `${device}\n`);
    writeFileSync(path.join(d, "enable"), `${enable ?? "0"}\n`);
  }
  return root;
}

describe("findIvshmemRegion", () => {
  it("picks the 1af4:1110 device (not virtio's 1af4:1009) and enables it", () => {
    const root = sysfs([
      ["0000:00:00.0", "0x8086", "0x1237"],
      ["0000:00:02.0", "0x1af4", "0x1009"],
      ["0000:00:04.0", "0x1af4", "0x1110", "0"],
    ]);
    const dev = path.join(root, "bus/pci/devices/0000:00:04.0");
    expect(findIvshmemRegion(root)).toBe(path.join(dev, "resource2"));
    expect(readFileSync(path.join(dev, "enable"), "utf8")).toBe("1");
  });

  it("leaves an enabled device's enable file alone", () => {
    const root = sysfs([["0000:00:05.0", "0x1af4", "0x1110", "1"]]);
    findIvshmemRegion(root);
    expect(readFileSync(path.join(root, "bus/pci/devices/0000:00:05.0/enable"), "utf8")).toBe(
      "1\n",
    );
  });

  it("says what is missing when there is no ivshmem device", () => {
    const root = sysfs([["0000:00:02.0", "0x1af4", "0x1009"]]);
    expect(() => findIvshmemRegion(root)).toThrow(/no ivshmem device \(PCI 1af4:1110\)/);
  });
});
