import { describe, expect, it } from "vitest";
import {
  GUEST_DIST_TAG,
  GUEST_MODULES_TAG,
  mountablePackageRoot,
  parseLdd,
  planGuestRoot,
} from "./guest-root.ts";

// `ldd /usr/bin/node` on this host (Debian 12, Node 20).
const LDD = `	linux-vdso.so.1 (0x00007fd83c205000)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007fd83c1ee000)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fd83be00000)
	libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007fd83c10e000)
	libgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fd83c0ee000)
	libpthread.so.0 => /lib/x86_64-linux-gnu/libpthread.so.0 (0x00007fd83c0e9000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fd83bc1e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007fd83c207000)
`;

describe("parseLdd", () => {
  it("lists every library file and the loader, not the vDSO", () => {
    expect(parseLdd(LDD)).toEqual([
      "/lib/x86_64-linux-gnu/libdl.so.2",
      "/lib/x86_64-linux-gnu/libstdc++.so.6",
      "/lib/x86_64-linux-gnu/libm.so.6",
      "/lib/x86_64-linux-gnu/libgcc_s.so.1",
      "/lib/x86_64-linux-gnu/libpthread.so.0",
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
  });
});

describe("planGuestRoot", () => {
  const plan = planGuestRoot({
    nodeBin: "/usr/bin/node",
    libs: parseLdd(LDD),
    busybox: "/bin/busybox",
    packageRoot: "/work/weir",
    modulesDir: "/work/main/node_modules",
  });
  it("copies only busybox as /bin/sh, Node, its libraries and package.json, each at its path", () => {
    expect(plan.files.map((f) => f.to)).toEqual([
      "/bin/sh",
      "/usr/bin/node",
      ...parseLdd(LDD),
      "/work/weir/package.json",
    ]);
    expect(plan.files[0]).toEqual({ from: "/bin/busybox", to: "/bin/sh" });
  });
  it("exports dist/ and node_modules (where the symlink points) at the package's paths", () => {
    expect(plan.exports).toEqual([
      { tag: GUEST_DIST_TAG, hostPath: "/work/weir/dist", guestPath: "/work/weir/dist" },
      {
        tag: GUEST_MODULES_TAG,
        hostPath: "/work/main/node_modules",
        guestPath: "/work/weir/node_modules",
      },
    ]);
    // their mount points, and the guest's own file systems', exist in the read-only root
    expect(plan.dirs).toEqual([
      "/proc",
      "/sys",
      "/dev",
      "/tmp",
      "/run",
      "/work/weir/dist",
      "/work/weir/node_modules",
    ]);
  });
});

describe("mountablePackageRoot", () => {
  it("accepts a plain absolute path and refuses one the guest would hide or cannot pass", () => {
    expect(mountablePackageRoot("/work/weir")).toBe("/work/weir");
    expect(() => mountablePackageRoot("/tmp/weir-clone")).toThrow(
      /'packageRoot' must not be under \/tmp: .*"\/tmp\/weir-clone"/,
    );
    expect(() => mountablePackageRoot("/run/x")).toThrow(/must not be under \/run/);
    expect(() => mountablePackageRoot("/tmpfoo/weir")).not.toThrow();
    expect(() => mountablePackageRoot("relative/path")).toThrow(/must be an absolute path/);
    expect(() => mountablePackageRoot("/with space")).toThrow(/must be an absolute path/);
  });
});
