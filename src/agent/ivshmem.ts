// Inside a QEMU guest: the partition's shared-memory region is an ivshmem-plain PCI device
// (vendor 0x1af4, device 0x1110). Its memory is BAR2, which sysfs exposes as the device's
// `resource2` file; it must be mmap()ed (read()/write() on it fail), which is what the
// slot table's mapping does. The host gives each guest its own region, so a guest's agent
// sees only its own partition's slot.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";

export const IVSHMEM_VENDOR = 0x1af4;
export const IVSHMEM_DEVICE = 0x1110;

const readHex = (file: string): number | null => {
  try {
    return Number.parseInt(readFileSync(file, "utf8").trim(), 16);
  } catch {
    return null;
  }
};

/**
 * The `resource2` file of the first ivshmem device under `<sysfs>/bus/pci/devices` (by
 * PCI address), after enabling the device's memory decoding when no driver did
 * (`enable` = 1). Throws when the guest has no ivshmem device.
 */
export function findIvshmemRegion(sysfs: string): string {
  const dir = path.join(sysfs, "bus", "pci", "devices");
  let devices: string[];
  try {
    devices = readdirSync(dir).sort();
  } catch (cause) {
    throw new WeirError(ErrorCodes.AGENT, `cannot list ${dir}`, { cause });
  }
  for (const d of devices) {
    const dev = path.join(dir, d);
    if (readHex(path.join(dev, "vendor")) !== IVSHMEM_VENDOR) continue;
    if (readHex(path.join(dev, "device")) !== IVSHMEM_DEVICE) continue;
    const enable = path.join(dev, "enable");
    try {
      if (readFileSync(enable, "utf8").trim() === "0") writeFileSync(enable, "1");
    } catch (cause) {
      throw new WeirError(ErrorCodes.AGENT, `cannot enable ivshmem device ${d} (${enable})`, {
        cause,
      });
    }
    return path.join(dev, "resource2");
  }
  throw new WeirError(
    ErrorCodes.AGENT,
    `no ivshmem device (PCI 1af4:1110) under ${dir}: is this a QEMU guest with ivshmem-plain?`,
  );
}
