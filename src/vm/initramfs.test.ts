import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  GUEST_MODULES,
  GUEST_READY_LINE,
  initScript,
  loadOrder,
  parseModulesDep,
} from "./initramfs.ts";

// The lines of Debian 6.1.0-57-amd64's modules.dep (written by `depmod -b`) for the guest's modules.
const DEP = readFileSync(path.join(import.meta.dirname, "fixtures", "modules.dep"), "utf8");

describe("modules.dep and load order", () => {
  it("parses names, paths and direct dependencies", () => {
    const dep = parseModulesDep(DEP);
    expect(dep.size).toBe(14);
    expect(dep.get("9p")).toEqual({
      path: "kernel/fs/9p/9p.ko",
      deps: ["kernel/net/9p/9pnet.ko", "kernel/fs/fscache/fscache.ko", "kernel/fs/netfs/netfs.ko"],
    });
    expect(dep.get("virtio_ring")).toEqual({
      path: "kernel/drivers/virtio/virtio_ring.ko",
      deps: [],
    });
  });

  it("loads every module after all it depends on, each once", () => {
    const dep = parseModulesDep(DEP);
    const order = loadOrder(dep, GUEST_MODULES);
    expect(new Set(order).size).toBe(order.length);
    expect(order).toHaveLength(14); // the five wanted and their nine dependencies
    const at = (name: string) => order.findIndex((p) => p.endsWith(`/${name}.ko`));
    for (const m of dep.values())
      for (const d of m.deps) expect(order.indexOf(d)).toBeLessThan(order.indexOf(m.path));
    expect(at("virtio_ring")).toBeLessThan(at("virtio"));
    expect(at("netfs")).toBeLessThan(at("fscache"));
    expect(at("9p")).toBe(order.length - 2); // nothing depends on it…
    expect(at("qemu_fw_cfg")).toBe(order.length - 1); // …nor on the last wanted, which needs nothing
  });

  it("names a module the kernel lacks, and a dependency cycle", () => {
    expect(() => loadOrder(parseModulesDep(DEP), ["vsock"])).toThrow(
      /module vsock is not in modules.dep/,
    );
    const cyclic = parseModulesDep("a.ko: b.ko\nb.ko: a.ko\n");
    expect(() => loadOrder(cyclic, ["a"])).toThrow(/cycle: a.ko -> b.ko -> a.ko/);
  });
});

describe("the guest's /init", () => {
  const script = initScript(["kernel/drivers/virtio/virtio_ring.ko", "kernel/fs/9p/9p.ko"]);
  it("insmods in the given order, mounts the guest root and the package's exports read-only over 9p, never exits", () => {
    expect(script.startsWith("#!/bin/busybox sh\n")).toBe(true);
    expect(script.indexOf("insmod /lib/modules/virtio_ring.ko")).toBeLessThan(
      script.indexOf("insmod /lib/modules/9p.ko"),
    );
    expect(script).toContain(
      "mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /mnt/host",
    );
    expect(script).toContain(
      `mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 "\${m%%:*}" "/mnt/host\${m#*:}"`,
    );
    expect(script).toContain("for m in $(arg weir.mounts | tr , ' ')");
    expect(script).toContain(`echo "${GUEST_READY_LINE}`);
    expect(script.trimEnd().endsWith("while :; do sleep 3600; done")).toBe(true);
  });
  it("gives what runs in the guest its own /run and /dev, and its files from fw_cfg", () => {
    expect(script).toContain("mount -t tmpfs run /mnt/host/run");
    expect(script).toContain("mount -t devtmpfs dev /mnt/host/dev");
    expect(script).toContain("for f in run.sh key; do");
    expect(script).toContain(
      "cp /sys/firmware/qemu_fw_cfg/by_name/opt/weir/$f/raw /mnt/host/tmp/weir/$f",
    );
  });
});
